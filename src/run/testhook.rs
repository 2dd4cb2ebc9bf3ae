//! Test-only environment hooks, documented in docs/ARCHITECTURE.md:
//!
//! * `HOIST_TEST_FAIL_AT=<step key>`: that step fails before acting, exactly
//!   as a real failure would (used by `hoist demo --fail-at`).
//! * `HOIST_TEST_CRASH_AT=<step key>:<point>`: hoist kills itself with
//!   SIGKILL at that point: `before` (the step is journaled running, nothing
//!   done yet), `after` (the action is done, the journal not yet told),
//!   `undo` (an undo is journaled running, not yet done); `run:created`
//!   kills it once the run is created, before its first step.
//! * `HOIST_TEST_SIGNAL_AT=<step key>`: once that step is journaled running,
//!   hoist sends itself SIGTERM, as an admin would mid-step: the step must
//!   finish and the run stop cleanly before the next one.
//!
//! They let the tests kill or fail a run at every step boundary and inside
//! every step.

pub fn fail_at(key: &str) -> bool {
    std::env::var("HOIST_TEST_FAIL_AT").is_ok_and(|v| v == key)
}

pub fn crash_at(key: &str, point: &str) {
    if std::env::var("HOIST_TEST_CRASH_AT").is_ok_and(|v| v == format!("{key}:{point}")) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; wait for it to land.
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

pub fn signal_at(key: &str) {
    if std::env::var("HOIST_TEST_SIGNAL_AT").is_ok_and(|v| v == key) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM);
        // The handler counts it on its own thread: wait until it has, so
        // the step sees the stop as an admin's would be seen.
        for _ in 0..200 {
            if crate::sys::process::stop::requested() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
