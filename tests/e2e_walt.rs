//! WalT 4 -> 5 (seed 004) with the shipped recipe (recipes/walt, from
//! hoist's Debian package), proven as a real Debian 11 -> 12 upgrade on
//! booted test hosts: a bullseye host with PostgreSQL 13 and the stand-in
//! WalT 4 (pip-installed, holding rows in the `walt` database) is moved to
//! bookworm, PostgreSQL 15 and the stand-in WalT 5 Debian package by one
//! command, through a real `apt-get dist-upgrade` from a local mirror of
//! bookworm's packages, a real `pg_upgradecluster` 13 -> 15 and a real
//! reboot after which the run goes on by itself.
//!
//! Two hosts, one per test: the plain upgrade; and a power cut in the
//! middle of the dist-upgrade (the admin types `hoist resume`, which
//! repairs dpkg and goes on) followed by a real pg_upgradecluster failure
//! (the run stops, the old cluster intact and serving, `hoist status` says
//! what to do) and, once fixed, `hoist resume` to the end.
//!
//! Each test prints the wall time of every phase from the journal's step
//! timestamps (`cargo test --test e2e_walt -- --nocapture`).

mod common;
use common::{hoist_static_deb, install_hoist_deb, sh};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hoist_testbed::products::walt;
use hoist_testbed::{AptRepo, Host, Image, ImageSpec, Suite, Testbed, leftovers, wait_for};

/// The recipe as hoist's Debian package installs it.
const RECIPE: &str = "/usr/share/hoist/recipes/walt";
/// The whole upgrade, dist-upgrade and reboot included, is bounded by this.
const UPGRADE_BOUND: Duration = Duration::from_secs(40 * 60);

/// The repository: bullseye's and bookworm's packages as the hosts' Debian
/// mirror (suites `bullseye` and `bookworm`), and the WalT stand-ins.
fn repo() -> AptRepo {
    let bullseye = Image::ensure(&ImageSpec::new(Suite::Bullseye)).expect("bullseye image");
    let bookworm = Image::ensure(&walt::os_mirror_image()).expect("bookworm mirror image");
    let mut repo = AptRepo::new().expect("repository");
    repo.add_os_mirror(&bullseye).expect("bullseye mirror");
    repo.add_os_mirror(&bookworm).expect("bookworm mirror");
    walt::add_to(&mut repo).expect("WalT stand-ins");
    repo.publish().expect("publish");
    repo
}

/// A WalT 4 server on bullseye: Debian's sources in /etc/apt/sources.list
/// (what the seed's `sed` switches), WalT 5's suite in sources.list.d, WalT
/// 4 installed with pip and set up as its own unit, rows in `walt`, hoist
/// installed from its (statically linked) package.
fn walt4(tb: &Testbed, name: &str) -> Arc<Host> {
    let h = tb.host(name).expect("host");
    h.write_file(
        "/etc/apt/sources.list",
        b"deb file:/srv/hoist-repo bullseye main\n",
        0o644,
    )
    .expect("sources.list");
    h.use_suites(&[walt::SUITE_V5]).expect("walt-5 suite");
    sh(&h, "apt-get update -q");
    // A throw-away host: no fsync in PostgreSQL (the harness's power cut
    // keeps the page cache, so nothing written is lost either way).
    sh(
        &h,
        "pg_conftool 13 main set fsync off && pg_ctlcluster 13 main restart",
    );
    sh(
        &h,
        &format!(
            "pip3 install -q --no-index {} && walt-server-setup",
            walt::WHEEL_V4
        ),
    );
    let (code, body) = h.http_get(walt::PORT, "/health").expect("health");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"version\": \"4.0\""), "{body}");
    // Real rows: 2,000 nodes, and some whose text needs care (quotes,
    // backslashes, tabs, non-ASCII, NULL).
    psql(
        &h,
        "INSERT INTO nodes SELECT format('00:16:3e:%s:%s', lpad(to_hex(g / 256), 2, '0'), lpad(to_hex(g % 256), 2, '0')), \
         'rpi-' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'rpi-default-' || (g % 5) END FROM generate_series(1, 2000) g; \
         INSERT INTO nodes VALUES ('aa:bb', 'O''Brien \\ tab\there', 'ünïcødé ✓'), ('aa:bc', 'line\nbreak', NULL);",
    );
    install_hoist_deb(&h, hoist_static_deb()).expect("hoist");
    h
}

fn psql(h: &Host, sql: &str) -> String {
    sh(
        h,
        &format!(
            "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d walt <<'SQL'\n{sql}\nSQL"
        ),
    )
}

/// Every row of WalT 4's table, in full (the columns v4 had: v5 adds one).
fn walt_rows(h: &Host) -> String {
    psql(
        h,
        "COPY (SELECT mac, name, image FROM nodes ORDER BY mac) TO STDOUT",
    )
}

/// The PostgreSQL clusters, as `pg_lsclusters` says: version, name, port
/// and status, one per line.
fn clusters(h: &Host) -> String {
    sh(
        h,
        "pg_lsclusters --no-header | awk '{ print $1, $2, $3, $4 }'",
    )
}

/// Starts hoist detached (a reboot ends any SSH session), its output in
/// /root/<out>.
fn detached(h: &Host, args: &str, out: &str) {
    sh(
        h,
        &format!("setsid nohup hoist {args} > /root/{out} 2>&1 < /dev/null &"),
    );
}

/// `hoist --json status` once the run is committed, waiting (bounded) for
/// the reboot and for the resume that runs at boot.
fn wait_committed(h: &Host, boots: u64, out: &str) -> serde_json::Value {
    let why = || {
        h.exec_unchecked(&format!(
            "tail -n 30 /root/{out}; hoist status; journalctl -u hoist-resume --no-pager | tail -n 30; tail -n 60 /var/lib/hoist/runs/*.log"
        ))
        .map(|o| o.stdout)
        .unwrap_or_default()
    };
    if let Err(e) = h.wait_for_boot(boots, UPGRADE_BOUND) {
        panic!("{}: no reboot: {e}\n{}", h.name(), why());
    }
    let status = wait_for(
        "the run to be committed",
        Duration::from_secs(15 * 60),
        Duration::from_secs(2),
        || {
            let s = h.exec_unchecked("hoist --json status").ok()?.stdout;
            let v: serde_json::Value = serde_json::from_str(&s).ok()?;
            match v["run"]["state"].as_str()? {
                "committed" => Some(Ok(v)),
                "failed" | "rolled-back" | "rollback-failed" => Some(Err(s)),
                _ => None,
            }
        },
    );
    match status {
        Ok(Ok(v)) => v,
        Ok(Err(s)) => panic!("{}: the run did not commit: {s}\n{}", h.name(), why()),
        Err(e) => panic!("{}: {e}\n{}", h.name(), why()),
    }
}

/// The host as WalT 5 on bookworm must be after the upgrade.
fn upgraded(h: &Host, rows: &str) {
    assert_eq!(
        sh(h, ". /etc/os-release && echo $VERSION_ID $VERSION_CODENAME"),
        "12 bookworm\n"
    );
    // 15/main serves on the default port; 13/main is gone.
    let cl = clusters(h);
    assert!(cl.contains("15 main 5432 online"), "{cl}");
    assert!(!cl.contains("13 "), "{cl}");
    assert_eq!(
        psql(
            h,
            "SELECT current_setting('server_version_num')::int / 10000"
        )
        .trim(),
        "15"
    );
    assert_eq!(walt_rows(h), rows, "PostgreSQL 15 holds every row v4 had");
    // WalT 5, the Debian package, migrated the schema, enabled and answering.
    assert_eq!(
        sh(h, "dpkg-query -W -f '${Version}' walt-server walt-client"),
        "5.05.0"
    );
    sh(h, "! python3 -m pip show walt-server 2>/dev/null");
    sh(h, "systemctl is-enabled --quiet walt-server");
    sh(h, "systemctl is-active --quiet walt-server");
    let (code, body) = h.http_get(walt::PORT, "/health").expect("health");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"version\": \"5.0\""), "{body}");
    assert!(body.contains("\"schema\": 2,"), "{body}");
    // The real container tools the seed installs after the OS upgrade.
    sh(h, "podman --version && buildah --version");
    sh(h, "dpkg --audit | (! grep .)");
    // Nothing left to resume again, nobody told an upgrade runs.
    assert_eq!(
        sh(
            h,
            "ls /etc/systemd/system/hoist-resume.service /var/lib/hoist/reboot-pending.json /etc/motd.d/hoist 2>/dev/null || true"
        ),
        ""
    );
}

fn time(v: &serde_json::Value) -> Option<SystemTime> {
    humantime::parse_rfc3339(v.as_str()?).ok()
}

/// The step's start and end in the journal.
fn span(status: &serde_json::Value, key: &str) -> (SystemTime, SystemTime) {
    let steps = status["run"]["steps"].as_array().expect("steps");
    let s = steps
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key}"));
    assert_eq!(s["state"], "done", "{key}: {s}");
    (
        time(&s["started_at"]).expect("started_at"),
        time(&s["finished_at"]).expect("finished_at"),
    )
}

/// The old cluster was dropped only after the new one was verified, WalT 5
/// ran on it, and every verify step passed: the journal's order.
fn dropped_after_verified(status: &serde_json::Value) {
    let (_, verified) = span(status, "verify-cluster");
    let (_, up) = span(status, "walt-server-up");
    let (dropped, _) = span(status, "drop-old-cluster");
    assert!(verified <= up && up <= dropped, "{status}");
}

/// Wall time of each phase (first start to last end of its steps) and of
/// the whole run, from the journal, printed.
fn phase_times(name: &str, status: &serde_json::Value) {
    let steps = status["run"]["steps"].as_array().expect("steps");
    let mut phases: Vec<(String, SystemTime, SystemTime)> = Vec::new();
    for s in steps {
        let (Some(a), Some(b)) = (time(&s["started_at"]), time(&s["finished_at"])) else {
            continue;
        };
        let phase = s["phase"].as_str().unwrap_or("?").to_string();
        match phases.iter_mut().find(|p| p.0 == phase) {
            Some(p) => {
                p.1 = p.1.min(a);
                p.2 = p.2.max(b);
            }
            None => phases.push((phase, a, b)),
        }
    }
    let secs = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default().as_secs_f64();
    println!("{name}: wall time per phase (journal)");
    for (phase, a, b) in &phases {
        println!("  {phase:<9} {:>8.1} s", secs(*a, *b));
    }
    for key in ["upgrade-os", "upgrade-cluster", "reboot"] {
        let (a, b) = span(status, key);
        println!("  step {key:<16} {:>8.1} s", secs(a, b));
    }
    let start = time(&status["run"]["started_at"]).expect("run start");
    let end = time(&status["run"]["finished_at"]).expect("run end");
    println!("  total     {:>8.1} s", secs(start, end));
}

#[test]
fn bullseye_walt4_to_bookworm_walt5_in_one_command_with_its_reboot() {
    let repo = repo();
    let tb = Testbed::builder()
        .host("walt", Suite::Bullseye)
        .repo(&repo)
        .start()
        .expect("testbed");
    let run_id = tb.run_id().to_owned();
    let h = walt4(&tb, "walt");
    let rows = walt_rows(&h);
    assert_eq!(rows.lines().count(), 2002);
    let plan = sh(&h, &format!("hoist plan -r {RECIPE}"));
    assert!(plan.contains("walt-server: 4.0 -> 5"), "{plan}");
    assert!(
        plan.contains("in /etc/apt/sources.list: bullseye -> bookworm"),
        "{plan}"
    );
    assert!(
        plan.contains("upgrade PostgreSQL cluster 13/main to 15/main"),
        "{plan}"
    );

    let boots = h.boots();
    // The seed's "copy the dump off this host, then confirm" is a person's
    // gate: --yes alone would pause there; the admin confirms it at launch.
    detached(
        &h,
        &format!("upgrade --yes --confirm point-of-no-return -r {RECIPE}"),
        "upgrade.out",
    );
    let status = wait_committed(&h, boots, "upgrade.out");
    assert!(
        sh(&h, "cat /root/upgrade.out").contains("resumes by itself at boot"),
        "{}",
        sh(&h, "cat /root/upgrade.out")
    );
    upgraded(&h, &rows);
    dropped_after_verified(&status);
    // The dump the seed takes first is there, and holds the walt database.
    sh(
        &h,
        "pg_restore --list /var/backups/walt/walt-db.dump | grep -q 'TABLE DATA public nodes'",
    );
    phase_times("one command", &status);

    drop(h);
    tb.teardown().expect("teardown");
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// Packages dpkg has upgraded since the upgrade began, from its log. A
/// probe may fail while libc6 is half unpacked (its new libc.so.6 beside
/// the old loader): that counts as not yet.
fn upgraded_by_dpkg(h: &Host, log_lines_before: usize) -> usize {
    h.exec_unchecked(&format!(
        "tail -n +{} /var/log/dpkg.log | grep -c ' upgrade '",
        log_lines_before + 1
    ))
    .ok()
    .and_then(|o| o.stdout.trim().parse().ok())
    .unwrap_or(0)
}

#[test]
fn power_cut_in_the_dist_upgrade_then_a_failed_cluster_upgrade() {
    let repo = repo();
    let tb = Testbed::builder()
        .host("cut", Suite::Bullseye)
        .repo(&repo)
        .start()
        .expect("testbed");
    let run_id = tb.run_id().to_owned();
    let h = walt4(&tb, "cut");
    let rows = walt_rows(&h);
    let dpkg_log: usize = sh(&h, "wc -l < /var/log/dpkg.log").trim().parse().unwrap();

    // The power goes out in the middle of the dist-upgrade: once dpkg has
    // upgraded 60 packages (of about 200), bounded.
    detached(
        &h,
        &format!("upgrade --yes --confirm point-of-no-return -r {RECIPE}"),
        "upgrade.out",
    );
    wait_for(
        "dpkg in the middle of the dist-upgrade",
        Duration::from_secs(20 * 60),
        Duration::from_millis(200),
        || (upgraded_by_dpkg(&h, dpkg_log) >= 60).then_some(()),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {}",
            sh(&h, "tail -n 20 /root/upgrade.out; hoist status")
        )
    });
    tb.crash(&h).expect("power cut and boot");
    h.wait_ready(hoist_testbed::BOOT_TIMEOUT)
        .expect("the half-upgraded host boots");
    assert!(sh(&h, "hoist status").contains("interrupted"));

    // Before the admin resumes, a fault the cluster upgrade will meet: one
    // of pg_upgradecluster's own upgrade hooks (where sites put their
    // scripts) fails once the new cluster exists, so pg_upgradecluster
    // stops half way.
    h.write_file(
        "/etc/postgresql-common/pg_upgradecluster.d/site-check",
        b"#!/bin/sh\n[ \"$4\" = init ] || exit 0\necho 'site-check: the image store is not mounted' >&2\nexit 1\n",
        0o755,
    )
    .expect("hook");
    // Typed by the admin, bounded: the rest of the dist-upgrade runs in it.
    let out = h
        .exec_timeout(
            "NO_COLOR=1 hoist resume < /dev/null 2>&1; echo \"exit $?\"",
            UPGRADE_BOUND,
        )
        .unwrap_or_else(|e| panic!("hoist resume: {e}"))
        .stdout;
    let log = sh(&h, "cat /var/lib/hoist/runs/1.log");
    // dpkg was repaired and the dist-upgrade finished: the host is bookworm.
    assert!(
        log.contains("repairing with dpkg --configure -a"),
        "{out}\n{log}"
    );
    assert_eq!(
        sh(&h, ". /etc/os-release && echo $VERSION_ID"),
        "12\n",
        "{out}"
    );
    let audit = sh(&h, "dpkg --audit");
    assert!(audit.trim().is_empty(), "{audit}\n{out}\n{log}");
    // The cluster upgrade failed and stopped the run, not rolled back past
    // the dist-upgrade; the old cluster is intact and serves walt as before.
    assert!(out.ends_with("exit 1\n"), "{out}\n{log}");
    assert!(
        out.contains("step upgrade-cluster failed")
            && out.contains(
                "Not rolled back: the upgrade is past its point of no return (upgrade-os"
            ),
        "{out}"
    );
    let cl = clusters(&h);
    assert!(cl.contains("13 main 5432 online"), "{cl}");
    assert!(!cl.contains("15 main 5432"), "{cl}");
    assert_eq!(
        psql(
            &h,
            "SELECT current_setting('server_version_num')::int / 10000"
        )
        .trim(),
        "13"
    );
    assert_eq!(walt_rows(&h), rows, "the old cluster is intact");
    // What to do, in words.
    let status = sh(&h, "hoist status");
    assert!(
        status.contains("at upgrade-cluster (migrate): undone")
            && status.contains("site-check")
            && status.contains(
                "next: step upgrade-cluster failed and what it changed was undone; the upgrade is past its point of no return (upgrade-os: Debian has no downgrade: the system is upgraded to bookworm), so it cannot be rolled back. Read the error and the log, fix the cause, then `hoist resume` to go on from upgrade-cluster"
            ),
        "{status}"
    );
    let rb = h
        .exec_unchecked("hoist rollback < /dev/null 2>&1")
        .expect("rollback");
    assert_ne!(rb.status.code(), Some(0), "{}", rb.stdout);
    assert!(rb.stdout.contains("cannot be rolled back"), "{}", rb.stdout);
    assert_eq!(walt_rows(&h), rows);

    // Fixed: the run goes on from the cluster upgrade, through the reboot.
    sh(
        &h,
        "rm /etc/postgresql-common/pg_upgradecluster.d/site-check",
    );
    let boots = h.boots();
    detached(&h, "resume", "resume.out");
    let status = wait_committed(&h, boots, "resume.out");
    upgraded(&h, &rows);
    dropped_after_verified(&status);
    phase_times("power cut, failure, resumes", &status);

    drop(h);
    tb.teardown().expect("teardown");
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
}
