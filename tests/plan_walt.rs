//! The WalT 4 -> 5 recipe (seed 004): its plans against fact fixtures.

use std::path::PathBuf;

use hoist::host::checks::{self, Status};
use hoist::host::probe::{Given, apply_given};
use hoist::plan::{Outcome, Plan, PlannedStep, resolve};
use hoist::recipe::facts::Facts;
use hoist::recipe::{self, Phase, Recipe};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recipe() -> Recipe {
    recipe::load(&root().join("recipes/walt"))
        .unwrap()
        .recipe
        .expect("the walt recipe is valid")
}

fn facts_for(r: &Recipe, fixture: &str, given: &[(&str, &str)]) -> Facts {
    let mut facts = Facts::from_fixture(
        &root().join("tests/fixtures/walt").join(fixture),
        &r.catalogue,
    )
    .unwrap();
    let given = Given {
        roles: Vec::new(),
        facts: given
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    apply_given(r, &mut facts, &given).unwrap();
    facts
}

fn plan_with(fixture: &str, given: &[(&str, &str)]) -> Plan {
    let r = recipe();
    let facts = facts_for(&r, fixture, given);
    match resolve(&r, &facts, None).unwrap() {
        Outcome::Plan(p) => *p,
        other => panic!("no plan: {other:?}"),
    }
}

fn plan_for(fixture: &str) -> Plan {
    plan_with(fixture, &[])
}

fn ids(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

fn pos(p: &Plan, id: &str) -> usize {
    p.steps
        .iter()
        .position(|s| s.id == id)
        .unwrap_or_else(|| panic!("step `{id}` is not in the plan: {:?}", ids(p)))
}

fn step<'a>(p: &'a Plan, id: &str) -> &'a PlannedStep {
    &p.steps[pos(p, id)]
}

/// Each step comes strictly after the one before it in `order`.
fn assert_in_order(p: &Plan, order: &[&str]) {
    for pair in order.windows(2) {
        assert!(
            pos(p, pair[0]) < pos(p, pair[1]),
            "`{}` must come before `{}`: {:?}",
            pair[0],
            pair[1],
            ids(p)
        );
    }
}

#[test]
fn the_recipe_lints_without_errors_or_warnings() {
    let loaded = recipe::load(&root().join("recipes/walt")).unwrap();
    let rendered: Vec<String> = loaded.problems.iter().map(|p| p.render()).collect();
    assert_eq!(loaded.errors().count(), 0, "{}", rendered.join("\n"));
    assert!(loaded.problems.is_empty(), "{}", rendered.join("\n"));
    assert!(loaded.recipe.is_some());
}

#[test]
fn v4_on_bullseye_follows_the_seed_order() {
    let p = plan_for("4.0-bullseye.toml");
    assert_eq!(p.current.as_str(), "4.0");
    assert_eq!(p.target.as_str(), "5");
    assert_eq!(p.hops.len(), 1);
    assert_in_order(
        &p,
        &[
            "stop-walt-server",
            "disable-walt-server",
            "dump-walt-db",
            "uninstall-walt4",
            "switch-suite",
            "refresh-indexes",
            "upgrade-os",
            "install-container-tools",
            "upgrade-cluster",
            "verify-cluster",
            "install-walt-5",
            "reboot",
            "start-walt-server",
            "wait-image-migration",
            "enable-walt-server",
        ],
    );
    // The plan runs phase after phase.
    let phases: Vec<Phase> = p.steps.iter().map(|s| s.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted);
}

#[test]
fn each_operation_is_its_own_step_of_the_right_kind() {
    let p = plan_for("4.0-bullseye.toml");
    let kind = |id: &str| step(&p, id).action.kind();
    assert_eq!(kind("stop-walt-server"), "service");
    assert_eq!(kind("disable-walt-server"), "service");
    assert_eq!(kind("dump-walt-db"), "db");
    assert_eq!(kind("point-of-no-return"), "gate");
    assert_eq!(kind("uninstall-walt4"), "exec");
    assert_eq!(kind("switch-suite"), "repo");
    assert_eq!(kind("refresh-indexes"), "packages");
    assert_eq!(kind("upgrade-os"), "packages");
    assert_eq!(kind("install-container-tools"), "packages");
    assert_eq!(kind("upgrade-cluster"), "db");
    assert_eq!(kind("verify-cluster"), "wait");
    assert_eq!(kind("install-walt-5"), "packages");
    assert_eq!(kind("reboot"), "reboot");
    assert_eq!(kind("wait-image-migration"), "wait");
    assert_eq!(kind("enable-walt-server"), "service");
    assert_eq!(kind("drop-old-cluster"), "db");
    // The dist-upgrade keeps the admin's configuration files.
    let upgrade = serde_json::to_value(&step(&p, "upgrade-os").action).unwrap();
    assert_eq!(upgrade["op"], "dist-upgrade");
    assert_eq!(upgrade["conffiles"], "keep-old");
    // The dump is taken as postgres, by peer authentication.
    let dump = serde_json::to_value(&step(&p, "dump-walt-db").action).unwrap();
    assert_eq!(dump["credentials"]["os_user"], "postgres");
    assert_eq!(dump["database"], "walt");
}

#[test]
fn the_old_cluster_is_dropped_only_after_verification() {
    let p = plan_for("4.0-bullseye.toml");
    let drop_old = pos(&p, "drop-old-cluster");
    assert!(drop_old > pos(&p, "verify-cluster"));
    assert_eq!(step(&p, "drop-old-cluster").phase, Phase::Cleanup);
    // After every verify step, and after WalT 5 has run on the new cluster.
    for (i, s) in p.steps.iter().enumerate() {
        if s.phase == Phase::Verify || s.id == "wait-image-migration" {
            assert!(
                i < drop_old,
                "`{}` must come before dropping the old cluster",
                s.id
            );
        }
    }
    // The new major's empty default is replaced by the upgrade itself; the
    // drop is irreversible and the plan says so.
    let upgrade = serde_json::to_value(&step(&p, "upgrade-cluster").action).unwrap();
    assert_eq!(upgrade["op"], "upgrade_cluster");
    assert_eq!(upgrade["replace_empty_target"], true);
    let drop_old = step(&p, "drop-old-cluster");
    assert!(drop_old.undo.is_none() && !drop_old.action.builtin_undo());
    assert!(drop_old.no_undo.is_some());
    assert!(
        drop_old
            .preview
            .as_deref()
            .unwrap()
            .starts_with("irreversible")
    );
    let shown = p.render();
    assert!(
        shown.contains("drop PostgreSQL cluster 13/main (pg_dropcluster --stop)  [no undo, timeout 6h]\n           undo: none (a dropped cluster cannot be brought back;"),
        "{shown}"
    );
}

#[test]
fn the_point_of_no_return_is_a_gate_after_the_dump() {
    let p = plan_for("4.0-bullseye.toml");
    // The dist-upgrade is where the run stops being able to go back, and
    // the only such step.
    let points: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.point_of_no_return.is_some())
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(points, ["upgrade-os"]);
    let shown = p.render();
    assert!(
        shown.contains(
            "dist-upgrade, keeping changed config files  [point of no return, timeout 2h]"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            "point of no return: Debian has no downgrade: the system is upgraded to bookworm"
        ),
        "{shown}"
    );
    let gate = pos(&p, "point-of-no-return");
    assert!(gate > pos(&p, "dump-walt-db"));
    // It comes before the first step that cannot be undone.
    assert!(gate < pos(&p, "uninstall-walt4"));
    assert!(gate < pos(&p, "upgrade-os"));
    // Before it, every disruptive step has an undo.
    for s in &p.steps[..gate] {
        assert!(
            s.undo.is_some() || !s.action.disruptive(),
            "`{}` comes before the point of no return but cannot be undone",
            s.id
        );
    }
}

#[test]
fn undo_where_it_means_something() {
    let p = plan_for("4.0-bullseye.toml");
    let undo_kind = |id: &str| step(&p, id).undo.as_ref().map(|u| u.kind());
    assert_eq!(undo_kind("stop-walt-server"), Some("service"));
    assert_eq!(undo_kind("disable-walt-server"), Some("service"));
    assert_eq!(undo_kind("switch-suite"), Some("repo"));
    assert_eq!(undo_kind("upgrade-cluster"), None);
    assert_eq!(undo_kind("start-walt-server"), Some("service"));
    assert_eq!(undo_kind("enable-walt-server"), Some("service"));
    // The reverse switch, and the cluster undo keeps the old cluster.
    let switch_back =
        serde_json::to_value(step(&p, "switch-suite").undo.as_ref().unwrap()).unwrap();
    assert_eq!(switch_back["from"], "bookworm");
    assert_eq!(switch_back["to"], "bullseye");
    // The cluster upgrade's undo is built in: it drops the new cluster and
    // puts the old one back, never the other way round.
    let cluster = step(&p, "upgrade-cluster");
    assert!(cluster.action.builtin_undo());
    let preview = cluster.preview.as_deref().unwrap();
    assert!(
        preview.contains("undo: drop 15/main, put back 13/main's postgresql.conf and start.conf, start 13/main, create the empty 15/main again"),
        "{preview}"
    );
    // Irreversible: no undo pretends otherwise.
    for id in ["uninstall-walt4", "upgrade-os", "install-walt-5"] {
        assert_eq!(undo_kind(id), None, "`{id}` cannot be undone");
    }
}

#[test]
fn the_first_start_is_waited_for_bounded_and_long() {
    let p = plan_for("4.0-bullseye.toml");
    let wait = serde_json::to_value(&step(&p, "wait-image-migration").action).unwrap();
    assert_eq!(wait["until"]["tcp"], "127.0.0.1:12345");
    let timeout = humantime::parse_duration(wait["timeout"].as_str().unwrap()).unwrap();
    assert!(timeout >= std::time::Duration::from_secs(3600));
    assert!(timeout <= std::time::Duration::from_secs(24 * 3600));
    // The new service is kept down until the reboot.
    assert_in_order(
        &p,
        &[
            "install-walt-5",
            "keep-walt-server-stopped",
            "keep-walt-server-disabled",
            "reboot",
            "start-walt-server",
        ],
    );
}

#[test]
fn the_suite_and_postgresql_pair_come_from_the_host() {
    // The commands are filled in from the host's facts, shown as they run.
    let p = plan_for("4.0-bullseye.toml");
    let action = |p: &Plan, id: &str| serde_json::to_value(&step(p, id).action).unwrap();
    let switch = action(&p, "switch-suite");
    assert_eq!(
        (&switch["from"], &switch["to"]),
        (&"bullseye".into(), &"bookworm".into())
    );
    let cluster = action(&p, "upgrade-cluster");
    assert_eq!(
        (&cluster["from"], &cluster["to"]),
        (&"13".into(), &"15".into())
    );
    assert_eq!(action(&p, "drop-old-cluster")["version"], "13");
    assert_eq!(action(&p, "uninstall-walt4")["argv"][0], "python3");
    assert!(
        action(&p, "verify-cluster")["until"]["sql"]["query"]
            .as_str()
            .unwrap()
            .contains("/ 10000 = 15 ")
    );
    let shown = p.render();
    assert!(
        shown.contains("upgrade PostgreSQL cluster 13/main to 15/main"),
        "{shown}"
    );
    assert!(!shown.contains("{{"), "{shown}");
    // The seed's own pair: stretch -> buster, 9.6 -> 11, python2, docker-engine.
    let p = plan_for("4.0-stretch.toml");
    assert_in_order(
        &p,
        &[
            "stop-walt-server",
            "disable-walt-server",
            "dump-walt-db",
            "point-of-no-return",
            "uninstall-walt4",
            "remove-docker-engine",
            "switch-suite",
            "add-docker-repo",
            "add-kubic-repo-buster",
            "refresh-indexes",
            "upgrade-os",
            "install-container-tools",
            "install-docker-ce",
            "upgrade-cluster",
            "verify-cluster",
            "install-walt-5",
            "reboot",
            "start-walt-server",
            "enable-walt-server",
            "drop-old-cluster",
        ],
    );
    let switch = action(&p, "switch-suite");
    assert_eq!(
        (&switch["from"], &switch["to"]),
        (&"stretch".into(), &"buster".into())
    );
    let cluster = action(&p, "upgrade-cluster");
    assert_eq!(
        (&cluster["from"], &cluster["to"]),
        (&"9.6".into(), &"11".into())
    );
    assert_eq!(action(&p, "uninstall-walt4")["argv"][0], "python2");
    assert!(
        action(&p, "add-docker-repo")["content"]
            .as_str()
            .unwrap()
            .ends_with(" buster stable")
    );
}

#[test]
fn extra_repositories_only_when_the_host_reaches_them() {
    let offline = plan_for("4.0-bullseye.toml");
    for id in ["add-docker-repo", "install-docker-ce"] {
        assert!(!ids(&offline).contains(&id));
    }
    let online = plan_with("4.0-bullseye.toml", &[("walt.extra_repos", "true")]);
    assert_in_order(
        &online,
        &[
            "switch-suite",
            "add-docker-repo",
            "refresh-indexes",
            "upgrade-os",
            "install-docker-ce",
        ],
    );
    // Keys go to a keyring file named by signed-by, never apt-key.
    let repo = serde_json::to_value(&step(&online, "add-docker-repo").action).unwrap();
    let keyring = repo["key"]["keyring"].as_str().unwrap();
    assert!(
        repo["content"]
            .as_str()
            .unwrap()
            .contains(&format!("signed-by={keyring}"))
    );
    // bookworm has buildah and podman: no kubic.
    assert!(!ids(&online).contains(&"add-kubic-repo-buster"));
}

#[test]
fn fact_checks_hold_on_the_fixtures_and_catch_a_mismatch() {
    let r = recipe();
    // Only the checks over facts: the others test this machine.
    let on_host: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.test.is_some())
        .map(|c| c.id.clone())
        .collect();
    for fixture in ["4.0-bullseye.toml", "4.0-stretch.toml"] {
        let report = checks::run(&r, &facts_for(&r, fixture, &[]), &on_host);
        assert!(report.ready(), "{fixture}: {}", report.summary());
    }
    let mismatch = facts_for(&r, "4.0-bullseye.toml", &[("postgresql.old", "11")]);
    let report = checks::run(&r, &mismatch, &on_host);
    let c = report
        .checks
        .iter()
        .find(|c| c.id == "postgresql-matches-release")
        .unwrap();
    assert_eq!(c.status, Status::Fail);
    // From stretch, the kubic repository is required.
    let offline_stretch = facts_for(&r, "4.0-stretch.toml", &[("walt.extra_repos", "false")]);
    let report = checks::run(&r, &offline_stretch, &on_host);
    assert!(!report.ready());
}

#[test]
fn v5_is_up_to_date() {
    let r = recipe();
    let facts = facts_for(&r, "5.0-bookworm.toml", &[]);
    match resolve(&r, &facts, None).unwrap() {
        Outcome::UpToDate { current, target } => {
            assert_eq!(current.as_str(), "5.0-1");
            assert_eq!(target.as_str(), "5");
        }
        Outcome::Plan(p) => panic!("v5 planned an upgrade: {:?}", ids(&p)),
    }
}

#[test]
fn versions_before_4_are_refused_with_the_reason() {
    let r = recipe();
    let mut facts = facts_for(&r, "4.0-bullseye.toml", &[]);
    facts.set_text(&r.catalogue, "current", "3.1").unwrap();
    let err = resolve(&r, &facts, None).unwrap_err().to_string();
    assert!(err.contains("from version 4"), "{err}");
}
