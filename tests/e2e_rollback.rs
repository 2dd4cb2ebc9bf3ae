//! Rollback is exact, on a booted Debian test host with its own PostgreSQL:
//! an upgrade that fails after the packages, a config file and the database
//! were changed leaves the same package versions, the same config bytes,
//! owner and mode, and the same database contents (dump comparison) as
//! before it started.

mod common;
use common::{install_hoist, sh};

use hoist_testbed::{AptRepo, Host, PackageSpec, Suite, Testbed};

fn app(version: &str, conf: &str) -> PackageSpec {
    PackageSpec::new("demo-app", version)
        .executable(
            "/usr/bin/demo-app",
            format!("#!/bin/sh\necho demo-app {version}\n"),
        )
        .conffile("/etc/demo-app.conf", conf)
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
id = "backup"
phase = "backup"
db = { op = "backup", engine = "postgresql", database = "app", dump = "/var/backups/app.dump", credentials = { os_user = "postgres" } }

[[steps]]
id = "upgrade"
phase = "install"
packages = { op = "dist-upgrade" }

[[steps]]
id = "migrate"
phase = "migrate"
db = { op = "sql", engine = "postgresql", database = "app", sql = "ALTER TABLE items ADD COLUMN slug text; UPDATE items SET slug = lower(name), name = upper(name);", credentials = { os_user = "postgres" } }
undo = { db = { op = "restore", engine = "postgresql", database = "app", dump = "/var/backups/app.dump", credentials = { os_user = "postgres" } } }

[[steps]]
id = "configure"
phase = "configure"
file = { op = "set_key", path = "/etc/demo-app.conf", key = "level", value = "3" }

[[steps]]
id = "works"
phase = "verify"
exec = { argv = ["demo-app"] }
undo = "none"
undo_reason = "it only checks the upgraded package works"
"#;

/// What must be exactly as before: versions, config bytes and metadata,
/// the database's contents.
fn state(h: &Host) -> (String, String, String, String) {
    (
        sh(h, "dpkg-query -W -f '${Package} ${Version}\\n' demo-app"),
        sh(h, "cat /etc/demo-app.conf"),
        sh(h, "stat -c '%U:%G %a' /etc/demo-app.conf"),
        // pg_dump writes a random \restrict key in each plain dump.
        sh(
            h,
            "runuser -u postgres -- pg_dump --create app | grep -v '^\\\\\\(un\\)\\?restrict'",
        ),
    )
}

#[test]
fn a_failed_upgrade_leaves_packages_config_and_database_exactly_as_before()
-> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    repo.add("app-1", &app("1.0", "level=1\n"))?;
    repo.add("app-2", &app("1.0", "level=1\n"))?;
    repo.add("app-2", &app("2.0", "level=2\n"))?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("db", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let h = tb.host("db")?;
    h.use_suites(&["app-1"])?;
    sh(&h, "apt-get update -q && apt-get install -q -y demo-app");
    sh(
        &h,
        "printf 'level=1\\nlocal=edit\\n' > /etc/demo-app.conf && chown nobody:nogroup /etc/demo-app.conf && chmod 640 /etc/demo-app.conf",
    );
    sh(
        &h,
        "systemctl start postgresql && for i in $(seq 50); do runuser -u postgres -- psql -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done",
    );
    sh(
        &h,
        "runuser -u postgres -- psql -q -c 'CREATE DATABASE app' && runuser -u postgres -- psql -q -d app -c \"CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'phone'), (2, 'trunk'), (3, 'queue');\"",
    );
    install_hoist(&h, RECIPE)?;
    let before = state(&h);

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
    assert_eq!(state(&h), before, "{log}");

    // The same upgrade without the failure really changes all three.
    let out = h.exec_unchecked("hoist upgrade --yes -r /root/recipe.toml < /dev/null")?;
    assert_eq!(out.status.code(), Some(0), "{}{}", out.stdout, out.stderr);
    let after = state(&h);
    assert!(after.0.contains("demo-app 2.0"), "{}", after.0);
    assert_eq!(after.1, "level=3\nlocal=edit\n");
    assert_eq!(after.2, "nobody:nogroup 640\n");
    assert!(after.3.contains("PHONE"), "{}", after.3);
    tb.teardown()?;
    Ok(())
}
