//! Kill anywhere, with real processes and random timing.
//!
//! A product made of files, upgraded by a recipe of five `exec` steps that
//! take time, change files between sleeps, and write `start <step> <pid>`
//! and `end <step> <pid>` to a ledger; two of them leave a process behind
//! that writes to the product half a second after the step's script ended
//! unless something ends it (one in its own session, `setsid`, one in the
//! step's process group). hoist is stopped at a
//! random moment of the run: SIGKILL of hoist alone (what the OOM killer
//! does: its children live on), SIGHUP (a closed terminal) or SIGTERM;
//! then `hoist resume` or, at once, `hoist rollback`. Every end state must
//! equal the uninterrupted run's or the original, byte for byte; no step
//! may run twice at once (each step holds a lock on its own file while it
//! runs and says so in the ledger when it finds it taken); nothing may
//! change after hoist said it was done, and no process of a step may be
//! left.
//!
//! The moments come from a seeded generator: `FAULTS_SEED=<n>` replays a
//! suite's choices; every failure names the seed and the case.

mod common;
mod faults;
use common::text;
use faults::*;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL of hoist alone, not its process group nor its children.
    Kill9,
    Hup,
    Term,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill9",
            Fault::Hup => "sighup",
            Fault::Term => "sigterm",
        }
    }

    fn signal(self) -> Signal {
        match self {
            Fault::Kill9 => Signal::SIGKILL,
            Fault::Hup => Signal::SIGHUP,
            Fault::Term => Signal::SIGTERM,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    Resume,
    Rollback,
}

/// Where the run stood when hoist ended, from its journal: no run, a step
/// found `running` (the fault landed in it, or after its end before the
/// next step began), before any step, paused after a step, committed.
fn where_it_stood(status: &serde_json::Value, ledger: &str) -> String {
    if status["runs"] == 0 {
        return "before-run".into();
    }
    let run = &status["run"];
    let state = run["state"].as_str().unwrap_or("?");
    if state == "committed" {
        return "after-commit".into();
    }
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let of = |s: &serde_json::Value| s["step_id"].as_str().unwrap_or("?").to_string();
    if let Some(s) = steps.iter().find(|s| s["state"] == "running") {
        // The journal says running from before the script starts until the
        // next step starts: the ledger tells which part of that it was.
        let id = of(s);
        let last = ledger
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(1) == Some(id.as_str()))
            .and_then(|l| l.split(' ').next());
        return match last {
            Some("end") => format!("after {id} (not yet journaled done)"),
            Some(_) => format!("in {id}"),
            None => format!("at {id} (journaled, not begun)"),
        };
    }
    match steps.iter().rev().find(|s| s["state"] == "done") {
        Some(s) => format!("{state} after {}", of(s)),
        None => format!("{state} before steps"),
    }
}

/// One case: an upgrade stopped by `fault` at `delay`, then `then`.
/// Returns where the fault landed (also in `at`, for a failure) and the
/// outcome, for the matrix.
fn case(
    p: &Product,
    fault: Fault,
    delay: Duration,
    then: Then,
    r: &Reference,
    at_out: &mut String,
) -> Result<(String, String), String> {
    let upgrade = spawn(p.upgrade(), &p.root.join("upgrade.out"));
    let pid = Pid::from_raw(upgrade.id() as i32);
    std::thread::sleep(delay);
    let mut upgrade = upgrade;
    let sent = upgrade.try_wait().unwrap().is_none();
    if sent {
        kill(pid, fault.signal()).unwrap();
    }
    let first = wait(upgrade, &p.root.join("upgrade.out"))?;
    let status = p.status();
    let at = if sent {
        where_it_stood(&status, &p.ledger())
    } else {
        "after-exit".to_string()
    };
    at_out.clone_from(&at);
    let run_state = status["run"]["state"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    let fail = |what: String| {
        Err(format!(
            "{what}\n  where: {at}\n  first hoist: {first}\n  ledger:\n{}",
            p.ledger()
        ))
    };
    // How the first hoist ended.
    let mut outcome = String::new();
    match fault {
        // Ended on its own as the signal went (a zombie takes any signal).
        _ if first.code == Some(0) && run_state == "committed" => {
            if sent {
                outcome += "finished "
            }
        }
        Fault::Kill9 if sent => {
            if first.signal != Some(9) {
                return fail("hoist did not die of SIGKILL".into());
            }
        }
        Fault::Hup | Fault::Term if sent => match (first.code, run_state.as_str()) {
            (Some(3), "paused") => outcome += "paused ",
            // The signal came before hoist took it over: only acceptable
            // while there was no run yet.
            (None, "none") if first.signal == Some(fault.signal() as i32) => {
                outcome += "died-before-run "
            }
            // Taken over, but before the run was created: refused, no run.
            (Some(1), "none")
                if first
                    .said
                    .contains("before the run began; nothing was changed") =>
            {
                outcome += "stopped-before-run "
            }
            _ => {
                return fail(format!(
                    "{} did not pause the run (exit 3, paused): run {run_state}",
                    fault.name()
                ));
            }
        },
        _ => {
            if first.code != Some(0) {
                return fail("the upgrade, not interrupted, did not succeed".into());
            }
        }
    }
    if matches!(fault, Fault::Hup | Fault::Term) && first.code == Some(3) {
        // A clean pause: the step in progress finished, nothing is left.
        let left = processes_in(&p.dir());
        if !left.is_empty() {
            return fail(format!(
                "paused, but processes of a step are left: {left:?}"
            ));
        }
    }
    // What comes next, and the state it must reach.
    let (second, want, name) = match then {
        Then::Resume => (
            run(p.hoist(&["resume"]), &p.root.join("resume.out"))?,
            if run_state == "none" {
                &r.original
            } else {
                &r.end
            },
            "resume",
        ),
        Then::Rollback => (
            run(p.hoist(&["rollback"]), &p.root.join("rollback.out"))?,
            if run_state == "committed" {
                &r.end
            } else {
                &r.original
            },
            "rollback",
        ),
    };
    let fail = |what: String| {
        Err(format!(
            "{what}\n  where: {at}\n  first hoist: {first}\n  {name}: {second}\n  ledger:\n{}",
            p.ledger()
        ))
    };
    if second.code != Some(0) {
        return fail(format!("{name} did not succeed"));
    }
    let said = &second.said;
    let words = match (then, run_state.as_str()) {
        (Then::Resume, "none" | "committed") => "nothing to resume",
        (Then::Resume, _) => "app upgraded from 1.0 to 2.0",
        (Then::Rollback, "none" | "committed") => "nothing to roll back",
        (Then::Rollback, _) => "rolled back on request: app is as it was at 1.0",
    };
    if !said.contains(words) {
        return fail(format!("{name} did not say {words:?}"));
    }
    let mut want = want;
    if (then, run_state.as_str()) == (Then::Resume, "none") {
        // Nothing was begun: the product is as it was, and a new upgrade
        // goes through (nothing the dead one left is in its way).
        let files = p.files();
        if files != r.original {
            return fail(format!(
                "no run, but the product is not the original:\n{}",
                diff(&r.original, &files)
            ));
        }
        let again = run(p.upgrade(), &p.root.join("again.out"))?;
        if again.code != Some(0) {
            return fail(format!("a new upgrade after it did not succeed: {again}"));
        }
        want = &r.end;
    }
    let after = p.status();
    let after_state = after["run"]["state"].as_str().unwrap_or("none").to_string();
    let state_now = match (then, run_state.as_str()) {
        (Then::Resume, "none") => "committed",
        (_, "none") => "none",
        (_, "committed") | (Then::Resume, _) => "committed",
        (Then::Rollback, _) => "rolled-back",
    };
    if after_state != state_now {
        return fail(format!(
            "after {name}, hoist status says the run is {after_state}, not {state_now}"
        ));
    }
    outcome += match (then, run_state.as_str()) {
        (Then::Resume, "none") => "resume-nothing(original) then upgrade-ok",
        (Then::Resume, "committed") => "resume-nothing(upgraded)",
        (Then::Resume, _) => "resume-ok",
        (Then::Rollback, "none") => "rollback-nothing(original)",
        (Then::Rollback, "committed") => "rollback-nothing(upgraded)",
        (Then::Rollback, _) => "rollback-ok",
    };
    // What the dead hoist's steps left, as the second hoist found it.
    if said.contains("a previous hoist left processes running") {
        outcome += if said.contains("they ended by themselves") {
            " (left processes waited for)"
        } else {
            " (left processes ended)"
        };
    }
    let files = p.files();
    if &files != want {
        return fail(format!(
            "after {name}, the product is not {}:\n{}",
            if std::ptr::eq(want, &r.end) {
                "the uninterrupted run's"
            } else {
                "the original"
            },
            diff(want, &files)
        ));
    }
    let left = processes_in(&p.dir());
    if !left.is_empty() {
        return fail(format!(
            "{name} ended, but processes of a step are left: {left:?}"
        ));
    }
    let ledger = p.ledger();
    if let Err(e) = check_ledger(&ledger) {
        return fail(format!("the ledger: {e}"));
    }
    // Nothing may change once hoist said it was done.
    std::thread::sleep(SETTLE);
    let later = p.files();
    if later != files {
        return fail(format!(
            "a change after {name} ended, within {SETTLE:?}:\n{}",
            diff(&files, &later)
        ));
    }
    if p.ledger() != ledger {
        return fail(format!("a step ran after {name} ended"));
    }
    Ok((at, outcome))
}

/// The cases of one test: `(fault, then)` each, run `THREADS` at a time,
/// each at a random moment of the run. Panics with every failure and the
/// matrix; prints the matrix.
fn suite(test: &str, cases: &[(Fault, Then)]) {
    let r = reference();
    let seed = base_seed();
    let next = AtomicUsize::new(0);
    let matrix: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(fault, then)) = cases.get(i) else {
                        break;
                    };
                    let case_seed = seed ^ ((i as u64) << 32) ^ fnv(test);
                    let mut rng = Rng::new(case_seed);
                    let delay = rng.within(r.duration);
                    let p = Product::new(root(&format!("{test}-{i}")));
                    let mut at = "?".to_string();
                    let result = case(&p, fault, delay, then, r, &mut at);
                    let key = match &result {
                        Ok((at, outcome)) => format!("{} x {at} x {outcome}", fault.name()),
                        Err(_) => format!("{} x {at} x FAILED({then:?})", fault.name()),
                    };
                    *matrix.lock().unwrap().entry(key).or_default() += 1;
                    match result {
                        Ok(_) => {
                            let _ = std::fs::remove_dir_all(&p.root);
                        }
                        Err(e) => {
                            // Whatever is left must not write into the next
                            // case: there is none in this directory.
                            for (pid, _) in processes_in(&p.dir()) {
                                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                            }
                            failures.lock().unwrap().push(format!(
                                "case {i} ({} then {then:?}, {delay:?} into a run of {:?}; \
                                 FAULTS_SEED={seed}, kept in {}): {e}",
                                fault.name(),
                                r.duration,
                                p.root.display()
                            ))
                        }
                    }
                }
            });
        }
    });
    let matrix = matrix.into_inner().unwrap();
    let table: String = matrix
        .iter()
        .map(|(k, n)| format!("  {k}: {n}\n"))
        .collect();
    eprintln!(
        "{test}: {} cases in {:.1?} (FAULTS_SEED={seed}, run of {:?}):\n{table}",
        cases.len(),
        started.elapsed(),
        r.duration
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (FAULTS_SEED={seed}):\n{}\n\nmatrix:\n{table}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .enumerate()
            .map(|(n, f)| if n < 3 {
                f.clone()
            } else {
                // The first ones in full; then what and where.
                f.lines()
                    .take_while(|l| !l.starts_with("  first hoist"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let total: usize = matrix.values().sum();
    assert_eq!(total, cases.len(), "{table}");
}

#[test]
fn kill9_of_hoist_alone_anywhere_then_resume_reaches_the_uninterrupted_end() {
    suite("kill9-resume", &[(Fault::Kill9, Then::Resume); 50]);
}

#[test]
fn kill9_of_hoist_alone_anywhere_then_rollback_restores_the_original() {
    suite("kill9-rollback", &[(Fault::Kill9, Then::Rollback); 50]);
}

#[test]
fn sighup_anywhere_pauses_then_resume_or_rollback() {
    let cases: Vec<(Fault, Then)> = (0..24)
        .map(|i| {
            (
                Fault::Hup,
                if i % 2 == 0 {
                    Then::Resume
                } else {
                    Then::Rollback
                },
            )
        })
        .collect();
    suite("sighup", &cases);
}

#[test]
fn sigterm_anywhere_pauses_then_resume_or_rollback() {
    let cases: Vec<(Fault, Then)> = (0..12)
        .map(|i| {
            (
                Fault::Term,
                if i % 2 == 0 {
                    Then::Resume
                } else {
                    Then::Rollback
                },
            )
        })
        .collect();
    suite("sigterm", &cases);
}

/// The suite can fail: what the steps leave behind does write late when
/// nothing ends it (the two steps' scripts run by `sh` alone).
#[test]
fn without_hoist_what_the_steps_leave_behind_writes_late() {
    let p = Product::new(root("no-hoist"));
    let recipe: toml::Table =
        toml::from_str(&std::fs::read_to_string(p.recipe()).unwrap()).unwrap();
    for s in recipe["steps"].as_array().unwrap() {
        let script = s["exec"]["shell"].as_str().unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(p.dir())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while (!std::fs::read_to_string(p.dir().join("data"))
        .unwrap()
        .contains("late")
        || !std::fs::read_to_string(p.dir().join("app.conf"))
            .unwrap()
            .contains("late"))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(p.dir().join("data")).unwrap(),
        "row 1\nrow 2\nmigrated\nlate\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.dir().join("app.conf")).unwrap(),
        "# the admin's comment\nmode = modern\nlate\n"
    );
    // The ledger holds; a second copy of a step while the first holds its
    // lock says so.
    check_ledger(&p.ledger()).unwrap();
    let s = &recipe["steps"][0]["exec"]["shell"].as_str().unwrap();
    let mut first = Command::new("sh")
        .arg("-c")
        .arg(s)
        .current_dir(p.dir())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let second = Command::new("sh")
        .arg("-c")
        .arg(s)
        .current_dir(p.dir())
        .output()
        .unwrap();
    assert!(second.status.success());
    assert!(first.wait().unwrap().success());
    let e = check_ledger(&p.ledger()).unwrap_err();
    assert!(
        e.contains("started while another copy of it held its lock"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&p.root);
}

#[test]
fn the_ledger_check_finds_two_copies_of_a_step_at_once() {
    let ok = "start stop-app 10\nend stop-app 10\nstart switch-release 11\n\
              start switch-release 12\nend switch-release 12\n";
    // A killed copy (11, no end) and then a new one: fine.
    check_ledger(ok).unwrap();
    for (ledger, says) in [
        (
            "start stop-app 10\nstart stop-app 11\nend stop-app 11\nend stop-app 10\n",
            "two copies ran at once",
        ),
        (
            "start stop-app 10\nstart stop-app 11\nend stop-app 10\n",
            "two copies ran at once",
        ),
        ("end stop-app 10\n", "with no start"),
        (
            "start stop-app 10\nend stop-app 10\nend stop-app 10\n",
            "2 `end` lines",
        ),
        ("overlap migrate-data 12\n", "held its lock"),
        ("start nosuch 10\n", "unexpected"),
    ] {
        let e = check_ledger(ledger).unwrap_err();
        assert!(e.contains(says), "{ledger}: {e}");
    }
}

/// The moment the random cases find least often, pinned: hoist dies after
/// set-config's effect is there (its probe holds) but before the step's
/// script ended, while what the step left behind still sleeps. The
/// uninterrupted run ends that process when the script ends; so must what
/// comes after a crash: resume reaches the uninterrupted run's end, and
/// rollback the original, byte for byte, with nothing written later.
fn pinned(then: Then) {
    let r = reference();
    let p = Product::new(root(&format!("pinned-{then:?}")));
    let out = p.root.join("upgrade.out");
    let mut upgrade = spawn(p.upgrade(), &out);
    let conf = p.dir().join("app.conf");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&conf)
        .unwrap_or_default()
        .contains("mode = modern")
    {
        assert!(
            Instant::now() < deadline,
            "set-config never changed app.conf"
        );
        assert!(
            upgrade.try_wait().unwrap().is_none(),
            "the upgrade ended first: {}",
            std::fs::read_to_string(&out).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(Pid::from_raw(upgrade.id() as i32), Signal::SIGKILL).unwrap();
    let first = wait(upgrade, &out).unwrap();
    assert_eq!(first.signal, Some(9), "{first}");
    let ledger = p.ledger();
    assert!(
        ledger.contains("start set-config") && !ledger.contains("end set-config"),
        "not inside set-config: {ledger}"
    );
    let (args, want, words): (&[&str], &Snapshot, &str) = match then {
        Then::Resume => (&["resume"], &r.end, "app upgraded from 1.0 to 2.0"),
        Then::Rollback => (
            &["rollback"],
            &r.original,
            "rolled back on request: app is as it was at 1.0",
        ),
    };
    let o = run(p.hoist(args), &p.root.join("then.out")).unwrap();
    assert_eq!(o.code, Some(0), "{then:?}: {o}");
    assert!(o.said.contains(words), "{then:?}: {o}");
    let files = p.files();
    assert!(
        &files == want,
        "{then:?}: not the {} state:\n{}\n{then:?} said:\n{}\nledger:\n{}",
        if then == Then::Resume {
            "uninterrupted run's"
        } else {
            "original"
        },
        diff(want, &files),
        o.said,
        p.ledger()
    );
    let left = processes_in(&p.dir());
    assert!(left.is_empty(), "{then:?}: left {left:?}");
    check_ledger(&p.ledger()).unwrap();
    std::thread::sleep(SETTLE);
    assert_eq!(p.files(), files, "{then:?}: a change after it ended");
    let _ = std::fs::remove_dir_all(&p.root);
}

#[test]
fn killed_between_a_step_s_effect_and_its_end_resume_reaches_the_uninterrupted_end() {
    pinned(Then::Resume);
}

#[test]
fn killed_between_a_step_s_effect_and_its_end_rollback_restores_the_original() {
    pinned(Then::Rollback);
}
