//! On a booted Debian host (systemd-journald running), a run's events are
//! in the systemd journal with hoist's fields: `journalctl -o json -t hoist
//! HOIST_RUN=1` gives run 1's entries, each with its run, event and
//! priority, the step events with the step's key and phase.

mod common;
use common::{install_hoist, sh};

use std::time::{Duration, Instant};

use hoist_testbed::{Suite, Testbed};
use serde_json::Value;

const RECIPE: &str = r#"[product]
name = "tiny"
version = { file = "/srv/tiny/VERSION" }

[[paths]]
id = "main"
from = "1.0"
to = "2.0"

[[steps]]
id = "switch"
phase = "install"
exec = { shell = "echo 2.0 > /srv/tiny/VERSION" }
undo = { exec = { shell = "echo 1.0 > /srv/tiny/VERSION" } }
"#;

fn field<'a>(e: &'a Value, k: &str) -> &'a str {
    e[k].as_str().unwrap_or("")
}

#[test]
fn a_run_is_in_the_journal_with_its_fields() -> hoist_testbed::Result<()> {
    let tb = Testbed::builder().host("j", Suite::Bookworm).start()?;
    let h = tb.host("j")?;
    install_hoist(&h, RECIPE)?;
    sh(&h, "mkdir -p /srv/tiny && echo 1.0 > /srv/tiny/VERSION");
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);

    // journald takes datagrams as they come: bounded wait for the last.
    let until = Instant::now() + Duration::from_secs(30);
    let entries: Vec<Value> = loop {
        let json = sh(&h, "journalctl -o json -t hoist HOIST_RUN=1 --no-pager");
        let entries: Vec<Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if entries
            .iter()
            .any(|e| field(e, "HOIST_EVENT") == "run-finished")
        {
            break entries;
        }
        assert!(
            Instant::now() < until,
            "no run-finished in the journal:\n{json}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for e in &entries {
        assert_eq!(field(e, "SYSLOG_IDENTIFIER"), "hoist", "{e}");
        assert_eq!(field(e, "HOIST_RUN"), "1", "{e}");
        assert!(!field(e, "PRIORITY").is_empty(), "{e}");
        assert!(!field(e, "MESSAGE").is_empty(), "{e}");
    }
    let named: Vec<&str> = entries.iter().map(|e| field(e, "HOIST_EVENT")).collect();
    for want in [
        "run-started",
        "step-started",
        "step-finished",
        "run-finished",
    ] {
        assert!(named.contains(&want), "no {want} among {named:?}");
    }
    let finished = entries
        .iter()
        .find(|e| field(e, "HOIST_EVENT") == "step-finished")
        .unwrap();
    assert_eq!(field(finished, "HOIST_STEP"), "switch", "{finished}");
    assert_eq!(field(finished, "HOIST_PHASE"), "install", "{finished}");
    assert_eq!(field(finished, "HOIST_STATE"), "done", "{finished}");
    assert_eq!(field(finished, "PRIORITY"), "6", "{finished}");
    let end = entries
        .iter()
        .find(|e| field(e, "HOIST_EVENT") == "run-finished")
        .unwrap();
    assert_eq!(field(end, "HOIST_STATE"), "committed", "{end}");
    assert_eq!(field(end, "PRIORITY"), "5", "{end}");

    // The run's report is there too.
    let report: Value = serde_json::from_str(&sh(&h, "cat /var/lib/hoist/reports/1.json"))
        .expect("the report file is JSON");
    assert_eq!(report["state"], "committed");
    Ok(())
}
