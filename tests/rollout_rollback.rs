//! `hoist rollback --rollout TAG` (what `hoist fleet rollback` runs on each
//! host), through the binary, on a small product made of files as in
//! `tests/run.rs`: a committed run of the rollout goes back exactly, and
//! the journal says who asked and what a restored database loses; asked
//! again it is nothing to do; a rollout that never ran here is nothing to
//! do; a later run, or a point of no return passed, is refused with a
//! clear message (and JSON); a failed run of the rollout is rolled back
//! as `hoist rollback` would.

mod common;
use common::{run_hoist, run_upgrade, text};

use std::path::PathBuf;
use std::process::Output;

struct Product {
    dir: PathBuf,
}

impl Product {
    /// Version 1.0, a config file, data; the recipe's steps change each
    /// and undo each. `extra` is appended to the recipe.
    fn new(name: &str, extra: &str) -> Product {
        let dir = std::env::temp_dir().join(format!("hoist-rrb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Product { dir };
        p.write("VERSION", "1.0\n");
        p.write("app.conf", "mode = classic\n");
        p.write("data", "row 1\n");
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

[[steps]]
id = "backup-data"
phase = "backup"
exec = {{ shell = "cp {d}/data {d}/data.dump" }}
undo = "none"
undo_reason = "a copy aside, for migrate-data's undo"

[[steps]]
id = "switch-release"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION" }} }}

[[steps]]
id = "set-config"
phase = "configure"
file = {{ op = "set_key", path = "{d}/app.conf", key = "mode", value = "modern" }}

[[steps]]
id = "migrate-data"
phase = "migrate"
exec = {{ shell = "echo migrated >> {d}/data" }}
undo = {{ exec = {{ shell = "cp {d}/data.dump {d}/data" }} }}
{extra}"#
            ),
        );
        p
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.join(rel), text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap_or_default()
    }

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_hoist(&self.dir.join("state"), args, env)
    }

    fn upgrade(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        run_upgrade(
            &self.dir.join("state"),
            &self.dir.join("recipe.toml"),
            extra,
            env,
        )
    }

    fn state(&self) -> (String, String, String) {
        (
            self.read("VERSION"),
            self.read("app.conf"),
            self.read("data"),
        )
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last JSON line of the output.
fn last_json(o: &Output) -> serde_json::Value {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON: {}", text(o)))
}

#[test]
fn a_committed_run_of_the_rollout_goes_back_and_a_second_ask_is_nothing_to_do() {
    let p = Product::new("committed", "");
    let before = p.state();
    let o = p.upgrade(&["--rollout", "7-abc"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.read("VERSION"), "2.0\n");
    assert_ne!(p.state(), before);

    // A plain `hoist rollback` never reopens a committed run.
    let o = p.hoist(&["rollback"], &[]);
    assert!(text(&o).contains("nothing to roll back"), "{}", text(&o));
    assert_eq!(p.read("VERSION"), "2.0\n");

    let o = p.hoist(&["--json", "rollback", "--rollout", "7-abc"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let end = last_json(&o);
    assert_eq!(end["event"], "run-finished", "{end}");
    assert_eq!(end["state"], "rolled-back", "{end}");
    assert_eq!(p.state(), before, "every change undone, newest first");
    let st = text(&p.hoist(&["status"], &[]));
    assert!(st.contains("rolled-back"), "{st}");
    let journal = text(&p.hoist(&["--json", "status"], &[]));
    assert!(
        journal
            .contains("asked for by the fleet rollback of rollout 7-abc after the run committed"),
        "{journal}"
    );

    // Asked again (a fleet rollback run again after a kill): success,
    // nothing done.
    let o = p.hoist(&["--json", "rollback", "--rollout", "7-abc"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = last_json(&o);
    assert_eq!(v["event"], "nothing-to-roll-back");
    assert_eq!(v["reason"], "rolled-back");
    assert_eq!(v["run"], 1);
    // A rollout that never ran here: nothing to do either.
    let o = p.hoist(&["rollback", "--rollout", "9-other"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("no run of rollout 9-other on this host"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_later_run_refuses_the_rollback_of_the_rollouts_run() {
    let p = Product::new("later", "");
    assert!(p.upgrade(&["--rollout", "1-x"], &[]).status.success());
    // The admin went back to 1.0 by hand and upgraded again, outside the
    // rollout.
    p.write("VERSION", "1.0\n");
    assert!(p.upgrade(&[], &[]).status.success());
    let o = p.hoist(&["--json", "rollback", "--rollout", "1-x"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = last_json(&o);
    assert_eq!(v["event"], "refused");
    assert_eq!(v["error"], "later-run");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("run 2 (app 1.0 -> 2.0, committed) came after it"),
        "{msg}"
    );
    assert_eq!(p.read("VERSION"), "2.0\n", "nothing changed");
}

#[test]
fn a_run_past_its_point_of_no_return_is_refused() {
    let p = Product::new(
        "point",
        "\n[[steps]]\nid = \"dist-upgrade\"\nphase = \"post\"\nexec = { shell = \"true\" }\npoint_of_no_return = \"Debian has no downgrade\"\n",
    );
    assert!(p.upgrade(&["--rollout", "2-y"], &[]).status.success());
    let o = p.hoist(&["rollback", "--rollout", "2-y"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("past its point of no return (dist-upgrade: Debian has no downgrade)"),
        "{}",
        text(&o)
    );
    assert_eq!(p.read("VERSION"), "2.0\n");
}

#[test]
fn a_failed_run_of_the_rollout_is_rolled_back_as_hoist_rollback_does() {
    let p = Product::new("failed", "");
    let before = p.state();
    let o = p.upgrade(
        &["--rollout", "3-z", "--no-rollback"],
        &[("HOIST_TEST_FAIL_AT", "migrate-data")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(p.read("VERSION"), "2.0\n");
    let o = p.hoist(&["rollback", "--rollout", "3-z"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("rolled back on request"), "{}", text(&o));
    assert_eq!(p.state(), before);
}
