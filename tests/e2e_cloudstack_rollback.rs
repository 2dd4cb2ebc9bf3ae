//! Issue 8: a failure on the second management server of a CloudStack
//! rollout (seed 003's order: every usage and management server stopped,
//! the first management server upgraded, which upgrades the shared
//! database, then the second). The rollout stops there, `hoist fleet
//! status` says what the hosts' own journals say, and `hoist fleet
//! rollback` puts every host back to its packages, configuration files and
//! services from before, and the database to its dump from before.
//!
//! The failure is real: the 4.3 management package's postinst exits 1 on
//! that host (`cloudstack::FAIL_POSTINST`), so dpkg stops in the middle of
//! the install.
//!
//! From 3.0.2 the same failure falls across the package rename
//! (`cloud-client` -> `cloudstack-management`, which conflicts with it):
//! the management server goes back to `cloud-client`, and the fleet
//! rollback starts the usage server the rollout stopped.

mod cloudstack;
mod common;

use std::collections::BTreeMap;

use cloudstack::{Cloud, Template, Topology, bounded, host_runs};
use common::{sh, text};
use hoist_testbed::products::cloudstack as cs;

/// What "as it was" means, host by host, and for the database.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Per host: its CloudStack packages (name, version, status), the
    /// SHA-256 of every file under its CloudStack and apt source
    /// directories, and which CloudStack services run.
    hosts: BTreeMap<String, (String, String, String)>,
    /// `mysqldump` of `cloud` and `cloud_usage`.
    database: String,
}

fn snapshot(cloud: &Cloud) -> Snapshot {
    let (ms, us, ag) = cs::services(&cloud.version);
    let mut hosts = BTreeMap::new();
    for n in cloud.cloudstack_hosts() {
        let h = cloud.host(&n);
        let packages = sh(
            &h,
            // Those dpkg only remembers (`un`, `pn`) leave nothing on the host.
            "dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' 'cloud*' 2>/dev/null \
             | grep -v ' [up]n $' | sort",
        );
        let files = sh(
            &h,
            "find /etc/cloud /etc/cloudstack /etc/apt/sources.list.d -type f 2>/dev/null \
             | sort | xargs -r sha256sum",
        );
        // The service of the host's role.
        let unit = if cloud.management.contains(&n) {
            ms
        } else if cloud.usage.contains(&n) {
            us
        } else {
            ag
        };
        let services = sh(
            &h,
            &format!("echo \"{unit} $(systemctl is-active {unit})\""),
        );
        hosts.insert(n, (packages, files, services));
    }
    let database = sh(
        &cloud.db_host(),
        "mysqldump --skip-dump-date --skip-comments --databases cloud cloud_usage",
    );
    Snapshot { hosts, database }
}

fn assert_same(before: &Snapshot, after: &Snapshot) {
    for (n, (packages, files, services)) in &before.hosts {
        let (p, f, s) = &after.hosts[n];
        assert_eq!(p, packages, "{n}: packages");
        assert_eq!(f, files, "{n}: configuration files");
        assert_eq!(s, services, "{n}: services");
    }
    assert!(
        before.database == after.database,
        "the database differs from its state before the rollout"
    );
}

/// The host's runs of this rollout: (state, target).
fn runs(cloud: &Cloud, n: &str) -> Vec<String> {
    host_runs(&cloud.host(n))
        .iter()
        .map(|r| r["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_failure_on_the_second_management_server_stops_and_the_fleet_rolls_back() {
    let cloud = Cloud::build("rollback", &Topology::full(), "4.2.1", Template::Registered);
    let (ms, _, _) = cs::services(&cloud.version);
    let before = snapshot(&cloud);
    for (n, (_, _, services)) in &before.hosts {
        assert!(services.trim().ends_with(" active"), "{n}: {services}");
    }
    cloud.fail_management_postinst("mgmt2");

    let out = bounded(cloud.upgrade_command(Some("4.3.2")));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for line in ["mgmt1: UPGRADED", "mgmt2: ROLLED BACK"] {
        assert!(said.contains(line), "{line:?} not in\n{said}");
    }

    // The hosts: the first management server upgraded the database and
    // runs 4.3.2; the second failed in dpkg and put itself back, and did
    // not start its 4.2.1 server against the upgraded database; nothing
    // else ran an upgrade.
    assert_eq!(runs(&cloud, "mgmt1"), ["committed"]);
    assert_eq!(runs(&cloud, "mgmt2"), ["rolled-back"]);
    let mgmt1 = cloud.host("mgmt1");
    let mgmt2 = cloud.host("mgmt2");
    assert_eq!(
        cloudstack::dpkg_version(&mgmt1, "cloudstack-management"),
        "4.3.2"
    );
    assert_eq!(
        cloudstack::dpkg_version(&mgmt2, "cloudstack-management"),
        "4.2.1"
    );
    assert_eq!(
        sh(&mgmt2, &format!("systemctl is-active {ms} || true")).trim(),
        "inactive"
    );
    for n in cloud.usage.iter().chain(&cloud.kvm) {
        assert!(runs(&cloud, n).is_empty(), "{n}");
    }

    // `hoist fleet status` says the same.
    let j = cloud.status_json();
    assert_eq!(j["done"], serde_json::json!(["mgmt1"]), "{j:#}");
    let failed: Vec<&str> = j["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["host"].as_str().or(f.as_str()))
        .collect();
    assert_eq!(failed, ["mgmt2"], "{j:#}");
    let untouched: Vec<&str> = j["untouched"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let mut expected: Vec<&str> = cloud
        .usage
        .iter()
        .chain(&cloud.kvm)
        .map(String::as_str)
        .collect();
    expected.sort();
    let mut untouched_sorted = untouched.clone();
    untouched_sorted.sort();
    assert_eq!(untouched_sorted, expected, "{j:#}");
    let st = bounded(cloud.fleet(&["status"]));
    let st = String::from_utf8_lossy(&st.stdout).to_string();
    assert!(st.contains("mgmt2: step "), "{st}");
    assert!(st.contains("rolled back"), "{st}");

    // The fleet rollback: mgmt1 back to 4.2.1 with the database from its
    // dump, then every server the rollout stopped started again.
    let back = bounded(cloud.fleet(&["rollback", "--yes"]));
    let said = text(&back);
    assert_eq!(back.status.code(), Some(0), "{said}");
    let after = snapshot(&cloud);
    assert_same(&before, &after);
    assert_eq!(runs(&cloud, "mgmt1"), ["rolled-back"]);
    for n in cloud.cloudstack_hosts() {
        let port = if cloud.management.contains(&n) {
            cs::MANAGEMENT_PORT
        } else if cloud.usage.contains(&n) {
            cs::USAGE_PORT
        } else {
            cs::AGENT_PORT
        };
        let (code, body) = cloud.host(&n).http_get(port, "/health").expect("health");
        assert_eq!(code, 200, "{n}: {body}");
        assert!(body.contains("4.2.1"), "{n}: {body}");
    }
    let j = cloud.status_json();
    assert_eq!(j["state"], "rolled-back", "{j:#}");
    let again = bounded(cloud.fleet(&["rollback", "--yes"]));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    cloud.teardown();
}

#[test]
fn from_3_0_a_failed_management_server_goes_back_across_the_rename() {
    let cloud = Cloud::build(
        "rollback-rename",
        &Topology::small(),
        "3.0.2",
        Template::Registered,
    );
    let before = snapshot(&cloud);
    cloud.fail_management_postinst("mgmt1");

    let out = bounded(cloud.upgrade_command(Some("4.3.2")));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("mgmt1: ROLLED BACK"), "{said}");
    assert_eq!(runs(&cloud, "mgmt1"), ["rolled-back"]);
    let mgmt1 = cloud.host("mgmt1");
    assert_eq!(cloudstack::dpkg_version(&mgmt1, "cloud-client"), "3.0.2");
    assert_eq!(
        cloudstack::dpkg_version(&mgmt1, "cloudstack-management"),
        ""
    );

    let back = bounded(cloud.fleet(&["rollback", "--yes"]));
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    assert_same(&before, &snapshot(&cloud));
    for n in cloud.cloudstack_hosts() {
        let port = if cloud.management.contains(&n) {
            cs::MANAGEMENT_PORT
        } else if cloud.usage.contains(&n) {
            cs::USAGE_PORT
        } else {
            cs::AGENT_PORT
        };
        let (code, body) = cloud.host(&n).http_get(port, "/health").expect("health");
        assert_eq!(code, 200, "{n}: {body}");
        assert!(body.contains("3.0.2"), "{n}: {body}");
    }
    cloud.teardown();
}
