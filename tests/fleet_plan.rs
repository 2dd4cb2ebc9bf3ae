//! Fleet plans from inventories and the recipes' `[fleet]`: the XiVO HA
//! pair (seed 000), CloudStack's order (seed 003), batch arithmetic, empty
//! roles, a host with two roles; and inventories read from hoist's TOML and
//! Ansible's INI and YAML, bad ones reported at their line and column.

use std::path::{Path, PathBuf};

use hoist::fleet::inventory::{self, Inventory, InventoryError};
use hoist::fleet::plan::{FleetPlan, Item, Thresholds, plan};
use hoist::recipe::{self, Recipe};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(name: &str) -> Recipe {
    recipe::load(&root().join("recipes").join(name))
        .unwrap()
        .recipe
        .unwrap()
}

fn fixture(name: &str) -> Inventory {
    inventory::load(&root().join("tests/fixtures/fleet").join(name)).unwrap()
}

/// A small recipe with the given `[fleet]` text.
fn with_fleet(fleet: &str) -> Recipe {
    let text = format!(
        "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\nroles = [\"web\", \"db\", \"cache\"]\n\n[[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{fleet}"
    );
    let loaded = recipe::load_str(Path::new("fleet.toml"), &text);
    let problems: Vec<String> = loaded.problems.iter().map(|p| p.short()).collect();
    loaded.recipe.unwrap_or_else(|| panic!("{problems:#?}"))
}

fn toml_inventory(text: &str) -> Inventory {
    inventory::load_str(Path::new("inv.toml"), text).unwrap()
}

/// The items in order, one short line each.
fn items(p: &FleetPlan) -> Vec<String> {
    p.items
        .iter()
        .map(|i| match i {
            Item::RunOnce { id, host, gate, .. } => {
                format!("{} {id} on {host}", if *gate { "gate" } else { "once" })
            }
            Item::RunOnEach {
                id, hosts, gate, ..
            } => format!(
                "{} {id} on each of {}",
                if *gate { "gate" } else { "once" },
                hosts.join(" ")
            ),
            Item::Skipped { id, .. } => format!("skip {id}"),
            Item::Batch { stage, hosts, .. } => format!("{stage}: {}", hosts.join(" ")),
            Item::Pause { after } => format!("pause after {after}"),
        })
        .collect()
}

fn batch_sizes(p: &FleetPlan, stage: &str) -> Vec<usize> {
    p.stages
        .iter()
        .find(|s| s.id == stage)
        .unwrap()
        .batches
        .iter()
        .map(Vec::len)
        .collect()
}

#[test]
fn xivo_ha_pair_follows_the_seed_order() {
    let p = plan(&shipped("xivo"), &fixture("xivo-ha.toml"), None).unwrap();
    assert_eq!(
        items(&p),
        [
            "once replication-cron-off on xivo-1",
            "slave: xivo-2",
            "master: xivo-1",
            "once replication-run on xivo-1",
            "once replication-cron-on on xivo-1",
        ]
    );
    assert_eq!(p.max_fail, Some(0), "one failed host stops the pair");
    let text = p.render();
    assert!(text.contains("Stops when: a host fails"), "{text}");
    // The slave's password from the inventory is never shown.
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("not-shown"), "{json}");
}

#[test]
fn cloudstack_first_management_alone_then_one_at_a_time_then_usage_then_kvm() {
    let p = plan(
        &shipped("cloudstack"),
        &fixture("cloudstack.yml"),
        Some("4.3.2"),
    )
    .unwrap();
    assert_eq!(
        items(&p),
        [
            // Seed 003 L818-847: the 4.3 system VM template registered
            // and READY while the old cloud still runs.
            "gate system-vm-template-registered on mgmt-1",
            // L178-192, L2165-2180: every usage server, then every
            // management server, stopped before the first is upgraded.
            "once stop-every-usage-server on each of usage-1",
            "once stop-every-management-server on each of mgmt-1 mgmt-2 mgmt-3",
            "management: mgmt-1",
            "gate database-upgraded on mgmt-1",
            "management: mgmt-2",
            "management: mgmt-3",
            "usage: usage-1",
            "kvm: kvm-01",
            "kvm: kvm-02 kvm-03",
            "kvm: kvm-04 kvm-05",
            "kvm: kvm-06 kvm-07",
            "kvm: kvm-08 kvm-09",
            "kvm: kvm-10",
            // L3403-3436: once every agent is upgraded, one wait for every
            // host to be Up, then the system VM restart once, on one
            // management server, the admin port opened and closed around
            // it: host steps the rollout takes out of each host's plan.
            "gate every-host-up on mgmt-1",
            "once sysvm-api-port on mgmt-1",
            "once sysvm-api-port-restart on mgmt-1",
            "gate sysvm-api-port-listening on mgmt-1",
            "once sysvm-api-port-firewall on mgmt-1",
            "once restart-system-vms-once on mgmt-1",
            "once sysvm-api-port-firewall-remove on mgmt-1",
            "once sysvm-api-port-close on mgmt-1",
            "once sysvm-api-port-close-restart on mgmt-1",
            "gate sysvm-api-port-closed-answers on mgmt-1",
            // The record of what was stopped is set aside (a fleet
            // rollback puts it back).
            "once forget-stopped-usage-servers on each of usage-1",
            "once forget-stopped-management-servers on each of mgmt-1 mgmt-2 mgmt-3",
        ]
    );
    assert_eq!(p.target.as_deref(), Some("4.3.2"));
    // Management and usage servers: the first failure stops the rollout.
    assert_eq!((p.max_fail, p.max_fail_percentage), (Some(0), None));
    for stage in ["management", "usage"] {
        assert_eq!(p.stage(stage).unwrap().thresholds, None, "{stage}");
    }
    // KVM hosts: their own thresholds.
    assert_eq!(
        p.stage("kvm").unwrap().thresholds,
        Some(Thresholds {
            max_fail: Some(1),
            max_fail_percentage: Some(50)
        })
    );
    let text = p.render();
    for want in [
        "Stops when: a host fails (stages without thresholds of their own)",
        "  1. gate on mgmt-1: system-vm-template-registered",
        "  2. run once on every usage (1 host(s): usage-1): stop-every-usage-server (Stop every usage server)",
        "  3. run once on every management (3 host(s): mgmt-1, mgmt-2, mgmt-3): stop-every-management-server",
        "       undo (fleet rollback): sh -c \"set -eu ...\"",
        "Stage kvm has thresholds of its own, counting its hosts only: stops when more than 1 host(s) have failed, or a batch's failed hosts are more than 50% of it",
        "run once on mgmt-1: restart-system-vms-once (Restart the system VMs and virtual routers (cloudstack-sysvmadm -a)) [host step restart-system-vms, where this host's plan of the rollout took it]",
        "       undo (fleet rollback): none needed: restarting the system VMs",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["items"][2]["item"], "run_on_each");
    assert_eq!(
        json["items"][2]["hosts"],
        serde_json::json!(["mgmt-1", "mgmt-2", "mgmt-3"])
    );
    assert_eq!(json["stages"][2]["thresholds"]["max_fail"], 1);
    assert!(json["stages"][0].get("thresholds").is_none());
    let sysvm = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "restart-system-vms-once")
        .unwrap();
    assert_eq!(sysvm["step"], "restart-system-vms");
    // Items that take no host step say nothing of it (older plans hash
    // the same).
    assert!(json["items"][0].get("step").is_none());
}

#[test]
fn the_fleet_plan_lists_the_gates_a_person_must_confirm() {
    let p = plan(
        &shipped("cloudstack"),
        &fixture("cloudstack.yml"),
        Some("4.3.2"),
    )
    .unwrap();
    // The host steps whose gate asks a person (seed 003: componentContext,
    // the 2.2.14 yum upgrade, the RHEL 6.3 repository, the XenServer
    // hotfix); the template gate is a check, not a person.
    for id in [
        "components-to-componentcontext",
        "upgrade-to-2.2.14-yum",
        "rhel63-repository",
        "xen-hotfix",
    ] {
        assert!(
            p.person_gates.contains(&id.to_string()),
            "{id}: {:?}",
            p.person_gates
        );
    }
    assert!(!p.person_gates.iter().any(|g| g.contains("template")));
    let text = p.render();
    assert!(
        text.contains("A person must confirm (--yes does not;")
            && text.contains("on each host whose own plan takes it (`hoist plan` there): ")
            && text.contains("components-to-componentcontext"),
        "{text}"
    );
    // A recipe without one says nothing of it, and hashes as before.
    let xivo = plan(&shipped("xivo"), &fixture("xivo-ha.toml"), None).unwrap();
    assert!(xivo.person_gates.is_empty());
    assert!(!xivo.render().contains("A person must confirm"));
}

#[test]
fn run_on_every_host_of_a_role_lists_them_and_an_empty_role_is_skipped() {
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n[[fleet.run_once]]\nid = \"drain\"\nbefore = \"web\"\non = { every = \"web\" }\nexec = { argv = [\"true\"] }\n\n[[fleet.run_once]]\nid = \"flush\"\nafter = \"web\"\non = { every = \"cache\" }\nexec = { argv = [\"true\"] }\n",
    );
    let inv = toml_inventory(
        "[hosts.w1]\nroles = [\"web\"]\n[hosts.d1]\nroles = [\"db\"]\n[hosts.w2]\nroles = [\"web\"]\n",
    );
    let p = plan(&r, &inv, None).unwrap();
    assert_eq!(
        items(&p),
        [
            "once drain on each of w1 w2",
            "web: w1",
            "web: w2",
            "skip flush"
        ]
    );
    match &p.items[3] {
        Item::Skipped { reason, .. } => {
            assert_eq!(reason, "no host of the inventory has role `cache`")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plan_without_stage_thresholds_serialises_as_before() {
    // Stage thresholds are left out of the plan's JSON when absent, so a
    // plan journaled before they existed still reads and hashes the same.
    let r = with_fleet("[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n");
    let p = plan(&r, &toml_inventory("[hosts.w1]\nroles = [\"web\"]\n"), None).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("thresholds"), "{json}");
    assert!(!json.contains("every"), "{json}");
    let back: FleetPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back.stages[0].thresholds, None);
    assert_eq!(p.thresholds(), "a host fails");
}

#[test]
fn six_hosts_in_batches_of_1_2_and_half() {
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = [1, 2, \"50%\"]\n",
    );
    let p = plan(&r, &fixture("six.ini"), None).unwrap();
    assert_eq!(batch_sizes(&p, "web"), [1, 2, 3]);
    assert_eq!(
        items(&p),
        ["web: web1", "web: web2 web3", "web: web4 web5 web6"]
    );
}

#[test]
fn percentages_round_down_never_below_one_and_the_last_size_repeats() {
    let hosts: String = (1..=7)
        .map(|i| format!("[hosts.h{i}]\nroles = [\"web\"]\n"))
        .collect();
    let inv = toml_inventory(&hosts);
    let sized = |batch: &str| {
        let r = with_fleet(&format!(
            "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = {batch}\n"
        ));
        batch_sizes(&plan(&r, &inv, None).unwrap(), "web")
    };
    assert_eq!(sized("\"30%\""), [2, 2, 2, 1], "30% of 7 is 2.1: 2");
    assert_eq!(sized("\"10%\""), [1; 7], "10% of 7 is 0.7: at least 1");
    assert_eq!(sized("\"100%\""), [7]);
    assert_eq!(sized("[1, \"50%\"]"), [1, 3, 3]);
    assert_eq!(sized("3"), [3, 3, 1]);
    assert_eq!(sized("[1, 1]"), [1; 7]);
}

#[test]
fn an_empty_role_plans_no_batch_and_skips_its_run_once_steps() {
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"cache\"\nrole = \"cache\"\n\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n[[fleet.run_once]]\nid = \"flush\"\nbefore = \"web\"\non = { role = \"cache\" }\nexec = { argv = [\"true\"] }\n",
    );
    let p = plan(&r, &toml_inventory("[hosts.w1]\nroles = [\"web\"]\n"), None).unwrap();
    assert_eq!(items(&p), ["skip flush", "web: w1"]);
    assert!(
        p.render()
            .contains("Stage cache: no host has role `cache`.")
    );
}

#[test]
fn a_host_with_two_roles_is_upgraded_once_in_its_first_stage() {
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"db\"\nrole = \"db\"\n\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n",
    );
    let inv = toml_inventory(
        "[hosts.both]\nroles = [\"web\", \"db\"]\n[hosts.w1]\nroles = [\"web\"]\n[hosts.other]\nroles = [\"cache\"]\n",
    );
    let p = plan(&r, &inv, None).unwrap();
    assert_eq!(items(&p), ["db: both", "web: w1"]);
    assert_eq!(p.upgraded().collect::<Vec<_>>(), ["both", "w1"]);
    assert_eq!(p.not_in_rollout, ["other"]);
    let text = p.render();
    assert!(
        text.contains("Stage web: both is upgraded once, in stage db."),
        "{text}"
    );
    assert!(
        text.contains("Not upgraded (no stage has their roles): other"),
        "{text}"
    );
}

#[test]
fn the_plan_is_deterministic() {
    let a = plan(&shipped("cloudstack"), &fixture("cloudstack.yml"), None).unwrap();
    let b = plan(&shipped("cloudstack"), &fixture("cloudstack.yml"), None).unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.render(), b.render());
    let c = plan(
        &shipped("cloudstack"),
        &fixture("cloudstack.yml"),
        Some("4.3.1"),
    )
    .unwrap();
    assert_ne!(a.hash, c.hash, "another target is another plan");
}

#[test]
fn pause_after_a_stage_is_an_item_and_after_batch_past_the_end_is_said() {
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\npause_after = true\n\n[[fleet.run_once]]\nid = \"late\"\nafter = \"web\"\nafter_batch = 5\non = { role = \"web\" }\nexec = { argv = [\"true\"] }\n",
    );
    let p = plan(&r, &toml_inventory("[hosts.w1]\nroles = [\"web\"]\n"), None).unwrap();
    assert_eq!(items(&p), ["web: w1", "skip late", "pause after web"]);
}

#[test]
fn the_inventorys_ssh_key_reaches_the_plan_and_only_its_path() {
    let dir = std::env::temp_dir().join(format!("hoist-fleet-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("hosts.ini");
    std::fs::write(
        &ini,
        "[web]\nweb1 ansible_ssh_private_key_file=/root/.ssh/fleet_ed25519\nweb2\n",
    )
    .unwrap();
    let inv = hoist::fleet::inventory::load(&ini).unwrap();
    let r = with_fleet("[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n");
    let p = plan(&r, &inv, Some("2.0")).unwrap();
    let key = |n: &str| p.hosts.iter().find(|h| h.name == n).unwrap().key.clone();
    assert_eq!(key("web1").as_deref(), Some("/root/.ssh/fleet_ed25519"));
    assert_eq!(key("web2"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ansible_ini_groups_children_and_variables() {
    let inv = fixture("six.ini");
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["web1", "web2", "web3", "web4", "web5", "web6"]);
    let web1 = inv.host("web1").unwrap();
    assert_eq!(web1.address, "192.0.2.41");
    assert_eq!(web1.user.as_deref(), Some("admin"), "from [web:vars]");
    assert_eq!(
        web1.roles,
        ["frontend", "web"],
        "a child's hosts are the parent's too"
    );
    assert_eq!(web1.vars.get("http_port").map(String::as_str), Some("8080"));
    let web4 = inv.host("web4").unwrap();
    assert_eq!(web4.address, "web4");
    assert_eq!(
        web4.user.as_deref(),
        Some("deploy"),
        "the host's own variable wins"
    );
}

#[test]
fn ansible_yaml_groups_children_ranges_and_variables() {
    let inv = fixture("cloudstack.yml");
    assert_eq!(inv.hosts.len(), 14);
    let kvm = inv.host("kvm-07").unwrap();
    assert_eq!((kvm.port, kvm.user.as_deref()), (Some(2222), Some("admin")));
    assert_eq!(kvm.roles, ["kvm"]);
    let m = inv.host("mgmt-2").unwrap();
    assert_eq!((m.address.as_str(), m.port), ("192.0.2.22", None));
}

fn problems(name: &str, text: &str) -> Vec<String> {
    match inventory::load_str(Path::new(name), text) {
        Err(InventoryError::Invalid(p)) => p.iter().map(|p| p.short()).collect(),
        Err(e) => panic!("{e}"),
        Ok(i) => panic!("accepted: {:?}", i.hosts),
    }
}

#[test]
fn bad_inventories_are_reported_with_file_line_and_column() {
    let cases: [(&str, &str, &str); 8] = [
        (
            "hosts",
            "[web]\nweb1 ansible_port\n",
            "hosts:2:6: error[inventory-syntax]: expected key=value host variable assignment, got: ansible_port",
        ),
        (
            "hosts",
            "[web:child]\nweb1\n",
            "hosts:1:1: error[inventory-syntax]: section [web:child] has unknown type: child",
        ),
        (
            "hosts",
            "[web]\nweb[01:3]\n",
            "hosts:2:1: error[inventory-syntax]: `web[01:3]`: the bounds of a zero-padded range must have the same width",
        ),
        (
            "hosts",
            "[web]\nweb1 ansible_port=http\n",
            "hosts:2:6: error[bad-port]: host `web1`: port `http` is not a TCP port",
        ),
        (
            "hosts",
            "[all:children]\nmissing\n",
            "hosts:2:1: error[unknown-group]: section [all:children] includes undefined group: missing",
        ),
        (
            "inv.yml",
            "all:\n  hosts: [a]\n",
            "inv.yml:2:10: error[inventory-syntax]: invalid entry for group `all`: requires a mapping, found a list",
        ),
        (
            "inv.yml",
            "all:\n  hosts:\n    a: [1\n",
            "inv.yml:4:1: error[inventory-syntax]: YAML:",
        ),
        (
            "inv.toml",
            "[hosts.a]\nadress = \"x\"\n",
            "inv.toml:2:1: error[inventory-syntax]: inventory: unknown field `adress`",
        ),
    ];
    for (name, text, want) in cases {
        let got = problems(name, text);
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "{name}: {text:?}\nwant {want}\ngot {got:#?}"
        );
    }
}

#[test]
fn a_group_loop_is_an_error_not_a_hang() {
    let got = problems("hosts", "[a:children]\nb\n[b:children]\na\n[a]\nh1\n");
    assert!(got.iter().any(|g| g.contains("group-cycle")), "{got:#?}");
}

#[test]
fn hoist_fleet_plan_prints_the_plan_and_its_json() {
    let hoist = env!("CARGO_BIN_EXE_hoist");
    let inv = root().join("tests/fixtures/fleet/xivo-ha.toml");
    let out = std::process::Command::new(hoist)
        .args(["fleet", "plan", "-i"])
        .arg(&inv)
        .arg("-r")
        .arg(root().join("recipes/xivo"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("  2. stage slave, batch 1/1 (1 host(s)): xivo-2"),
        "{text}"
    );
    let out = std::process::Command::new(hoist)
        .args(["fleet", "plan", "--json", "--to", "1.2.4", "-i"])
        .arg(&inv)
        .arg("-r")
        .arg(root().join("recipes/xivo"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "1.2.4");
    assert_eq!(v["items"][0]["item"], "run_once");
    assert_eq!(v["items"][1]["hosts"], serde_json::json!(["xivo-2"]));
    // A bad inventory: exit 2 and the place of the mistake.
    let bad = std::env::temp_dir().join(format!("hoist-fleet-bad-{}.ini", std::process::id()));
    std::fs::write(&bad, "[web]\nweb1 port\n").unwrap();
    let out = std::process::Command::new(hoist)
        .args(["fleet", "plan", "-i"])
        .arg(&bad)
        .arg("-r")
        .arg(root().join("recipes/xivo"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(":2:6]"), "{err}");
    assert!(err.contains("expected key=value"), "{err}");
}

#[test]
fn hoist_fleet_plan_shows_a_run_once_undo() {
    let dir = std::env::temp_dir().join(format!("hoist-fleet-undo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fleet = "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n[[fleet.run_once]]\nid = \"drain\"\nbefore = \"web\"\non = { every = \"web\" }\nexec = { shell = \"touch /run/drained\" }\nundo = { exec = { shell = \"rm -f /run/drained\" } }\n";
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\nroles = [\"web\"]\n\n[[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{fleet}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("inv.toml"),
        "[hosts.w1]\nroles = [\"web\"]\n[hosts.w2]\nroles = [\"web\"]\n",
    )
    .unwrap();
    let fleet_plan = |json: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        if json {
            c.arg("--json");
        }
        c.args(["fleet", "plan", "-i"])
            .arg(dir.join("inv.toml"))
            .arg("-r")
            .arg(dir.join("recipe.toml"))
            .output()
            .unwrap()
    };
    let out = fleet_plan(false);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  1. run once on every web (2 host(s): w1, w2): drain"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        lines[at + 1],
        "       sh -c \"touch /run/drained\"",
        "{text}"
    );
    assert_eq!(
        lines[at + 2],
        "       undo (fleet rollback): sh -c \"rm -f /run/drained\"",
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&fleet_plan(true).stdout).unwrap();
    assert_eq!(v["items"][0]["undo"]["kind"], "exec");
    assert_eq!(v["items"][0]["undo"]["shell"], "rm -f /run/drained");
    // A step without an undo has no `undo` key: older plans hash the same.
    assert!(v["items"][1].get("undo").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Whatever the text, reading an inventory ends in hosts or in located
    /// problems, never a panic.
    #[test]
    fn inventories_never_panic(text in "(\\PC|\\[|\\]|:|=|\\n| |-|#){0,120}") {
        for name in ["hosts", "inv.yml", "inv.toml"] {
            if let Err(InventoryError::Invalid(p)) = inventory::load_str(Path::new(name), &text) {
                proptest::prop_assert!(!p.is_empty());
                for p in &p {
                    let _ = p.short();
                }
            }
        }
    }

    /// Nor does a `[fleet]` section, however wrong.
    #[test]
    fn fleet_sections_never_panic(body in "(\\PC|\\[|\\]|=|\"|%|\\n| |stages|run_once|batch|after|on|role){0,120}") {
        let text = format!("[product]\nname = \"d\"\nversion = {{ package = \"d\" }}\n[fleet]\n{body}");
        let loaded = recipe::load_str(Path::new("r.toml"), &text);
        for p in &loaded.problems {
            let _ = p.short();
        }
    }
}
