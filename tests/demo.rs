//! `hoist demo` and the demo product's own operations (`hoist demo-internal`).
//!
//! Every server a test starts is stopped when the test ends, pass or fail
//! (`Demo`'s drop), and every wait is bounded.

mod common;
use common::{clean_env, text, with_state};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hoist::demo::layout::{Config, Layout};
use hoist::demo::server;

const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

/// A demo directory of its own; its server stopped and the directory removed
/// on drop.
struct Demo {
    dir: PathBuf,
}

impl Demo {
    /// A fresh directory, nothing in it.
    fn empty(name: &str) -> Demo {
        let dir =
            std::env::temp_dir().join(format!("hoist-demo-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Demo {
            dir: fs::canonicalize(&dir).unwrap(),
        }
    }

    /// v1 set up, not started.
    fn set_up(name: &str) -> Demo {
        let d = Demo::empty(name);
        d.ok(&["setup"]);
        d
    }

    fn layout(&self) -> Layout {
        Layout::new(&self.dir)
    }

    fn config(&self) -> Config {
        Config::load(&self.layout()).unwrap()
    }

    fn data(&self) -> PathBuf {
        self.config().data
    }

    /// `hoist demo-internal OP --dir D ARGS...`
    fn op(&self, args: &[&str]) -> Output {
        let (op, rest) = args.split_first().unwrap();
        Command::new(HOIST)
            .arg("demo-internal")
            .arg(op)
            .arg("--dir")
            .arg(&self.dir)
            .args(rest)
            .output()
            .unwrap()
    }

    /// Runs an op that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.op(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn code(&self, args: &[&str]) -> i32 {
        self.op(args).status.code().unwrap_or(-1)
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = server::get(self.config().port, path).unwrap();
        (code, serde_json::from_str(&body).unwrap())
    }

    fn served_version(&self) -> String {
        self.get("/health").1["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn rows(&self) -> Vec<serde_json::Value> {
        server::read_rows(&self.data()).unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.op(&["stop"]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_of(d: &Demo) -> u32 {
    fs::read_to_string(d.layout().pid_file())
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_recipe_lints_clean_and_plans_from_1_to_2() {
    let d = Demo::set_up("lint");
    let recipe = d.layout().recipe();
    let out = Command::new(HOIST)
        .arg("lint")
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(HOIST)
        .args(["plan", "--json", "-r"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("\"1.0\"") && text.contains("\"2.0\""),
        "{text}"
    );
    for id in [
        "fetch", "unpack", "stop", "backup", "switch", "migrate", "start", "health", "hooks",
    ] {
        assert!(text.contains(&format!("\"{id}\"")), "no step {id}: {text}");
    }
    // Setting up twice over the same directory is refused.
    assert_eq!(d.code(&["setup"]), 1);
}

#[test]
fn migrate_and_unmigrate_are_idempotent_and_keep_the_rows() {
    let d = Demo::set_up("migrate");
    let original = d.rows();
    assert_eq!(original.len(), 5);
    assert_eq!(d.ok(&["schema"]).trim(), "1");
    assert_eq!(d.code(&["schema", "--is", "2"]), 1);

    d.ok(&["migrate"]);
    assert_eq!(d.code(&["schema", "--is", "2"]), 0);
    let migrated = fs::read(d.data()).unwrap();
    let rows = d.rows();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1]["slug"], "olive-oil");
    // A second run changes nothing, not even a byte.
    assert!(d.ok(&["migrate"]).contains("nothing to do"));
    assert_eq!(fs::read(d.data()).unwrap(), migrated);

    d.ok(&["unmigrate"]);
    let back = fs::read(d.data()).unwrap();
    assert!(d.ok(&["unmigrate"]).contains("nothing to do"));
    assert_eq!(fs::read(d.data()).unwrap(), back);
    assert_eq!(d.rows(), original);
    assert_eq!(d.ok(&["schema"]).trim(), "1");
}

#[test]
fn backup_and_restore_are_byte_exact_and_repeatable() {
    let d = Demo::set_up("backup");
    let original = fs::read(d.data()).unwrap();
    assert_eq!(d.code(&["restore"]), 1, "no backup yet: nothing to restore");
    d.ok(&["backup"]);
    assert_eq!(fs::read(d.layout().backup()).unwrap(), original);
    d.ok(&["migrate"]);
    assert_ne!(fs::read(d.data()).unwrap(), original);
    // A journal a killed migration left behind must not be applied to the
    // restored file.
    let journal = PathBuf::from(format!("{}-journal", d.data().display()));
    fs::write(&journal, b"left by a killed writer").unwrap();
    d.ok(&["restore"]);
    assert!(!journal.exists());
    assert_eq!(fs::read(d.data()).unwrap(), original);
    d.ok(&["restore"]);
    assert_eq!(fs::read(d.data()).unwrap(), original);
    d.ok(&["check-data"]);
    no_temp_files(&d.dir);
}

#[test]
fn switch_flips_the_symlink_atomically_and_idempotently() {
    let d = Demo::set_up("switch");
    let current = d.layout().current();
    assert_eq!(fs::read_link(&current).unwrap(), Path::new("releases/1.0"));
    assert_eq!(d.code(&["switch", "2.0"]), 1, "2.0 is not unpacked yet");
    assert_eq!(d.code(&["is-current", "2.0"]), 1);

    let artifact = d.layout().artifact();
    let artifact = artifact.to_str().unwrap();
    d.ok(&["unpack", artifact]);
    assert!(d.ok(&["unpack", artifact]).contains("already"));
    d.ok(&["switch", "2.0"]);
    assert_eq!(fs::read_link(&current).unwrap(), Path::new("releases/2.0"));
    assert_eq!(
        fs::read_to_string(current.join("VERSION")).unwrap(),
        "2.0\n"
    );
    assert!(d.ok(&["switch", "2.0"]).contains("already"));
    assert_eq!(d.code(&["is-current", "2.0"]), 0);
    assert_eq!(d.code(&["discard", "2.0"]), 1, "the current release stays");

    d.ok(&["switch", "1.0"]);
    d.ok(&["discard", "2.0"]);
    assert!(!d.layout().release("2.0").exists());
    assert!(d.ok(&["discard", "2.0"]).contains("nothing to do"));
    no_temp_files(&d.dir);
}

#[test]
fn a_damaged_artifact_is_not_unpacked() {
    let d = Demo::set_up("damaged");
    let artifact = d.layout().artifact();
    let mut bytes = fs::read(&artifact).unwrap();
    bytes[10] ^= 1;
    let damaged = d.dir.join("damaged.tar");
    fs::write(&damaged, bytes).unwrap();
    assert_eq!(d.code(&["unpack", damaged.to_str().unwrap()]), 1);
    assert!(!d.layout().release("2.0").exists());
}

#[test]
fn the_server_answers_starts_once_and_really_stops() {
    let d = Demo::set_up("server");
    assert_eq!(d.code(&["status"]), 3);
    d.ok(&["start"]);
    let pid = pid_of(&d);
    assert_eq!(d.code(&["status"]), 0);
    let (code, health) = d.get("/health");
    assert_eq!(code, 200);
    assert_eq!(health["version"], "1.0");
    assert_eq!(health["schema"], 1);
    let (code, rows) = d.get("/rows");
    assert_eq!(code, 200);
    assert_eq!(rows["rows"].as_array().unwrap().len(), 5);
    assert_eq!(d.get("/nothing").0, 404);

    assert!(d.ok(&["start"]).contains("already running"));
    assert_eq!(pid_of(&d), pid);

    d.ok(&["stop"]);
    assert!(!alive(pid), "stop returns once the server is gone");
    assert_eq!(d.code(&["status"]), 3);
    assert!(server::get(d.config().port, "/health").is_err());
    assert!(d.ok(&["stop"]).contains("not running"));
}

#[test]
fn release_2_on_schema_1_is_unhealthy() {
    let d = Demo::set_up("mismatch");
    let artifact = d.layout().artifact();
    d.ok(&["unpack", artifact.to_str().unwrap()]);
    d.ok(&["switch", "2.0"]);
    d.ok(&["start"]);
    let (code, health) = d.get("/health");
    assert_eq!(code, 503);
    assert_eq!(health["version"], "2.0");
    d.ok(&["stop"]);
    d.ok(&["migrate"]);
    d.ok(&["start"]);
    assert_eq!(d.get("/health").0, 200);
}

#[test]
fn the_server_exits_when_its_pid_file_goes() {
    let d = Demo::set_up("pidfile");
    d.ok(&["start"]);
    let pid = pid_of(&d);
    fs::remove_file(d.layout().pid_file()).unwrap();
    wait_until("the server exits", Duration::from_secs(5), || !alive(pid));
}

fn no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp") && !name.ends_with(".partial"),
            "{name} left behind"
        );
        if entry.file_type().unwrap().is_dir() {
            no_temp_files(&entry.path());
        }
    }
}

// ---------------------------------------------------------------------------
// The whole demo, through `hoist upgrade`.

/// `hoist demo --dir D [ARGS]` with `env`, bounded.
fn demo_env(d: &Demo, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(HOIST);
    clean_env(&mut cmd)
        .arg("demo")
        .arg("--dir")
        .arg(&d.dir)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    bounded(cmd, "hoist demo")
}

fn demo(d: &Demo, args: &[&str]) -> Output {
    demo_env(d, args, &[])
}

/// `hoist --state-dir D/state ARGS`, bounded.
fn hoist_state(d: &Demo, args: &[&str]) -> Output {
    let mut cmd = Command::new(HOIST);
    with_state(&mut cmd, &d.layout().state()).args(args);
    bounded(cmd, "hoist")
}

fn bounded(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The pipes are drained by threads so a chatty child never blocks.
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    eprintln!("{}", text(&out));
    out
}

#[test]
fn demo_upgrades_to_v2_keeping_the_rows() {
    let d = Demo::empty("e2e-ok");
    let out = demo(&d, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(d.served_version(), "2.0");
    assert_eq!(d.get("/health").0, 200);
    let rows = d.rows();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["name"], "Flour");
    assert_eq!(rows[0]["slug"], "flour");
    let hook = fs::read_to_string(d.dir.join("run/last-upgrade")).unwrap();
    assert!(hook.starts_with("from 1.0 to 2.0"), "{hook}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("version 2.0"), "{stdout}");
    assert!(stdout.contains("5 rows (5 rows before)"), "{stdout}");
}

#[test]
fn demo_json_gives_the_runs_events_and_its_report_on_stderr() {
    let d = Demo::empty("e2e-json");
    let mut cmd = Command::new(HOIST);
    clean_env(&mut cmd)
        .args(["--json", "demo", "--dir"])
        .arg(&d.dir);
    let out = bounded(cmd, "hoist --json demo");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events.iter().all(|e| e["schema"] == 1), "{stdout}");
    assert_eq!(events[0]["event"], "run-started", "{stdout}");
    let last = events.last().unwrap();
    assert_eq!(
        (&last["event"], &last["state"]),
        (&"run-finished".into(), &"committed".into())
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("version 2.0"),
        "the demo's report is on stderr"
    );
}

#[test]
fn demo_fail_at_migrate_rolls_back_to_v1_with_the_original_data() {
    let d = Demo::set_up("e2e-fail");
    d.ok(&["start"]);
    let original_data = fs::read(d.data()).unwrap();
    let original_config = fs::read(d.layout().config()).unwrap();
    let out = demo(&d, &["--fail-at", "migrate"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(d.served_version(), "1.0");
    assert_eq!(d.get("/health").0, 200);
    assert_eq!(fs::read(d.data()).unwrap(), original_data);
    assert_eq!(fs::read(d.layout().config()).unwrap(), original_config);
    assert_eq!(
        fs::read_link(d.layout().current()).unwrap(),
        Path::new("releases/1.0")
    );
    assert!(!d.layout().release("2.0").exists());
}

#[test]
fn fail_at_an_unknown_step_is_refused_before_anything_runs() {
    let d = Demo::empty("e2e-unknown");
    let out = demo(&d, &["--fail-at", "nosuchstep"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrate"));
}

#[test]
fn demo_refuses_a_directory_that_is_not_a_demo() {
    let d = Demo::empty("e2e-foreign");
    fs::write(d.dir.join("precious"), b"x").unwrap();
    let out = demo(&d, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read(d.dir.join("precious")).unwrap(), b"x");
}

/// What the admin cares about, comparable across demo directories: what is
/// served, the rows as served, the release `current` points to, the releases
/// on disk. (The config holds the directory's own paths and port, so each
/// test compares it with its own bytes from before.)
#[derive(Debug, PartialEq)]
struct EndState {
    health: u16,
    version: String,
    rows: serde_json::Value,
    current: PathBuf,
    releases: Vec<String>,
}

fn end_state(d: &Demo) -> EndState {
    let (health, h) = d.get("/health");
    let (_, rows) = d.get("/rows");
    let mut releases: Vec<String> = fs::read_dir(d.layout().releases())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    EndState {
        health,
        version: h["version"].as_str().unwrap_or("").to_string(),
        rows: rows["rows"].clone(),
        current: fs::read_link(d.layout().current()).unwrap(),
        releases,
    }
}

const STEPS: [&str; 9] = [
    "fetch", "unpack", "stop", "backup", "switch", "migrate", "start", "health", "hooks",
];

fn killed(o: &Output) -> bool {
    // The demo reports the child's death by SIGKILL as 128 + 9.
    o.status.code() == Some(137)
}

#[test]
fn demo_killed_anywhere_resumes_to_the_same_end() {
    let reference = {
        let d = Demo::empty("kill-ref");
        assert_eq!(demo(&d, &[]).status.code(), Some(0));
        end_state(&d)
    };
    assert_eq!(reference.version, "2.0");
    // One thread per step: each case has its own directory and port.
    std::thread::scope(|scope| {
        for step in STEPS {
            let reference = &reference;
            scope.spawn(move || {
                for point in ["before", "after"] {
                    let d = Demo::set_up(&format!("kill-{step}-{point}"));
                    let config = fs::read(d.layout().config()).unwrap();
                    let crash = format!("{step}:{point}");
                    let o = demo_env(&d, &[], &[("HOIST_TEST_CRASH_AT", &crash)]);
                    assert!(killed(&o), "{crash} was not killed: {}", text(&o));
                    assert!(text(&o).contains("hoist resume"), "{crash}: {}", text(&o));
                    let o = hoist_state(&d, &["resume"]);
                    assert!(o.status.success(), "{crash} resume: {}", text(&o));
                    assert_eq!(&end_state(&d), reference, "{crash}");
                    assert_eq!(fs::read(d.layout().config()).unwrap(), config, "{crash}");
                    let again = hoist_state(&d, &["resume"]);
                    assert!(again.status.success());
                    assert!(
                        text(&again).contains("nothing to resume"),
                        "{}",
                        text(&again)
                    );
                    assert_eq!(&end_state(&d), reference, "{crash}: the second resume");
                }
            });
        }
    });
}

#[test]
fn demo_sigterm_anywhere_finishes_the_step_stops_and_resumes() {
    let reference = {
        let d = Demo::empty("term-ref");
        assert_eq!(demo(&d, &[]).status.code(), Some(0));
        end_state(&d)
    };
    std::thread::scope(|scope| {
        for step in STEPS {
            let reference = &reference;
            scope.spawn(move || {
                let d = Demo::set_up(&format!("term-{step}"));
                let o = demo_env(&d, &[], &[("HOIST_TEST_SIGNAL_AT", step)]);
                if step == STEPS[STEPS.len() - 1] {
                    // Nothing is left after the last step: the run ends.
                    assert_eq!(o.status.code(), Some(0), "{step}: {}", text(&o));
                    assert_eq!(&end_state(&d), reference, "{step}");
                    return;
                }
                // A clean stop: exit 3, the step that was running is done.
                assert_eq!(o.status.code(), Some(3), "{step}: {}", text(&o));
                let st = hoist_state(&d, &["--json", "status"]);
                let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
                assert_eq!(v["run"]["state"], "paused", "{step}");
                let steps = v["run"]["steps"].as_array().unwrap();
                let this = steps.iter().find(|s| s["key"] == *step).unwrap();
                assert_eq!(
                    this["state"], "done",
                    "{step}: the running step must finish"
                );
                let o = hoist_state(&d, &["resume"]);
                assert!(o.status.success(), "{step} resume: {}", text(&o));
                assert_eq!(&end_state(&d), reference, "{step}");
            });
        }
    });
}

#[test]
fn demo_failing_anywhere_rolls_back_to_v1_exactly() {
    std::thread::scope(|scope| {
        for step in STEPS {
            scope.spawn(move || {
                let d = Demo::set_up(&format!("fail-{step}"));
                d.ok(&["start"]);
                let before = end_state(&d);
                let data = fs::read(d.data()).unwrap();
                let config = fs::read(d.layout().config()).unwrap();
                let o = demo(&d, &["--fail-at", step]);
                assert_eq!(o.status.code(), Some(1), "{step}: {}", text(&o));
                assert_eq!(end_state(&d), before, "{step}");
                assert_eq!(fs::read(d.data()).unwrap(), data, "{step}");
                assert_eq!(fs::read(d.layout().config()).unwrap(), config, "{step}");
            });
        }
    });
}

#[test]
fn demo_killed_during_the_rollback_is_put_back_by_hoist_rollback() {
    let d = Demo::set_up("kill-in-undo");
    d.ok(&["start"]);
    let before = end_state(&d);
    let data = fs::read(d.data()).unwrap();
    let o = demo_env(
        &d,
        &["--fail-at", "health"],
        &[("HOIST_TEST_CRASH_AT", "switch:undo")],
    );
    assert!(killed(&o), "{}", text(&o));
    let o = hoist_state(&d, &["rollback"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(end_state(&d), before);
    assert_eq!(fs::read(d.data()).unwrap(), data);
}
