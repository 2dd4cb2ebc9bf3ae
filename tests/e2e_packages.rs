//! `packages` and `repo` against the real apt and dpkg of a booted Debian
//! test host (systemd-nspawn, signed local repository): the upgrade keeps the
//! admin's changed conffile without a question and reports the new one; a
//! failure after it puts back the exact package versions, the sources and
//! the config bytes, offline from the kept .debs, and removes what the
//! upgrade installed and left.

mod common;
use common::{install_hoist, sh};

use hoist_testbed::{AptRepo, Host, PackageSpec, Suite, Testbed};

fn app(version: &str, conf: &str) -> PackageSpec {
    let mut p = PackageSpec::new("demo-app", version)
        .executable(
            "/usr/bin/demo-app",
            format!("#!/bin/sh\necho demo-app {version}\n"),
        )
        .conffile("/etc/demo-app.conf", conf);
    if version == "2.0" {
        p = p.depends("demo-helper");
    }
    p
}

fn version_of(h: &Host, pkg: &str) -> String {
    h.exec_unchecked(&format!(
        "dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {pkg}"
    ))
    .map(|o| o.stdout.trim().to_string())
    .unwrap_or_default()
}

const RECIPE: &str = r#"[product]
name = "demo-app"
version = { package = "demo-app" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "switch-suite"
phase = "pre"
repo = { op = "switch", file = "/etc/apt/sources.list.d/hoist-testbed.list", from = " app-1 ", to = " app-2 " }

[[steps]]
id = "refresh"
phase = "pre"
packages = { op = "update" }

[[steps]]
id = "upgrade"
phase = "install"
packages = { op = "dist-upgrade" }

[[steps]]
id = "works"
phase = "verify"
exec = { argv = ["demo-app"] }
undo = "none"
undo_reason = "it only checks the upgraded package works"
"#;

#[test]
fn apt_upgrade_keeps_local_config_and_rolls_back_exactly() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    repo.add("app-1", &app("1.0", "level=1\n"))?;
    // A vendor repository that keeps the previous release beside the new.
    repo.add("app-2", &app("1.0", "level=1\n"))?;
    repo.add("app-2", &app("2.0", "level=2\nnew=yes\n"))?;
    repo.add(
        "app-2",
        &PackageSpec::new("demo-helper", "2.0").file("/usr/share/demo-helper/README", "helper\n"),
    )?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("pkg", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("pkg")?;
    h.use_suites(&["app-1"])?;
    sh(&h, "apt-get update -q && apt-get install -q -y demo-app");
    // The admin's own change to the packaged config file.
    sh(&h, "printf 'level=1\\nlocal=edit\\n' > /etc/demo-app.conf");
    install_hoist(&h, RECIPE)?;
    let sources = sh(&h, "cat /etc/apt/sources.list.d/hoist-testbed.list");

    // A failure after the upgrade: everything back, offline.
    let out = h.exec_unchecked(
        "HOIST_TEST_FAIL_AT=works hoist upgrade --yes -r /root/recipe.toml < /dev/null",
    )?;
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}\n{log}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("Rolled back"), "{}\n{log}", out.stdout);
    assert_eq!(version_of(&h, "demo-app"), "ii 1.0");
    assert!(
        !version_of(&h, "demo-helper").starts_with("ii"),
        "the upgrade's new package stays"
    );
    assert_eq!(sh(&h, "cat /etc/demo-app.conf"), "level=1\nlocal=edit\n");
    assert_eq!(
        sh(&h, "cat /etc/apt/sources.list.d/hoist-testbed.list"),
        sources
    );
    assert_eq!(
        sh(&h, "ls /etc/demo-app.conf.* 2>/dev/null || true"),
        "",
        "leftovers of the undone upgrade"
    );

    // The upgrade itself: no question asked, the admin's file kept, the
    // package's new one beside it and reported.
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(version_of(&h, "demo-app"), "ii 2.0");
    assert_eq!(version_of(&h, "demo-helper"), "ii 2.0");
    assert_eq!(sh(&h, "cat /etc/demo-app.conf"), "level=1\nlocal=edit\n");
    assert_eq!(
        sh(&h, "cat /etc/demo-app.conf.dpkg-dist"),
        "level=2\nnew=yes\n"
    );
    let status = sh(&h, "hoist --json status");
    assert!(
        status.contains("\"kind\": \"conffiles\"")
            && status.contains("/etc/demo-app.conf.dpkg-dist"),
        "{status}"
    );
    tb.teardown()?;
    Ok(())
}

/// A daemon from another package preloading `libdemo.so`.
fn daemon(name: &str) -> PackageSpec {
    PackageSpec::new(name, "1.0").depends("demo-lib").unit(
        &format!("{name}.service"),
        "[Unit]\nDescription=stand-in daemon using libdemo\n\n[Service]\nExecStart=/bin/sh -c 'LD_PRELOAD=/usr/lib/demo/libdemo.so exec sleep infinity'\n\n[Install]\nWantedBy=multi-user.target\n",
    )
}

fn main_pid(h: &Host, unit: &str) -> String {
    sh(h, &format!("systemctl show -p MainPID --value {unit}"))
        .trim()
        .to_string()
}

#[test]
fn services_running_a_replaced_library_are_restarted_or_reported() -> hoist_testbed::Result<()> {
    // A real shared library, so the daemons really map it.
    let lib = std::fs::read("/usr/lib/x86_64-linux-gnu/libz.so.1").expect("zlib on this machine");
    let libpkg =
        |v: &str| PackageSpec::new("demo-lib", v).file("/usr/lib/demo/libdemo.so", lib.clone());
    let mut repo = AptRepo::new()?;
    repo.add("lib-1", &libpkg("1.0"))?;
    repo.add("lib-1", &daemon("demod"))?;
    repo.add("lib-1", &daemon("otherd"))?;
    repo.add("lib-2", &libpkg("1.0"))?;
    repo.add("lib-2", &libpkg("2.0"))?;
    repo.add("lib-2", &daemon("demod"))?;
    repo.add("lib-2", &daemon("otherd"))?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("lib", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("lib")?;
    h.use_suites(&["lib-1"])?;
    sh(
        &h,
        "apt-get update -q && apt-get install -q -y demod otherd",
    );
    let (demod, otherd) = (main_pid(&h, "demod"), main_pid(&h, "otherd"));
    assert_ne!(demod, "0");
    let recipe = r#"[product]
name = "demo-lib"
version = { package = "demo-lib" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[services]]
name = "demod"

[[steps]]
id = "switch-suite"
phase = "pre"
repo = { op = "switch", file = "/etc/apt/sources.list.d/hoist-testbed.list", from = " lib-1 ", to = " lib-2 " }

[[steps]]
id = "refresh"
phase = "pre"
packages = { op = "update" }

[[steps]]
id = "upgrade"
phase = "install"
packages = { op = "dist-upgrade" }
"#;
    install_hoist(&h, recipe)?;
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}\n{log}",
        out.stdout,
        out.stderr
    );
    // The product's own service was restarted onto the new library...
    assert_ne!(main_pid(&h, "demod"), demod, "{log}");
    assert!(
        log.contains("restart demod: it still ran replaced files"),
        "{log}"
    );
    // ...another one is reported and left running as it was.
    assert_eq!(main_pid(&h, "otherd"), otherd);
    let status = sh(&h, "hoist --json status");
    assert!(
        status.contains("\"kind\": \"stale-services\"") && status.contains("otherd.service"),
        "{status}"
    );
    tb.teardown()?;
    Ok(())
}

const RENAME_RECIPE: &str = r#"[product]
name = "demo"
version = { shell = "for p in demo-server demo-old-server; do v=$(dpkg-query -W -f='${Status} ${Version}' $p 2>/dev/null | sed -n 's/^install ok installed //p'); [ -n \"$v\" ] && { echo $v; exit 0; }; done; exit 1" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "switch-suite"
phase = "pre"
repo = { op = "switch", file = "/etc/apt/sources.list.d/hoist-testbed.list", from = " ren-1 ", to = " ren-2 " }

[[steps]]
id = "refresh"
phase = "pre"
packages = { op = "update" }

[[steps]]
id = "install-new-name"
phase = "install"
packages = { op = "install", names = ["demo-server"] }

[[steps]]
id = "works"
phase = "verify"
exec = { argv = ["demo-server"] }
undo = "none"
undo_reason = "it only checks the upgraded package works"
"#;

/// Seed 003's rename (`cloud-client` -> `cloudstack-management`, which
/// conflicts with and replaces it): a rollback brings the old name back,
/// although the new one conflicts with it until it is gone.
#[test]
fn a_rollback_brings_back_a_package_the_step_replaced_under_a_new_name() -> hoist_testbed::Result<()>
{
    let mut repo = AptRepo::new()?;
    let old = PackageSpec::new("demo-old-server", "1.0")
        .executable("/usr/bin/demo-old-server", "#!/bin/sh\necho old 1.0\n")
        .conffile("/etc/demo-old/server.conf", "port=1\n");
    repo.add("ren-1", &old)?;
    repo.add("ren-2", &old)?;
    repo.add(
        "ren-2",
        &PackageSpec::new("demo-server", "2.0")
            .executable("/usr/bin/demo-server", "#!/bin/sh\necho new 2.0\n")
            .conflicts("demo-old-server")
            .replaces("demo-old-server"),
    )?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("ren", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("ren")?;
    h.use_suites(&["ren-1"])?;
    sh(
        &h,
        "apt-get update -q && apt-get install -q -y demo-old-server",
    );
    install_hoist(&h, RENAME_RECIPE)?;
    let out = h.exec_unchecked(
        "HOIST_TEST_FAIL_AT=works hoist upgrade --yes -r /root/recipe.toml < /dev/null",
    )?;
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}\n{log}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("Rolled back"), "{}\n{log}", out.stdout);
    assert_eq!(version_of(&h, "demo-old-server"), "ii 1.0", "{log}");
    assert!(
        !version_of(&h, "demo-server").starts_with("ii"),
        "the new name stays: {log}"
    );
    assert_eq!(sh(&h, "cat /etc/demo-old/server.conf"), "port=1\n");
    assert_eq!(sh(&h, "demo-old-server"), "old 1.0\n");
    tb.teardown()?;
    Ok(())
}
