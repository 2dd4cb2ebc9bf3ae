//! `hoist fleet rollback` (`fleet::rollback`) against `SimulatedTransport`
//! (every test here says "simulated"): its order, a host refusing, a kill
//! then a second rollback, a rollout still running, and its honest ending:
//! a step or a host left as it is ends the rollout `partly-rolled-back`,
//! never "rolled back".

mod fleet_sim;

use std::path::Path;

use fleet_sim::{QUICK, run, scratch, six_hosts, status, with_fleet};
use hoist::fleet::inventory;
use hoist::fleet::journal::FleetJournal;
use hoist::fleet::plan::{FleetPlan, plan};
use hoist::fleet::rollback::{
    Options as RbOptions, Outcome as RbOutcome, Progress as RbProgress, Rollback,
};
use hoist::fleet::run::{Options, Outcome};
use hoist::fleet::simulated::{Fault, SimulatedTransport};

/// Two db hosts stopped one by one before the web stage (an undo each), a
/// drain on the first db host (an undo), a gate, a step without undo;
/// then web1, web2, web3 one at a time, web2 failing its health check.
fn rollback_plan() -> FleetPlan {
    let r = with_fleet(
        "[fleet]\nparallel = 1\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n\
         [[fleet.run_once]]\nid = \"stop-db\"\nbefore = \"web\"\non = { every = \"db\" }\n\
         exec = { shell = \"systemctl stop db\" }\nundo = { exec = { shell = \"systemctl start db\" } }\n\n\
         [[fleet.run_once]]\nid = \"drain\"\nbefore = \"web\"\non = { role = \"db\" }\n\
         exec = { shell = \"drain\" }\nundo = { exec = { shell = \"undrain\" } }\n\n\
         [[fleet.run_once]]\nid = \"lb-check\"\nbefore = \"web\"\non = { role = \"db\" }\n\
         wait = { until = { command = [\"true\"] }, timeout = \"5s\" }\n\n\
         [[fleet.run_once]]\nid = \"note\"\nbefore = \"web\"\non = { role = \"db\" }\nexec = { shell = \"logger upgrading\" }\n\
         undo = \"none\"\nundo_reason = \"a line in the system log\"\n",
    );
    let inv = inventory::load_str(
        Path::new("inv.toml"),
        "[hosts.db1]\nroles = [\"db\"]\n[hosts.db2]\nroles = [\"db\"]\n[hosts.web1]\nroles = [\"web\"]\n[hosts.web2]\nroles = [\"web\"]\n[hosts.web3]\nroles = [\"web\"]\n",
    )
    .unwrap();
    plan(&r, &inv, None).unwrap()
}

const ROLLOUT_LOG: [&str; 6] = [
    "once stop-db on db1",
    "once stop-db on db2",
    "once drain on db1",
    "once lb-check on db1",
    "once note on db1",
    "upgrade web1",
];

/// The transport's calls of a whole rollback of `rollback_plan` with web2
/// failed: web3 untouched, web2 rolled back by itself (its journal says
/// so), the note needs no undo (the recipe says why), the gate changed
/// nothing.
const FULL_ROLLBACK: [&str; 4] = [
    "rollback web1",
    "once drain-undo on db1",
    "once stop-db-undo on db2",
    "once stop-db-undo on db1",
];

fn roll_back(dir: &Path, transport: &SimulatedTransport, options: RbOptions) -> RbOutcome {
    let mut journal = FleetJournal::open(dir).unwrap();
    let id = journal.latest().unwrap().unwrap().id;
    let mut progress = |_: RbProgress<'_>| {};
    Rollback::new(&mut journal, transport, options, &mut progress)
        .run(id)
        .unwrap()
}

/// The transport's calls after the rollout's own.
fn after_rollout(t: &SimulatedTransport) -> Vec<String> {
    let log = t.log();
    assert_eq!(log[..6], ROLLOUT_LOG, "{log:#?}");
    assert_eq!(log[6], "upgrade web2", "{log:#?}");
    log[7..].to_vec()
}

#[test]
fn simulated_fleet_rollback_undoes_the_committed_host_then_run_once_steps_newest_first() {
    let d = scratch("rb-order");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    let out = run(&d.0, &t, &rollback_plan(), Options::default());
    assert!(matches!(out, Outcome::Stopped(_)), "{out:?}");
    assert_eq!(
        roll_back(&d.0, &t, RbOptions::default()),
        RbOutcome::RolledBack
    );
    assert_eq!(after_rollout(&t), FULL_ROLLBACK);
    let s = status(&d.0);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[0], "Rollout 1 of demo to each host's candidate: rolled-back",
        "{s}"
    );
    let at = lines
        .iter()
        .position(|l| l.starts_with("  stop-db on every db: "))
        .unwrap_or_else(|| panic!("{s}"));
    assert_eq!(
        lines[at..],
        [
            "  stop-db on every db: db1 done, db2 done",
            "  rollback: 4 undone, 2 skipped, 0 left as they are, 0 failed",
            "    skipped web2: it rolled back by itself when its upgrade failed",
            "    rolled back: web1",
            "    skipped note on db1: kept by design: a line in the system log",
            "    undone: drain on db1",
            "    undone: stop-db on db2",
            "    undone: stop-db on db1",
            "Next: nothing: every host the rollout touched is back as before it (each host's `hoist status` says so).",
        ],
        "{s}"
    );
    let v = FleetJournal::open(&d.0)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .summary_json();
    assert_eq!(v["state"], "rolled-back");
    assert_eq!(v["rollback"]["undos"][1]["kind"], "host");
    assert_eq!(v["rollback"]["undos"][1]["host"], "web1");
    assert_eq!(v["rollback"]["undos"][3]["id"], "drain");
    assert_eq!(v["run_on_each"][0]["hosts"][1]["state"], "done");
    // Nothing left: a second rollback asks no host anything.
    assert_eq!(
        roll_back(&d.0, &t, RbOptions::default()),
        RbOutcome::RolledBack
    );
    assert_eq!(after_rollout(&t).len(), 4);
}

#[test]
fn simulated_fleet_rollback_refused_by_a_host_stops_there_and_status_says_so() {
    let d = scratch("rb-refused");
    let t = SimulatedTransport::new(QUICK)
        .fault("web1", Fault::PastPoint)
        .fault("web2", Fault::HealthCheck);
    run(&d.0, &t, &rollback_plan(), Options::default());
    let out = roll_back(&d.0, &t, RbOptions::default());
    let RbOutcome::Failed(why) = &out else {
        panic!("{out:?}")
    };
    assert!(
        why.starts_with("web1: run 1 is past its point of no return"),
        "{why}"
    );
    // Stopped at web1: no run-once step was undone.
    assert_eq!(after_rollout(&t), ["rollback web1"]);
    let s = status(&d.0);
    assert!(
        s.starts_with("Rollout 1 of demo to each host's candidate: rollback-failed: web1: run 1 is past its point of no return"),
        "{s}"
    );
    assert!(
        s.contains("  rollback: 0 undone, 1 skipped, 0 left as they are, 1 failed\n"),
        "{s}"
    );
    assert!(
        s.contains("    FAILED web1: run 1 is past its point of no return"),
        "{s}"
    );
    assert!(s.contains("Next: fix what the failed undo needs"), "{s}");
}

#[test]
fn simulated_fleet_rollback_killed_then_run_again_does_not_redo_done_undos() {
    let d = scratch("rb-kill");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    run(&d.0, &t, &rollback_plan(), Options::default());
    // Killed after web2 (skipped) and web1 (rolled back) are journaled.
    let crash = RbOptions {
        crash_after: Some(2),
    };
    assert_eq!(roll_back(&d.0, &t, crash), RbOutcome::Crashed);
    let s = status(&d.0);
    assert!(s.contains(": rolling-back"), "{s}");
    assert!(
        s.contains("Next: if no `hoist fleet rollback` is running, run it again"),
        "{s}"
    );
    assert_eq!(
        roll_back(&d.0, &t, RbOptions::default()),
        RbOutcome::RolledBack
    );
    assert_eq!(after_rollout(&t), FULL_ROLLBACK);
}

#[test]
fn simulated_fleet_rollback_of_a_rollout_still_running_is_refused() {
    let d = scratch("rb-running");
    let t = SimulatedTransport::new(QUICK);
    run(&d.0, &t, &six_hosts(""), Options::default());
    // The controller of the rollout holds fleet.lock while it runs.
    let held = hoist::run::lock::acquire_file(&d.0, "fleet.lock", "fleet upgrade").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--json", "--state-dir"])
        .arg(&d.0)
        .args([
            "fleet",
            "rollback",
            "--yes",
            "-i",
            "inv.toml",
            "-r",
            "recipe.toml",
        ])
        .output()
        .unwrap();
    drop(held);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "locked");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("refused: the rollout's controller is running"),
        "{v}"
    );
    assert_eq!(
        status(&d.0).lines().next(),
        Some("Rollout 1 of demo to 2.0: done")
    );
    assert!(t.log().iter().all(|l| !l.starts_with("rollback")));
}

/// One db host, a run-once step on it, web1 and web2; web2 fails.
fn one_step_plan(step: &str) -> FleetPlan {
    let r = with_fleet(&format!(
        "[fleet]\nparallel = 1\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n\
         [[fleet.run_once]]\nid = \"tune\"\nbefore = \"web\"\non = {{ role = \"db\" }}\n\
         exec = {{ shell = \"tune-db\" }}\n{step}"
    ));
    let inv = inventory::load_str(
        Path::new("inv.toml"),
        "[hosts.db1]\nroles = [\"db\"]\n[hosts.web1]\nroles = [\"web\"]\n[hosts.web2]\nroles = [\"web\"]\n",
    )
    .unwrap();
    plan(&r, &inv, None).unwrap()
}

#[test]
fn simulated_fleet_rollback_of_a_step_without_undo_ends_partly_rolled_back_and_says_what_is_left() {
    let d = scratch("rb-partly");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    // The plan says before anything runs that the rollback would leave it.
    let p = one_step_plan("");
    assert!(
        p.render()
            .contains("undo (fleet rollback): none: a fleet rollback would leave it as it is"),
        "{}",
        p.render()
    );
    let out = run(&d.0, &t, &p, Options::default());
    assert!(matches!(out, Outcome::Stopped(_)), "{out:?}");
    let out = roll_back(&d.0, &t, RbOptions::default());
    let RbOutcome::PartlyRolledBack(left) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(
        left,
        &["tune on db1 (no undo in the recipe: what it changed is still there)"]
    );
    // Everything else was still rolled back.
    assert_eq!(t.log()[3..], ["rollback web1"], "{:#?}", t.log());
    let s = status(&d.0);
    assert!(
        s.starts_with("Rollout 1 of demo to each host's candidate: partly-rolled-back: not undone: tune on db1"),
        "{s}"
    );
    assert!(
        s.contains("  rollback: 1 undone, 1 skipped, 1 left as they are, 0 failed\n"),
        "{s}"
    );
    assert!(
        s.contains("    LEFT as it is: tune on db1: no undo in the recipe"),
        "{s}"
    );
    assert!(
        s.contains("Next: put back by hand what the rollback lists as LEFT"),
        "{s}"
    );
    assert!(!s.contains("is back as before it"), "{s}");
    let v = FleetJournal::open(&d.0)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .summary_json();
    assert_eq!(v["state"], "partly-rolled-back");
    // Final: a second rollback asks no host anything and says the same.
    assert_eq!(roll_back(&d.0, &t, RbOptions::default()), out);
    assert_eq!(t.log().len(), 4, "{:#?}", t.log());
}

#[test]
fn simulated_fleet_rollback_of_a_step_whose_recipe_says_no_undo_is_needed_is_a_full_rollback() {
    let d = scratch("rb-none");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    let p =
        one_step_plan("undo = \"none\"\nundo_reason = \"tuning is kept by 1.x and 2.x alike\"\n");
    assert!(
        p.render()
            .contains("undo (fleet rollback): none needed: tuning is kept by 1.x and 2.x alike"),
        "{}",
        p.render()
    );
    run(&d.0, &t, &p, Options::default());
    assert_eq!(
        roll_back(&d.0, &t, RbOptions::default()),
        RbOutcome::RolledBack
    );
    let s = status(&d.0);
    assert!(
        s.contains("    skipped tune on db1: kept by design: tuning is kept by 1.x and 2.x alike"),
        "{s}"
    );
}

#[test]
fn simulated_fleet_rollback_of_a_host_whose_own_rollback_left_a_step_ends_partly_rolled_back() {
    let d = scratch("rb-host-partly");
    let t = SimulatedTransport::new(QUICK)
        .fault("web1", Fault::PartlyUndone)
        .fault("web2", Fault::HealthCheck);
    run(
        &d.0,
        &t,
        &one_step_plan("undo = { exec = { shell = \"untune-db\" } }\n"),
        Options::default(),
    );
    let out = roll_back(&d.0, &t, RbOptions::default());
    let RbOutcome::PartlyRolledBack(left) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(left, &["web1 (not undone: set-config (simulated))"]);
    // The rollback went on past it: the run-once step was undone.
    assert_eq!(
        t.log()[3..],
        ["rollback web1", "once tune-undo on db1"],
        "{:#?}",
        t.log()
    );
    let s = status(&d.0);
    assert!(
        s.contains("    LEFT as it is: web1: not undone: set-config"),
        "{s}"
    );
}

/// Batches of 1, 2 and 3 of six web hosts, three at once, all upgraded.
fn upgraded_six(dir: &Path, transport: &SimulatedTransport) {
    let p = six_hosts("parallel = 3");
    assert_eq!(run(dir, transport, &p, Options::default()), Outcome::Done);
}

#[test]
fn simulated_fleet_rollback_takes_a_batchs_hosts_back_together_bounded() {
    let d = scratch("rb-parallel");
    // Each simulated rollback takes as long as an upgrade: the three hosts
    // of the last batch are under way together, never more than three.
    let t = SimulatedTransport::new(std::time::Duration::from_millis(300));
    upgraded_six(&d.0, &t);
    assert_eq!(
        roll_back(&d.0, &t, RbOptions::default()),
        RbOutcome::RolledBack
    );
    assert_eq!(t.peak_rollbacks(), 3, "{:#?}", t.log());
    // Batches still go newest first: the last batch's three hosts before
    // the second's two, before the first's one.
    let log = t.log();
    let rolled: Vec<&String> = log.iter().filter(|l| l.starts_with("rollback ")).collect();
    assert_eq!(rolled.len(), 6, "{log:#?}");
    let batch_of = |l: &String| -> usize {
        match l.trim_start_matches("rollback web") {
            "1" => 1,
            "2" | "3" => 2,
            _ => 3,
        }
    };
    let batches: Vec<usize> = rolled.iter().map(|l| batch_of(l)).collect();
    assert_eq!(batches, [3, 3, 3, 2, 2, 1], "{log:#?}");
}

#[test]
fn simulated_fleet_rollback_starts_no_older_batch_after_a_host_refuses() {
    let d = scratch("rb-parallel-fail");
    let t = SimulatedTransport::new(QUICK).fault("web5", Fault::PastPoint);
    upgraded_six(&d.0, &t);
    let out = roll_back(&d.0, &t, RbOptions::default());
    assert!(
        matches!(&out, RbOutcome::Failed(why) if why.contains("web5")),
        "{out:?}"
    );
    let log = t.log();
    // The last batch (web4..web6) was asked; the older batches were not.
    for h in ["web1", "web2", "web3"] {
        assert!(
            !log.contains(&format!("rollback {h}")),
            "{h} was rolled back after web5 refused: {log:#?}"
        );
    }
    assert!(status(&d.0).contains("rollback-failed"), "{}", status(&d.0));
}
