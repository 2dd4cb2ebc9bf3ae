//! `--limit`: the fleet plan of the hosts an Ansible host pattern selects
//! (docs/FLEET.md, "--limit").

use std::path::PathBuf;

use hoist::fleet::inventory::{self, Inventory};
use hoist::fleet::plan::{FleetPlanError, plan, plan_limited};
use hoist::recipe::{self, Recipe};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(name: &str) -> Recipe {
    let path = root().join("recipes").join(name);
    recipe::load(&path)
        .expect("a shipped recipe")
        .recipe
        .expect("valid")
}

fn fixture(name: &str) -> Inventory {
    inventory::load(&root().join("tests/fixtures/fleet").join(name)).unwrap()
}

#[test]
fn a_limit_plans_only_its_hosts_in_the_stages_order() {
    let (r, inv) = (shipped("cloudstack"), fixture("cloudstack.yml"));
    let p = plan_limited(&r, &inv, None, Some("all:!~kvm-0[2-9]")).unwrap();
    let hosts: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
    assert!(
        !hosts.contains(&"kvm-02") && hosts.contains(&"kvm-10"),
        "{hosts:?}"
    );
    let upgraded: Vec<&str> = p.upgraded().collect();
    let full = plan(&r, &inv, None).unwrap();
    let expected: Vec<&str> = full.upgraded().filter(|h| hosts.contains(h)).collect();
    assert_eq!(upgraded, expected, "stages and hosts keep their order");
    assert_eq!(p.limit.as_deref(), Some("all:!~kvm-0[2-9]"));
    assert_ne!(p.hash, full.hash);
    assert!(p.render().contains("--limit `all:!~kvm-0[2-9]`"));
    // The same limit, the same plan: resume's hash check holds.
    let again = plan_limited(&r, &inv, None, Some("all:!~kvm-0[2-9]")).unwrap();
    assert_eq!(p.hash, again.hash);
    // No limit: the plan and its JSON as before.
    assert!(!serde_json::to_string(&full).unwrap().contains("\"limit\""));
}

#[test]
fn a_run_once_step_on_a_host_left_out_is_refused() {
    let (r, inv) = (shipped("cloudstack"), fixture("cloudstack.yml"));
    // Seed 003: every management server is stopped before the first is
    // upgraded; a limit leaving one out cannot honour it.
    let e = plan_limited(&r, &inv, None, Some("all:!mgmt-3")).unwrap_err();
    assert!(matches!(e, FleetPlanError::OutsideLimit { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("mgmt-3") && text.contains("--limit"),
        "{text}"
    );
    let xivo = plan_limited(
        &shipped("xivo"),
        &fixture("xivo-ha.toml"),
        None,
        Some("xivo-2"),
    );
    let text = xivo.unwrap_err().to_string();
    assert!(
        text.contains("run-once step `replication-cron-off`"),
        "{text}"
    );
}

#[test]
fn a_pattern_matching_nothing_is_refused_naming_it() {
    let (r, inv) = (shipped("cloudstack"), fixture("cloudstack.yml"));
    for (limit, named) in [("kvm:!kvmm", "kvmm"), ("kvm:&usage", "kvm:&usage")] {
        let e = plan_limited(&r, &inv, None, Some(limit)).unwrap_err();
        assert!(matches!(e, FleetPlanError::Limit(_)), "{e}");
        assert!(e.to_string().contains(&format!("`{named}`")), "{e}");
    }
}
