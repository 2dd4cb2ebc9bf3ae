//! A long step shows where it stands while it runs: an `exec` with
//! `follow` shows each line its command appends to a log file (seed 003's
//! `cloudstack-sysvmadm -l LOG`, "can take an hour or more"), and a `wait`
//! says what it last saw ("wait until every host is Up").
//!
//! Live, not after the fact: the command writes its first line, then waits
//! until the test has read that line from hoist's output before it goes
//! on; the wait's condition turns true only once the test has read the
//! wait's first progress line. Shown at the end, either would time out.

mod common;
use common::hoist_in;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Every wait of this file is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recipe(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"[product]
name = "vms"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "restart-system-vms"
phase = "post"
timeout = "1m"
exec.follow = "{d}/sysvmadm.log"
exec.shell = '''
echo "Stopping console proxy v-1-VM" >> {d}/sysvmadm.log
i=0
while [ ! -e {d}/seen-1 ]; do
  i=$((i + 1)); [ $i -le 500 ] || exit 7
  sleep 0.1
done
echo "Starting console proxy v-1-VM" >> {d}/sysvmadm.log
printf "Done restarting 1 VM" >> {d}/sysvmadm.log
echo 2.0 > {d}/VERSION
'''

[[steps]]
id = "hosts-up"
phase = "post"
wait = {{ until = {{ command = ["test", "-e", "{d}/hosts-up"] }}, timeout = "1m", interval = "1s" }}
"#
    )
}

#[test]
fn a_followed_log_and_a_wait_are_shown_while_the_step_runs() {
    let dir = Dir(std::env::temp_dir().join(format!("hoist-progress-{}", std::process::id())));
    let d = &dir.0;
    let _ = std::fs::remove_dir_all(d);
    std::fs::create_dir_all(d).unwrap();
    std::fs::write(d.join("VERSION"), "1.0\n").unwrap();
    // An earlier run's lines are not this run's progress.
    std::fs::write(d.join("sysvmadm.log"), "an earlier restart\n").unwrap();
    std::fs::write(d.join("recipe.toml"), recipe(d)).unwrap();

    let mut child = hoist_in(&d.join("state"))
        .args(["--json", "upgrade", "--yes", "-r"])
        .arg(d.join("recipe.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hoist runs");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let ended = Arc::clone(&done);
    let guard = std::thread::spawn(move || {
        let start = Instant::now();
        while !ended.load(Ordering::SeqCst) {
            if start.elapsed() > BOUND {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });

    let mut events = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if v["event"] == "step-progress" {
            let text = v["line"].as_str().unwrap_or_default();
            if text == "Stopping console proxy v-1-VM" {
                std::fs::write(d.join("seen-1"), "").unwrap();
            }
            if v["step"] == "hosts-up" && text.starts_with("waiting, ") {
                std::fs::write(d.join("hosts-up"), "").unwrap();
            }
        }
        events.push(v);
    }
    let status = child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    let _ = guard.join();
    let said: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(status.success(), "{said:#?}");
    assert_eq!(events.last().unwrap()["state"], "committed", "{said:#?}");

    let progress = |step: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["event"] == "step-progress" && e["step"] == step)
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        progress("restart-system-vms"),
        [
            "Stopping console proxy v-1-VM",
            "Starting console proxy v-1-VM",
            "Done restarting 1 VM"
        ],
        "{said:#?}"
    );
    let waits = progress("hosts-up");
    assert_eq!(waits.len(), 1, "one line at the first miss: {waits:?}");
    assert!(
        waits[0].starts_with("waiting, 0s of at most 1m: ")
            && waits[0].contains("test -e")
            && waits[0].contains("exited with status 1"),
        "{waits:?}"
    );
    // Every progress line of a step comes before that step's end.
    for step in ["restart-system-vms", "hosts-up"] {
        let last_progress = events
            .iter()
            .rposition(|e| e["event"] == "step-progress" && e["step"] == step)
            .unwrap();
        let finished = events
            .iter()
            .position(|e| e["event"] == "step-finished" && e["step"] == step)
            .unwrap();
        assert!(last_progress < finished, "{step}: {said:#?}");
    }
    // The followed lines are in the run's log too.
    let logs: String = walk(&d.join("state"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("sysvmadm.log: Starting console proxy v-1-VM"),
        "{logs}"
    );
    assert!(!logs.contains("sysvmadm.log: an earlier restart"), "{logs}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
