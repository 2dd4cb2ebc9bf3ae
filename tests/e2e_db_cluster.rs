//! `db` `upgrade_cluster` and `drop_cluster` with Debian's real
//! postgresql-common on booted bookworm test hosts (PostgreSQL 15, cluster
//! 15/main online on port 5432). pg_upgradecluster upgrades a cluster to the
//! same major under another name (`--rename`), which is what these tests
//! do: 15/main -> 15/upgraded, through the same steps as 13 -> 15.
//!
//! Proven here: the upgrade (methods dump and upgrade) leaves the new
//! cluster online on the old port with the same data and the old one stopped
//! and set to manual start; a failure after it, and a cluster that lost rows
//! during it, put back the old cluster exactly (config bytes, owner, mode,
//! port, data, start mode and the units systemd generates from it) and
//! remove the new one; `replace_empty_target` refuses a target with data and changes
//! nothing, and its undo creates the empty target again; a crash in the
//! middle of pg_upgradecluster is resumed (the half-made cluster removed
//! first); `drop_cluster` drops, and a resume finds it done.

mod common;
use common::{install_hoist, sh};

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_testbed::{Host, Suite, Testbed};

fn recipe(step: &str) -> String {
    format!(
        r#"[product]
name = "pg"
version = {{ file = "/root/VERSION" }}

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "install"
phase = "install"
exec = {{ shell = "echo 2.0 > /root/VERSION" }}
undo = {{ exec = {{ shell = "echo 1.0 > /root/VERSION" }} }}

[[steps]]
id = "cluster"
phase = "migrate"
db = {step}

[[steps]]
id = "after"
phase = "verify"
exec = {{ argv = ["true"] }}
undo = "none"
undo_reason = "it only looks"
"#
    )
}

const UPGRADE: &str = r#"{ op = "upgrade_cluster", engine = "postgresql", from = "15", to = "15", cluster = "main", new_cluster = "upgraded" }"#;

/// One booted host with data in 15/main: a database `app`, tables in two
/// schemas (one name needing quotes), and the recipe with `step`.
fn host(step: &str) -> hoist_testbed::Result<(Testbed, Arc<Host>)> {
    let tb = Testbed::builder().host("pg", Suite::Bookworm).start()?;
    let h = tb.host("pg")?;
    // A throw-away host: no fsync in the clusters' initdb nor in the
    // servers (pg_upgradecluster copies the setting into the new cluster).
    sh(
        &h,
        "echo \"initdb_options = '--no-sync'\" >> /etc/postgresql-common/createcluster.conf && pg_conftool 15 main set fsync off && pg_ctlcluster 15 main restart",
    );
    wait_online(&h, "15", "main");
    psql(
        &h,
        "postgres",
        "CREATE DATABASE app; CREATE DATABASE other;",
    );
    psql(
        &h,
        "app",
        "CREATE TABLE items (id int PRIMARY KEY, name text); \
         INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 1000) g; \
         CREATE SCHEMA \"Odd schema\"; CREATE TABLE \"Odd schema\".\"a table\" (x int); \
         INSERT INTO \"Odd schema\".\"a table\" VALUES (1), (2), (3);",
    );
    psql(&h, "other", "CREATE TABLE empty (x int);");
    // The product's version, which the recipe's install step moves to 2.0.
    h.write_file("/root/VERSION", b"1.0\n", 0o644)?;
    install_hoist(&h, &recipe(step))?;
    Ok((tb, h))
}

fn psql(h: &Host, db: &str, sql: &str) -> String {
    sh(
        h,
        &format!(
            "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d {db} <<'SQL'\n{sql}\nSQL"
        ),
    )
}

/// Bounded: the cluster answers on its socket.
fn wait_online(h: &Host, version: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sh(
        h,
        &format!(
            "cd / && runuser -u postgres -- psql --cluster {version}/{name} -X -Atc 'SELECT 1' 2>/dev/null || true"
        ),
    )
    .contains('1')
    {
        assert!(
            Instant::now() < deadline,
            "{version}/{name} never came online"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a rollback must give back exactly: the clusters and their ports
/// and status, 15/main's config bytes, owner and mode, the units systemd
/// generates from start.conf, and every database on port 5432.
fn state(h: &Host) -> Vec<String> {
    vec![
        sh(h, "pg_lsclusters --no-header"),
        sh(
            h,
            "cd /etc/postgresql/15/main && sha256sum postgresql.conf start.conf && stat -c '%n %U:%G %a' postgresql.conf start.conf",
        ),
        sh(h, "ls /run/systemd/generator/postgresql.service.wants/"),
        sh(h, "ls /etc/postgresql/15 /var/lib/postgresql/15"),
        // pg_dumpall writes a random \restrict key in each plain dump.
        sh(
            h,
            "cd / && runuser -u postgres -- pg_dumpall -p 5432 | grep -v '^\\\\\\(un\\)\\?restrict'",
        ),
    ]
}

fn upgrade(h: &Host, env: &str) -> hoist_testbed::Result<(Option<i32>, String, String)> {
    let out = h.exec_unchecked(&format!(
        "{env} hoist upgrade --yes -r /root/recipe.toml < /dev/null"
    ))?;
    let log = sh(h, "cat /var/lib/hoist/runs/*.log 2>/dev/null || true");
    Ok((
        out.status.code(),
        format!("{}{}", out.stdout, out.stderr),
        log,
    ))
}

fn assert_put_back(h: &Host, before: &[String], log: &str) {
    let after = state(h);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, b, "{log}");
    }
    assert!(
        sh(h, "pg_lsclusters --no-header 15 main").contains("5432 online"),
        "{log}"
    );
    assert!(!sh(h, "ls /etc/postgresql/15 /var/lib/postgresql/15").contains("upgraded"));
}

#[test]
fn upgrades_a_cluster_then_a_failure_after_it_puts_the_old_one_back() -> hoist_testbed::Result<()> {
    let (tb, h) = host(UPGRADE)?;
    let before = state(&h);
    let plan = sh(&h, "hoist plan -r /root/recipe.toml");
    assert!(
        plan.contains(
            "upgrade PostgreSQL cluster 15/main to 15/upgraded (pg_upgradecluster, method dump)  [undo built in, timeout 6h]"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("15/main is kept, stopped, set to manual start"),
        "{plan}"
    );

    // Upgraded; hoist stops before the next step (killed), to look.
    let (code, out, log) = upgrade(&h, "HOIST_TEST_CRASH_AT=after:before")?;
    // bash's status for a child killed by SIGKILL.
    assert_eq!(code, Some(137), "{out}\n{log}");
    assert!(
        log.contains("15/main before the upgrade: 5 databases, 3 tables, 1003 rows (port 5432)"),
        "{log}"
    );
    assert!(
        log.contains("15/upgraded is online on port 5432 with the same 5 databases, 3 tables, 1003 rows as 15/main"),
        "{log}"
    );
    assert!(
        log.contains("run pg_upgradecluster -v 15 -m dump --rename upgraded 15 main"),
        "{log}"
    );
    // The new cluster serves on the old port with the same data; the old one
    // is kept, stopped, and will not start at boot.
    assert!(sh(&h, "pg_lsclusters --no-header 15 upgraded").contains("5432 online"));
    let old = sh(&h, "pg_lsclusters --no-header 15 main");
    assert!(old.contains(" down ") && !old.contains("5432"), "{old}");
    assert!(sh(&h, "grep -v '^#' /etc/postgresql/15/main/start.conf").contains("manual"));
    assert_eq!(
        psql(&h, "app", "SHOW data_directory"),
        "/var/lib/postgresql/15/upgraded\n"
    );
    assert_eq!(state(&h)[4], before[4], "the same databases on port 5432");

    // The next step fails: the rollback puts the old cluster back.
    let out = h.exec_unchecked("HOIST_TEST_FAIL_AT=after hoist resume < /dev/null")?;
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}\n{log}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("Rolled back"), "{}\n{log}", out.stdout);
    assert!(
        log.contains("run pg_dropcluster --stop 15 upgraded"),
        "{log}"
    );
    assert_put_back(&h, &before, &log);
    tb.teardown()?;
    Ok(())
}

#[test]
fn pg_upgradecluster_failing_half_way_is_undone_under_systemd() -> hoist_testbed::Result<()> {
    let (tb, h) = host(UPGRADE)?;
    // One of pg_upgradecluster's upgrade hooks fails once the new cluster
    // exists: it stops half way, leaving the old cluster running with
    // restricted connections, started by itself outside systemd (which
    // then refuses a `restart` of its unit).
    h.write_file(
        "/etc/postgresql-common/pg_upgradecluster.d/fail",
        b"#!/bin/sh\n[ \"$4\" = init ] || exit 0\necho 'site check failed' >&2\nexit 1\n",
        0o755,
    )?;
    let before = state(&h);
    let (code, out, log) = upgrade(&h, "")?;
    assert_eq!(code, Some(1), "{out}\n{log}");
    assert!(out.contains("Rolled back"), "{out}\n{log}");
    assert!(log.contains("site check failed"), "{log}");
    assert_put_back(&h, &before, &log);
    // Back under systemd, as before.
    sh(&h, "systemctl is-active --quiet postgresql@15-main");
    tb.teardown()?;
    Ok(())
}

#[test]
fn a_cluster_that_lost_rows_fails_the_step_and_is_undone() -> hoist_testbed::Result<()> {
    // pg_upgrade this time (`-m upgrade`), pg_dump and restore elsewhere.
    let (tb, h) = host(
        r#"{ op = "upgrade_cluster", engine = "postgresql", from = "15", to = "15", new_cluster = "upgraded", method = "upgrade" }"#,
    )?;
    // pg_upgradecluster's own hook, run as postgres once the new cluster is
    // up: it loses two rows, as a faulty upgrade would.
    h.write_file(
        "/etc/postgresql-common/pg_upgradecluster.d/lose-rows",
        b"#!/bin/sh\n[ \"$4\" = finish ] || exit 0\nexec psql --cluster \"$3/$2\" -X -q -d app -c 'DELETE FROM items WHERE id <= 2'\n",
        0o755,
    )?;
    let before = state(&h);
    let (code, out, log) = upgrade(&h, "")?;
    assert_eq!(code, Some(1), "{out}\n{log}");
    assert!(
        out.contains("15/upgraded does not hold what 15/main held: app: table public.items has 998 rows, had 1000"),
        "{out}\n{log}"
    );
    assert!(out.contains("Rolled back"), "{out}\n{log}");
    assert!(
        log.contains("run pg_upgradecluster -v 15 -m upgrade --rename upgraded 15 main"),
        "{log}"
    );
    assert_put_back(&h, &before, &log);
    tb.teardown()?;
    Ok(())
}

#[test]
fn replace_empty_target_refuses_data_and_puts_the_empty_target_back() -> hoist_testbed::Result<()> {
    let (tb, h) = host(
        r#"{ op = "upgrade_cluster", engine = "postgresql", from = "15", to = "15", new_cluster = "upgraded", method = "upgrade", replace_empty_target = true }"#,
    )?;
    // A target that holds a database is never dropped.
    sh(&h, "pg_createcluster 15 upgraded --start >/dev/null");
    wait_online(&h, "15", "upgraded");
    sh(
        &h,
        "cd / && runuser -u postgres -- psql --cluster 15/upgraded -X -q -c 'CREATE DATABASE keep'",
    );
    let target_port = sh(&h, "pg_conftool -s 15 upgraded show port");
    let before = state(&h);
    let (code, out, log) = upgrade(&h, "")?;
    assert_eq!(code, Some(1), "{out}\n{log}");
    assert!(
        out.contains(
            "15/upgraded is not empty (database keep): refusing to drop it; nothing was changed"
        ),
        "{out}\n{log}"
    );
    assert_eq!(state(&h), before, "{log}");
    assert!(!log.contains("run pg_"), "{log}");

    // Empty, it is dropped, and the undo creates it again on its port.
    sh(
        &h,
        "cd / && runuser -u postgres -- psql --cluster 15/upgraded -X -q -c 'DROP DATABASE keep'",
    );
    let before = state(&h);
    let (code, out, log) = upgrade(&h, "HOIST_TEST_FAIL_AT=after")?;
    assert_eq!(code, Some(1), "{out}\n{log}");
    assert!(
        log.contains(&format!(
            "dropped the empty 15/upgraded (port {}); the undo creates it again",
            target_port.trim()
        )),
        "{log}"
    );
    assert!(log.contains("created the empty 15/upgraded again"), "{log}");
    // The same clusters on the same ports, 15/main's files and data.
    assert_eq!(state(&h), before, "{log}");
    assert!(
        sh(&h, "pg_lsclusters --no-header 15 upgraded")
            .contains(&format!("{} online", target_port.trim())),
        "{log}"
    );
    tb.teardown()?;
    Ok(())
}

#[test]
fn a_crash_inside_pg_upgradecluster_is_resumed_from_a_clean_start() -> hoist_testbed::Result<()> {
    let (tb, h) = host(UPGRADE)?;
    // Holds pg_upgradecluster once the new cluster exists (its `init`
    // hooks run then), the first time only, bounded.
    h.write_file(
        "/etc/postgresql-common/pg_upgradecluster.d/hold",
        b"#!/bin/sh\n[ \"$4\" = init ] || exit 0\n[ -e /var/tmp/held ] && exit 0\ntouch /var/tmp/held\ni=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n",
        0o755,
    )?;
    let dump_before = sh(
        &h,
        "cd / && runuser -u postgres -- pg_dump -p 5432 app | grep -v '^\\\\\\(un\\)\\?restrict'",
    );
    sh(
        &h,
        "setsid nohup hoist upgrade --yes -r /root/recipe.toml > /root/out 2>&1 < /dev/null & echo $! > /root/hoist.pid",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sh(&h, "ls /var/tmp/held 2>/dev/null || true").contains("held") {
        assert!(
            Instant::now() < deadline,
            "pg_upgradecluster never got to its hooks: {}",
            sh(&h, "cat /root/out /var/lib/hoist/runs/1.log")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A crash: hoist and pg_upgradecluster's whole process group (hoist
    // gives each child its own), by their ids.
    sh(
        &h,
        "p=$(cat /root/hoist.pid); c=$(pgrep -P $p); kill -KILL $p; kill -KILL -- -$c; sleep 0.5",
    );
    assert!(sh(&h, "ls /etc/postgresql/15").contains("upgraded"));
    assert_eq!(
        sh(&h, "grep -v '^#' /etc/postgresql/15/main/start.conf"),
        "\nauto\n"
    );

    let log = common::resume_ok(&h);
    assert!(log.contains("probe says it is not applied"), "{log}");
    assert!(
        log.contains("15/upgraded is left from an interrupted attempt: dropping it"),
        "{log}"
    );
    assert!(sh(&h, "pg_lsclusters --no-header 15 upgraded").contains("5432 online"));
    assert!(sh(&h, "grep -v '^#' /etc/postgresql/15/main/start.conf").contains("manual"));
    let dump_after = sh(
        &h,
        "cd / && runuser -u postgres -- pg_dump -p 5432 app | grep -v '^\\\\\\(un\\)\\?restrict'",
    );
    assert_eq!(dump_after, dump_before);
    tb.teardown()?;
    Ok(())
}

#[test]
fn drop_cluster_drops_and_a_resume_finds_it_done() -> hoist_testbed::Result<()> {
    let (tb, h) =
        host(r#"{ op = "drop_cluster", engine = "postgresql", version = "15", cluster = "old" }"#)?;
    sh(&h, "pg_createcluster 15 old --start >/dev/null");
    let plan = sh(&h, "hoist plan -r /root/recipe.toml");
    assert!(
        plan.contains("drop PostgreSQL cluster 15/old (pg_dropcluster --stop)  [timeout 6h]\n"),
        "no undo is shown: {plan}"
    );
    assert!(
        plan.contains("irreversible: the cluster's data directory and configuration are deleted"),
        "{plan}"
    );
    let main_before = sh(&h, "pg_lsclusters --no-header 15 main");

    // Killed right after the drop: the resume asks whether it is done.
    let out = h.exec_unchecked(
        "HOIST_TEST_CRASH_AT=cluster:after hoist upgrade --yes -r /root/recipe.toml < /dev/null",
    )?;
    // bash's status for a child killed by SIGKILL.
    assert_eq!(out.status.code(), Some(137), "{}{}", out.stdout, out.stderr);
    assert!(!sh(&h, "ls /etc/postgresql/15 /var/lib/postgresql/15").contains("old"));
    let log = common::resume_ok(&h);
    assert!(
        log.contains("cluster was interrupted; its probe says it is applied"),
        "{log}"
    );
    assert_eq!(sh(&h, "pg_lsclusters --no-header 15 main"), main_before);

    // Gone already: a later run (1.0 put back, as after a reinstall) has
    // nothing to drop.
    sh(&h, "echo 1.0 > /root/VERSION");
    let (code, out, log) = upgrade(&h, "")?;
    assert_eq!(code, Some(0), "{out}\n{log}");
    assert!(
        log.contains("there is no cluster 15/old: nothing to drop"),
        "{log}"
    );
    tb.teardown()?;
    Ok(())
}
