//! The state directory's guarantees, through the binary, on a product of
//! files: readers never stand in a writer's way; a state directory others
//! could change is refused; a full disk ends the run honestly; a journal
//! that lost what the host shows is refused, never read as "no upgrade has
//! run"; a step that deletes the state directory fails the run.

mod common;
use common::{hoist_in, text};

use std::path::{Path, PathBuf};
use std::process::Output;

struct Product {
    dir: PathBuf,
    state: PathBuf,
}

impl Product {
    /// A product at 1.0 whose upgrade to 2.0 runs `steps` (TOML), with its
    /// state in `state` (a directory of the product's unless given).
    fn new(name: &str, steps: &str, state: Option<&Path>) -> Product {
        let dir =
            std::env::temp_dir().join(format!("hoist-statedir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = state.map_or_else(|| dir.join("state"), Path::to_path_buf);
        let p = Product { dir, state };
        p.write("VERSION", "1.0\n");
        let d = p.dir.display();
        p.write(
            "recipe.toml",
            &format!(
                "[product]\nname = \"app\"\nversion = {{ file = \"{d}/VERSION\" }}\n\n\
                 [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n{}",
                steps.replace("{d}", &d.to_string())
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

    fn hoist(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = hoist_in(&self.state);
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
}

impl Drop for Product {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two steps, each leaving a marker, the second switching the version.
const TWO_STEPS: &str = r#"
[[steps]]
id = "one"
phase = "install"
exec = { shell = "touch {d}/one-ran" }
undo = { exec = { shell = "rm -f {d}/one-ran" } }

[[steps]]
id = "two"
phase = "install"
exec = { shell = "echo 2.0 > {d}/VERSION" }
undo = { exec = { shell = "echo 1.0 > {d}/VERSION" } }
"#;

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).unwrap();
}

/// A tmpfs of `size` mounted on `dir` for the test's life (unmounted when
/// dropped, the test failing or not).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let o = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "mount: {}", text(&o));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let o = std::process::Command::new("umount").arg(&self.0).output();
        if !o.is_ok_and(|o| o.status.success()) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn status_polled_in_a_loop_never_makes_a_writer_fail() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let p = Product::new("poll", TWO_STEPS, None);
    assert!(p.hoist(&["status"], &[]).status.success());
    let stop = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, polls, state) = (stop.clone(), polls.clone(), p.state.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let o = hoist_in(&state).arg("status").output().unwrap();
                if !o.status.success() {
                    failures.push(text(&o));
                }
                polls.fetch_add(1, Ordering::SeqCst);
            }
            failures
        })
    };
    let mut refused = Vec::new();
    let recipe = p.path("recipe.toml");
    let upgrade = [
        "upgrade",
        "--yes",
        "--no-rollback",
        "-r",
        recipe.to_str().unwrap(),
    ];
    for i in 0..20 {
        // A failed run, resumed or rolled back.
        let o = p.hoist(&upgrade, &[("HOIST_TEST_FAIL_AT", "two")]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let (what, o2) = if i % 2 == 0 {
            ("resume", p.hoist(&["resume"], &[]))
        } else {
            ("rollback", p.hoist(&["rollback"], &[]))
        };
        for (what, o) in [("upgrade", &o), (what, &o2)] {
            if text(o).contains("another hoist") {
                refused.push(format!("{what} {i}: {}", text(o)));
            }
        }
        assert!(o2.status.success(), "{what} {i}: {}", text(&o2));
        p.write("VERSION", "1.0\n");
    }
    stop.store(true, Ordering::SeqCst);
    let failures = poller.join().unwrap();
    eprintln!(
        "{} status polls during 20 upgrades and 20 resumes or rollbacks",
        polls.load(Ordering::SeqCst)
    );
    assert!(refused.is_empty(), "{refused:#?}");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(polls.load(Ordering::SeqCst) > 20);
}

#[test]
fn a_state_directory_owned_by_another_user_is_refused() {
    let p = Product::new("owner", TWO_STEPS, None);
    std::fs::create_dir_all(&p.state).unwrap();
    chown(&p.state, 65534);
    for args in [
        vec!["status"],
        vec!["history"],
        vec!["resume"],
        vec!["backups"],
        vec!["fleet", "status"],
    ] {
        let o = p.hoist(&args, &[]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains(&format!(
                "{} is owned by nobody (uid 65534), mode 07",
                p.state.display()
            )),
            "{args:?}: {t}"
        );
        assert!(t.contains("chown"), "{t}");
    }
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!p.path("one-ran").exists(), "nothing may run");
}

#[test]
fn a_paused_runs_journal_owned_by_another_user_is_never_resumed() {
    let p = Product::new("journal-owner", TWO_STEPS, None);
    let o = p.upgrade(&[("HOIST_TEST_SIGNAL_AT", "one")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    std::fs::remove_file(p.path("one-ran")).unwrap();
    let journal = p.state.join("journal.db");
    chown(&journal, 65534);
    let o = p.hoist(&["resume"], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("{} is owned by nobody", journal.display())),
        "{t}"
    );
    assert_eq!(std::fs::read_to_string(p.path("VERSION")).unwrap(), "1.0\n");
}

#[test]
fn a_controllers_fleet_journal_owned_by_another_user_is_refused() {
    // Whoever could edit `fleet.db` could change the plan a controller runs
    // on every host: `fleet status` reads it only after the same check.
    let p = Product::new("fleet-owner", TWO_STEPS, None);
    std::fs::create_dir_all(&p.state).unwrap();
    chmod(&p.state, 0o700);
    let db = p.state.join("fleet.db");
    std::fs::write(&db, "").unwrap();
    chown(&db, 65534);
    for args in [vec!["fleet", "status"], vec!["--json", "fleet", "status"]] {
        let o = p.hoist(&args, &[]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains(&format!("{} is owned by nobody", db.display())),
            "{args:?}: {t}"
        );
    }
}

#[test]
fn a_lock_planted_as_a_link_is_refused_and_its_target_left_alone() {
    let p = Product::new("lock-link", TWO_STEPS, None);
    std::fs::create_dir_all(&p.state).unwrap();
    chmod(&p.state, 0o700);
    let target = p.path("precious");
    p.write("precious", "root's file\n");
    std::os::unix::fs::symlink(&target, p.state.join("lock")).unwrap();
    for args in [vec!["status"], vec!["resume"], vec!["rollback"]] {
        let o = p.hoist(&args, &[]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains(&format!(
                "{} is a symbolic link to {}",
                p.state.join("lock").display(),
                target.display()
            )),
            "{args:?}: {t}"
        );
    }
    let o = p.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's file\n");
    assert!(!p.path("one-ran").exists(), "nothing may run");
}

#[test]
fn a_group_writable_state_directory_is_refused() {
    let p = Product::new("group", TWO_STEPS, None);
    std::fs::create_dir_all(&p.state).unwrap();
    chmod(&p.state, 0o770);
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "{} is writable by its group (owner root (uid 0), mode 0770)",
            p.state.display()
        )) && t.contains("chmod go-w"),
        "{t}"
    );
    assert!(!p.path("one-ran").exists(), "nothing may run");
}

#[test]
fn the_state_directory_is_made_private() {
    use std::os::unix::fs::MetadataExt;
    let p = Product::new("private", TWO_STEPS, None);
    let o = p.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    for rel in ["", "runs", "runs/1", "runs/1.log", "lock"] {
        let m = std::fs::metadata(p.state.join(rel)).unwrap();
        assert_eq!(m.mode() & 0o077, 0, "{rel}: {:o}", m.mode());
    }
}

#[test]
fn too_little_free_space_refuses_a_new_run() {
    let p = Product::new("min-free", TWO_STEPS, None);
    let mnt = p.path("mnt");
    let _fs = Tmpfs::mount(&mnt, "16m");
    let state = mnt.join("state");
    let o = hoist_in(&state)
        .args(["upgrade", "--yes", "-r"])
        .arg(p.path("recipe.toml"))
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("free in the state directory {}", state.display()))
            && t.contains("a run needs 64.0 MiB"),
        "{t}"
    );
    assert!(!p.path("one-ran").exists(), "nothing may run");
}

/// Steps that fill the state directory's disk (`{m}`) then go on.
const FILL: &str = r#"
[[steps]]
id = "fill"
phase = "install"
exec = { shell = "dd if=/dev/zero of={m}/fill bs=1M 2>/dev/null; true" }
undo = { exec = { shell = "rm -f {m}/fill" } }

[[steps]]
id = "after-fill"
phase = "install"
exec = { shell = "echo 2.0 > {d}/VERSION" }
undo = { exec = { shell = "echo 1.0 > {d}/VERSION" } }
"#;

#[test]
fn a_full_disk_uses_the_reserve_to_finish_the_run() {
    let name = "full";
    let mnt =
        std::env::temp_dir().join(format!("hoist-statedir-{}-{name}-mnt", std::process::id()));
    let _fs = Tmpfs::mount(&mnt, "100m");
    let state = mnt.join("state");
    let p = Product::new(
        name,
        &FILL.replace("{m}", &mnt.display().to_string()),
        Some(&state),
    );
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("deleted the reserve"), "{t}");
    assert_eq!(std::fs::read_to_string(p.path("VERSION")).unwrap(), "2.0\n");
    let s = p.hoist(&["--json", "status"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["run"]["state"], "committed", "{v}");
    let full: Vec<&serde_json::Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "disk-full")
        .collect();
    assert_eq!(full.len(), 1, "{v}");
    assert!(
        full[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&state.join("reserve").display().to_string()),
        "{v}"
    );
    // Room again: the next start makes a new reserve.
    assert!(!state.join("reserve").exists());
    std::fs::remove_file(mnt.join("fill")).unwrap();
    assert!(p.hoist(&["resume"], &[]).status.success());
    assert_eq!(
        std::fs::metadata(state.join("reserve")).unwrap().len(),
        8 << 20
    );
}

#[test]
fn a_disk_still_full_stops_the_run_and_status_says_disk_full() {
    let name = "still-full";
    let mnt =
        std::env::temp_dir().join(format!("hoist-statedir-{}-{name}-mnt", std::process::id()));
    let _fs = Tmpfs::mount(&mnt, "100m");
    let state = mnt.join("state");
    // The second filler takes the space the reserve gave back.
    let steps = FILL.replace("{m}", &mnt.display().to_string())
        + &r#"
[[steps]]
id = "fill-again"
phase = "install"
exec = { shell = "dd if=/dev/zero of={m}/fill2 bs=1M 2>/dev/null; true" }
undo = { exec = { shell = "rm -f {m}/fill2" } }

[[steps]]
id = "last"
phase = "install"
exec = { shell = "touch {d}/last-ran" }
"#
        .replace("{m}", &mnt.display().to_string());
    let p = Product::new(name, &steps, Some(&state));
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "the journal {} cannot be written: the disk is full",
            state.join("journal.db").display()
        )) && t.contains(" free in "),
        "{t}"
    );
    assert!(!p.path("last-ran").exists());
    let s = p.hoist(&["status"], &[]);
    let st = text(&s);
    assert!(s.status.success(), "{st}");
    assert!(st.contains("disk full"), "{st}");
    assert!(!st.contains("hoist was killed"), "{st}");
    // Space freed: the run goes back.
    std::fs::remove_file(mnt.join("fill2")).unwrap();
    let o = p.hoist(&["rollback"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(p.path("VERSION")).unwrap(), "1.0\n");
}

#[test]
fn a_journal_emptied_or_lost_after_a_run_is_refused_not_read_as_no_run() {
    let p = Product::new("emptied", TWO_STEPS, None);
    let o = p.upgrade(&[("HOIST_TEST_SIGNAL_AT", "one")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    std::fs::remove_file(p.path("one-ran")).unwrap();
    let journal = p.state.join("journal.db");
    for damage in ["empty", "missing"] {
        if damage == "empty" {
            std::fs::File::create(&journal).unwrap();
        } else {
            std::fs::remove_file(&journal).unwrap();
        }
        for args in [vec!["status"], vec!["history"]] {
            let o = p.hoist(&args, &[]);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(1), "{damage} {args:?}: {t}");
            assert!(
                t.contains(&format!("the journal {}", journal.display()))
                    && t.contains("run 1 left its log")
                    && t.contains("move the state directory aside"),
                "{damage} {args:?}: {t}"
            );
            assert!(!t.contains("no upgrade has run"), "{t}");
        }
        let o = p.upgrade(&[]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{damage}: {t}");
        assert!(t.contains(&journal.display().to_string()), "{t}");
        assert!(!p.path("one-ran").exists(), "nothing may run");
    }
}

#[test]
fn a_journal_that_lost_its_wal_is_refused() {
    let p = Product::new("lost-wal", TWO_STEPS, None);
    let o = p.upgrade(&[("HOIST_TEST_CRASH_AT", "two:before")]);
    assert!(common::killed(&o), "{}", text(&o));
    let wal = p.state.join("journal.db-wal");
    assert!(wal.exists());
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(p.state.join("journal.db-shm"));
    let o = p.hoist(&["status"], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("lost its last changes"), "{t}");
}

#[test]
fn a_step_deleting_the_state_directory_fails_the_run() {
    let p = Product::new("rm-state", "", None);
    let state = p.state.display().to_string();
    p.write(
        "recipe.toml",
        &(std::fs::read_to_string(p.path("recipe.toml")).unwrap()
            + &format!(
                r#"
[[steps]]
id = "wipe"
phase = "install"
exec = {{ shell = "rm -rf {state}" }}

[[steps]]
id = "after"
phase = "install"
exec = {{ shell = "touch {d}/after-ran" }}
"#,
                d = p.dir.display()
            )),
    );
    let o = p.upgrade(&[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("step wipe failed")
            && t.contains(&format!("{state} was deleted while the step ran")),
        "{t}"
    );
    assert!(!p.path("after-ran").exists(), "the run must stop there");
}
