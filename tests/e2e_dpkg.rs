//! An interrupted dpkg on a booted Debian test host: a new upgrade refuses
//! it with the diagnosis before anything changes; hoist's own run, killed
//! together with dpkg in the middle of a package's configuration, is
//! repaired (`dpkg --configure -a`) and finished by `hoist resume`; killed
//! in the middle of a package's unpack, `hoist resume` installs that
//! package again from apt's cache and goes forward.

mod common;
use common::{install_hoist, sh};

use std::time::{Duration, Instant};

use hoist_testbed::{AptRepo, Host, PackageSpec, Suite, Testbed};

/// Waits (bounded) until the slow postinst runs, then kills apt, dpkg and
/// it with SIGKILL, as a crash would.
fn kill_mid_configure(h: &Host, also: &str) {
    kill_during(h, "slowpost.postinst", also)
}

/// Waits (bounded) until a process matching `script` runs, then kills it,
/// `also`, apt-get and dpkg with SIGKILL.
fn kill_during(h: &Host, script: &str, also: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sh(
        h,
        &format!("pgrep -f '{script}' >/dev/null && echo yes || true"),
    )
    .contains("yes")
    {
        assert!(
            Instant::now() < deadline,
            "the postinst never ran: {}",
            sh(h, "cat /root/out 2>/dev/null || true")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sh(
        h,
        &format!(
            "pkill -9 -f '{also}' || true; pkill -9 -x apt-get || true; pkill -9 -x dpkg || true; pkill -9 -f '{script}' || true"
        ),
    );
}

const RECIPE: &str = r#"[product]
name = "slowpost"
version = { file = "/root/VERSION" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "install"
phase = "install"
packages = { op = "install", names = ["slowpost"] }

[[steps]]
id = "record-version"
phase = "install"
exec = { shell = "echo 2.0 > /root/VERSION" }
undo = { exec = { shell = "echo 1.0 > /root/VERSION" } }
"#;

#[test]
fn an_interrupted_dpkg_is_refused_or_repaired_on_resume() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    let pkg = PackageSpec::new("slowpost", "1.0")
        .file("/usr/share/slowpost/README", "slow\n")
        .postinst("if [ -e /root/slow ]; then sleep 60; fi");
    repo.add("s", &pkg)?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("d", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("d")?;
    h.use_suites(&["s"])?;
    sh(&h, "apt-get update -q");
    install_hoist(&h, RECIPE)?;
    h.write_file("/root/VERSION", b"1.0\n", 0o644)?;

    // Someone else's apt-get, killed while configuring.
    sh(
        &h,
        "touch /root/slow; setsid nohup apt-get install -q -y slowpost > /root/out 2>&1 < /dev/null &",
    );
    kill_mid_configure(&h, "apt-get install");
    assert!(
        !sh(&h, "dpkg --audit").trim().is_empty(),
        "dpkg should be half-done"
    );
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("dpkg was interrupted") && said.contains("dpkg --configure -a"),
        "{said}"
    );
    let history: serde_json::Value =
        serde_json::from_str(&sh(&h, "hoist --json history")).expect("history is JSON");
    assert_eq!(
        history["runs"],
        serde_json::json!([]),
        "refused before any run"
    );
    sh(
        &h,
        "rm /root/slow; dpkg --configure -a; apt-get remove -q -y slowpost",
    );

    // hoist's own run, killed with dpkg: resume repairs and finishes.
    sh(
        &h,
        "touch /root/slow; setsid nohup hoist upgrade --yes -r /root/recipe.toml > /root/out 2>&1 < /dev/null &",
    );
    kill_mid_configure(&h, "hoist upgrade");
    assert!(!sh(&h, "dpkg --audit").trim().is_empty());
    sh(&h, "rm /root/slow");
    let log = common::resume_ok(&h);
    assert!(log.contains("repairing with dpkg --configure -a"), "{log}");
    assert!(sh(&h, "dpkg --audit").trim().is_empty());
    assert!(sh(&h, "dpkg-query -W -f '${db:Status-Abbrev}' slowpost").starts_with("ii"));
    assert_eq!(sh(&h, "cat /root/VERSION"), "2.0\n");
    tb.teardown()?;
    Ok(())
}

const UNPACK_RECIPE: &str = r#"[product]
name = "slowunpack"
version = { package = "slowunpack" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "download"
phase = "prepare"
packages = { op = "download", names = ["needsit", "slowunpack"] }

[[steps]]
id = "install"
phase = "install"
packages = { op = "install", names = ["needsit", "slowunpack"] }
"#;

/// A power cut can fall inside a package's unpack: dpkg leaves it
/// half-installed, which `dpkg --configure -a` cannot finish. Resume
/// installs it again from the .deb the run downloaded, and goes forward.
#[test]
fn killed_mid_unpack_resume_goes_forward() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    let v1 = PackageSpec::new("slowunpack", "1.0").file("/usr/share/slowunpack/VERSION", "1.0\n");
    let v2 = PackageSpec::new("slowunpack", "2.0")
        .file("/usr/share/slowunpack/VERSION", "2.0\n")
        .preinst("if [ -e /root/slow ]; then sleep 60; fi");
    // A package that needs the new version exactly, unpacked before it: a
    // cut during the unpack of the one it needs leaves it unconfigurable.
    let n1 = PackageSpec::new("needsit", "1.0").depends("slowunpack (= 1.0)");
    let n2 = PackageSpec::new("needsit", "2.0").depends("slowunpack (= 2.0)");
    repo.add("one", &v1)?;
    repo.add("one", &n1)?;
    repo.add("two", &v2)?;
    repo.add("two", &n2)?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("u", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("u")?;
    h.use_suites(&["one"])?;
    sh(
        &h,
        "apt-get update -q && apt-get install -q -y slowunpack needsit",
    );
    install_hoist(&h, UNPACK_RECIPE)?;
    // 2.0 is published; 1.0 stays available, as on a mirror.
    h.use_suites(&["one", "two"])?;
    sh(&h, "apt-get update -q");

    sh(
        &h,
        "touch /root/slow; setsid nohup hoist upgrade --yes -r /root/recipe.toml > /root/out 2>&1 < /dev/null &",
    );
    // The new version's preinst runs while dpkg unpacks it.
    kill_during(&h, "tmp.ci/preinst", "hoist upgrade");
    let status = sh(&h, "dpkg-query -W -f '${db:Status-Abbrev}' slowunpack");
    assert_eq!(
        status.as_bytes().get(1),
        Some(&b'H'),
        "half-installed: {status:?}"
    );
    assert!(!sh(&h, "dpkg --audit").trim().is_empty());
    sh(&h, "rm /root/slow");

    let log = common::resume_ok(&h);
    assert!(
        log.contains("installing the half-installed packages again"),
        "{log}"
    );
    assert!(sh(&h, "dpkg --audit").trim().is_empty());
    assert_eq!(
        sh(
            &h,
            "dpkg-query -W -f '${db:Status-Abbrev}${Version}' slowunpack"
        ),
        "ii 2.0"
    );
    assert_eq!(sh(&h, "cat /usr/share/slowunpack/VERSION"), "2.0\n");
    assert!(
        sh(&h, "hoist status").contains("committed"),
        "{}",
        sh(&h, "hoist status")
    );
    tb.teardown()?;
    Ok(())
}
