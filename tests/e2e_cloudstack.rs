//! Issue 8: seed 003's CloudStack 4.3 upgrade by the shipped recipe
//! (`recipes/cloudstack`), driven by one `hoist fleet upgrade --yes` over
//! real SSH across management servers, usage servers and KVM hosts that
//! share a MariaDB server on its own host (see `cloudstack/mod.rs`).
//!
//! - 4.2.1 on the full cloud (2 management, 1 usage, 3 KVM): the rollout
//!   waits at the system VM template gate, with nothing stopped, until the
//!   template rows appear; then every host is upgraded, in the guide's
//!   order across hosts, read from the hosts' own journals.

mod cloudstack;
mod common;

use std::time::{Duration, Instant};

use cloudstack::{Cloud, Running, Template, Topology, dpkg_known, dpkg_version, host_runs, sql};
use common::{sh, text};
use hoist_testbed::Host;
use hoist_testbed::products::cloudstack as cs;

/// Seconds since the epoch of a time as hoist's journal or `date` writes it.
fn epoch(h: &Host, at: &str) -> f64 {
    sh(h, &format!("date -d {} +%s.%N", cloudstack::shq(at)))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{at}: {e}"))
}

/// When systemd began stopping `unit` on `h` after `since` (seconds since
/// the epoch), from the host's journal.
fn stopped_after(h: &Host, unit: &str, since: f64) -> Option<f64> {
    let out = sh(
        h,
        &format!(
            "journalctl -q -u {unit}.service -o short-unix --no-pager | grep -E 'Stopping|Stopped' || true"
        ),
    );
    out.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .find(|t| *t >= since)
}

fn now(h: &Host) -> f64 {
    sh(h, "date +%s.%N").trim().parse().unwrap()
}

fn active(h: &Host, unit: &str) -> bool {
    h.exec_unchecked(&format!("systemctl is-active --quiet {unit}"))
        .expect("exec")
        .success()
}

/// The host's only run of the rollout: committed, to `to`.
fn the_run(h: &Host, to: &str) -> serde_json::Value {
    let runs = host_runs(h);
    assert_eq!(runs.len(), 1, "{}: {runs:#?}", h.name());
    assert_eq!(runs[0]["state"], "committed", "{}: {}", h.name(), runs[0]);
    // `--to 4.3` is the series: the run says which release it took.
    let got = runs[0]["to"].as_str().unwrap_or("");
    assert!(
        got == to || got.starts_with(&format!("{to}.")),
        "{}: to {got}",
        h.name()
    );
    let st = sh(
        h,
        "set -- /var/lib/hoist/fleet/*/hoist; \"$1\" --json status",
    );
    serde_json::from_str::<serde_json::Value>(&st).unwrap()["run"].clone()
}

/// When the step `key` of `run` started.
fn step_started(h: &Host, run: &serde_json::Value, key: &str) -> f64 {
    let s = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{}: no step {key}", h.name()));
    assert_eq!(s["state"], "done", "{}: {s}", h.name());
    epoch(h, s["started_at"].as_str().unwrap())
}

/// The cloud at 4.3 everywhere: packages, services, configuration, the
/// database's rows.
fn assert_upgraded(cloud: &Cloud, to: &str) {
    let db = cloud.db_host();
    for n in &cloud.management {
        let h = cloud.host(n);
        assert_eq!(dpkg_version(&h, "cloudstack-management"), to, "{n}");
        assert_eq!(dpkg_version(&h, "cloudstack-common"), to, "{n}");
        assert!(active(&h, "cloudstack-management"), "{n}");
        let (code, body) = h.http_get(cs::MANAGEMENT_PORT, "/client/").unwrap();
        assert_eq!(code, 200, "{n}: {body}");
        assert!(
            body.contains(&format!("\"version\": \"{to}\"")),
            "{n}: {body}"
        );
        assert!(!dpkg_known(&h, "cloud-client"), "{n}: cloud-client left");
    }
    for n in &cloud.usage {
        let h = cloud.host(n);
        assert_eq!(dpkg_version(&h, "cloudstack-usage"), to, "{n}");
        assert!(active(&h, "cloudstack-usage"), "{n}");
        assert!(!dpkg_known(&h, "cloud-usage"), "{n}: cloud-usage left");
    }
    for n in &cloud.kvm {
        let h = cloud.host(n);
        assert_eq!(dpkg_version(&h, "cloudstack-agent"), to, "{n}");
        assert!(active(&h, "cloudstack-agent"), "{n}");
        assert!(!dpkg_known(&h, "cloud-agent"), "{n}: cloud-agent left");
        let env = sh(&h, "cat /etc/cloudstack/agent/environment.properties");
        assert!(
            env.lines()
                .any(|l| l == "paths.script=/usr/share/cloudstack-common"),
            "{n}: {env}"
        );
        let props = sh(&h, "cat /etc/cloudstack/agent/agent.properties");
        assert!(
            props.contains(&format!("resource={}", cs::resource_class("4.3.2"))),
            "{n}: {props}"
        );
    }
    // The database: upgraded to the target's schema, the 4.3 rows
    // Complete, the KVM local storage paths without their slash, the API
    // port closed again, the system VMs restarted.
    assert_eq!(
        sql(&db, "SELECT max(version) FROM cloud.schema_version"),
        [cs::cloud_schema_version(to).to_string()]
    );
    assert_eq!(
        sql(
            &db,
            &format!("SELECT step FROM cloud.version WHERE version = '{to}'")
        ),
        ["Complete"]
    );
    assert_eq!(
        sql(
            &db,
            "SELECT COUNT(*) FROM cloud.storage_pool WHERE pool_type = 'Filesystem' AND path LIKE '%/'"
        ),
        ["0"]
    );
    assert_eq!(
        sql(
            &db,
            "SELECT DISTINCT path FROM cloud.storage_pool WHERE pool_type = 'Filesystem'"
        ),
        ["/var/lib/libvirt/images"]
    );
    assert_eq!(
        sql(
            &db,
            "SELECT path FROM cloud.storage_pool WHERE name = 'primary'"
        ),
        ["/export/primary/"],
        "only local storage paths lose their slash"
    );
    assert_eq!(
        sql(
            &db,
            "SELECT value FROM cloud.configuration WHERE name = 'integration.api.port'"
        ),
        ["NULL"]
    );
}

/// The order across hosts, from the hosts' journals (systemd's and
/// hoist's): every usage and management server stopped (after `since`)
/// before the first management server's first install step `install`;
/// management 1 finished before management 2 started; usage servers after
/// the management servers; KVM hosts after the usage servers, the first
/// one alone. What the rollout stopped was recorded, then set aside.
fn assert_order(cloud: &Cloud, since: f64, install: &str, to: &str) {
    let (ms, us, _) = cs::services(&cloud.version);
    let runs: Vec<(String, serde_json::Value)> = cloud
        .cloudstack_hosts()
        .into_iter()
        .map(|n| {
            let r = the_run(&cloud.host(&n), to);
            (n, r)
        })
        .collect();
    let run = |n: &str| &runs.iter().find(|(m, _)| m == n).unwrap().1;
    let t = |n: &str, k: &str| epoch(&cloud.host(n), run(n)[k].as_str().unwrap());
    let first = &cloud.management[0];
    let install = step_started(&cloud.host(first), run(first), install);
    for (n, unit) in cloud
        .management
        .iter()
        .map(|n| (n, ms))
        .chain(cloud.usage.iter().map(|n| (n, us)))
    {
        let stop = stopped_after(&cloud.host(n), unit, since)
            .unwrap_or_else(|| panic!("{n}: {unit} never stopped"));
        assert!(
            stop < install,
            "{n} stopped at {stop}, after {first}'s install at {install}"
        );
        // The record of what the rollout stopped is set aside, naming
        // this host's server (what a fleet rollback would start again).
        let set_aside = sh(
            &cloud.host(n),
            "test ! -e /var/lib/hoist-cloudstack/stopped-by-rollout && \
             cat /var/lib/hoist-cloudstack/stopped-by-rollout.done",
        );
        assert_eq!(set_aside.trim(), unit, "{n}");
    }
    for w in cloud.management.windows(2) {
        assert!(t(&w[0], "finished_at") < t(&w[1], "started_at"), "{w:?}");
    }
    let last_mgmt = cloud.management.last().unwrap();
    for u in &cloud.usage {
        assert!(t(last_mgmt, "finished_at") < t(u, "started_at"), "{u}");
        for k in &cloud.kvm {
            assert!(t(u, "finished_at") < t(k, "started_at"), "{k}");
        }
    }
    for k in cloud.kvm.iter().skip(1) {
        assert!(t(&cloud.kvm[0], "finished_at") < t(k, "started_at"), "{k}");
    }
}

/// Seed 003 L3403-3436, read from the hosts' journals: every KVM host's
/// run ended before the one wait for every host to be Up began, on the
/// first management server; then `cloudstack-sysvmadm` ran once, there,
/// and no management server's own run took either step.
fn assert_zone_steps_once_after_every_agent(cloud: &Cloud) {
    let first = cloud.host(&cloud.management[0]);
    // The run-once step's directory is made when it starts.
    let began: f64 = sh(
        &first,
        "stat -c %.9Z /var/lib/hoist/fleet/*/once-every-host-up",
    )
    .trim()
    .parse()
    .unwrap();
    for k in &cloud.kvm {
        let h = cloud.host(k);
        let run = the_run(&h, "4.3.2");
        let ended = epoch(&h, run["finished_at"].as_str().unwrap());
        assert!(
            ended <= began,
            "{k}'s upgrade ended at {ended}, after the hosts-Up wait began at {began}"
        );
    }
    let log = sh(&first, "cat /var/log/cloudstack/management/sysvmadm.log");
    assert_eq!(
        log.matches("Stopping and starting 1 running routing vm(s)")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("Done restarting router(s)."), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    for (i, n) in cloud.management.iter().enumerate() {
        let h = cloud.host(n);
        for key in ["hosts-up", "restart-system-vms", "api-port-8096"] {
            assert_eq!(step_state(&h, key), "skipped", "{n}: {key}");
        }
        if i > 0 {
            sh(
                &h,
                "test ! -e /var/log/cloudstack/management/sysvmadm.log && \
                 ! ls -d /var/lib/hoist/fleet/*/once-restart-system-vms-once 2>/dev/null",
            );
        }
    }
}

/// The state of step `key` in the host's run.
fn step_state(h: &Host, key: &str) -> String {
    let st = sh(
        h,
        "set -- /var/lib/hoist/fleet/*/hoist; \"$1\" --json status",
    );
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    v["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .map(|s| s["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("{}: no step {key}", h.name()))
}

#[test]
fn from_4_2_the_full_cloud_waits_for_the_template_then_upgrades_in_the_guides_order() {
    let t0 = Instant::now();
    let cloud = Cloud::build("4.2", &Topology::full(), "4.2.1", Template::Missing);
    let built = t0.elapsed();
    // The admin's own edit: the line the guide says to check is missing on
    // one KVM host.
    sh(
        &cloud.host("kvm2"),
        "sed -i '/^paths.script=/d' /etc/cloudstack/agent/environment.properties",
    );
    let mgmt1 = cloud.host("mgmt1");
    let since = now(&mgmt1);

    let child = Running::spawn(cloud.upgrade_command(Some("4.3.2")));

    // The rollout waits at the gate: nothing stopped, no host's upgrade
    // started, while the gate's query on the first management server
    // answers 1 (one zone's KVM lacks its template) again and again.
    let asked = || -> usize {
        let o = mgmt1
            .exec_unchecked(
                "cat /var/lib/hoist/fleet/*/once-system-vm-template-registered/output.log 2>/dev/null \
                 | grep -c 'returned \"1\"' || true",
            )
            .expect("exec");
        o.stdout.trim().parse().unwrap_or(0)
    };
    let start = Instant::now();
    while asked() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the rollout never reached the gate"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let before = asked();
    std::thread::sleep(Duration::from_secs(12));
    assert!(asked() > before, "the gate stopped asking");
    let j = cloud.status_json();
    assert_eq!(j["state"], "running", "{j}");
    assert_eq!(j["done"], serde_json::json!([]), "{j}");
    assert_eq!(j["running"], serde_json::json!([]), "{j}");
    for n in cloud.cloudstack_hosts() {
        let h = cloud.host(&n);
        assert!(
            host_runs(&h).is_empty(),
            "{n} started its upgrade before the gate opened"
        );
        let unit = match n.chars().next() {
            Some('m') => "cloudstack-management",
            Some('u') => "cloudstack-usage",
            _ => "cloudstack-agent",
        };
        assert!(
            active(&h, unit),
            "{n}: {unit} stopped while the gate was closed"
        );
        assert_eq!(dpkg_version(&h, "cloudstack-common"), "4.2.1", "{n}");
    }

    // The admin registers the template in the UI of the running cloud.
    cloud.register_template();
    let out = child.finish();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let rollout = start.elapsed();
    let j = cloud.status_json();
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(
        j["done"],
        serde_json::json!(cloud.cloudstack_hosts()),
        "{j}"
    );
    assert_upgraded(&cloud, "4.3.2");

    assert_order(&cloud, since, "management-upgrade-apt", "4.3.2");
    assert_zone_steps_once_after_every_agent(&cloud);
    // Shown while they ran, through the controller: the restart's log
    // lines, and where the fleet's template gate stood while it waited.
    assert!(
        said.lines()
            .any(|l| l.contains("mgmt1: restart-system-vms-once: ")
                && l.contains("Done restarting router(s).")),
        "no followed log line in\n{said}"
    );
    assert!(
        !said.contains("mgmt2: restart-system-vms"),
        "the restart ran on mgmt2 too:\n{said}"
    );
    assert!(
        said.lines().any(|l| l.contains(
            "mgmt1: system-vm-template-registered: waiting, 0s of at most 6h: cloud returned \"1\""
        )),
        "no progress of the template gate in\n{said}"
    );
    assert_eq!(
        sql(
            &cloud.db_host(),
            "SELECT MIN(update_count) FROM cloud.vm_instance WHERE type <> 'User'"
        ),
        ["1"],
        "once, on one management server (seed L3420)"
    );
    eprintln!(
        "4.2 full cloud: built in {:.0} s, rollout {:.0} s, test {:.0} s",
        built.as_secs_f64(),
        rollout.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    cloud.teardown();
}

/// What every path from before 4.1 leaves: the admin's db.properties
/// carried to /etc/cloudstack by the new package, the old packages purged.
fn assert_moved_from_etc_cloud(cloud: &Cloud) {
    let db_addr = cloud.db_host().addr().to_string();
    for n in &cloud.management {
        let p = sh(
            &cloud.host(n),
            "cat /etc/cloudstack/management/db.properties",
        );
        assert!(p.contains(&format!("db.cloud.host={db_addr}")), "{n}: {p}");
        assert!(p.contains("db.cloud.username=cloud"), "{n}: {p}");
    }
    // The agent's copied log4j-cloud.xml gave way to the packaged one
    // (seed L1930-1942), the copy kept beside it.
    for n in &cloud.kvm {
        let h = cloud.host(n);
        let now = sh(&h, "cat /etc/cloudstack/agent/log4j-cloud.xml");
        assert!(
            now.contains("/var/log/cloudstack/agent/agent.log"),
            "{n}: {now}"
        );
        let old = sh(&h, "cat /etc/cloudstack/agent/log4j-cloud.xml.dpkg-old");
        assert!(old.contains("/var/log/cloud/agent/agent.log"), "{n}: {old}");
    }
}

/// The KVM steps of sections F and G (3.0.x, 2.2.14): the resource class
/// renamed, the bridges renamed by cloudstack-agent-upgrade, the qemu
/// hook installed, libvirtd restarted.
fn assert_kvm_legacy_steps(cloud: &Cloud) {
    for n in &cloud.kvm {
        let h = cloud.host(n);
        let props = sh(&h, "cat /etc/cloudstack/agent/agent.properties");
        assert!(
            props.contains("private.network.device=breth0-100"),
            "{n}: {props}"
        );
        assert!(
            !props.contains("com.cloud.agent.resource.computing"),
            "{n}: {props}"
        );
        sh(
            &h,
            "cmp /usr/share/cloudstack-agent/lib/libvirtqemuhook /etc/libvirt/hooks/qemu && test -x /etc/libvirt/hooks/qemu",
        );
        let log = sh(&h, "cat /var/log/cloudstack/agent/agent-upgrade.log");
        assert!(
            log.contains("renamed bridge cloudVirBr100 to breth0-100"),
            "{n}: {log}"
        );
        assert!(
            stopped_after(&h, "libvirtd", 0.0).is_some(),
            "{n}: libvirtd never restarted"
        );
    }
}

/// One small cloud (1 management, 1 usage, 1 KVM and the database) from
/// `from`, upgraded to `to` by one rollout; the end state checked. The
/// management server meets the person's gate `person` when given: with
/// `--yes` and nobody to confirm, the rollout pauses with that host
/// waiting, then `hoist fleet resume --confirm GATE@HOST` goes on. The
/// cloud is returned for the path's own checks.
fn small_cloud_upgrade(from: &str, to: &str, person: Option<&str>) -> Cloud {
    let t0 = Instant::now();
    let cloud = Cloud::build(from, &Topology::small(), from, Template::Registered);
    let built = t0.elapsed();
    let mut out = cloudstack::bounded(cloud.upgrade_command(Some(to)));
    if let Some(gate) = person {
        assert_eq!(out.status.code(), Some(3), "{from}: {}", text(&out));
        let st = cloud.status_json();
        assert_eq!(st["state"], "paused", "{st}");
        let waiting = &st["waiting"];
        assert_eq!(waiting[0]["host"], "mgmt1", "{st}");
        assert!(
            waiting[0]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(&format!("waits for a person at gate {gate}: "))),
            "{st}"
        );
        // The rest of the rollout did not start while it waits.
        assert!(
            st["untouched"].as_array().is_some_and(|u| !u.is_empty()),
            "{st}"
        );
        out = cloudstack::bounded(cloud.fleet(&["resume", "--confirm", &format!("{gate}@mgmt1")]));
    }
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{from}: {said}");
    assert_eq!(cloud.status_json()["state"], "done");
    assert_upgraded(&cloud, "4.3.2");
    for n in cloud.cloudstack_hosts() {
        the_run(&cloud.host(&n), to);
    }
    eprintln!(
        "{from} small cloud: built in {:.0} s, rollout {:.0} s",
        built.as_secs_f64(),
        (t0.elapsed() - built).as_secs_f64()
    );
    cloud
}

/// G L3434-3448, "check the log to verify correct execution": the script
/// logs a failed job and exits 0, as the real one; the rollout reads its
/// log and stops at the step, the failed job in its reason.
#[test]
fn a_failed_job_in_the_system_vm_restart_log_fails_the_rollout() {
    let cloud = Cloud::build(
        "sysvm-fail",
        &Topology::small(),
        "4.2.1",
        Template::Registered,
    );
    let mgmt = cloud.host("mgmt1");
    sh(
        &mgmt,
        "mkdir -p /var/lib/hoist-standin && touch /var/lib/hoist-standin/sysvmadm.fail-routers",
    );
    let out = cloudstack::bounded(cloud.upgrade_command(Some("4.3.2")));
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    let st = cloud.status_json();
    assert_eq!(st["state"], "failed", "{st}");
    let why = st.to_string();
    assert!(
        why.contains("restart-system-vms-once")
            && why.contains("ERROR: Failed to restart domainRouter with id"),
        "{st}"
    );
    // Every host was upgraded before: the failure is the restart's alone.
    for n in cloud.cloudstack_hosts() {
        the_run(&cloud.host(&n), "4.3.2");
    }
    // The script itself said nothing by its exit code: a recipe that
    // trusted it would have gone on.
    let o = mgmt
        .exec_unchecked(&format!(
            "cloudstack-sysvmadm -d {} -u cloud -p {} -r -l /tmp/again.log; echo rc=$?; cat /tmp/again.log",
            cloud.db_host().addr(),
            cloudstack::DB_PASSWORD
        ))
        .expect("exec");
    assert!(o.stdout.contains("rc=0"), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("ERROR: Failed to restart domainRouter"),
        "{}",
        o.stdout
    );
    cloud.teardown();
}

#[test]
fn from_4_3_1_to_4_3_2() {
    let cloud = small_cloud_upgrade("4.3.1", "4.3.2", None);
    // B restarts no system VM and needs no new template: the fleet's gate
    // opened at once on a 4.3 database.
    assert_eq!(
        sql(
            &cloud.db_host(),
            "SELECT MAX(update_count) FROM cloud.vm_instance"
        ),
        ["0"]
    );
    cloud.teardown();
}

#[test]
fn from_4_3_0_to_4_3_2() {
    small_cloud_upgrade("4.3.0", "4.3.2", None).teardown();
}

#[test]
fn from_4_1_to_4_3() {
    let cloud = small_cloud_upgrade("4.1.1", "4.3", None);
    assert_eq!(
        sql(
            &cloud.db_host(),
            "SELECT MIN(update_count) FROM cloud.vm_instance WHERE type <> 'User'"
        ),
        ["1"]
    );
    cloud.teardown();
}

#[test]
fn from_4_0_to_4_3() {
    // From 4.0 a person carries components.xml's changes over by hand
    // (seed 003, E): the rollout goes past that gate only once it is
    // confirmed, and the management server's journal says so.
    let cloud = small_cloud_upgrade("4.0.2", "4.3", Some("components-to-componentcontext"));
    assert_moved_from_etc_cloud(&cloud);
    let mgmt = cloud.host("mgmt1");
    let st = sh(
        &mgmt,
        "set -- /var/lib/hoist/fleet/*/hoist; \"$1\" --json status",
    );
    assert!(
        st.contains("gate-confirmed") && st.contains("components-to-componentcontext"),
        "{st}"
    );
    cloud.teardown();
}

#[test]
fn from_3_0_to_4_3() {
    let cloud = small_cloud_upgrade("3.0.2", "4.3", None);
    assert_moved_from_etc_cloud(&cloud);
    assert_kvm_legacy_steps(&cloud);
    cloud.teardown();
}

#[test]
fn from_2_2_14_to_4_3_2_encrypts_the_database_properties() {
    let cloud = small_cloud_upgrade("2.2.14", "4.3.2", None);
    assert_moved_from_etc_cloud(&cloud);
    assert_kvm_legacy_steps(&cloud);
    assert_encrypted(&cloud);
    cloud.teardown();
}

/// cloudstack-setup-encryption ran on every management server with the
/// admin's keys (seed L3255-3293): the same key file everywhere, the
/// passwords in db.properties ENC(...).
fn assert_encrypted(cloud: &Cloud) {
    for n in &cloud.management {
        let h = cloud.host(n);
        assert_eq!(
            sh(&h, "cat /etc/cloudstack/management/key").trim(),
            cloudstack::MS_KEY,
            "{n}"
        );
        let p = sh(&h, "cat /etc/cloudstack/management/db.properties");
        assert!(p.contains("db.cloud.encryption.type=file"), "{n}: {p}");
        assert!(p.contains("db.cloud.password=ENC("), "{n}: {p}");
        assert!(!p.contains(cloudstack::DB_PASSWORD), "{n}: {p}");
    }
}

#[test]
fn from_2_2_5_the_full_cloud_goes_through_2_2_14() {
    let t0 = Instant::now();
    let cloud = Cloud::build("2.2.5", &Topology::full(), "2.2.5", Template::Registered);
    let built = t0.elapsed();
    let since = now(&cloud.host("mgmt1"));
    let out = cloudstack::bounded(cloud.upgrade_command(Some("4.3.2")));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let rollout = t0.elapsed() - built;
    assert_eq!(cloud.status_json()["state"], "done");
    assert_upgraded(&cloud, "4.3.2");
    assert_moved_from_etc_cloud(&cloud);
    assert_kvm_legacy_steps(&cloud);
    assert_encrypted(&cloud);
    assert_order(
        &cloud,
        since,
        "management-install-2.2.14-apt@2.2.14",
        "4.3.2",
    );
    // Both hops in each host's one run. Only the first management server
    // started 2.2.14 against the database; the second found it further.
    let (m1, m2) = (cloud.host("mgmt1"), cloud.host("mgmt2"));
    for (h, key, want) in [
        (&m1, "management-install-2.2.14-apt@2.2.14", "done"),
        (&m1, "start-management-2.2.14@2.2.14", "done"),
        (&m1, "database-at-2.2.14@2.2.14", "done"),
        (&m1, "setup-encryption@4.3.2", "done"),
        (&m1, "start-management@4.3.2", "done"),
        (&m2, "management-install-2.2.14-apt@2.2.14", "done"),
        (&m2, "start-management-2.2.14@2.2.14", "skipped"),
        (&m2, "database-at-2.2.14@2.2.14", "skipped"),
        (&m2, "start-management@4.3.2", "done"),
    ] {
        assert_eq!(step_state(h, key), want, "{}: {key}", h.name());
    }
    assert_eq!(
        step_state(&cloud.host("usage1"), "usage-install-2.2.14-apt@2.2.14"),
        "done"
    );
    for k in &cloud.kvm {
        assert_eq!(
            step_state(&cloud.host(k), "agent-install-2.2.14-apt@2.2.14"),
            "done",
            "{k}"
        );
    }
    // The database went through 2.2.14, once.
    assert_eq!(
        sql(
            &cloud.db_host(),
            "SELECT version FROM cloud.version WHERE version LIKE '2.2.%' ORDER BY id"
        ),
        ["2.2.5", "2.2.14"]
    );
    eprintln!(
        "2.2.5 full cloud: built in {:.0} s, rollout {:.0} s",
        built.as_secs_f64(),
        rollout.as_secs_f64()
    );
    cloud.teardown();
}
