//! Teardown when the test process is interrupted: SIGTERM and SIGINT run
//! the teardown before exiting; after SIGKILL (no teardown possible), the
//! next run's sweep removes what the dead run left.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hoist_testbed::{leftovers, sweep_dead_runs, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Start `hoist-testbed up` with one host; return it and its run id once
/// the host answers SSH.
fn hold_one_host(name: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist-testbed"))
        .args(["up", "--for", "300", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hoist-testbed up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("READY ") {
                let _ = tx.send(id.to_owned());
            }
        }
    });
    let run_id = match rx.recv_timeout(Duration::from_secs(600)) {
        Ok(id) => id,
        Err(e) => {
            let _ = child.kill();
            panic!("hoist-testbed up never became ready: {e}");
        }
    };
    assert!(
        !leftovers::of_run(&run_id).is_empty(),
        "a live run is visible to the leftover check"
    );
    (child, run_id)
}

fn exit_code_within(child: &mut Child, t: Duration) -> Option<i32> {
    wait_for(
        "hoist-testbed up to exit",
        t,
        Duration::from_millis(100),
        || child.try_wait().ok().flatten(),
    )
    .expect("exits in time")
    .code()
}

// One test, run in sequence: a concurrent run's start would sweep the
// SIGKILLed run before this test could see it left behind.
#[test]
fn signals_tear_down_and_sigkill_leftovers_are_swept() {
    for (sig, name) in [(Signal::SIGTERM, "termed"), (Signal::SIGINT, "inted")] {
        let (mut child, run_id) = hold_one_host(name);
        kill(Pid::from_raw(child.id() as i32), sig).expect("signal");
        let code = exit_code_within(&mut child, Duration::from_secs(60));
        assert_eq!(code, Some(128 + sig as i32), "{sig}");
        let left = leftovers::of_run(&run_id);
        assert!(left.is_empty(), "after {sig}, left behind: {left:#?}");
    }

    let (mut child, run_id) = hold_one_host("killed");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("signal");
    let _ = exit_code_within(&mut child, Duration::from_secs(30));
    assert!(
        !leftovers::of_run(&run_id).is_empty(),
        "SIGKILL leaves the run for the sweeper"
    );
    sweep_dead_runs();
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "after the sweep, left behind: {left:#?}");
}
