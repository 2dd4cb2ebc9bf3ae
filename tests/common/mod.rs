//! Helpers shared by the integration tests.
// Each test binary uses a part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use hoist_testbed::Host;

/// A hoist command isolated from the caller: no colour, and none of the
/// caller's `HOIST_*` variables (the test-only hooks among them), so a test
/// sets exactly the ones it means. No metrics file either (an empty
/// `HOIST_METRICS_DIR`): a machine with node_exporter keeps its own.
pub fn clean_env(c: &mut Command) -> &mut Command {
    c.env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HOIST_") {
            c.env_remove(k);
        }
    }
    c.env("HOIST_METRICS_DIR", "")
}

/// `clean_env` plus a state directory of the test's own.
pub fn with_state<'a>(c: &'a mut Command, state_dir: &Path) -> &'a mut Command {
    clean_env(c).arg("--state-dir").arg(state_dir)
}

/// The hoist binary, isolated, with its state in `state_dir`.
pub fn hoist_in(state_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
    with_state(&mut c, state_dir);
    c
}

/// `hoist ARGS` with its state in `state_dir` and `env` set, to its end.
pub fn run_hoist(state_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = hoist_in(state_dir);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `hoist upgrade --yes -r RECIPE EXTRA...`, as [`run_hoist`].
pub fn run_upgrade(
    state_dir: &Path,
    recipe: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec!["upgrade", "--yes", "-r", recipe.to_str().unwrap()];
    args.extend(extra);
    run_hoist(state_dir, &args, env)
}

/// Standard output then standard error, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Killed by SIGKILL (the HOIST_TEST_CRASH_AT hook).
pub fn killed(o: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal() == Some(9)
}

/// Runs a script on the host; its standard output, or a panic naming it.
pub fn sh(h: &Host, script: &str) -> String {
    h.exec(script)
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .stdout
}

/// Builds the Debian package of this build's hoist into `out` with
/// `scripts/build-deb --binary`; the package's path.
pub fn build_deb(out: &Path) -> PathBuf {
    build_deb_of(Path::new(env!("CARGO_BIN_EXE_hoist")), out)
}

/// Builds the Debian package of the hoist binary `binary` into `out`.
pub fn build_deb_of(binary: &Path, out: &Path) -> PathBuf {
    let o = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-deb"))
        .arg("--binary")
        .arg(binary)
        .arg("--out")
        .arg(out)
        // The package only travels to a test host: light compression.
        .env("DPKG_DEB_COMPRESSOR_LEVEL", "1")
        .output()
        .expect("scripts/build-deb");
    assert!(o.status.success(), "scripts/build-deb: {}", text(&o));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// The Debian package of this build's hoist, built once per test binary.
pub fn hoist_deb() -> &'static [u8] {
    static DEB: OnceLock<Vec<u8>> = OnceLock::new();
    DEB.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "deb-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let deb = build_deb(&dir);
        let bytes = std::fs::read(&deb).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

/// The Debian package of hoist linked statically (`-C
/// target-feature=+crt-static`), for hosts of an older Debian release than
/// the build machine: the test build needs the build machine's glibc
/// (bookworm's 2.36), which a bullseye host (2.31) does not have. Built
/// once per test binary, with cargo, into its own target directory (kept
/// between runs, so only the first build is long).
pub fn hoist_static_deb() -> &'static [u8] {
    static DEB: OnceLock<Vec<u8>> = OnceLock::new();
    DEB.get_or_init(|| {
        const TRIPLE: &str = "x86_64-unknown-linux-gnu";
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("static-hoist");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let o = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--offline", "--bin", "hoist", "--target", TRIPLE])
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("cargo build");
        assert!(o.status.success(), "static hoist: {}", text(&o));
        let bin = target.join(TRIPLE).join("debug/hoist");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "deb-static-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let deb = build_deb_of(&bin, &dir);
        let bytes = std::fs::read(&deb).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

/// Installs hoist on the host from the Debian package `deb` (`dpkg -i`).
pub fn install_hoist_deb(h: &Host, deb: &[u8]) -> hoist_testbed::Result<()> {
    h.write_file("/root/hoist.deb", deb, 0o644)?;
    h.exec("dpkg -i /root/hoist.deb && rm /root/hoist.deb")
        .map(|_| ())
}

/// Installs this build's hoist on the host from its Debian package
/// (`dpkg -i`: /usr/bin/hoist, on PATH, and the bundled recipes under
/// /usr/share/hoist/recipes) and writes the recipe at /root/recipe.toml.
pub fn install_hoist(h: &Host, recipe: &str) -> hoist_testbed::Result<()> {
    h.write_file("/root/hoist.deb", hoist_deb(), 0o644)?;
    h.exec("dpkg -i /root/hoist.deb && rm /root/hoist.deb")?;
    h.write_file("/root/recipe.toml", recipe.as_bytes(), 0o644)
}

/// `hoist resume` on the host, which must end well; the run's log.
pub fn resume_ok(h: &Host) -> String {
    let out = h
        .exec_unchecked("hoist resume < /dev/null")
        .expect("hoist resume runs");
    let log = sh(h, "cat /var/lib/hoist/runs/1.log");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}\n{log}",
        out.stdout,
        out.stderr
    );
    log
}

/// Revokes the key `fpr` of the GnuPG home `home` with the revocation
/// certificate gpg made along with the key (`openpgp-revocs.d/FPR.rev`,
/// its armor line prefixed with `:` so it is not imported by mistake).
pub fn gpg_revoke(home: &Path, fpr: &str) {
    let cert = home.join(format!("openpgp-revocs.d/{fpr}.rev"));
    let armored = std::fs::read_to_string(&cert).unwrap();
    let usable = home.join("revoke.asc");
    std::fs::write(
        &usable,
        armored.replace(":-----BEGIN PGP", "-----BEGIN PGP"),
    )
    .unwrap();
    let o = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--import"])
        .arg(&usable)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gpg --import {}: {}",
        usable.display(),
        text(&o)
    );
}

/// hoist without its debug information: what is copied to each host
/// (31 MB instead of 160). One file per build of hoist, kept between runs
/// (named after the build's size and time), written by a rename.
pub fn small_hoist() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_BIN_EXE_hoist"));
        let meta = std::fs::metadata(src).unwrap();
        let stamp = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let p = tmp.join(format!("hoist-stripped-{}-{stamp}", meta.len()));
        if !p.exists() {
            let part = tmp.join(format!("hoist-stripped.{}", std::process::id()));
            std::fs::copy(src, &part).unwrap();
            let o = Command::new("strip").arg(&part).output().expect("strip");
            assert!(o.status.success(), "strip: {}", text(&o));
            std::fs::rename(&part, &p).unwrap();
        }
        p
    })
}
