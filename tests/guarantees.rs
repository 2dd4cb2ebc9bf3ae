//! What hoist says is true under faults: every run state has a way out,
//! a rollback says "as it was" only when it is, a signal pauses a wait at
//! once, a run is committed only when the product reports its target, and
//! a command's time bound includes what it left behind.
//!
//! Real processes through the binary, on a product made of files.

mod common;
use common::{hoist_in, killed, text};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Product {
    dir: PathBuf,
}

impl Product {
    /// A product at 1.0 whose recipe is the header plus `steps` (`{d}` is
    /// the product's directory).
    fn new(name: &str, steps: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-guar-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        let p = Product { dir };
        p.write("VERSION", "1.0\n");
        p.write("data", "row 1\n");
        p.set_steps(steps);
        p
    }

    fn set_steps(&self, steps: &str) {
        let d = self.dir.display().to_string();
        self.write(
            "recipe.toml",
            &format!(
                r#"[product]
name = "app"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

{}"#,
                steps.replace("{d}", &d)
            ),
        );
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|_| "<absent>".into())
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = hoist_in(&self.path("state"));
        for a in args {
            c.arg(a);
        }
        if matches!(args.first(), Some(&"upgrade")) {
            c.arg("-r").arg(self.path("recipe.toml")).arg("--yes");
        }
        c.envs(env.iter().copied());
        c
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args, env).output().unwrap()
    }

    fn state(&self) -> String {
        let o = self.hoist(&["--json", "status"], &[]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&o)));
        v["run"]["state"].as_str().unwrap_or("none").to_string()
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Install 2.0 (undone exactly), then a verify step.
const BASIC: &str = r#"
[[steps]]
id = "check-space"
phase = "prepare"
exec = { shell = "test -d {d}", read_only = true }

[[steps]]
id = "install"
phase = "install"
exec = { shell = "echo 2.0 > {d}/VERSION" }
undo = { exec = { shell = "echo 1.0 > {d}/VERSION" } }

[[steps]]
id = "migrate"
phase = "migrate"
exec = { shell = "grep -q migrated {d}/data || echo migrated >> {d}/data" }
undo = { exec = { shell = "echo 'row 1' > {d}/data" } }

[[steps]]
id = "healthy"
phase = "verify"
wait = { until = { command = ["test", "-e", "{d}/VERSION"] }, timeout = "10s", interval = "1s" }
"#;

fn original(p: &Product) {
    assert_eq!(p.read("VERSION"), "1.0\n");
    assert_eq!(p.read("data"), "row 1\n");
}

fn upgraded(p: &Product) {
    assert_eq!(p.read("VERSION"), "2.0\n");
    assert_eq!(p.read("data"), "row 1\nmigrated\n");
}

#[test]
fn a_failed_hooks_step_without_undo_is_listed_and_the_run_is_not_called_rolled_back() {
    let p = Product::new(
        "hooks",
        &format!(
            "{BASIC}
[[steps]]
id = \"post-hooks\"
phase = \"post\"
hooks = {{ dir = \"hooks\" }}
"
        ),
    );
    p.write(
        "hooks/10-notify",
        &format!(
            "#!/bin/sh\necho notified >> {}/notified\nexit 1\n",
            p.dir.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.path("hooks/10-notify"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = p.hoist(&["upgrade"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("post-hooks"), "{out}");
    assert!(!out.contains("is as it was"), "{out}");
    assert!(out.contains("NOT as it was"), "{out}");
    assert_eq!(p.state(), "partly-rolled-back");
    // What could be undone was.
    original(&p);
    let s = text(&p.hoist(&["status"], &[]));
    assert!(
        s.contains("post-hooks") && s.contains("NOT as it was"),
        "{s}"
    );
}

#[test]
fn a_run_killed_before_its_first_step_is_rolled_back_and_resumed() {
    for way in ["rollback", "resume"] {
        let p = Product::new(&format!("planned-{way}"), BASIC);
        let o = p.hoist(&["upgrade"], &[("HOIST_TEST_CRASH_AT", "run:created")]);
        assert!(killed(&o), "{}", text(&o));
        assert_eq!(p.state(), "planned");
        let o = p.hoist(&[way], &[]);
        assert!(o.status.success(), "{way}: {}", text(&o));
        if way == "rollback" {
            assert_eq!(p.state(), "rolled-back");
            original(&p);
        } else {
            assert_eq!(p.state(), "committed");
            upgraded(&p);
        }
    }
}

/// Puts a fresh product's run in `state`, as a fault would.
fn reach(p: &Product, state: &str) {
    let crash = |at: &str| {
        let o = p.hoist(&["upgrade"], &[("HOIST_TEST_CRASH_AT", at)]);
        assert!(killed(&o), "{state}: {}", text(&o));
    };
    match state {
        "planned" => crash("run:created"),
        "preparing" => crash("check-space:before"),
        "applying" => crash("migrate:before"),
        "verifying" => crash("healthy:before"),
        "paused" => {
            let o = p.hoist(&["upgrade"], &[("HOIST_TEST_SIGNAL_AT", "migrate")]);
            assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        }
        "failed" => {
            let o = p.hoist(
                &["upgrade", "--no-rollback"],
                &[("HOIST_TEST_FAIL_AT", "healthy")],
            );
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        }
        "rolling-back" => {
            let o = p.hoist(
                &["upgrade"],
                &[
                    ("HOIST_TEST_FAIL_AT", "healthy"),
                    ("HOIST_TEST_CRASH_AT", "install:undo"),
                ],
            );
            assert!(killed(&o), "{}", text(&o));
        }
        "rollback-failed" => {
            // The undo of `install` cannot work until the file it needs
            // is there again.
            p.set_steps(&BASIC.replace(
                "echo 1.0 > {d}/VERSION",
                "cat {d}/saved-version > {d}/VERSION",
            ));
            let o = p.hoist(&["upgrade"], &[("HOIST_TEST_FAIL_AT", "healthy")]);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            p.write("saved-version", "1.0\n");
        }
        other => panic!("no way to reach {other}"),
    }
    assert_eq!(p.state(), state, "reaching {state}");
}

#[test]
fn every_unfinished_run_state_has_a_way_out() {
    let states = [
        "planned",
        "preparing",
        "applying",
        "verifying",
        "paused",
        "failed",
        "rolling-back",
        "rollback-failed",
    ];
    std::thread::scope(|scope| {
        for state in states {
            scope.spawn(move || {
                // Back: `hoist rollback`, from every one of them.
                let p = Product::new(&format!("out-back-{state}"), BASIC);
                reach(&p, state);
                let o = p.hoist(&["rollback"], &[]);
                assert!(o.status.success(), "rollback from {state}: {}", text(&o));
                assert_eq!(p.state(), "rolled-back", "rollback from {state}");
                original(&p);
                // Forward: `hoist resume`, from those not rolling back.
                if !state.starts_with("roll") {
                    let p = Product::new(&format!("out-fwd-{state}"), BASIC);
                    reach(&p, state);
                    let o = p.hoist(&["resume"], &[]);
                    assert!(o.status.success(), "resume from {state}: {}", text(&o));
                    assert_eq!(p.state(), "committed", "resume from {state}");
                    upgraded(&p);
                }
            });
        }
    });
}

#[test]
fn a_failed_undo_is_retried_with_the_recipe_fixed_since() {
    let p = Product::new("fixed-undo", BASIC);
    let broken = BASIC.replace("echo 1.0 > {d}/VERSION", "exit 7");
    p.set_steps(&broken);
    let o = p.hoist(&["upgrade"], &[("HOIST_TEST_FAIL_AT", "healthy")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(p.state(), "rollback-failed");
    // The same broken undo again: still failed, not wedged differently.
    let o = p.hoist(&["rollback"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Fixed in the recipe: the rollback uses it, and says so.
    p.set_steps(BASIC);
    let o = p.hoist(&["rollback"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("undo changed") && out.contains("install"),
        "{out}"
    );
    assert_eq!(p.state(), "rolled-back");
    original(&p);
}

#[test]
fn an_undo_that_cannot_work_is_skipped_with_a_reason_and_said_so() {
    let p = Product::new(
        "skip-undo",
        &BASIC.replace("echo 1.0 > {d}/VERSION", "exit 7"),
    );
    let o = p.hoist(&["upgrade"], &[("HOIST_TEST_FAIL_AT", "healthy")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(p.state(), "rollback-failed");
    let o = p.hoist(&["rollback", "--skip", "install"], &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--skip without --reason: {}",
        text(&o)
    );
    let o = p.hoist(&["rollback", "--skip", "nosuch", "--reason", "x"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = p.hoist(
        &[
            "rollback",
            "--skip",
            "install",
            "--reason",
            "VERSION put back by hand",
        ],
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("VERSION put back by hand"), "{out}");
    assert_eq!(p.state(), "partly-rolled-back");
    // The other steps were undone; the skipped one was left as it was.
    assert_eq!(p.read("data"), "row 1\n");
    assert_eq!(p.read("VERSION"), "2.0\n");
    let s = text(&p.hoist(&["status"], &[]));
    assert!(s.contains("VERSION put back by hand"), "{s}");
}

#[test]
fn a_signal_during_a_wait_pauses_the_run_at_once() {
    for sig in ["TERM", "INT", "HUP"] {
        let p = Product::new(
            &format!("wait-{sig}"),
            &BASIC.replace(
                "until = { command = [\"test\", \"-e\", \"{d}/VERSION\"] }, timeout = \"10s\"",
                "until = { command = [\"test\", \"-e\", \"{d}/ready\"] }, timeout = \"10m\"",
            ),
        );
        // Until the wait has started.
        let mut child = upgrade_until(&p, "state/runs/1.log", "healthy");
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        signal(&child, sig);
        let status = wait_bounded(&mut child, Duration::from_secs(30));
        assert_eq!(status, Some(3), "SIG{sig}");
        // At once, not at the wait's 10 minutes: well under them.
        assert!(sent.elapsed() < Duration::from_secs(20), "SIG{sig}");
        assert_eq!(p.state(), "paused", "SIG{sig}");
        p.write("ready", "");
        let o = p.hoist(&["resume"], &[]);
        assert!(o.status.success(), "SIG{sig}: {}", text(&o));
        upgraded(&p);
    }
}

/// `hoist upgrade` started, once `file` of the product holds `needle`
/// (bounded: 30 s).
fn upgrade_until(p: &Product, file: &str, needle: &str) -> std::process::Child {
    let child = p
        .cmd(&["upgrade"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while !p.read(file).contains(needle) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `kill -SIG` of `child` alone.
fn signal(child: &std::process::Child, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_run_whose_product_does_not_reach_the_target_is_not_committed() {
    // The install step "succeeds" but writes the wrong version.
    let p = Product::new("wrong-version", &BASIC.replace("echo 2.0 >", "echo 1.9 >"));
    let o = p.hoist(&["upgrade"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("reports version 1.9") && out.contains("2.0"),
        "{out}"
    );
    assert_eq!(p.state(), "rolled-back");
    original(&p);
}

#[test]
fn a_step_that_leaves_a_background_child_does_not_outlive_it() {
    // The step returns at once; what it left behind is ended with it,
    // so its late write never lands.
    let p = Product::new(
        "background",
        &BASIC.replace(
            "echo 2.0 > {d}/VERSION\"",
            "(sleep 2; echo late >> {d}/data) & echo 2.0 > {d}/VERSION\"",
        ),
    );
    let o = p.hoist(&["upgrade"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::thread::sleep(Duration::from_secs(3));
    upgraded(&p);
}

#[test]
fn processes_a_killed_hoist_left_end_before_the_rollback_acts() {
    let p = Product::new(
        "orphan",
        &BASIC.replace(
            "echo 2.0 > {d}/VERSION\"",
            "echo 2.0 > {d}/VERSION; setsid sh -c 'sleep 3; echo 2.0-late > {d}/VERSION' & sleep 30\"",
        ),
    );
    let mut child = upgrade_until(&p, "VERSION", "2.0\n");
    // kill -9 of hoist alone, as the OOM killer would.
    child.kill().unwrap();
    child.wait().unwrap();
    let o = p.hoist(&["rollback"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("a previous hoist left processes running"),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(4));
    original(&p);
    let left = Command::new("pgrep")
        .args(["-f", &format!("{}/VERSION", p.dir.display())])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "{}", text(&left));
}

#[test]
fn a_second_signal_ends_a_step_that_would_not_end_and_the_run_pauses() {
    let p = Product::new(
        "second-signal",
        &BASIC.replace(
            "grep -q migrated {d}/data || echo migrated >> {d}/data",
            "[ -e {d}/go ] || sleep 600; grep -q migrated {d}/data || echo migrated >> {d}/data",
        ),
    );
    let mut child = upgrade_until(&p, "state/runs/1.log", "step migrate");
    std::thread::sleep(Duration::from_millis(300));
    // The first leaves the command to finish: hoist is still there.
    signal(&child, "INT");
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "gone after one SIGINT");
    signal(&child, "INT");
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert_eq!(status, Some(3));
    assert_eq!(p.state(), "paused");
    let left = Command::new("pgrep")
        .args(["-f", &format!("{}/go", p.dir.display())])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the step's processes outlived it");
    p.write("go", "");
    let o = p.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    upgraded(&p);
}

#[test]
fn a_check_that_leaves_a_background_child_ends_within_its_bound() {
    let p = Product::new("check-bg", BASIC);
    let recipe = p.read("recipe.toml");
    p.write(
        "recipe.toml",
        &format!(
            "{recipe}
[[checks]]
id = \"quick\"
severity = \"inhibitor\"
message = \"a check that forks\"
test = {{ shell = \"sleep 60 & true\" }}
"
        ),
    );
    let started = Instant::now();
    let o = p
        .cmd(&["check", "-r"], &[])
        .arg(p.path("recipe.toml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_recipe_requires_free_space_where_its_steps_write() {
    let p = Product::new("free-space", BASIC);
    let recipe = p.read("recipe.toml");
    let with = |size: &str| {
        p.write(
            "recipe.toml",
            &format!(
                "{recipe}
[[checks]]
id = \"room-for-the-release\"
severity = \"inhibitor\"
message = \"the release needs room\"
test = {{ free_space = {{ path = \"{}/releases/new\", at_least = \"{size}\" }} }}
",
                p.dir.display()
            ),
        );
        p.cmd(&["check", "-r"], &[])
            .arg(p.path("recipe.toml"))
            .output()
            .unwrap()
    };
    let o = with("1 KiB");
    assert!(o.status.success(), "{}", text(&o));
    let o = with("1000 EiB");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("needed"), "{out}");
    // The upgrade refuses before it changes anything.
    let o = p.hoist(&["upgrade"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    original(&p);
    let o = with("lots");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("not a size"), "{out}");
}
