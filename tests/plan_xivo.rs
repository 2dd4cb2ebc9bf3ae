//! The XiVO recipe's plans against fact fixtures.

use std::path::{Path, PathBuf};

use hoist::host::probe::{Given, apply_given};
use hoist::plan::{Outcome, Plan, SkipReason, resolve};
use hoist::recipe::facts::Facts;
use hoist::recipe::{self, Recipe};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recipe() -> Recipe {
    recipe::load(&root().join("recipes/xivo"))
        .unwrap()
        .recipe
        .unwrap()
}

fn plan_for(fixture: &str, tweak: impl FnOnce(&mut Facts)) -> Plan {
    let r = recipe();
    let mut facts = Facts::from_fixture(
        &root().join("tests/fixtures/xivo").join(fixture),
        &r.catalogue,
    )
    .unwrap();
    apply_given(&r, &mut facts, &Given::default()).unwrap();
    tweak(&mut facts);
    match resolve(&r, &facts, None).unwrap() {
        Outcome::Plan(p) => *p,
        other => panic!("no plan: {other:?}"),
    }
}

fn ids(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn key_import_only_up_to_1_2_3() {
    let p = plan_for("1.2.0.toml", |_| {});
    assert!(ids(&p).contains(&"trust-new-archive-key"));
    let p = plan_for("1.2.2.toml", |f| {
        f.set_text(&recipe().catalogue, "current", "1.2.3").unwrap()
    });
    assert!(ids(&p).contains(&"trust-new-archive-key"));
    let p = plan_for("1.2.2.toml", |f| {
        f.set_text(&recipe().catalogue, "current", "1.2.3.1")
            .unwrap();
    });
    let skipped = p
        .skipped
        .iter()
        .find(|s| s.id == "trust-new-archive-key")
        .unwrap();
    match &skipped.reason {
        SkipReason::When { detail } => assert_eq!(detail, "from is 1.2.3.1, wanted \"<= 1.2.3\""),
        other => panic!("{other:?}"),
    }
}

/// Seed 000: the new archive key "before upgrading from XiVO 1.2.3 or
/// earlier". Releases after the key change are signed with it only, so it
/// is trusted before apt first reads the archive: the first step, in
/// `prepare` (whose keys the plan's own candidate refresh reads with),
/// before every `packages` step.
#[test]
fn the_new_key_is_trusted_before_apt_reads_the_archive() {
    use hoist::actions::Action;
    for fixture in ["1.2.0.toml", "1.2.2.toml"] {
        let p = plan_for(fixture, |_| {});
        let key = &p.steps[0];
        assert_eq!(key.id, "trust-new-archive-key", "{fixture}: {:?}", ids(&p));
        assert_eq!(key.phase, hoist::recipe::Phase::Prepare);
        assert!(matches!(&key.action, Action::Repo(r) if r.op == hoist::actions::repo::Op::Key));
        let first_apt = p
            .steps
            .iter()
            .position(|s| matches!(s.action, Action::Packages(_)))
            .unwrap();
        assert_eq!(p.steps[first_apt].id, "refresh-indexes", "{fixture}");
        assert_eq!(first_apt, 1, "{fixture}: {:?}", ids(&p));
    }
}

#[test]
fn once_steps_already_done_are_skipped_with_that_reason() {
    let p = plan_for("1.2.0.toml", |f| {
        f.once_done.push("trust-new-archive-key".into())
    });
    let s = p
        .skipped
        .iter()
        .find(|s| s.id == "trust-new-archive-key")
        .unwrap();
    assert_eq!(s.reason, SkipReason::OnceDone);
    assert!(!ids(&p).contains(&"trust-new-archive-key"));
}

#[test]
fn phases_are_in_order_and_nothing_disrupts_before_prepare_ends() {
    let p = plan_for("1.2.2.toml", |_| {});
    let phases: Vec<_> = p.steps.iter().map(|s| s.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted);
    let last_prepare = p
        .steps
        .iter()
        .rposition(|s| s.phase == hoist::recipe::Phase::Prepare)
        .unwrap();
    assert!(
        p.steps[..=last_prepare]
            .iter()
            .all(|s| !s.action.disruptive())
    );
    // The DROP rule is guaranteed removed: an undo, and a step as soon as
    // the daemons answer again. It covers the restart, not the install.
    let pos = |id: &str| p.steps.iter().position(|s| s.id == id).unwrap();
    let block = &p.steps[pos("block-sip")];
    assert_eq!(block.undo.as_ref().unwrap().kind(), "firewall");
    assert!(pos("upgrade-packages") < pos("block-sip"));
    assert_eq!(pos("block-sip") + 1, pos("restart-services"));
    assert_eq!(pos("unblock-sip"), pos("services-answer") + 1);
}

/// Seed 001's order: XiVO upgraded, then every service restarted in
/// order. The daemons are not stopped before the install, the packages'
/// own restarts of them are held, and one step restarts exactly those.
#[test]
fn daemons_serve_until_one_ordered_restart() {
    use hoist::actions::{Action, service::Op};
    let p = plan_for("1.2.2.toml", |_| {});
    let upgrade = p
        .steps
        .iter()
        .position(|s| s.id == "upgrade-packages")
        .unwrap();
    assert!(
        !p.steps[..upgrade]
            .iter()
            .any(|s| matches!(&s.action, Action::Service(_))),
        "a service step before the install"
    );
    let Action::Packages(pk) = &p.steps[upgrade].action else {
        panic!("upgrade-packages is not a packages step")
    };
    let restart = p.steps.iter().find(|s| s.id == "restart-services").unwrap();
    let Action::Service(sv) = &restart.action else {
        panic!("restart-services is not a service step")
    };
    assert_eq!(sv.op, Op::Restart);
    assert_eq!(sv.units, pk.hold_restarts);
    assert!(
        restart
            .action
            .summary()
            .contains("stopped in reverse order, then started in order")
    );
}

#[test]
fn the_hash_follows_the_plan_not_the_path() {
    let a = plan_for("1.2.2.toml", |_| {});
    let b = plan_for("1.2.2.toml", |_| {});
    assert_eq!(a.hash, b.hash);
    let c = plan_for("1.2.0.toml", |_| {});
    assert_ne!(a.hash, c.hash);
    assert_eq!(a.hash, a.compute_hash());
    let _ = Path::new("");
}

#[test]
fn a_plan_reads_back_from_json_as_it_was() {
    let p = plan_for("1.2.0.toml", |_| {});
    let text = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back.compute_hash(), p.hash);
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}
