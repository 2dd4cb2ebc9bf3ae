//! On a booted Debian host (systemd as PID 1), a step's processes live and
//! die with the run even when they shed every mark hoist put on them:
//! `env -i` clears the environment marker and `setsid` leaves the process
//! group, but each command runs in a transient systemd scope and nothing
//! leaves its cgroup. A process left behind is ended when its command
//! ends; after hoist is killed with SIGKILL, `hoist rollback` ends the
//! step's processes before it undoes anything, so none changes the host
//! afterwards.

mod common;
use common::{install_hoist, sh};

use std::time::{Duration, Instant};

use hoist_testbed::{Host, Suite, Testbed};

/// The step starts an orphan that clears its environment and leaves the
/// group, and writes `late` 25 s on unless it is ended; the step itself
/// then holds for the seconds in `hold`.
const RECIPE: &str = r#"[product]
name = "orphan-app"
version = { file = "/srv/app/VERSION" }

[[paths]]
id = "main"
from = "1.0"
to = "2.0"

[[steps]]
id = "switch"
phase = "install"
exec = { shell = "env -i /usr/bin/setsid /bin/sh -c 'sleep 25; echo late >> /srv/app/late' </dev/null >/dev/null 2>&1 & echo 2.0 > /srv/app/VERSION; sleep $(cat /srv/app/hold)" }
undo = { exec = { shell = "echo 1.0 > /srv/app/VERSION" } }
"#;

/// The orphan, if it still runs.
fn orphans(h: &Host) -> String {
    sh(h, "pgrep -a -f '^sleep 25$' || true")
}

#[test]
fn a_step_process_that_cleared_its_marks_still_ends_with_the_run() -> hoist_testbed::Result<()> {
    let tb = Testbed::builder().host("c", Suite::Bookworm).start()?;
    let h = tb.host("c")?;
    install_hoist(&h, RECIPE)?;
    sh(
        &h,
        "mkdir -p /srv/app && echo 1.0 > /srv/app/VERSION && echo 0 > /srv/app/hold",
    );

    // The command ends at once: what it left is ended with it.
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(orphans(&h), "", "the orphan outlived its step");
    let status = sh(&h, "hoist status --json");
    assert!(
        status.contains("step-processes") && status.contains("systemd scopes hoist-"),
        "the journal does not say what identifies the step's processes:\n{status}"
    );

    // Again from 1.0, and hoist is killed while the step holds.
    sh(&h, "echo 1.0 > /srv/app/VERSION && echo 60 > /srv/app/hold");
    sh(
        &h,
        "(hoist upgrade --yes -r /root/recipe.toml </dev/null >/root/up.out 2>&1 &) ; true",
    );
    let until = Instant::now() + Duration::from_secs(60);
    while orphans(&h).is_empty() || sh(&h, "pgrep -f '^sleep 60$' || true").is_empty() {
        assert!(Instant::now() < until, "the step never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    sh(&h, "pkill -KILL -x hoist");
    assert_ne!(orphans(&h), "", "the orphan should outlive a killed hoist");

    let out = h.exec_unchecked("hoist rollback < /dev/null")?;
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("left processes running"), "{text}");
    assert!(text.contains("ended them"), "{text}");
    assert_eq!(orphans(&h), "", "rollback left the orphan running:\n{text}");
    assert_eq!(sh(&h, "cat /srv/app/VERSION"), "1.0\n");
    // Past the time the orphan would have written: nothing came.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sh(&h, "cat /srv/app/late 2>/dev/null || true"), "");
    tb.teardown()?;
    Ok(())
}
