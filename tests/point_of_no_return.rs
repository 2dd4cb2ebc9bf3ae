//! `point_of_no_return` (seed 004: the Debian major upgrade in the middle of
//! WalT's procedure cannot be undone): before the step starts a failure
//! rolls everything back as usual; once it has started, a failure undoes
//! the failed step alone and stops, `hoist rollback` refuses, `hoist status`
//! says to fix and resume, and `hoist resume` goes on forward.

mod common;
use common::{hoist_in, text};

use std::path::{Path, PathBuf};

struct Host {
    dir: PathBuf,
}

impl Host {
    fn new(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("hoist-ponr-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("recipe.toml"),
            format!(
                r#"[product]
name = "os"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[facts]]
name = "next"
default = "two"

[[steps]]
id = "before"
phase = "install"
exec = {{ shell = "touch {d}/before" }}
undo = {{ exec = {{ shell = "rm -f {d}/before" }} }}

[[steps]]
id = "upgrade-os"
phase = "install"
exec = {{ shell = "touch {d}/os-upgraded" }}
point_of_no_return = "no downgrade to {{{{ next }}}}"

[[steps]]
id = "after"
phase = "install"
exec = {{ shell = "touch {d}/after" }}
undo = {{ exec = {{ shell = "rm -f {d}/after" }} }}

[[steps]]
id = "migrate"
phase = "migrate"
exec = {{ shell = "touch {d}/half-migrated; test -e {d}/fixed && echo 2.0 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "rm -f {d}/half-migrated" }} }}
"#
            ),
        )
        .unwrap();
        Host { dir }
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut c = hoist_in(&self.dir.join("state"));
        c.args(args).envs(env.iter().copied());
        if args.first() == Some(&"upgrade") || args.first() == Some(&"plan") {
            c.arg("-r").arg(self.dir.join("recipe.toml"));
        }
        c.output().unwrap()
    }

    fn has(&self, f: &str) -> bool {
        self.dir.join(f).exists()
    }

    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "state")
            .collect();
        v.sort();
        v
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dir(h: &Host) -> &Path {
    &h.dir
}

#[test]
fn past_the_point_a_failure_stops_for_a_fix_and_resume_goes_on() {
    let h = Host::new("past");
    let plan = text(&h.hoist(&["plan"], &[]));
    assert!(
        plan.contains("[point of no return, timeout 1h]")
            && plan.contains("point of no return: no downgrade to two;"),
        "{plan}"
    );
    let out = h.hoist(&["upgrade", "--yes"], &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "exited with status 1. Not rolled back: the upgrade is past its point of no return (upgrade-os: no downgrade to two). What migrate changed was undone. Fix the cause, then `hoist resume`"
        ),
        "{shown}"
    );
    // Nothing before the failed step was undone; the failed step was.
    assert!(h.has("before") && h.has("os-upgraded") && h.has("after"));
    assert!(!h.has("half-migrated"), "{:?}", h.files());
    let status = text(&h.hoist(&["status"], &[]));
    assert!(
        status.contains("at migrate (migrate): undone")
            && status.contains("next: step migrate failed and what it changed was undone; the upgrade is past its point of no return (upgrade-os: no downgrade to two), so it cannot be rolled back"),
        "{status}"
    );
    let files = h.files();
    let rb = h.hoist(&["rollback"], &[]);
    assert_ne!(rb.status.code(), Some(0), "{}", text(&rb));
    assert!(
        text(&rb).contains("is past its point of no return (upgrade-os: no downgrade to two): it cannot be rolled back"),
        "{}",
        text(&rb)
    );
    assert_eq!(h.files(), files, "a refused rollback changed something");

    std::fs::write(dir(&h).join("fixed"), "").unwrap();
    let out = h.hoist(&["resume"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir(&h).join("VERSION")).unwrap(),
        "2.0\n"
    );
    assert!(text(&h.hoist(&["status"], &[])).contains("committed"));
}

#[test]
fn the_point_itself_failing_is_not_undone_and_before_it_all_is() {
    // The point of no return fails: nothing is undone, not even itself.
    let h = Host::new("itself");
    let out = h.hoist(
        &["upgrade", "--yes"],
        &[("HOIST_TEST_FAIL_AT", "upgrade-os")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Not rolled back"), "{}", text(&out));
    assert!(h.has("before"));
    let out = h.hoist(&["resume"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(h.has("os-upgraded") && h.has("after"));

    // Before it: the usual rollback.
    let h = Host::new("before");
    let out = h.hoist(&["upgrade", "--yes"], &[("HOIST_TEST_FAIL_AT", "before")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Rolled back"), "{}", text(&out));
    assert_eq!(h.files(), ["VERSION", "recipe.toml"]);
}

#[test]
fn a_point_of_no_return_takes_a_reason_and_no_undo() {
    let h = Host::new("lint");
    let path = dir(&h).join("recipe.toml");
    let recipe = std::fs::read_to_string(&path).unwrap().replace(
        "point_of_no_return = \"no downgrade to {{ next }}\"",
        "point_of_no_return = \" \"\nundo = { exec = { shell = \"true\" } }",
    );
    std::fs::write(&path, recipe).unwrap();
    let out = hoist_in(&dir(&h).join("state"))
        .arg("lint")
        .arg(&path)
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("`point_of_no_return` must say why")
            && shown.contains("is a point of no return: the run never goes back past it, so its undo would never run"),
        "{shown}"
    );
}
