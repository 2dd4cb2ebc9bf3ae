//! The `file` action end to end through the binary: the CloudStack edits of
//! seed 003 (the `paths.script` line in environment.properties, the agent's
//! resource class rename, a properties key) and a 3-way merge of a
//! `.dpkg-dist`, on files owned by another user with mode 0640.
//!
//! What must hold: the edits are made keeping owner and mode; a failure
//! after them puts back the exact bytes, owner and mode (and the
//! `.dpkg-dist`); a conflicting merge stops with the diff and touches
//! nothing; the plan shows each diff; a kill anywhere ends right after
//! `hoist resume` or `hoist rollback`.

mod common;
use common::{hoist_in, killed, text};

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output};

const STEPS: [&str; 4] = ["env-line", "agent-class", "set-mode", "merge-log4j"];
const FILES: [&str; 5] = [
    "environment.properties",
    "agent.properties",
    "app.conf",
    "log4j.xml",
    "log4j.xml.dpkg-dist",
];

/// A non-root owner for the edited files (when the tests run as root).
const UID: u32 = 4321;
const GID: u32 = 4322;

const BASE: &str = "<log4j>\n  <appender file=\"/var/log/cloud/agent.log\"/>\n  <level>INFO</level>\n  <logger name=\"a\"/>\n  <logger name=\"b\"/>\n  <logger name=\"c\"/>\n</log4j>\n";
/// The admin raised the level.
const LOCAL: &str = "<log4j>\n  <appender file=\"/var/log/cloud/agent.log\"/>\n  <level>DEBUG</level>\n  <logger name=\"a\"/>\n  <logger name=\"b\"/>\n  <logger name=\"c\"/>\n</log4j>\n";
/// The package moved the log and added a logger.
const UPSTREAM: &str = "<log4j>\n  <appender file=\"/var/log/cloud/agent.log\"/>\n  <level>INFO</level>\n  <logger name=\"a\"/>\n  <logger name=\"b\"/>\n  <logger name=\"c\"/>\n  <logger name=\"d\"/>\n</log4j>\n";
const MERGED: &str = "<log4j>\n  <appender file=\"/var/log/cloud/agent.log\"/>\n  <level>DEBUG</level>\n  <logger name=\"a\"/>\n  <logger name=\"b\"/>\n  <logger name=\"c\"/>\n  <logger name=\"d\"/>\n</log4j>\n";

struct Host {
    dir: PathBuf,
}

/// Bytes, mode, owner and group of every file, `None` for a missing one.
type Snapshot = Vec<(String, Option<(Vec<u8>, u32, u32, u32)>)>;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Host {
    fn new(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("hoist-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = Host { dir };
        h.write("VERSION", "1.0\n");
        h.put(
            "environment.properties",
            "# agent environment\nlog.dir=/var/log/cloudstack/agent\n",
        );
        h.put(
            "agent.properties",
            "# agent\nresource=com.cloud.agent.resource.computing.LibvirtComputingResource\nhost=10.0.0.1\n",
        );
        h.put(
            "app.conf",
            "# mode: classic or modern\nmode = classic\nworkers=4\n",
        );
        h.put("log4j.xml", LOCAL);
        h.put("log4j.xml.dpkg-dist", UPSTREAM);
        h.write("log4j.xml.base", BASE);
        let d = h.dir.display();
        h.write(
            "recipe.toml",
            &format!(
                r#"[product]
name = "agent"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "install"
phase = "install"
exec = {{ shell = "echo 2.0 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > {d}/VERSION" }} }}

[[steps]]
id = "env-line"
phase = "configure"
file = {{ op = "ensure_line", path = "{d}/environment.properties", line = "paths.script=/usr/share/cloudstack-common" }}

[[steps]]
id = "agent-class"
phase = "configure"
file = {{ op = "replace", path = "agent.properties", pattern = 'com\.cloud\.agent\.resource\.computing\.LibvirtComputingResource', replacement = "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource" }}

[[steps]]
id = "set-mode"
phase = "configure"
file = {{ op = "set_key", path = "app.conf", key = "mode", value = "modern" }}

[[steps]]
id = "merge-log4j"
phase = "configure"
file = {{ op = "merge_new", path = "log4j.xml", base = "log4j.xml.base" }}

[[steps]]
id = "last"
phase = "post"
exec = {{ argv = ["true"] }}
undo = "none"
undo_reason = "it only looks"
"#
            ),
        );
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    /// A config file as a package leaves it for its service: 0640, owned by
    /// the service's user.
    fn put(&self, rel: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(rel);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&p, Some(UID), Some(GID)).unwrap();
        }
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn snapshot(&self) -> Snapshot {
        FILES
            .iter()
            .map(|f| {
                let p = self.path(f);
                let v = std::fs::read(&p).ok().map(|b| {
                    let m = std::fs::metadata(&p).unwrap();
                    (b, m.mode() & 0o7777, m.uid(), m.gid())
                });
                (f.to_string(), v)
            })
            .collect()
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
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The files after an uninterrupted upgrade.
fn assert_upgraded(h: &Host, what: &str) {
    assert_eq!(
        h.read("environment.properties"),
        "# agent environment\nlog.dir=/var/log/cloudstack/agent\npaths.script=/usr/share/cloudstack-common\n",
        "{what}"
    );
    assert_eq!(
        h.read("agent.properties"),
        "# agent\nresource=com.cloud.hypervisor.kvm.resource.LibvirtComputingResource\nhost=10.0.0.1\n",
        "{what}"
    );
    assert_eq!(
        h.read("app.conf"),
        "# mode: classic or modern\nmode = modern\nworkers=4\n",
        "{what}"
    );
    assert_eq!(h.read("log4j.xml"), MERGED, "{what}");
    assert!(!h.path("log4j.xml.dpkg-dist").exists(), "{what}");
    for f in &FILES[..4] {
        let m = std::fs::metadata(h.path(f)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640, "{what}: mode of {f}");
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (UID, GID), "{what}: owner of {f}");
        }
    }
}

#[test]
fn the_edits_and_a_clean_merge_keep_owner_and_mode() {
    let h = Host::new("plain");
    let o = h.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    // The merge kept the admin's DEBUG and took the package's new logger.
    assert_upgraded(&h, "upgrade");
    // No temporary file left beside the edited ones.
    let left: Vec<String> = std::fs::read_dir(&h.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hoist-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The run log says what changed, as a diff.
    let log = std::fs::read_to_string(h.path("state/runs/1.log")).unwrap();
    assert!(
        log.contains("+paths.script=/usr/share/cloudstack-common"),
        "{log}"
    );
}

#[test]
fn a_failure_after_the_edits_puts_back_bytes_owner_and_mode() {
    let h = Host::new("fail");
    let before = h.snapshot();
    let o = h.upgrade(&[("HOIST_TEST_FAIL_AT", "last")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("Rolled back"), "{t}");
    for step in STEPS {
        assert!(t.contains(&format!("[undo] {step}: undone")), "{step}: {t}");
    }
    assert_eq!(h.snapshot(), before);
    assert_eq!(h.read("VERSION"), "1.0\n");
}

#[test]
fn a_conflicting_merge_stops_with_the_diff_and_touches_nothing() {
    let h = Host::new("conflict");
    // The admin and the package changed the same line.
    h.put("log4j.xml.dpkg-dist", &BASE.replace("INFO", "WARN"));
    let before = h.snapshot();
    let o = h.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("merge conflict"), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");
    // The diff of the conflict, the three sides named.
    assert!(t.contains("+<<<<<<< "), "{t}");
    assert!(t.contains("\n   <level>DEBUG</level>"), "{t}");
    assert!(t.contains("+  <level>WARN</level>"), "{t}");
    assert!(t.contains("log4j.xml.dpkg-dist (packaged)"), "{t}");
    // The earlier edits were rolled back; the merge changed nothing.
    assert_eq!(h.snapshot(), before);
}

#[test]
fn no_merge_base_is_said_clearly() {
    let h = Host::new("no-base");
    let recipe = h
        .read("recipe.toml")
        .replace(", base = \"log4j.xml.base\"", "");
    h.write("recipe.toml", &recipe);
    let before = h.snapshot();
    let o = h.upgrade(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("no base for a 3-way merge of"), "{t}");
    assert_eq!(h.snapshot(), before);
}

#[test]
fn the_merge_base_can_come_from_the_old_deb() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("no dpkg-deb here: skipped");
        return;
    }
    let h = Host::new("deb");
    // The old package: log4j.xml as it shipped, at its installed path.
    let root = h.path("pkg");
    let inside = root.join(h.path("log4j.xml").strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(&inside, BASE).unwrap();
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: agent-test\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n",
    )
    .unwrap();
    let deb = h.path("agent-test_1.0_all.deb");
    let o = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_file(h.path("log4j.xml.base")).unwrap();
    let recipe = h.read("recipe.toml").replace(
        "base = \"log4j.xml.base\"",
        "base = \"agent-test_1.0_all.deb\"",
    );
    h.write("recipe.toml", &recipe);
    let o = h.upgrade(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(h.read("log4j.xml"), MERGED);
}

#[test]
fn the_plan_shows_each_diff() {
    let h = Host::new("plan");
    let recipe = h.path("recipe.toml");
    let o = h.hoist(&["plan", "-r", recipe.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let env = h.path("environment.properties");
    assert!(t.contains(&format!("--- {}", env.display())), "{t}");
    assert!(
        t.contains("+paths.script=/usr/share/cloudstack-common"),
        "{t}"
    );
    assert!(
        t.contains("-resource=com.cloud.agent.resource.computing.LibvirtComputingResource"),
        "{t}"
    );
    assert!(
        t.contains("+resource=com.cloud.hypervisor.kvm.resource.LibvirtComputingResource"),
        "{t}"
    );
    assert!(
        t.contains("-mode = classic") && t.contains("+mode = modern"),
        "{t}"
    );
    assert!(t.contains("+  <logger name=\"d\"/>"), "{t}");
    assert!(t.contains("undo built in"), "{t}");
    assert!(!t.contains("not yet supported"), "{t}");
    // Planning changed nothing.
    assert_eq!(
        h.read("app.conf"),
        "# mode: classic or modern\nmode = classic\nworkers=4\n"
    );
}

#[test]
fn killed_anywhere_resume_ends_upgraded() {
    for step in STEPS {
        for point in ["before", "after"] {
            let what = format!("{step}:{point}");
            let h = Host::new(&format!("kill-{step}-{point}"));
            let o = h.upgrade(&[("HOIST_TEST_CRASH_AT", &what)]);
            assert!(killed(&o), "{what} was not killed: {}", text(&o));
            let o = h.hoist(&["resume"], &[]);
            assert!(o.status.success(), "{what} resume: {}", text(&o));
            assert_upgraded(&h, &what);
        }
    }
}

#[test]
fn killed_anywhere_rollback_puts_everything_back() {
    for step in STEPS {
        for point in ["before", "after"] {
            let what = format!("{step}:{point}");
            let h = Host::new(&format!("kill-rb-{step}-{point}"));
            let before = h.snapshot();
            let o = h.upgrade(&[("HOIST_TEST_CRASH_AT", &what)]);
            assert!(killed(&o), "{what} was not killed: {}", text(&o));
            let o = h.hoist(&["rollback"], &[]);
            assert!(o.status.success(), "{what} rollback: {}", text(&o));
            assert_eq!(h.snapshot(), before, "{what}");
        }
    }
    // Killed while undoing: rollback again finishes, exactly.
    for step in STEPS {
        let h = Host::new(&format!("kill-undo-{step}"));
        let before = h.snapshot();
        let o = h.upgrade(&[
            ("HOIST_TEST_FAIL_AT", "last"),
            ("HOIST_TEST_CRASH_AT", &format!("{step}:undo")),
        ]);
        assert!(killed(&o), "{step}:undo was not killed: {}", text(&o));
        let o = h.hoist(&["rollback"], &[]);
        assert!(o.status.success(), "{step}:undo rollback: {}", text(&o));
        assert_eq!(h.snapshot(), before, "{step}:undo");
    }
}

#[test]
fn a_merge_interrupted_before_the_new_file_went_is_finished_not_redone() {
    // Killed after the merge was written, with the `.dpkg-dist` still there
    // (the crash fell between the two): resume removes it and keeps the
    // merge; rollback puts back the admin's file and the `.dpkg-dist`.
    for end in ["resume", "rollback"] {
        let h = Host::new(&format!("half-merge-{end}"));
        let before = h.snapshot();
        let o = h.upgrade(&[("HOIST_TEST_CRASH_AT", "merge-log4j:after")]);
        assert!(killed(&o), "{}", text(&o));
        h.put("log4j.xml.dpkg-dist", UPSTREAM);
        let o = h.hoist(&[end], &[]);
        assert!(o.status.success(), "{end}: {}", text(&o));
        if end == "resume" {
            assert_upgraded(&h, end);
            let log = std::fs::read_to_string(h.path("state/runs/1.log")).unwrap();
            assert!(log.contains("merged by an earlier attempt"), "{log}");
        } else {
            assert_eq!(h.snapshot(), before);
        }
    }
}

#[test]
fn a_linked_config_file_is_edited_where_it_points() {
    // The link stays a link, through the edit and through the rollback.
    for fail in [false, true] {
        let h = Host::new(&format!("link-{fail}"));
        std::fs::create_dir_all(h.path("shared")).unwrap();
        std::fs::rename(h.path("app.conf"), h.path("shared/app.conf")).unwrap();
        std::os::unix::fs::symlink("shared/app.conf", h.path("app.conf")).unwrap();
        let before = h.snapshot();
        let env: &[(&str, &str)] = if fail {
            &[("HOIST_TEST_FAIL_AT", "last")]
        } else {
            &[]
        };
        let o = h.upgrade(env);
        assert_eq!(o.status.success(), !fail, "{}", text(&o));
        let link = std::fs::symlink_metadata(h.path("app.conf")).unwrap();
        assert!(link.file_type().is_symlink(), "fail={fail}");
        if fail {
            assert_eq!(h.snapshot(), before);
        } else {
            assert_upgraded(&h, "through a link");
        }
    }
}
