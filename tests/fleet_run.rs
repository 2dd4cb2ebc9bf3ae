//! The fleet executor against `SimulatedTransport` (hosts that sleep
//! instead of being connected to; every test here says "simulated"): the
//! XiVO pair's order, thresholds and their boundaries, hosts not started
//! left untouched, a controller crash then resume without upgrading any
//! host twice, pause and resume, a failed gate, and `hoist fleet status`'s
//! text; a step on every host of a role (each host once, a failed host
//! failing it, a resume redoing no host done); thresholds of a stage's own.
//! `hoist fleet rollback` is in `fleet_rollback.rs`. No timing is asserted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod fleet_sim;

use fleet_sim::{QUICK, run, scratch, six_hosts, status, web_hosts, with_fleet};
use hoist::fleet::inventory;
use hoist::fleet::journal::FleetJournal;
use hoist::fleet::plan::{FleetPlan, plan};
use hoist::fleet::run::{Executor, Options, Outcome, Progress};
use hoist::fleet::simulated::{Fault, SimulatedTransport};
use hoist::fleet::state::{FleetState, HostState, ItemState};
use hoist::recipe;

fn resume(dir: &Path, transport: &SimulatedTransport) -> Option<Outcome> {
    let mut journal = FleetJournal::open(dir).unwrap();
    let mut progress = |_: Progress<'_>| {};
    let mut ex = Executor::new(&mut journal, transport, Options::default(), &mut progress);
    ex.resume().unwrap().map(|r| r.1)
}

fn host_state(dir: &Path, host: &str) -> HostState {
    let view = FleetJournal::open(dir).unwrap().latest().unwrap().unwrap();
    view.host_state(host).unwrap()
}

#[test]
fn simulated_xivo_pair_runs_in_the_seed_order() {
    let d = scratch("xivo");
    let r = recipe::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes/xivo"))
        .unwrap()
        .recipe
        .unwrap();
    let inv = inventory::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet/xivo-ha.toml"),
    )
    .unwrap();
    let p = plan(&r, &inv, None).unwrap();
    let t = SimulatedTransport::new(QUICK);
    assert_eq!(run(&d.0, &t, &p, Options::default()), Outcome::Done);
    assert_eq!(
        t.log(),
        [
            "once replication-cron-off on xivo-1",
            "upgrade xivo-2",
            "upgrade xivo-1",
            "once replication-run on xivo-1",
            "once replication-cron-on on xivo-1",
        ]
    );
    let s = status(&d.0);
    assert!(s.contains(": done"), "{s}");
    assert!(s.contains("upgraded: 2"), "{s}");
}

#[test]
fn simulated_failure_stops_at_the_threshold_and_leaves_later_hosts_untouched() {
    let d = scratch("stop");
    // max_fail defaults to 0: the first failed host stops the rollout.
    let p = six_hosts("");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    let out = run(&d.0, &t, &p, Options::default());
    assert_eq!(
        out,
        Outcome::Stopped("1 host(s) failed, more than max_fail = 0".into())
    );
    // Batch 2 (web2, web3) ran in parallel and ended; batch 3 never began.
    for h in ["web1", "web2", "web3"] {
        assert_eq!(t.upgrades(h), 1, "{h}");
    }
    for h in ["web4", "web5", "web6"] {
        assert_eq!(t.upgrades(h), 0, "{h} was touched");
        assert_eq!(host_state(&d.0, h), HostState::Pending);
    }
    assert_eq!(host_state(&d.0, "web2"), HostState::Failed);
    let s = status(&d.0);
    for want in [
        "stopped: 1 host(s) failed, more than max_fail = 0",
        "upgraded: 2",
        "failed: 1",
        "web2: step health-check failed (simulated); rolled back",
        "not started (untouched): 3",
        "web4\n",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // A stopped rollout is not resumed: the admin looks at web2 first.
    assert_eq!(resume(&d.0, &t), None);
    assert_eq!(t.upgrades("web4"), 0);
}

#[test]
fn simulated_percentage_threshold_boundary_is_strictly_more_than() {
    // Batch 2 has 2 hosts and 1 fails: 50% of it.
    let d = scratch("pct50");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    let out = run(
        &d.0,
        &t,
        &six_hosts("max_fail_percentage = 50"),
        Options::default(),
    );
    assert_eq!(out, Outcome::Done, "50% failed is not more than 50%");
    assert_eq!(t.upgrades("web6"), 1);

    let d = scratch("pct49");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    let out = run(
        &d.0,
        &t,
        &six_hosts("max_fail_percentage = 49"),
        Options::default(),
    );
    assert_eq!(
        out,
        Outcome::Stopped(
            "stage web, batch 2: 1 of 2 host(s) failed, more than max_fail_percentage = 49%".into()
        )
    );
    assert_eq!(t.upgrades("web4"), 0);
}

#[test]
fn simulated_absolute_threshold_counts_the_whole_rollout() {
    let d = scratch("abs");
    let t = SimulatedTransport::new(QUICK)
        .fault("web1", Fault::HealthCheck)
        .fault("web5", Fault::Unreachable);
    let out = run(&d.0, &t, &six_hosts("max_fail = 1"), Options::default());
    assert_eq!(
        out,
        Outcome::Stopped("2 host(s) failed, more than max_fail = 1".into())
    );
    // web5 stopped answering: counted failed, said so.
    let s = status(&d.0);
    assert!(
        s.contains("web5: no answer: simulated host stopped answering"),
        "{s}"
    );
}

#[test]
fn simulated_controller_crash_then_resume_upgrades_no_host_twice() {
    let d = scratch("crash");
    let r = with_fleet(
        "[fleet]\nparallel = 5\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = 5\n\n[[fleet.run_once]]\nid = \"after\"\nafter = \"web\"\non = { role = \"web\" }\nexec = { argv = [\"true\"] }\n",
    );
    let p = plan(&r, &web_hosts(20), None).unwrap();
    let t = SimulatedTransport::new(QUICK);
    // The controller "dies" after 7 host results: mid batch 2, with hosts
    // of that batch still upgrading (they go on, as real hosts would).
    let out = run(
        &d.0,
        &t,
        &p,
        Options {
            crash_after_hosts: Some(7),
            ..Options::default()
        },
    );
    assert_eq!(out, Outcome::Crashed);
    let view = FleetJournal::open(&d.0).unwrap().latest().unwrap().unwrap();
    assert_eq!(view.state, FleetState::Running, "a crash leaves it running");
    let running = view
        .hosts
        .iter()
        .filter(|h| h.1 == HostState::Running)
        .count();
    assert!(
        running > 0,
        "some hosts were left running: {:?}",
        view.hosts
    );
    assert!(status(&d.0).contains("finished hosts are not upgraded again"));

    assert_eq!(resume(&d.0, &t), Some(Outcome::Done));
    for i in 1..=20 {
        assert_eq!(t.upgrades(&format!("web{i}")), 1, "web{i}");
    }
    let log = t.log();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("once after")).count(),
        1
    );
    assert_eq!(log.last().map(String::as_str), Some("once after on web1"));
    assert!(status(&d.0).contains("upgraded: 20"));
}

#[test]
fn simulated_pause_after_a_stage_and_on_request_then_resume() {
    let d = scratch("pause");
    let r = with_fleet(
        "[fleet]\n[[fleet.stages]]\nid = \"db\"\nrole = \"db\"\npause_after = true\n\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = 1\n",
    );
    let inv = inventory::load_str(
        Path::new("inv.toml"),
        "[hosts.db1]\nroles = [\"db\"]\n[hosts.web1]\nroles = [\"web\"]\n[hosts.web2]\nroles = [\"web\"]\n",
    )
    .unwrap();
    let p = plan(&r, &inv, None).unwrap();
    let t = SimulatedTransport::new(QUICK);
    assert_eq!(run(&d.0, &t, &p, Options::default()), Outcome::Paused);
    assert_eq!((t.upgrades("db1"), t.upgrades("web1")), (1, 0));
    assert!(status(&d.0).contains("paused: paused after stage db"));

    // Asked to pause while web1 upgrades: it finishes, web2 waits.
    let flag = Arc::new(AtomicBool::new(false));
    let mut journal = FleetJournal::open(&d.0).unwrap();
    let f = flag.clone();
    let mut progress = move |p: Progress<'_>| {
        if let Progress::HostEnded(h, _) = p
            && h == "web1"
        {
            f.store(true, Ordering::SeqCst);
        }
    };
    let options = Options {
        pause: Some(flag.clone()),
        ..Options::default()
    };
    let mut ex = Executor::new(&mut journal, &t, options, &mut progress);
    assert_eq!(ex.resume().unwrap().map(|r| r.1), Some(Outcome::Paused));
    assert_eq!((t.upgrades("web1"), t.upgrades("web2")), (1, 0));

    assert_eq!(resume(&d.0, &t), Some(Outcome::Done));
    assert_eq!(t.upgrades("web2"), 1);
    assert_eq!(t.upgrades("db1"), 1);
}

/// A db stage then a web stage, with `run_once` (TOML) after the db one;
/// the plan for db1 and web1.
fn db_then_web(run_once: &str) -> FleetPlan {
    let r = with_fleet(&format!(
        "[fleet]\n[[fleet.stages]]\nid = \"db\"\nrole = \"db\"\n\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n[[fleet.run_once]]\nafter = \"db\"\non = {{ role = \"db\" }}\n{run_once}"
    ));
    let inv = inventory::load_str(
        Path::new("inv.toml"),
        "[hosts.db1]\nroles = [\"db\"]\n[hosts.web1]\nroles = [\"web\"]\n",
    )
    .unwrap();
    plan(&r, &inv, None).unwrap()
}

#[test]
fn simulated_failed_gate_fails_the_rollout_before_the_next_stage() {
    let d = scratch("gate");
    let p = db_then_web(
        "id = \"db-healthy\"\nwait = { until = { tcp = \"127.0.0.1:5432\" }, timeout = \"1m\" }\n",
    );
    let t = SimulatedTransport::new(QUICK).fault("db1", Fault::OnceFails);
    let out = run(&d.0, &t, &p, Options::default());
    assert!(
        matches!(&out, Outcome::Failed(e) if e.starts_with("db-healthy on db1: wait until 127.0.0.1:5432")),
        "{out:?}"
    );
    assert_eq!(t.upgrades("web1"), 0);
    let s = status(&d.0);
    assert!(s.contains("db-healthy on db1 failed"), "{s}");
    assert!(s.contains("hoist fleet resume` runs it again"), "{s}");
}

#[test]
fn simulated_person_gate_stops_the_rollout_until_confirmed_for_its_host() {
    let d = scratch("person-gate");
    let p = db_then_web("id = \"dump-copied\"\ngate = { message = \"Copy the dump off db1\" }\n");
    let t = SimulatedTransport::new(QUICK);
    // The fleet runs hosts with --yes; that never opens a person's gate,
    // nor does a confirmation meant for another host.
    let out = run(
        &d.0,
        &t,
        &p,
        Options {
            confirm: vec!["dump-copied@web1".into()],
            ..Options::default()
        },
    );
    assert!(
        matches!(&out, Outcome::Failed(e) if e.contains("dump-copied on db1") && e.contains("waits for a person")),
        "{out:?}"
    );
    assert_eq!(t.upgrades("db1"), 1);
    assert_eq!(t.upgrades("web1"), 0, "nothing after the gate ran");
    // `hoist fleet resume --confirm dump-copied@db1`.
    let mut journal = FleetJournal::open(&d.0).unwrap();
    let mut progress = |_: Progress<'_>| {};
    let options = Options {
        confirm: vec!["dump-copied@db1".into()],
        ..Options::default()
    };
    let mut ex = Executor::new(&mut journal, &t, options, &mut progress);
    let (_, out) = ex.resume().unwrap().unwrap();
    assert_eq!(out, Outcome::Done);
    assert_eq!(t.upgrades("web1"), 1);
    assert_eq!(t.upgrades("db1"), 1, "db1 is not upgraded twice");
}

#[test]
fn simulated_host_at_a_person_gate_waits_while_the_rest_of_its_batch_goes_on() {
    let d = scratch("host-gate");
    let p = six_hosts("");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::PersonGate);
    // Batches 1, 2, 3 (web1; web2 web3; web4 web5 web6): web2 waits, web3
    // beside it ends, no later batch starts.
    let out = run(&d.0, &t, &p, Options::default());
    assert!(
        matches!(&out, Outcome::Waiting(why) if why.starts_with("web2 wait(s) for a person")),
        "{out:?}"
    );
    assert_eq!((t.upgrades("web3"), t.upgrades("web4")), (1, 0));
    let s = status(&d.0);
    assert!(
        s.contains("wait for a person")
            && s.contains("web2: waits for a person at gate person-gate"),
        "{s}"
    );
    let v = FleetJournal::open(&d.0).unwrap().latest().unwrap().unwrap();
    assert_eq!(v.state, FleetState::Paused);
    assert_eq!(v.host_state("web2"), Some(HostState::Waiting));
    // Resumed with the gate confirmed for web2: its run is resumed (not
    // upgraded again), and the rollout goes on.
    let mut journal = FleetJournal::open(&d.0).unwrap();
    let mut progress = |_: Progress<'_>| {};
    let options = Options {
        confirm: vec![format!("{}@web2", hoist::fleet::simulated::PERSON_GATE)],
        ..Options::default()
    };
    let mut ex = Executor::new(&mut journal, &t, options, &mut progress);
    assert_eq!(ex.resume().unwrap().unwrap().1, Outcome::Done);
    assert_eq!(t.upgrades("web2"), 1);
    assert_eq!(t.upgrades("web6"), 1);
    assert!(
        t.log().contains(&"resume web2".to_string()),
        "{:?}",
        t.log()
    );
}

#[test]
fn simulated_person_at_the_controllers_terminal_answers_a_hosts_gate() {
    let d = scratch("host-gate-ask");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::PersonGate);
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&asked);
    let options = Options {
        ask: Some(Arc::new(move |q: &str| {
            seen.lock().unwrap().push(q.to_string());
            true
        })),
        ..Options::default()
    };
    assert_eq!(run(&d.0, &t, &six_hosts(""), options), Outcome::Done);
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].starts_with("web2: gate person-gate waits for a person: Tell the users"),
        "{asked:?}"
    );
    assert_eq!(t.upgrades("web2"), 1);
    assert!(status(&d.0).contains("upgraded: 6"));
}

#[test]
fn simulated_rollout_then_hoist_fleet_status_says_where_it_stands() {
    let d = scratch("cli-status");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    run(&d.0, &t, &six_hosts(""), Options::default());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--state-dir"])
        .arg(&d.0)
        .args(["fleet", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("Rollout 1 of demo to 2.0: stopped"),
        "{text}"
    );
    assert!(text.contains("not started (untouched): 3"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--json", "--state-dir"])
        .arg(&d.0)
        .args(["fleet", "status"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "stopped");
    assert_eq!(v["untouched"], serde_json::json!(["web4", "web5", "web6"]));
    assert_eq!(v["failed"][0]["host"], "web2");
}

/// Three web hosts and a db host; `drain` runs on every web host before
/// the web stage (seed 003's "stop all usage servers, then all management
/// servers" before the first is upgraded).
fn drain_plan(parallel: u32) -> FleetPlan {
    let r = with_fleet(&format!(
        "[fleet]\nparallel = {parallel}\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = \"100%\"\n\n[[fleet.run_once]]\nid = \"drain\"\nbefore = \"web\"\non = {{ every = \"web\" }}\nexec = {{ argv = [\"true\"] }}\n"
    ));
    let inv = inventory::load_str(
        Path::new("inv.toml"),
        "[hosts.web1]\nroles = [\"web\"]\n[hosts.db1]\nroles = [\"db\"]\n[hosts.web2]\nroles = [\"web\"]\n[hosts.web3]\nroles = [\"web\"]\n",
    )
    .unwrap();
    plan(&r, &inv, None).unwrap()
}

fn count(log: &[String], line: &str) -> usize {
    log.iter().filter(|l| *l == line).count()
}

fn item_host(dir: &Path, seq: usize, host: &str) -> ItemState {
    let view = FleetJournal::open(dir).unwrap().latest().unwrap().unwrap();
    view.item_host_state(seq, host)
}

#[test]
fn simulated_run_on_every_host_runs_once_on_each_before_the_stage() {
    let d = scratch("every");
    let t = SimulatedTransport::new(QUICK);
    assert_eq!(
        run(&d.0, &t, &drain_plan(100), Options::default()),
        Outcome::Done
    );
    let log = t.log();
    for h in ["web1", "web2", "web3"] {
        assert_eq!(count(&log, &format!("once drain on {h}")), 1, "{log:?}");
        assert_eq!(item_host(&d.0, 0, h), ItemState::Done);
        assert_eq!(t.upgrades(h), 1);
    }
    // Not on a host without the role, and all of it before any upgrade.
    assert_eq!(count(&log, "once drain on db1"), 0);
    assert!(
        log[..3].iter().all(|l| l.starts_with("once drain on ")),
        "{log:?}"
    );
    assert!(
        log[3..].iter().all(|l| l.starts_with("upgrade ")),
        "{log:?}"
    );
}

#[test]
fn simulated_run_on_every_host_fails_on_one_host_and_resume_runs_the_rest_only() {
    let d = scratch("every-fail");
    // One at a time: web1 done, web2 fails, web3 is then not started.
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::OnceFails);
    let out = run(&d.0, &t, &drain_plan(1), Options::default());
    assert_eq!(
        out,
        Outcome::Failed("drain on web2: run true failed (simulated)".into())
    );
    assert_eq!(t.log(), ["once drain on web1", "once drain on web2"]);
    assert_eq!(item_host(&d.0, 0, "web1"), ItemState::Done);
    assert_eq!(item_host(&d.0, 0, "web2"), ItemState::Failed);
    assert_eq!(item_host(&d.0, 0, "web3"), ItemState::Pending);
    assert_eq!(t.upgrades("web1"), 0, "the stage does not start");
    let s = status(&d.0);
    assert!(
        s.contains("drain on web2 failed: run true failed (simulated)"),
        "{s}"
    );

    // Fixed: resume runs it again where it is not done, web1 not again.
    let fixed = SimulatedTransport::new(QUICK);
    assert_eq!(resume(&d.0, &fixed), Some(Outcome::Done));
    let log = fixed.log();
    assert_eq!(count(&log, "once drain on web1"), 0, "{log:?}");
    assert_eq!(count(&log, "once drain on web2"), 1, "{log:?}");
    assert_eq!(count(&log, "once drain on web3"), 1, "{log:?}");
    for h in ["web1", "web2", "web3"] {
        assert_eq!(fixed.upgrades(h), 1, "{h}");
        assert_eq!(item_host(&d.0, 0, h), ItemState::Done);
    }
}

#[test]
fn simulated_crash_mid_run_on_every_host_then_resume_does_not_redo_done_hosts() {
    let d = scratch("every-crash");
    let t = SimulatedTransport::new(QUICK);
    // The controller dies once two hosts' results are journaled.
    let out = run(
        &d.0,
        &t,
        &drain_plan(1),
        Options {
            crash_after_hosts: Some(2),
            ..Options::default()
        },
    );
    assert_eq!(out, Outcome::Crashed);
    let view = FleetJournal::open(&d.0).unwrap().latest().unwrap().unwrap();
    assert_eq!(view.state, FleetState::Running);
    assert_eq!(view.items[0].0, ItemState::Running, "crashed mid-item");
    assert_eq!(view.item_host_state(0, "web1"), ItemState::Done);
    assert_eq!(view.item_host_state(0, "web2"), ItemState::Done);
    assert_eq!(view.item_host_state(0, "web3"), ItemState::Pending);

    assert_eq!(resume(&d.0, &t), Some(Outcome::Done));
    let log = t.log();
    for h in ["web1", "web2", "web3"] {
        assert_eq!(count(&log, &format!("once drain on {h}")), 1, "{log:?}");
        assert_eq!(t.upgrades(h), 1, "{h}");
    }
}

/// Six web hosts one at a time with thresholds of their own, then a db
/// host under the fleet-wide default (`max_fail = 0`).
fn staged(web: &str) -> FleetPlan {
    let r = with_fleet(&format!(
        "[fleet]\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\nbatch = 1\n{web}\n[[fleet.stages]]\nid = \"db\"\nrole = \"db\"\n"
    ));
    let mut inv: String = (1..=6)
        .map(|i| format!("[hosts.web{i}]\nroles = [\"web\"]\n"))
        .collect();
    inv.push_str("[hosts.db1]\nroles = [\"db\"]\n");
    plan(
        &r,
        &inventory::load_str(Path::new("inv.toml"), &inv).unwrap(),
        None,
    )
    .unwrap()
}

#[test]
fn simulated_stage_threshold_stops_at_the_right_host() {
    // max_fail = 1 on the stage: web2 is tolerated, web4 is the second.
    let d = scratch("stage-stop");
    let t = SimulatedTransport::new(QUICK)
        .fault("web2", Fault::HealthCheck)
        .fault("web4", Fault::HealthCheck);
    let out = run(&d.0, &t, &staged("max_fail = 1"), Options::default());
    assert_eq!(
        out,
        Outcome::Stopped("stage web: 2 of its host(s) failed, more than its max_fail = 1".into())
    );
    for h in ["web1", "web2", "web3", "web4"] {
        assert_eq!(t.upgrades(h), 1, "{h}");
    }
    for h in ["web5", "web6", "db1"] {
        assert_eq!(t.upgrades(h), 0, "{h} was touched");
        assert_eq!(host_state(&d.0, h), HostState::Pending);
    }
}

#[test]
fn simulated_stage_threshold_tolerated_failures_do_not_stop_the_next_stage() {
    // web2 fails within the stage's own max_fail; the db stage (fleet-wide
    // max_fail = 0) counts only its own stages' hosts and goes on.
    let d = scratch("stage-tolerated");
    let t = SimulatedTransport::new(QUICK).fault("web2", Fault::HealthCheck);
    assert_eq!(
        run(&d.0, &t, &staged("max_fail = 1"), Options::default()),
        Outcome::Done
    );
    assert_eq!(t.upgrades("db1"), 1);
    assert_eq!(host_state(&d.0, "web2"), HostState::Failed);

    // The fleet-wide threshold still holds for the db stage.
    let d = scratch("stage-fleet");
    let t = SimulatedTransport::new(QUICK).fault("db1", Fault::HealthCheck);
    assert_eq!(
        run(&d.0, &t, &staged("max_fail = 1"), Options::default()),
        Outcome::Stopped("1 host(s) failed, more than max_fail = 0".into())
    );
}

#[test]
fn simulated_stage_percentage_alone_means_no_absolute_limit_in_the_stage() {
    // Batches of 1 and only max_fail_percentage = 100 on the stage: a
    // failed host is 100% of its batch, not more, so nothing stops it.
    let d = scratch("stage-pct100");
    let t = SimulatedTransport::new(QUICK)
        .fault("web1", Fault::HealthCheck)
        .fault("web3", Fault::HealthCheck);
    assert_eq!(
        run(
            &d.0,
            &t,
            &staged("max_fail_percentage = 100"),
            Options::default()
        ),
        Outcome::Done
    );
    assert_eq!(t.upgrades("web6"), 1);
    // 99%: the first failed host of a batch of 1 stops the stage.
    let d = scratch("stage-pct99");
    let t = SimulatedTransport::new(QUICK).fault("web3", Fault::HealthCheck);
    assert_eq!(
        run(
            &d.0,
            &t,
            &staged("max_fail_percentage = 99"),
            Options::default()
        ),
        Outcome::Stopped(
            "stage web, batch 3: 1 of 1 host(s) failed, more than max_fail_percentage = 99%".into()
        )
    );
    assert_eq!(t.upgrades("web4"), 0);
}
