//! The run engine, end to end through the binary, on a small product made of
//! files: a release pointer, data, a config file, a "service" (a marker file
//! a command backend creates and removes) and a post hook.
//!
//! Kill anywhere: SIGKILL at every step boundary and inside every step (the
//! documented HOIST_TEST_CRASH_AT hook), then `hoist resume` must reach the
//! same end state as an uninterrupted run, and a second resume does nothing.
//! Fail anywhere: a failure at every step (HOIST_TEST_FAIL_AT) must leave
//! the exact pre-upgrade state.

mod common;
use common::{hoist_in, killed, text};

use std::path::{Path, PathBuf};
use std::process::Output;

struct Product {
    dir: PathBuf,
}

const STEPS: [&str; 9] = [
    "fetch-release",
    "backup-data",
    "stop-app",
    "switch-release",
    "migrate-data",
    "set-config",
    "start-app",
    "app-healthy",
    "post-hooks",
];

impl Product {
    fn new(name: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        let p = Product { dir };
        p.write("VERSION", "1.0\n");
        p.write("data", "row 1\nrow 2\n");
        p.write("app.conf", "# the admin's comment\nmode = classic\n");
        p.write("running", "");
        p.write("artifact", "release 2.0 contents\n");
        use sha2::Digest;
        let sha = hex(&sha2::Sha256::digest(b"release 2.0 contents\n"));
        p.write(
            "hooks/10-report",
            &format!("#!/bin/sh\necho \"hook says hello: $HOIST_FROM_VERSION -> $HOIST_TO_VERSION\"\necho done > {}/hook-ran\n", p.path("").display()),
        );
        chmod(&p.path("hooks/10-report"), 0o755);
        let d = p.dir.display();
        p.write(
            "recipe.toml",
            &format!(
                r#"[product]
name = "app"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[services]]
name = "app"
backend = "command"
start = ["touch", "{d}/running"]
stop = ["rm", "-f", "{d}/running"]
status = ["test", "-e", "{d}/running"]

[[steps]]
id = "fetch-release"
phase = "prepare"
fetch = {{ url = "file://{d}/artifact", dest = "{d}/release-2.0", sha256 = "{sha}" }}

[[steps]]
id = "backup-data"
phase = "backup"
exec = {{ shell = "cp {d}/data {d}/data.bak && sync" }}
undo = "none"
undo_reason = "a copy aside, for migrate-data's undo"
probe = {{ command = ["cmp", "-s", "{d}/data", "{d}/data.bak"] }}

[[steps]]
id = "stop-app"
phase = "stop"
service = {{ op = "stop", units = ["app"] }}
undo = {{ service = {{ op = "start", units = ["app"] }} }}

[[steps]]
id = "switch-release"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION.new && mv {d}/VERSION.new {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION.new && mv {d}/VERSION.new {d}/VERSION" }} }}

[[steps]]
id = "migrate-data"
phase = "migrate"
exec = {{ shell = "grep -q migrated {d}/data || echo migrated >> {d}/data" }}
undo = {{ exec = {{ shell = "cp {d}/data.bak {d}/data" }} }}
probe = {{ command = ["grep", "-q", "migrated", "{d}/data"] }}

[[steps]]
id = "set-config"
phase = "configure"
exec = {{ shell = "[ -e {d}/app.conf.orig ] || cp {d}/app.conf {d}/app.conf.orig; sed 's/^mode = .*/mode = modern/' {d}/app.conf.orig > {d}/app.conf" }}
undo = {{ exec = {{ shell = "[ ! -e {d}/app.conf.orig ] || mv {d}/app.conf.orig {d}/app.conf" }} }}

[[steps]]
id = "start-app"
phase = "start"
service = {{ op = "start", units = ["app"] }}

[[steps]]
id = "app-healthy"
phase = "verify"
wait = {{ until = {{ command = ["test", "-e", "{d}/running"] }}, timeout = "5s", interval = "1s" }}

[[steps]]
id = "post-hooks"
phase = "post"
hooks = {{ dir = "hooks" }}
undo = "none"
undo_reason = "the hook only reports"
"#
            ),
        );
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = hoist_in(&self.path("state"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn upgrade(&self, env: &[(&str, &str)]) -> Output {
        let recipe = self.path("recipe.toml");
        self.hoist(&["upgrade", "--yes", "-r", recipe.to_str().unwrap()], env)
    }

    /// Starts an upgrade in the background and returns once `marker`
    /// exists (a step of the recipe creates it), within 30 s.
    fn upgrade_until(&self, marker: &str) -> std::process::Child {
        let child = hoist_in(&self.path("state"))
            .args(["upgrade", "--yes", "-r"])
            .arg(self.path("recipe.toml"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.path(marker).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{marker} never appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    /// What the admin cares about: version, data, config, whether it runs.
    fn state(&self) -> (Option<String>, Option<String>, Option<String>, bool) {
        (
            self.read("VERSION"),
            self.read("data"),
            self.read("app.conf"),
            self.path("running").exists(),
        )
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn reference_end_state() -> (Option<String>, Option<String>, Option<String>, bool) {
    let p = Product::new("reference");
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("hook-ran").as_deref(), Some("done\n"));
    p.state()
}

#[test]
fn an_uninterrupted_run_upgrades_everything() {
    let p = Product::new("plain");
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let (version, data, conf, running) = p.state();
    assert_eq!(version.as_deref(), Some("2.0\n"));
    assert_eq!(data.as_deref(), Some("row 1\nrow 2\nmigrated\n"));
    assert_eq!(
        conf.as_deref(),
        Some("# the admin's comment\nmode = modern\n")
    );
    assert!(running);
    // Hook output lands in the run log.
    let log = std::fs::read_to_string(p.path("state/runs/1.log")).unwrap();
    assert!(log.contains("hook says hello: 1.0 -> 2.0"), "{log}");
    let st = p.hoist(&["status"], &[]);
    assert!(text(&st).contains("committed"), "{}", text(&st));
}

#[test]
fn killed_anywhere_resume_reaches_the_same_end() {
    let reference = reference_end_state();
    for step in STEPS {
        for point in ["before", "after"] {
            let p = Product::new(&format!("kill-{step}-{point}"));
            let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", &format!("{step}:{point}"))]);
            assert!(killed(&o), "{step}:{point} was not killed: {}", text(&o));
            let st = text(&p.hoist(&["status"], &[]));
            assert!(st.contains("interrupted"), "{step}:{point}: {st}");
            assert!(st.contains(step), "status must name the step {step}: {st}");
            let o = p.hoist(&["resume"], &[]);
            assert!(o.status.success(), "{step}:{point} resume: {}", text(&o));
            assert_eq!(p.state(), reference, "{step}:{point}");
            let again = p.hoist(&["resume"], &[]);
            assert!(again.status.success());
            assert!(
                text(&again).contains("nothing to resume"),
                "{}",
                text(&again)
            );
            assert_eq!(
                p.state(),
                reference,
                "{step}:{point}: a second resume changed something"
            );
        }
    }
}

#[test]
fn killed_anywhere_rollback_puts_everything_back() {
    for step in ["switch-release", "migrate-data", "set-config"] {
        let p = Product::new(&format!("kill-rb-{step}"));
        let before = p.state();
        let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", &format!("{step}:after"))]);
        assert!(killed(&o));
        let o = p.hoist(&["rollback"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(p.state(), before, "{step}");
    }
    // Killed in the middle of the rollback itself: rollback again finishes.
    let p = Product::new("kill-in-undo");
    let before = p.state();
    let o = p.upgrade(&[
        ("HOIST_TEST_FAIL_AT", "app-healthy"),
        ("HOIST_TEST_CRASH_AT", "switch-release:undo"),
    ]);
    assert!(killed(&o), "{}", text(&o));
    assert!(text(&p.hoist(&["status"], &[])).contains("rolling back"));
    let o = p.hoist(&["rollback"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.state(), before);
}

#[test]
fn a_failure_anywhere_restores_the_exact_state_before() {
    for step in STEPS {
        let p = Product::new(&format!("fail-{step}"));
        let before = p.state();
        let o = p.upgrade(&[("HOIST_TEST_FAIL_AT", step)]);
        assert_eq!(o.status.code(), Some(1), "{step}: {}", text(&o));
        assert!(text(&o).contains("Rolled back"), "{step}: {}", text(&o));
        assert_eq!(p.state(), before, "{step}");
        let st = text(&p.hoist(&["status"], &[]));
        assert!(st.contains("rolled-back") && st.contains(step), "{st}");
    }
}

#[test]
fn sigterm_finishes_the_step_then_stops_cleanly() {
    let p = Product::new("sigterm");
    let recipe = p.read("recipe.toml").unwrap().replace(
        "exec = { shell = \"grep -q migrated",
        &format!(
            "exec = {{ shell = \"touch {0}/in-migrate; sleep 1; grep -q migrated",
            p.dir.display()
        ),
    );
    p.write("recipe.toml", &recipe);
    let mut child = p.upgrade_until("in-migrate");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "a clean stop exits 3");
    // The step in progress finished; nothing after it ran.
    assert!(p.read("data").unwrap().contains("migrated"));
    assert_eq!(
        p.read("app.conf").as_deref(),
        Some("# the admin's comment\nmode = classic\n")
    );
    assert!(text(&p.hoist(&["status"], &[])).contains("paused"));
    let o = p.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.state().0.as_deref(), Some("2.0\n"));
    assert_eq!(
        p.state().2.as_deref(),
        Some("# the admin's comment\nmode = modern\n")
    );
}

#[test]
fn a_second_upgrade_is_refused_while_one_runs() {
    let p = Product::new("lock");
    let recipe = p.read("recipe.toml").unwrap().replace(
        "exec = { shell = \"cp ",
        &format!(
            "exec = {{ shell = \"touch {0}/in-backup; sleep 2; cp ",
            p.dir.display()
        ),
    );
    p.write("recipe.toml", &recipe);
    let mut first = p.upgrade_until("in-backup");
    let second = p.upgrade(&[]);
    assert_eq!(second.status.code(), Some(1));
    let t = text(&second);
    assert!(t.contains("another hoist is running"), "{t}");
    assert!(t.contains(&format!("pid {}", first.id())), "{t}");
    assert!(first.wait().unwrap().success());
}

#[test]
fn an_unsafe_hook_is_refused_before_anything_runs() {
    let p = Product::new("unsafe-hook");
    chmod(&p.path("hooks/10-report"), 0o777);
    let before = p.state();
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("refused before anything ran") && t.contains("writable by everyone"),
        "{t}"
    );
    assert_eq!(p.state(), before);
    assert!(!p.path("release-2.0").exists(), "prepare must not have run");
}

#[test]
fn download_only_runs_prepare_and_nothing_else() {
    let p = Product::new("download-only");
    let before = p.state();
    let recipe = p.path("recipe.toml");
    let o = p.hoist(&["upgrade", "-d", "-r", recipe.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("download only"));
    assert_eq!(
        p.read("release-2.0").as_deref(),
        Some("release 2.0 contents\n")
    );
    assert_eq!(p.state(), before);
    assert!(text(&p.hoist(&["status"], &[])).contains("prepared"));
    // A later upgrade goes through.
    assert!(p.upgrade(&[]).status.success());
}

#[test]
fn a_tampered_artifact_is_refused_in_prepare() {
    let p = Product::new("tampered");
    let before = p.state();
    p.write("artifact", "release 2.0 contents, tampered\n");
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("sha256 is"), "{}", text(&o));
    assert_eq!(p.state(), before);
}

#[test]
fn no_rollback_stops_where_it_failed_and_resume_retries() {
    let p = Product::new("no-rollback");
    let recipe = p.path("recipe.toml");
    let o = p.hoist(
        &[
            "upgrade",
            "--yes",
            "--no-rollback",
            "-r",
            recipe.to_str().unwrap(),
        ],
        &[("HOIST_TEST_FAIL_AT", "set-config")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        p.read("VERSION").as_deref(),
        Some("2.0\n"),
        "not rolled back"
    );
    let st = text(&p.hoist(&["status"], &[]));
    assert!(
        st.contains("failed") && st.contains("set-config") && st.contains("hoist resume"),
        "{st}"
    );
    let o = p.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        p.state().2.as_deref(),
        Some("# the admin's comment\nmode = modern\n")
    );
}

#[test]
fn a_changed_recipe_is_refused_on_resume_unless_replanned() {
    let p = Product::new("replan");
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "migrate-data:before")]);
    assert!(killed(&o));
    let recipe = p.read("recipe.toml").unwrap();
    p.write(
        "recipe.toml",
        &format!("{recipe}\n[[steps]]\nid = \"tidy\"\nphase = \"cleanup\"\nexec = {{ shell = \"touch {}/tidied\" }}\n", p.dir.display()),
    );
    let o = p.hoist(&["resume"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("changed since run") && t.contains("+ tidy"),
        "{t}"
    );
    let o = p.hoist(&["resume", "--replan"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.path("tidied").exists());
    assert_eq!(p.read("VERSION").as_deref(), Some("2.0\n"));
}

#[test]
fn yes_does_not_open_a_gate_whose_check_is_false() {
    let p = Product::new("gate");
    let recipe = p.read("recipe.toml").unwrap();
    p.write(
        "recipe.toml",
        &format!(
            "{recipe}\n[[steps]]\nid = \"template-ready\"\nphase = \"pre\"\ngate = {{ message = \"Register the template\", until = {{ command = [\"test\", \"-e\", \"{}/template\"] }}, timeout = \"2s\" }}\n",
            p.dir.display()
        ),
    );
    let before = p.state();
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("template-ready"));
    assert_eq!(p.state(), before);
    p.write("template", "");
    assert!(p.upgrade(&[]).status.success());
}

#[test]
fn a_person_gate_is_opened_by_a_person_never_by_yes() {
    let p = Product::new("person-gate");
    let recipe = p.read("recipe.toml").unwrap();
    p.write("recipe.toml", &format!("{recipe}\n[[steps]]\nid = \"confirm\"\nphase = \"pre\"\ngate = {{ message = \"Tell the users\" }}\n"));
    let r = p.path("recipe.toml");
    let r = r.to_str().unwrap();
    // The plan says who must be there.
    let o = p.hoist(&["plan", "-r", r], &[]);
    let t = text(&o);
    assert!(t.contains("needs a person"), "{t}");
    assert!(
        t.contains("a person must confirm this gate (at a terminal, or in advance with --confirm ID; --yes does not): confirm"),
        "{t}"
    );
    // No terminal, no --yes: the upgrade is not even started.
    let o = p.hoist(&["upgrade", "-r", r], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("add --yes"), "{}", text(&o));
    // --yes answers the upgrade prompt, not the gate: with nobody at a
    // terminal the run pauses there, resumable.
    let before = p.state();
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(
        t.contains("confirm waits for a person: Tell the users")
            && t.contains("hoist resume --confirm confirm"),
        "{t}"
    );
    assert_eq!(p.state(), before, "nothing after the gate ran");
    let o = p.hoist(&["status"], &[]);
    let t = text(&o);
    assert!(
        t.contains("gate confirm waits for a person: Tell the users")
            && t.contains("`hoist resume --confirm confirm`"),
        "{t}"
    );
    // Still nobody confirms: it pauses again.
    let o = p.hoist(&["resume"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The admin confirms: the run goes on, and the journal says who.
    let o = p.hoist(&["resume", "--confirm", "confirm"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("VERSION").as_deref(), Some("2.0\n"));
    let log = std::fs::read_to_string(p.path("state/runs/1.log")).unwrap();
    assert!(
        log.contains("confirmed in advance with --confirm by root"),
        "{log}"
    );
    let o = p.hoist(&["--json", "status"], &[]);
    let t = text(&o);
    assert!(t.contains("gate-confirmed"), "{t}");
}

#[test]
fn a_person_gate_confirmed_in_advance_opens_at_once() {
    let p = Product::new("person-gate-ahead");
    let recipe = p.read("recipe.toml").unwrap();
    p.write("recipe.toml", &format!("{recipe}\n[[steps]]\nid = \"confirm\"\nphase = \"pre\"\ngate = {{ message = \"Tell the users\" }}\n"));
    let r = p.path("recipe.toml");
    // Another gate's confirmation does not open this one.
    let o = p.hoist(
        &[
            "upgrade",
            "--yes",
            "--confirm",
            "other",
            "-r",
            r.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = p.hoist(&["rollback"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.hoist(
        &[
            "upgrade",
            "--yes",
            "--confirm",
            "confirm",
            "-r",
            r.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("VERSION").as_deref(), Some("2.0\n"));
}

#[test]
fn a_person_gate_opens_when_a_person_answers_at_a_terminal() {
    // A terminal made by `script` (util-linux): stdin and stderr are a pty.
    let p = Product::new("person-gate-tty");
    let recipe = p.read("recipe.toml").unwrap();
    p.write("recipe.toml", &format!("{recipe}\n[[steps]]\nid = \"confirm\"\nphase = \"pre\"\ngate = {{ message = \"Tell the users\" }}\n"));
    let bin = env!("CARGO_BIN_EXE_hoist");
    let cmd = format!(
        "{bin} --state-dir {} upgrade --yes -r {}",
        p.path("state").display(),
        p.path("recipe.toml").display()
    );
    let mut script = std::process::Command::new("script");
    common::clean_env(&mut script);
    let mut child = script
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The terminal keeps the answer until the gate reads it (nothing else
    // reads it: --yes answers the upgrade prompt).
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("Tell the users"), "{t}");
    assert_eq!(p.read("VERSION").as_deref(), Some("2.0\n"));
    let log = std::fs::read_to_string(p.path("state/runs/1.log")).unwrap();
    assert!(log.contains("confirmed at the terminal"), "{log}");
}

#[test]
fn a_self_update_that_changes_the_recipe_re_executes_and_replans() {
    let p = Product::new("self-update");
    let d = p.dir.display().to_string();
    let recipe = p.read("recipe.toml").unwrap();
    // The update step appends a step to the recipe itself, as a new
    // upgrader package would.
    let extra = format!(
        "\\n[[steps]]\\nid = \\\"added-by-update\\\"\\nphase = \\\"cleanup\\\"\\nexec = {{ shell = \\\"touch {d}/added\\\" }}\\n"
    );
    p.write(
        "recipe.toml",
        &format!(
            "{recipe}\n[[steps]]\nid = \"update-upgrader\"\nphase = \"pre\"\nself_update = true\nexec = {{ shell = \"[ -e {d}/updated ] || {{ printf '{extra}' >> {d}/recipe.toml; touch {d}/updated; }}\" }}\n"
        ),
    );
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("continuing with the new one"),
        "{}",
        text(&o)
    );
    assert!(p.path("added").exists(), "the new recipe's step ran");
    let st = p.hoist(&["--json", "status"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"reexec") && kinds.contains(&"replan"),
        "{kinds:?}"
    );
}

#[test]
fn json_events_are_versioned_lines() {
    let p = Product::new("json");
    let r = p.path("recipe.toml");
    let o = p.hoist(
        &["--json", "upgrade", "--yes", "-r", r.to_str().unwrap()],
        &[],
    );
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines.iter().all(|l| l["schema"] == 1));
    assert_eq!(lines.first().unwrap()["event"], "run-started");
    assert!(lines.iter().any(|l| l["event"] == "run-started"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "step-finished")
            .count(),
        STEPS.len()
    );
    assert_eq!(lines.last().unwrap()["event"], "run-finished");
    assert_eq!(lines.last().unwrap()["state"], "committed");
}

#[test]
fn each_once_hooks_run_once_per_host_ever() {
    let p = Product::new("each-once");
    let d = p.dir.display().to_string();
    std::fs::create_dir_all(p.path("once.d")).unwrap();
    p.write(
        "once.d/10-count",
        &format!("#!/bin/sh\necho x >> {d}/once-count\n"),
    );
    chmod(&p.path("once.d/10-count"), 0o755);
    let recipe = p.read("recipe.toml").unwrap();
    p.write(
        "recipe.toml",
        &format!("{recipe}\n[[steps]]\nid = \"once-hooks\"\nphase = \"post\"\nhooks = {{ dir = \"once.d\", each_once = true }}\n"),
    );
    assert!(p.upgrade(&[]).status.success());
    // The same upgrade again on this host (say, after a reinstall of 1.0).
    p.write("VERSION", "1.0\n");
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        p.read("once-count").as_deref(),
        Some("x\n"),
        "the script ran twice"
    );
    // A new script in the directory does run.
    p.write(
        "once.d/20-new",
        &format!("#!/bin/sh\necho y >> {d}/once-count\n"),
    );
    chmod(&p.path("once.d/20-new"), 0o755);
    p.write("VERSION", "1.0\n");
    assert!(p.upgrade(&[]).status.success());
    assert_eq!(p.read("once-count").as_deref(), Some("x\ny\n"));
}

#[test]
fn a_stop_and_a_start_are_undone_back_to_what_they_found() {
    let dir = std::env::temp_dir().join(format!("hoist-run-{}-stop-undo", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
    // `web` runs; `worker` was stopped by someone else before the run.
    std::fs::write(dir.join("web.running"), "").unwrap();
    let service = |name: &str| {
        format!(
            "[[services]]\nname = \"{name}\"\nbackend = \"command\"\n\
             start = [\"sh\", \"-c\", \"touch {d}/{name}.running; echo {name} >> {d}/started\"]\n\
             stop = [\"rm\", \"-f\", \"{d}/{name}.running\"]\n\
             status = [\"test\", \"-e\", \"{d}/{name}.running\"]\n"
        )
    };
    let recipe = format!(
        "[product]\nname = \"app\"\nversion = {{ file = \"{d}/VERSION\" }}\n\n\
         [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{}\n{}\n\
         [[steps]]\nid = \"stop-all\"\nphase = \"stop\"\n\
         service = {{ op = \"stop\", units = [\"web\", \"worker\"] }}\n\n\
         [[steps]]\nid = \"start-worker\"\nphase = \"start\"\n\
         service = {{ op = \"start\", units = [\"worker\"] }}\n\n\
         [[steps]]\nid = \"check\"\nphase = \"verify\"\nexec = {{ shell = \"exit 3\" }}\n\
         undo = \"none\"\nundo_reason = \"it only checks\"\n",
        service("web"),
        service("worker"),
    );
    std::fs::write(dir.join("recipe.toml"), recipe).unwrap();
    let o = hoist_in(&dir.join("state"))
        .args(["upgrade", "--yes", "-r"])
        .arg(dir.join("recipe.toml"))
        .output()
        .unwrap();
    let said = text(&o);
    assert!(!o.status.success(), "{said}");
    assert!(said.contains("[undo] stop-all: undone"), "{said}");
    assert!(dir.join("web.running").exists(), "{said}");
    assert!(!dir.join("worker.running").exists(), "{said}");
    // `worker` started by the run and stopped again by its start's undo;
    // `web` started by the stop's undo.
    assert_eq!(
        std::fs::read_to_string(dir.join("started")).unwrap_or_default(),
        "worker\nweb\n"
    );
    assert!(said.contains("[undo] start-worker: undone"), "{said}");
    assert!(!said.contains("not undone"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_recipe_undo_of_the_same_kind_does_not_read_what_the_step_saved() {
    let dir = std::env::temp_dir().join(format!("hoist-run-{}-undo-dir", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
    let list = "deb http://mirror.test precise 4.2\n";
    std::fs::write(dir.join("cloudstack.list"), list).unwrap();
    // The guide's switch and its switch back (seed 003, L923-946).
    let recipe = format!(
        "[product]\nname = \"app\"\nversion = {{ file = \"{d}/VERSION\" }}\n\n\
         [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n\
         [[steps]]\nid = \"repo-4.3\"\nphase = \"pre\"\n\
         repo = {{ op = \"switch\", file = \"{d}/cloudstack.list\", from = \"precise 4.2\", to = \"precise 4.3\" }}\n\
         undo = {{ repo = {{ op = \"switch\", file = \"{d}/cloudstack.list\", from = \"precise 4.3\", to = \"precise 4.2\" }} }}\n\n\
         [[steps]]\nid = \"install\"\nphase = \"install\"\nexec = {{ shell = \"grep -q 'precise 4.3' {d}/cloudstack.list && exit 3; echo 2.0 > {d}/VERSION\" }}\n\
         undo = {{ exec = {{ shell = \"echo 1.0 > {d}/VERSION\" }} }}\n",
    );
    std::fs::write(dir.join("recipe.toml"), recipe).unwrap();
    let o = hoist_in(&dir.join("state"))
        .args(["upgrade", "--yes", "-r"])
        .arg(dir.join("recipe.toml"))
        .output()
        .unwrap();
    let said = text(&o);
    assert!(said.contains("[2/2] install: FAILED"), "{said}");
    assert!(said.contains("[undo] repo-4.3: undone"), "{said}");
    assert!(said.contains("Rolled back"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.join("VERSION")).unwrap(),
        "1.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("cloudstack.list")).unwrap(),
        list
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hooks_run_links_like_run_parts_and_say_what_they_skip() {
    let p = Product::new("hook-links");
    let d = p.dir.display().to_string();
    std::fs::create_dir_all(p.path("shipped")).unwrap();
    std::fs::create_dir_all(p.path("hooks/40-a-dir")).unwrap();
    p.write(
        "shipped/linked",
        &format!("#!/bin/sh\necho linked > {d}/linked-ran\n"),
    );
    chmod(&p.path("shipped/linked"), 0o755);
    p.write("shipped/plain", "not a script\n");
    p.write("hooks/50-not-executable", "#!/bin/sh\n");
    p.write("hooks/README.txt", "read me\n");
    let link = |to: &str, name: &str| {
        std::os::unix::fs::symlink(to, p.path(&format!("hooks/{name}"))).unwrap()
    };
    link(&format!("{d}/shipped/linked"), "20-linked");
    link(&format!("{d}/shipped/gone"), "30-dangling");
    link(&format!("{d}/shipped"), "35-to-a-dir");
    link(&format!("{d}/shipped/plain"), "60-to-a-plain-file");
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("linked-ran").as_deref(), Some("linked\n"));
    assert_eq!(p.read("hook-ran").as_deref(), Some("done\n"));
    let log = std::fs::read_to_string(p.path("state/runs/1.log")).unwrap();
    let status = p.hoist(&["--json", "status"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let tail = v["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "post-hooks")
        .unwrap()["output_tail"]
        .as_str()
        .unwrap()
        .to_string();
    let hooks = p.path("hooks");
    let h = hooks.display();
    for line in [
        format!(
            "skipped {h}/30-dangling: a symbolic link to {d}/shipped/gone, which does not exist"
        ),
        format!("skipped {h}/35-to-a-dir: a symbolic link to {d}/shipped: a directory"),
        format!("skipped {h}/40-a-dir: a directory"),
        format!("skipped {h}/50-not-executable: not executable"),
        format!(
            "skipped {h}/60-to-a-plain-file: a symbolic link to {d}/shipped/plain: not executable"
        ),
        format!("skipped {h}/README.txt: its name is not only letters"),
    ] {
        assert!(log.contains(&line), "{line}\n{log}");
        assert!(tail.contains(&line), "{line}\n{tail}");
    }
    // A link to a script others may write is refused as the script would be.
    p.write("VERSION", "1.0\n");
    chmod(&p.path("shipped/linked"), 0o775);
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("refused before anything ran")
            && t.contains("shipped/linked is writable by its group"),
        "{t}"
    );
}

#[test]
fn a_prompt_answered_no_aborts_with_exit_1_and_y_answers_it() {
    // On a terminal made by `script` (util-linux), as apt: "n" is an abort.
    let p = Product::new("prompt-no");
    let bin = env!("CARGO_BIN_EXE_hoist");
    let cmd = format!(
        "{bin} --state-dir {} upgrade -r {}",
        p.path("state").display(),
        p.path("recipe.toml").display()
    );
    let mut script = std::process::Command::new("script");
    common::clean_env(&mut script);
    let mut child = script
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("Abort: nothing was changed"), "{t}");
    assert_eq!(p.read("VERSION").as_deref(), Some("1.0\n"));
    // `-y`, as every admin types it.
    let o = p.hoist(
        &[
            "upgrade",
            "-y",
            "-r",
            p.path("recipe.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("VERSION").as_deref(), Some("2.0\n"));
}

#[test]
fn an_exec_step_runs_as_the_user_it_names_and_an_unknown_user_is_refused_first() {
    let p = Product::new("exec-user");
    let recipe = p.read("recipe.toml").unwrap();
    let shared = p.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    chmod(&shared, 0o777);
    let step = |user: &str| {
        format!(
            "{recipe}\n[[steps]]\nid = \"as-user\"\nphase = \"post\"\nexec = {{ shell = \"id -un > {}/who\", user = \"{user}\" }}\nundo = \"none\"\nundo_reason = \"a test: it only writes who ran it\"\n",
            shared.display()
        )
    };
    p.write("recipe.toml", &step("no-such-user-here"));
    let before = p.state();
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("no user `no-such-user-here`"), "{t}");
    assert_eq!(p.state(), before, "refused before anything ran");
    p.write("recipe.toml", &step("nobody"));
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(shared.join("who")).unwrap(),
        "nobody\n"
    );
}
