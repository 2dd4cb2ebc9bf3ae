//! The `repo` action through the binary, on real files with a real key made
//! by gpg: switch, add and key, their built-in undo (byte for byte, mode
//! kept), a re-run after a crash that does not switch twice, and a key with
//! the wrong fingerprint, or revoked by its owner, refused with everything
//! put back.

mod common;
use common::{gpg_revoke, hoist_in, text};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An ed25519 key made by gpg in its own home: (armored key, fingerprint).
fn make_key(dir: &Path) -> (String, String) {
    let home = dir.join("gnupg-test");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "gpg {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    gpg(&[
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Archive <archive@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let armored = gpg(&["--armor", "--export"]);
    let fpr = gpg(&["--with-colons", "--list-keys"])
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    (armored, fpr)
}

fn setup(name: &str, fingerprint_override: Option<&str>) -> Dir {
    let dir = std::env::temp_dir().join(format!("hoist-repo-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("keyrings")).unwrap();
    let d = dir.display().to_string();
    std::fs::write(dir.join("VERSION"), "4.2.0\n").unwrap();
    std::fs::write(
        dir.join("sources.list"),
        "# CloudStack\ndeb http://cloudstack.apt-get.eu/ubuntu precise 4.2\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("sources.list"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let (armored, fpr) = make_key(&dir);
    std::fs::write(dir.join("archive.asc"), armored).unwrap();
    let fpr = fingerprint_override.map(String::from).unwrap_or(fpr);
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            r#"[product]
name = "cs"
version = {{ file = "{d}/VERSION" }}

[[paths]]
id = "main"
from = "4.2.*"
to = "4.2.1"

[[steps]]
id = "switch"
phase = "pre"
repo = {{ op = "switch", file = "{d}/sources.list", from = "precise 4.2", to = "precise 4.2.1", key = {{ file = "{d}/archive.asc", keyring = "{d}/keyrings/cloudstack.gpg", fingerprint = "{fpr}" }} }}

[[steps]]
id = "extra-source"
phase = "pre"
repo = {{ op = "add", file = "{d}/extra.list", content = "deb http://extra.example.invalid/debian bookworm main" }}

[[steps]]
id = "bump"
phase = "install"
exec = {{ shell = "echo 4.2.1 > {d}/VERSION" }}
undo = {{ exec = {{ shell = "echo 4.2.0 > {d}/VERSION" }} }}
"#
        ),
    )
    .unwrap();
    Dir(dir)
}

fn hoist(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = hoist_in(&dir.join("state"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn upgrade(dir: &Path, env: &[(&str, &str)]) -> Output {
    let r = dir.join("recipe.toml");
    hoist(dir, &["upgrade", "--yes", "-r", r.to_str().unwrap()], env)
}

fn snapshot(dir: &Path) -> (Vec<u8>, u32, bool, bool) {
    let s = dir.join("sources.list");
    (
        std::fs::read(&s).unwrap(),
        std::fs::metadata(&s).unwrap().permissions().mode() & 0o777,
        dir.join("keyrings/cloudstack.gpg").exists(),
        dir.join("extra.list").exists(),
    )
}

#[test]
fn switch_add_and_key_apply_and_roll_back_exactly() {
    let d = setup("apply", None);
    let dir = &d.0;
    let before = snapshot(dir);
    let o = upgrade(dir, &[("HOIST_TEST_FAIL_AT", "bump")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        snapshot(dir),
        before,
        "rollback must put back bytes, mode, absence"
    );

    let o = upgrade(dir, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let sources = std::fs::read_to_string(dir.join("sources.list")).unwrap();
    let keyring = format!("{}/keyrings/cloudstack.gpg", dir.display());
    assert_eq!(
        sources,
        format!(
            "# CloudStack\ndeb [signed-by={keyring}] http://cloudstack.apt-get.eu/ubuntu precise 4.2.1\n"
        )
    );
    assert_eq!(
        std::fs::metadata(dir.join("sources.list"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // The keyring is binary (dearmored), as apt's signed-by wants.
    let key = std::fs::read(&keyring).unwrap();
    assert!(!key.starts_with(b"-----BEGIN"));
    assert_eq!(
        std::fs::read_to_string(dir.join("extra.list")).unwrap(),
        "deb http://extra.example.invalid/debian bookworm main\n"
    );
}

#[test]
fn a_switch_re_run_after_a_crash_does_not_switch_twice() {
    let d = setup("crash", None);
    let dir = &d.0;
    for point in ["before", "after"] {
        let o = upgrade(dir, &[("HOIST_TEST_CRASH_AT", &format!("switch:{point}"))]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
        let o = hoist(dir, &["resume"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let sources = std::fs::read_to_string(dir.join("sources.list")).unwrap();
        assert!(
            sources.contains("precise 4.2.1\n") && !sources.contains("4.2.1.1"),
            "{point}: {sources}"
        );
        // Back to the start for the next point.
        let o = hoist(dir, &["history"], &[]);
        assert!(o.status.success());
        std::fs::write(dir.join("VERSION"), "4.2.0\n").unwrap();
        std::fs::write(
            dir.join("sources.list"),
            "# CloudStack\ndeb http://cloudstack.apt-get.eu/ubuntu precise 4.2\n",
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("extra.list"));
    }
}

#[test]
fn a_key_with_another_fingerprint_is_refused_and_nothing_changes() {
    let d = setup(
        "wrong-key",
        Some("0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567"),
    );
    let dir = &d.0;
    let before = snapshot(dir);
    let o = upgrade(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refused"), "{}", text(&o));
    assert_eq!(snapshot(dir), before);
}

#[test]
fn a_revoked_key_is_refused_and_nothing_changes() {
    let d = setup("revoked-key", None);
    let dir = &d.0;
    let home = dir.join("gnupg-test");
    let fpr = std::fs::read_to_string(dir.join("recipe.toml"))
        .unwrap()
        .split("fingerprint = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    gpg_revoke(&home, &fpr);
    let o = Command::new("gpg")
        .arg("--homedir")
        .arg(&home)
        .args(["--batch", "--armor", "--export"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(dir.join("archive.asc"), &o.stdout).unwrap();
    let before = snapshot(dir);
    let o = upgrade(dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("key {fpr} is revoked by its owner")) && out.contains("refused"),
        "{out}"
    );
    assert_eq!(snapshot(dir), before);
}
