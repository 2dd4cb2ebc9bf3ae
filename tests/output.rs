//! What hoist shows never decides what it does: a run whose output is a
//! pipe nobody reads any more, or a full disk, goes on as if nobody had
//! looked; a command that only reads ends quietly with 141 on a closed
//! pipe. And only `src/output/out.rs` writes to stdout or stderr.

mod common;
use common::{hoist_in, text};

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A product made of files: a version, a config, a "service" (a marker
/// file), and a step that waits for the test to say the reader is gone,
/// so that what comes after it meets a closed pipe, every time.
struct Product {
    dir: PathBuf,
}

/// Created by the test once it has closed its end of hoist's stdout.
const READER_GONE: &str = "reader-gone";

impl Product {
    fn new(name: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Product { dir };
        p.write("VERSION", "1.0\n");
        p.write("app.conf", "mode = classic\n");
        p.write("running", "");
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
id = "stop-app"
phase = "stop"
service = {{ op = "stop", units = ["app"] }}
undo = {{ service = {{ op = "start", units = ["app"] }} }}

[[steps]]
id = "reader-gone"
phase = "stop"
exec = {{ shell = "for i in $(seq 600); do [ -e {d}/{READER_GONE} ] && exit 0; sleep 0.05; done; exit 1" }}
undo = "none"
undo_reason = "it only waits for the reader to go"

[[steps]]
id = "switch-release"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION.new && mv {d}/VERSION.new {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION.new && mv {d}/VERSION.new {d}/VERSION" }} }}

[[steps]]
id = "set-config"
phase = "configure"
exec = {{ shell = "echo 'mode = modern' > {d}/app.conf" }}
undo = {{ exec = {{ shell = "echo 'mode = classic' > {d}/app.conf" }} }}

[[steps]]
id = "start-app"
phase = "start"
service = {{ op = "start", units = ["app"] }}
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

    fn recipe(&self) -> String {
        self.path("recipe.toml").display().to_string()
    }

    fn hoist(&self) -> Command {
        hoist_in(&self.path("state"))
    }

    fn upgrade(&self) -> Command {
        let mut c = self.hoist();
        c.args(["upgrade", "--yes", "-r", &self.recipe()]);
        c
    }

    /// Version, config, and whether the service runs.
    fn state(&self) -> (String, String, bool) {
        let read = |f| std::fs::read_to_string(self.path(f)).unwrap_or_default();
        (
            read("VERSION"),
            read("app.conf"),
            self.path("running").exists(),
        )
    }

    fn status(&self) -> String {
        let o = self.hoist().arg("status").output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The end state of a run nobody interrupted.
fn reference(name: &str) -> (String, String, bool) {
    let p = Product::new(&format!("{name}-reference"));
    p.write(READER_GONE, "");
    let o = p.upgrade().output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.status().contains("committed"), "{}", p.status());
    let state = p.state();
    assert_eq!(state, ("2.0\n".into(), "mode = modern\n".into(), true));
    state
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
        .into()
}

/// A pipe whose reader is closed before hoist starts: its first write
/// meets EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

fn no_panic(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{}", text(o));
    assert_ne!(o.status.code(), Some(101), "{}", text(o));
}

#[test]
fn an_upgrade_whose_reader_goes_away_finishes_as_if_read() {
    let reference = reference("pipe");
    let p = Product::new("pipe");
    let mut child = p
        .upgrade()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("1.0 -> 2.0"), "{first}");
    drop(reader);
    p.write(READER_GONE, "");
    let o = child.wait_with_output().unwrap();
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("cannot write to standard output").count(),
        1,
        "said once: {err}"
    );
    let status = p.status();
    assert!(status.contains("committed"), "{status}");
    assert_eq!(p.state(), reference);
    // The run log still has every step.
    let log = std::fs::read_to_string(p.path("state/runs/1.log")).unwrap();
    for step in ["stop-app", "switch-release", "set-config", "start-app"] {
        assert!(log.contains(step), "{step} not in the run log: {log}");
    }
}

#[test]
fn an_upgrade_onto_a_full_disk_finishes_as_if_shown() {
    let reference = reference("full");
    let p = Product::new("full");
    p.write(READER_GONE, "");
    let o = p
        .upgrade()
        .stdout(dev_full())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(p.status().contains("committed"), "{}", p.status());
    assert_eq!(p.state(), reference);

    // Neither stream writable, and a rollback the same.
    let p = Product::new("full-both");
    p.write(READER_GONE, "");
    let o = p
        .upgrade()
        .env("HOIST_TEST_FAIL_AT", "set-config")
        .stdout(dev_full())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a failed step, rolled back");
    let status = p.status();
    assert!(status.contains("rolled-back"), "{status}");
    assert_eq!(p.state(), ("1.0\n".into(), "mode = classic\n".into(), true));
}

/// Every command that only reads, after a run so there is something to
/// show.
fn read_only_commands(p: &Product) -> Vec<Vec<String>> {
    let r = p.recipe();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inventory = root.join("tests/fixtures/fleet/xivo-ha.toml");
    let inventory = inventory.to_str().unwrap();
    let xivo = root.join("recipes/xivo");
    let xivo = xivo.to_str().unwrap();
    [
        vec!["status"],
        vec!["--json", "status"],
        vec!["history"],
        vec!["--json", "history"],
        vec!["backups"],
        vec!["plan", "-r", &r],
        vec!["--json", "plan", "-r", &r],
        vec!["check", "-r", &r],
        vec!["lint", &r],
        vec!["fleet", "plan", "-i", inventory, "-r", xivo],
        vec!["--json", "fleet", "plan", "-i", inventory, "-r", xivo],
        vec!["--help"],
        vec!["upgrade", "--help"],
        vec!["--version"],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn read_only_commands_end_quietly_on_a_closed_pipe() {
    let p = Product::new("read-only");
    p.write(READER_GONE, "");
    let o = p.upgrade().output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // `plan` and `check` need a run not to be up to date: say 1.0 again.
    p.write("VERSION", "1.0\n");
    for args in read_only_commands(&p) {
        let o = p
            .hoist()
            .args(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", text(&o));
        assert_eq!(o.stderr, b"", "{args:?}: quiet");
    }
    // With no rollout, `fleet status` says so on stderr.
    let o = p
        .hoist()
        .args(["fleet", "status"])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(141));
}

#[test]
fn read_only_commands_onto_a_full_disk_say_so_once() {
    let p = Product::new("read-only-full");
    p.write(READER_GONE, "");
    let o = p.upgrade().output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for args in [vec!["status"], vec!["history"], vec!["--help"]] {
        let o = p
            .hoist()
            .args(&args)
            .stdout(dev_full())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        no_panic(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "hoist: cannot write to standard output: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}

/// Lines of `src/**/*.rs` outside `src/output/out.rs` that write to stdout or
/// stderr themselves, as `file:line: text`.
fn writes_outside_out(src: &Path) -> Vec<String> {
    const MACROS: [&str; 5] = ["println!", "print!", "eprintln!", "eprint!", "dbg!"];
    let mut found = Vec::new();
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        if file == src.join("output/out.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for (n, line) in source.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let writes_itself = MACROS.iter().any(|m| mentions(code, m))
                || ["stdout()", "stderr()", "io::Stdout", "io::Stderr"]
                    .iter()
                    .any(|s| mentions(code, s));
            if writes_itself {
                found.push(format!("{}:{}: {}", file.display(), n + 1, code));
            }
        }
    }
    found
}

/// `what` as a name of its own: not the end of a longer name (`eprint!`
/// is not `print!`), and not a method (`.stdout()`).
fn mentions(code: &str, what: &str) -> bool {
    code.match_indices(what).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

#[test]
fn only_the_output_module_writes_to_stdout_or_stderr() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = writes_outside_out(&src);
    assert!(
        found.is_empty(),
        "write through src/output/out.rs (outln!, out!, errln!) instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_each_way_of_writing() {
    let dir = std::env::temp_dir().join(format!("hoist-output-scan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("output")).unwrap();
    std::fs::write(
        dir.join("output/out.rs"),
        "fn f() { println!(\"mine\"); }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/a.rs"),
        "// println!(\"a comment\")\nfn f() {\n    eprint!(\"x\");\n    let _ = std::io::stdout().lock();\n    cmd.stdout(Stdio::piped());\n    outln!(\"fine\");\n}\n",
    )
    .unwrap();
    let found = writes_outside_out(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let names: Vec<String> = found
        .iter()
        .map(|f| f.split(": ").next().unwrap_or_default().to_string())
        .collect();
    let a = dir.join("sub/a.rs").display().to_string();
    assert_eq!(names, [format!("{a}:3"), format!("{a}:4")], "{found:?}");
}
