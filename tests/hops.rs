//! Hops commit: a multi-hop run keeps every hop it completed when a later
//! one fails (each required stop is a supported version), through the
//! binary, on a GitLab-style stand-in made of files
//! (`tests/fixtures/hops/recipe.toml`): the failing hop is undone back to
//! the last stop, `hoist resume` goes on from there, `hoist rollback --all`
//! goes back to the start, a path marked `atomic_with_next` is undone with
//! the hop after it, and a stop can be the target.

mod common;
use common::{run_hoist, run_upgrade, text};

use std::path::PathBuf;
use std::process::Output;

struct Forge {
    dir: PathBuf,
}

impl Forge {
    /// The product at 16.3.7 with two rows of data; `atomic`: the stop at
    /// 16.7.8 is not safe to stay at.
    fn new(name: &str, atomic: bool) -> Forge {
        let dir = std::env::temp_dir().join(format!("hoist-hops-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let recipe = include_str!("fixtures/hops/recipe.toml");
        let mut recipe = recipe.replace("@DIR@", &dir.display().to_string());
        if atomic {
            recipe = recipe.replace(
                "to = \"16.7.8\"\nstop = true",
                "to = \"16.7.8\"\nstop = true\natomic_with_next = true",
            );
        }
        std::fs::write(dir.join("recipe.toml"), recipe).unwrap();
        std::fs::write(dir.join("VERSION"), "16.3.7\n").unwrap();
        std::fs::write(dir.join("data"), "row 1\nrow 2\n").unwrap();
        Forge { dir }
    }

    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.join(f)).unwrap_or_default()
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
}

impl Drop for Forge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const AT_16_7: &str = "row 1\nrow 2\nmigrated to 16.7.8\n";

#[test]
fn a_failure_in_the_second_hop_keeps_the_first_and_resume_goes_on() {
    let f = Forge::new("keep", false);
    let o = f.upgrade(&[], &[("HOIST_TEST_FAIL_AT", "migrate@16.11.10")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    // The host is at the first stop, with what the product wrote there.
    assert_eq!(f.read("VERSION"), "16.7.8\n");
    assert_eq!(f.read("data"), AT_16_7);
    assert!(
        t.contains("Rolled back to 16.7.8: forge is at 16.7.8")
            && t.contains("`hoist resume` goes on from 16.7.8")
            && t.contains("`hoist rollback --all` goes back to 16.3.7"),
        "{t}"
    );
    assert!(!t.contains("as it was at 16.3.7"), "{t}");
    let s = text(&f.hoist(&["status"], &[]));
    assert!(
        s.contains("rolled back to 16.7.8, where the hops up to it are kept"),
        "{s}"
    );
    // A plain rollback goes back to the stop only: nothing more to do.
    let o = f.hoist(&["rollback"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(f.read("VERSION"), "16.7.8\n");
    // Fixed, the run goes on from the stop, through the hop it undid.
    let o = f.hoist(&["resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(f.read("VERSION"), "17.0.0\n");
    assert_eq!(
        f.read("data"),
        "row 1\nrow 2\nmigrated to 16.7.8\nmigrated to 16.11.10\nmigrated to 17.0.0\n"
    );
}

#[test]
fn rollback_all_goes_back_to_the_start_past_the_kept_stop() {
    let f = Forge::new("all", false);
    let o = f.upgrade(
        &[],
        &[("HOIST_TEST_FAIL_AT", "background-migrations@17.0.0")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Two hops kept: the host is at the second stop.
    assert_eq!(f.read("VERSION"), "16.11.10\n");
    let o = f.hoist(&["rollback", "--all"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("forge is as it was at 16.3.7"), "{t}");
    assert_eq!(f.read("VERSION"), "16.3.7\n");
    assert_eq!(f.read("data"), "row 1\nrow 2\n");
}

#[test]
fn a_stop_that_is_atomic_with_the_next_hop_is_undone_with_it() {
    let f = Forge::new("atomic", true);
    let o = f.upgrade(&[], &[("HOIST_TEST_FAIL_AT", "migrate@16.11.10")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert_eq!(f.read("VERSION"), "16.3.7\n", "{t}");
    assert_eq!(f.read("data"), "row 1\nrow 2\n");
    assert!(t.contains("as it was at 16.3.7"), "{t}");
}

#[test]
fn a_failure_after_an_atomic_stop_keeps_the_stop_before_it() {
    // 16.7.8 is atomic with the hop to 16.11.10, which is not atomic with
    // the last: a failure in the last hop keeps both.
    let f = Forge::new("atomic-later", true);
    let o = f.upgrade(&[], &[("HOIST_TEST_FAIL_AT", "install@17.0.0")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(f.read("VERSION"), "16.11.10\n");
}

#[test]
fn a_failure_in_the_first_hop_puts_everything_back() {
    let f = Forge::new("first", false);
    let o = f.upgrade(&[], &[("HOIST_TEST_FAIL_AT", "migrate@16.7.8")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("as it was at 16.3.7"), "{t}");
    assert_eq!(f.read("VERSION"), "16.3.7\n");
    assert_eq!(f.read("data"), "row 1\nrow 2\n");
}

#[test]
fn a_stop_can_be_the_target() {
    let f = Forge::new("to-stop", false);
    let o = f.upgrade(&["--to", "16.7.8"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("forge upgraded from 16.3.7 to 16.7.8"), "{t}");
    assert_eq!(f.read("VERSION"), "16.7.8\n");
    assert_eq!(f.read("data"), AT_16_7);
}
