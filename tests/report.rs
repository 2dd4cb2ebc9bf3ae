//! What a run leaves for an admin who was not watching, through the
//! binary on a product made of files: the report file of each end
//! (`<state>/reports/N.json`, committed, rolled back, paused), `hoist
//! report` (made from the journal, so an old run's too), the Prometheus
//! textfile checked by `promtool check metrics` (Debian's `prometheus`
//! package, in scripts/apt-packages.txt: the test fails without it), and
//! the run log's lines stamped with the time.

mod common;
use common::{run_hoist, text};

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

struct Product {
    dir: PathBuf,
}

impl Product {
    fn new(name: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("metrics")).unwrap();
        std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("recipe.toml"),
            format!(
                r#"[product]
name = "app"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[checks]]
id = "dir-there"
severity = "inhibitor"
message = "the product's directory is there"
test = {{ command = ["test", "-d", "{d}"] }}

[[steps]]
id = "mark"
phase = "pre"
exec = {{ shell = "touch {d}/marked" }}
undo = {{ exec = {{ shell = "rm -f {d}/marked" }} }}

[[steps]]
id = "switch"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION" }} }}
"#
            ),
        )
        .unwrap();
        Product { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn metrics(&self) -> PathBuf {
        self.dir.join("metrics")
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let metrics = self.metrics();
        let mut env = env.to_vec();
        env.push(("HOIST_METRICS_DIR", metrics.to_str().unwrap()));
        run_hoist(&self.state(), args, &env)
    }

    fn upgrade(&self, env: &[(&str, &str)]) -> Output {
        let recipe = self.dir.join("recipe.toml");
        self.hoist(&["upgrade", "--yes", "-r", recipe.to_str().unwrap()], env)
    }

    fn report_file(&self, run: i64) -> Value {
        let p = self.state().join(format!("reports/{run}.json"));
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_slice(&bytes).unwrap()
    }

    fn prom(&self) -> String {
        std::fs::read_to_string(self.metrics().join("hoist.prom")).unwrap()
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn step<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {report}"))
}

/// `promtool check metrics` on `file`: it must find nothing wrong. Without
/// promtool the test fails, naming the package to install.
fn promtool_accepts(file: &Path) {
    let body = std::fs::read(file).unwrap();
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool cannot be run ({e}): install Debian's `prometheus` package \
             (listed in scripts/apt-packages.txt) to check the metrics file"
        ),
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "promtool check metrics {}: {}\n{}",
        file.display(),
        text(&o),
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn a_committed_run_leaves_its_report_and_metrics() {
    let p = Product::new("commit");
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = p.report_file(1);
    assert_eq!(r["schema"], 1);
    assert_eq!(r["run"], 1);
    assert_eq!(r["state"], "committed");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some("1.0"), Some("2.0"))
    );
    assert!(r["finished_at"].is_string(), "{r}");
    assert_eq!(r["preflight"][0]["id"], "dir-there");
    assert_eq!(r["preflight"][0]["status"], "PASS");
    for key in ["mark", "switch"] {
        let s = step(&r, key);
        assert_eq!(s["state"], "done", "{s}");
        assert!(s["seconds"].as_f64().is_some(), "{s}");
    }
    assert_eq!(step(&r, "switch")["phase"], "install");
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["pre", "install"]);
    assert_eq!(r["left"]["in_place"], serde_json::json!([]));

    // `hoist report` is the same document, made from the journal.
    let o = p.hoist(&["report", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut file = r.clone();
    shown["written_at"] = Value::Null;
    file["written_at"] = Value::Null;
    assert_eq!(shown, file);
    let o = p.hoist(&["report"], &[]);
    let human = String::from_utf8_lossy(&o.stdout);
    assert!(
        human.starts_with("run 1: app 1.0 -> 2.0: committed\n"),
        "{human}"
    );
    assert!(human.contains("PASS"), "{human}");
    assert!(human.contains("install    done"), "{human}");
    assert!(human.contains("left: nothing"), "{human}");

    let prom = p.prom();
    assert!(
        prom.contains("hoist_last_run_state{state=\"committed\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hoist_last_run_steps{state=\"done\"} 2\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hoist_product_info{product=\"app\",version=\"2.0\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hoist_last_run_phase_duration_seconds{phase=\"install\"} "),
        "{prom}"
    );
    promtool_accepts(&p.metrics().join("hoist.prom"));

    // Every line hoist itself writes in the run log carries the time.
    let log = std::fs::read_to_string(p.state().join("runs/1.log")).unwrap();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(" hoist: ")).collect();
    assert!(!ours.is_empty(), "{log}");
    for l in ours {
        let (at, _) = l.split_once(" hoist: ").unwrap();
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "not an RFC 3339 time: {l}"
        );
    }
}

#[test]
fn a_rolled_back_run_and_an_old_one_have_theirs() {
    let p = Product::new("rollback");
    let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", "switch")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = p.report_file(1);
    assert_eq!(r["state"], "rolled-back");
    assert_eq!(step(&r, "mark")["state"], "undone");
    // The failed step is undone too (it may have half-changed the host);
    // how each ran going forward is kept beside its undo.
    assert_eq!(step(&r, "switch")["state"], "undone");
    assert_eq!(step(&r, "switch")["outcome"], "failed");
    assert_eq!(step(&r, "switch")["undo"]["state"], "undone");
    assert_eq!(step(&r, "mark")["outcome"], "done");
    assert!(step(&r, "mark")["seconds"].as_f64().is_some(), "{r}");
    assert!(
        step(&r, "mark")["undo"]["seconds"].as_f64().is_some(),
        "{r}"
    );
    assert!(
        step(&r, "switch")["error"]
            .as_str()
            .is_some_and(|e| e.contains("HOIST_TEST_FAIL_AT")),
        "{r}"
    );
    let prom = p.prom();
    assert!(
        prom.contains("hoist_last_run_state{state=\"rolled-back\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hoist_last_run_steps{state=\"undone\"} 2\n"),
        "{prom}"
    );
    assert!(
        prom.contains("hoist_product_info{product=\"app\",version=\"1.0\"} 1\n"),
        "{prom}"
    );
    promtool_accepts(&p.metrics().join("hoist.prom"));

    // Run 2 commits; run 1's report is made again from the journal.
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::remove_file(p.state().join("reports/1.json")).unwrap();
    let o = p.hoist(&["report", "1", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["state"], "rolled-back");
    assert_eq!(again["steps"], r["steps"]);
    assert_eq!(p.report_file(2)["state"], "committed");
    let o = p.hoist(&["report", "9"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no run 9 (its runs: 1, 2)"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_paused_run_says_what_is_in_place_and_its_resume_rewrites_it() {
    let p = Product::new("pause");
    let o = p.upgrade(&[("HOIST_TEST_SIGNAL_AT", "mark")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = p.report_file(1);
    assert_eq!(r["state"], "paused");
    assert!(r["finished_at"].is_null(), "{r}");
    let in_place = r["left"]["in_place"].as_array().unwrap();
    assert!(
        in_place
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("mark: ")),
        "{r}"
    );
    assert!(
        p.prom()
            .contains("hoist_last_run_state{state=\"paused\"} 1\n")
    );
    promtool_accepts(&p.metrics().join("hoist.prom"));
    let o = p.hoist(&["resume"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(p.report_file(1)["state"], "committed");
    assert!(
        p.prom()
            .contains("hoist_last_run_state{state=\"committed\"} 1\n")
    );
}

#[test]
fn no_metrics_directory_no_file() {
    let p = Product::new("nodir");
    let absent = p.dir.join("no-such-dir");
    let recipe = p.dir.join("recipe.toml");
    let o = run_hoist(
        &p.state(),
        &["upgrade", "--yes", "-r", recipe.to_str().unwrap()],
        &[("HOIST_METRICS_DIR", absent.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!absent.exists(), "the directory is never made");
    assert!(o.stderr.is_empty(), "{}", text(&o));
    assert_eq!(p.report_file(1)["state"], "committed");
}

/// The controller's file, as `fleet::drive` writes it at a rollout's end.
#[test]
fn the_fleet_file_passes_promtool() {
    use hoist::output::metrics::{Rollout, fleet};
    let text = fleet(&Rollout {
        id: 3,
        product: "xivo",
        target: "2.0",
        state: "failed",
        states: &["done", "paused", "stopped", "failed", "crashed"],
        hosts: vec!["done", "done", "failed", "pending"],
        host_states: &["pending", "running", "done", "failed", "waiting"],
        seconds: 12.5,
    });
    assert!(
        text.contains("hoist_fleet_hosts{state=\"done\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("hoist_fleet_last_rollout_state{state=\"failed\"} 1\n"),
        "{text}"
    );
    let p = Product::new("fleet");
    let file = p.metrics().join("hoist_fleet.prom");
    std::fs::write(&file, text).unwrap();
    promtool_accepts(&file);
}
