//! Plans of the Apache CloudStack 4.3 recipe (seed 003) for every source
//! version its upgrade guide lists, on Ubuntu and on RHEL/CentOS: the route,
//! the steps taken and the reason each other step is not.
//!
//! RHEL/CentOS plans are checked as plans only: no RPM host exists among
//! the test machines, so those tests carry `plan_only_no_rpm_host` in their
//! names.

use std::path::{Path, PathBuf};

use hoist::actions::Action;
use hoist::actions::packages::Manager;
use hoist::host::probe::{self, Given};
use hoist::plan::{self, Outcome, Plan, PlanError, SkipReason};
use hoist::recipe::facts::Facts;
use hoist::recipe::{self, Recipe};
use hoist::version::Version;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_path(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures/cloudstack")
        .join(format!("{name}.toml"))
}

fn recipe() -> Recipe {
    let loaded = recipe::load(&root().join("recipes/cloudstack")).expect("the recipe is readable");
    let problems: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.problem.code, p.problem.message))
        .collect();
    assert!(
        loaded.errors().next().is_none(),
        "the recipe has errors: {problems:#?}"
    );
    loaded.recipe.expect("a recipe without errors loads")
}

fn facts(recipe: &Recipe, fixture: &str, given: &Given) -> Facts {
    let mut facts = Facts::from_fixture(&fixture_path(fixture), &recipe.catalogue)
        .unwrap_or_else(|e| panic!("{fixture}: {e}"));
    probe::apply_given(recipe, &mut facts, given).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    facts
}

fn plan_with(fixture: &str, given: &Given) -> Plan {
    let r = recipe();
    let f = facts(&r, fixture, given);
    match plan::resolve(&r, &f, None) {
        Ok(Outcome::Plan(p)) => *p,
        Ok(Outcome::UpToDate { current, target }) => {
            panic!("{fixture}: {current} is already at {target}")
        }
        Err(e) => panic!("{fixture}: {e}"),
    }
}

fn plan(fixture: &str) -> Plan {
    plan_with(fixture, &Given::default())
}

/// The versions the route goes through, starting with the current one.
fn route(p: &Plan) -> Vec<String> {
    std::iter::once(p.current.to_string())
        .chain(p.hops.iter().map(|h| h.to.to_string()))
        .collect()
}

fn paths(p: &Plan) -> Vec<&str> {
    p.hops.iter().map(|h| h.path.as_str()).collect()
}

/// The hop to 4.3: the last one.
fn last_hop(p: &Plan) -> usize {
    p.hops.len() - 1
}

fn taken_on(p: &Plan, id: &str, hop: usize) -> bool {
    p.steps.iter().any(|s| s.id == id && s.hop == hop)
}

#[track_caller]
fn assert_taken(p: &Plan, ids: &[&str]) {
    let hop = last_hop(p);
    for id in ids {
        assert!(
            taken_on(p, id, hop),
            "`{id}` should be in the plan from {} (hop {}): {:?}",
            p.current,
            p.hops[hop].path,
            reason(p, id)
        );
    }
}

fn reason<'a>(p: &'a Plan, id: &str) -> Option<&'a SkipReason> {
    let hop = last_hop(p);
    p.skipped
        .iter()
        .find(|s| s.id == id && s.hop == hop)
        .map(|s| &s.reason)
}

/// Not taken on the hop to 4.3 because its `when` is false, and the
/// explanation names `why`.
#[track_caller]
fn assert_when_false(p: &Plan, ids: &[&str], why: &str) {
    for id in ids {
        match reason(p, id) {
            Some(SkipReason::When { detail }) => assert!(
                detail.contains(why),
                "`{id}` is skipped from {} for `{detail}`, expected it to name `{why}`",
                p.current
            ),
            other => panic!(
                "`{id}` from {} should be skipped by its `when` ({why}), found {other:?}",
                p.current
            ),
        }
    }
}

/// Not taken on the hop to 4.3 because the guide has the step only for
/// other source versions.
#[track_caller]
fn assert_other_hop(p: &Plan, ids: &[&str]) {
    for id in ids {
        match reason(p, id) {
            Some(SkipReason::OtherHop { only }) => assert!(
                !only.contains(&p.hops[last_hop(p)].path),
                "`{id}` is limited to {only:?}, which holds this hop"
            ),
            other => panic!(
                "`{id}` from {} should be limited to other hops, found {other:?}",
                p.current
            ),
        }
    }
}

/// Position of a step on the hop to 4.3 (to check order).
fn position(p: &Plan, id: &str) -> usize {
    let hop = last_hop(p);
    p.steps
        .iter()
        .position(|s| s.id == id && s.hop == hop)
        .unwrap_or_else(|| panic!("`{id}` is not in the plan"))
}

/// No step of the plan uses `manager` or touches a repository under `dir`:
/// apt on RHEL, yum on Ubuntu.
#[track_caller]
fn assert_no_manager(p: &Plan, manager: Manager, dir: &str) {
    for s in &p.steps {
        match &s.action {
            Action::Packages(k) => assert_ne!(k.manager, manager, "`{}`", s.id),
            Action::Repo(r) => assert!(!r.file.starts_with(dir), "`{}`", s.id),
            _ => {}
        }
    }
}
const VMWARE_STEPS: [&str; 6] = [
    "vmware-stop-management",
    "vmware-encrypt-vcenter-password",
    "vmware-cluster-details-password",
    "vmware-data-center-password",
    "vmware-start-management",
    "vmware-forget-password-files",
];
const KVM_AGENT_STEPS: [&str; 5] = [
    "agent-environment-properties",
    "agent-resource-class",
    "agent-bridge-names",
    "libvirt-qemu-hook",
    "libvirtd-restart",
];

// --- the recipe itself ------------------------------------------------------

#[test]
fn recipe_lints_with_zero_errors_and_zero_warnings() {
    let loaded = recipe::load(&root().join("recipes/cloudstack")).unwrap();
    let all: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| {
            format!(
                "{:?} {}: {}",
                p.problem.severity, p.problem.code, p.problem.message
            )
        })
        .collect();
    assert_eq!(loaded.errors().count(), 0, "{all:#?}");
    assert!(all.is_empty(), "{all:#?}");
    let r = loaded.recipe.unwrap();
    assert_eq!(r.product.roles, ["management", "usage", "kvm"]);
}

#[test]
fn every_fixture_plans_to_4_3_2_on_the_path_of_its_version() {
    let dir = root().join("tests/fixtures/cloudstack");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 22, "fixtures: {names:?}");
    for name in &names {
        let p = plan(name);
        assert_eq!(p.target.to_string(), "4.3.2", "{name}");
        let version = name.split('-').next().unwrap();
        let expected = match version {
            "4.3.1" | "4.3.0" => "4.3.x",
            "4.2.1" => "4.2",
            "4.1.1" => "4.1",
            "4.0.2" => "4.0",
            "3.0.7" => "3.0",
            "2.2.14" | "2.2.5" => "2.2.14",
            other => panic!("unexpected fixture version {other}"),
        };
        assert_eq!(p.hops[last_hop(&p)].path, expected, "{name}");
        // Every step's credentials come from a file, never from the recipe.
        for s in &p.steps {
            let creds = match &s.action {
                Action::Db(d) => Some(&d.credentials),
                Action::Wait(w) => w.until.sql.as_ref().map(|q| &q.credentials),
                Action::Gate(g) => g
                    .until
                    .as_ref()
                    .and_then(|u| u.sql.as_ref())
                    .map(|q| &q.credentials),
                _ => None,
            };
            if let Some(c) = creds {
                // The file moved in 4.1: the new place first, then the old.
                assert_eq!(
                    c.properties.as_ref().map(|f| f.candidates().to_vec()),
                    Some(vec![
                        "/etc/cloudstack/management/db.properties".to_string(),
                        "/etc/cloud/management/db.properties".to_string()
                    ]),
                    "{name}: `{}` reads no db.properties",
                    s.id
                );
                // The database is on the host db.properties names.
                let db = c.user_key.as_deref().unwrap_or("").split('.').nth(1);
                assert_eq!(
                    (c.host_key.clone(), c.port_key.clone()),
                    (
                        db.map(|d| format!("db.{d}.host")),
                        db.map(|d| format!("db.{d}.port"))
                    ),
                    "{name}: `{}`",
                    s.id
                );
            }
        }
    }
}

#[test]
fn a_version_before_2_2_is_refused_with_the_reason() {
    let r = recipe();
    let mut f = facts(&r, "2.2.5-ubuntu-kvm", &Given::default());
    f.set(
        "current",
        hoist::recipe::facts::Value::Version(Version::parse("2.1.9").unwrap()),
    );
    match plan::resolve(&r, &f, None) {
        Err(PlanError::Route(e)) => assert!(e.to_string().contains("before 2.2.0"), "{e}"),
        other => panic!("2.1.9 should be refused, got {other:?}"),
    }
}

#[test]
fn the_hypervisor_must_be_given() {
    let r = recipe();
    let mut f = facts(&r, "4.2.1-ubuntu-kvm", &Given::default());
    f.remove("hypervisor");
    match plan::resolve(&r, &f, None) {
        Err(PlanError::MissingFact { fact, .. }) => assert_eq!(fact, "hypervisor"),
        other => panic!("a plan without the hypervisor should fail, got {other:?}"),
    }
}

#[test]
fn the_target_can_be_given_with_to() {
    let r = recipe();
    let given = Given {
        facts: vec![("verify_source_release".into(), "true".into())],
        roles: Vec::new(),
    };
    let mut f = facts(&r, "4.2.1-ubuntu-kvm", &given);
    f.remove("candidate");
    let to = Version::parse("4.3.1").unwrap();
    let Ok(Outcome::Plan(p)) = plan::resolve(&r, &f, Some(&to)) else {
        panic!("no plan to 4.3.1");
    };
    assert_eq!(route(&p), ["4.2.1", "4.3.1"]);
    assert_taken(&p, &["verify-source-4.3.1"]);
    assert_when_false(&p, &["verify-source-4.3.2"], "target is 4.3.1");
}

// --- Ubuntu, every source version ---------------------------------------

#[test]
fn from_4_3_1_ubuntu() {
    let p = plan("4.3.1-ubuntu-kvm");
    assert_eq!(route(&p), ["4.3.1", "4.3.2"]);
    assert_eq!(paths(&p), ["4.3.x"]);
    // The source release is verified only when asked (seed L30-82): the
    // upgrade never uses it, and it needs the internet.
    assert_when_false(
        &p,
        &["import-release-keys", "verify-source-4.3.2"],
        "verify_source_release",
    );
    assert_taken(
        &p,
        &[
            "apt-update",
            "stop-management",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-upgrade-apt",
            "kvm-local-storage-path",
            "kvm-local-storage-path-checked",
            "start-management",
            "management-answers",
            "hosts-up",
        ],
    );
    // B has no template, no repository switch and no system VM restart.
    assert_other_hop(
        &p,
        &[
            "system-vm-template-ready",
            "system-vm-template-ready",
            "apt-repo-4.2",
            "apt-repo-legacy",
            "restart-system-vms",
            "api-port-8096",
            "database-upgraded",
            "management-install-apt",
        ],
    );
    assert_when_false(
        &p,
        &["management-upgrade-yum", "yum-makecache"],
        "os.family is \"debian\"",
    );
    assert_no_manager(&p, Manager::Yum, "/etc/yum.repos.d/");
    assert_when_false(&p, &VMWARE_STEPS, "hypervisor is [kvm]");
    assert_when_false(&p, &["xen-vhd-util"], "hypervisor is [kvm]");
    assert!(position(&p, "stop-management") < position(&p, "backup-cloud-db"));
    assert!(position(&p, "backup-cloud-db") < position(&p, "management-upgrade-apt"));
}

#[test]
fn from_4_3_0_ubuntu() {
    let p = plan("4.3.0-ubuntu-kvm");
    assert_eq!(route(&p), ["4.3.0", "4.3.2"]);
    assert_eq!(paths(&p), ["4.3.x"]);
    assert_taken(&p, &["management-upgrade-apt", "kvm-local-storage-path"]);
    assert_other_hop(&p, &["restart-system-vms", "system-vm-template-ready"]);
}

#[test]
fn from_4_2_1_ubuntu_kvm() {
    let p = plan("4.2.1-ubuntu-kvm");
    assert_eq!(route(&p), ["4.2.1", "4.3.2"]);
    assert_eq!(paths(&p), ["4.2"]);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "apt-repo-4.2",
            "apt-update",
            "download-management",
            "stop-management",
            "backup-cloud-db",
            "management-upgrade-apt",
            "kvm-local-storage-path",
            "start-management",
            "database-upgraded",
            "hosts-up",
            "api-port-8096",
            "api-port-restart-management",
            "api-port-firewall",
            "restart-system-vms",
            "api-port-firewall-remove",
            "api-port-close",
        ],
    );
    assert_other_hop(
        &p,
        &[
            "apt-repo-4.1",
            "md5-compat-authenticator",
            "setup-encryption",
        ],
    );
    assert_when_false(&p, &["yum-repo-4.2", "management-upgrade-yum"], "os.family");
    assert_when_false(&p, &VMWARE_STEPS, "hypervisor is [kvm]");
    assert_when_false(&p, &["xen-vhd-util"], "hypervisor is [kvm]");
    // The template is READY before anything stops; packages come down first.
    assert!(position(&p, "system-vm-template-ready") < position(&p, "stop-management"));
    assert!(position(&p, "download-management") < position(&p, "stop-management"));
    assert!(position(&p, "api-port-listening") < position(&p, "restart-system-vms"));
}

#[test]
fn from_4_2_1_ubuntu_vmware() {
    let p = plan("4.2.1-ubuntu-vmware");
    assert_eq!(paths(&p), ["4.2"]);
    assert_taken(&p, &VMWARE_STEPS);
    assert_taken(&p, &["vmware-management-answers", "restart-system-vms"]);
    assert_when_false(
        &p,
        &["kvm-local-storage-path", "kvm-local-storage-path-checked"],
        "hypervisor is [vmware]",
    );
    assert_when_false(&p, &["xen-vhd-util"], "hypervisor is [vmware]");
    // The password is encrypted after the database upgrade, with the
    // management server stopped, and the files holding it go at the end.
    assert!(position(&p, "database-upgraded") < position(&p, "vmware-stop-management"));
    assert!(
        position(&p, "vmware-stop-management") < position(&p, "vmware-encrypt-vcenter-password")
    );
    assert!(position(&p, "vmware-data-center-password") < position(&p, "vmware-start-management"));
    let once: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.once)
        .map(|s| s.id.as_str())
        .collect();
    assert!(
        once.contains(&"vmware-cluster-details-password"),
        "{once:?}"
    );
    assert!(once.contains(&"vmware-data-center-password"), "{once:?}");
}

#[test]
fn from_4_2_1_ubuntu_xen() {
    let p = plan("4.2.1-ubuntu-xen");
    assert_eq!(paths(&p), ["4.2"]);
    assert_taken(&p, &["xen-vhd-util", "restart-system-vms"]);
    assert_when_false(&p, &VMWARE_STEPS, "hypervisor is [xen]");
    assert_when_false(&p, &["kvm-local-storage-path"], "hypervisor is [xen]");
    // The XenServer hotfix belongs to 3.0.x and 2.2.14 only.
    assert_other_hop(
        &p,
        &["xen-cluster-unmanaged", "xen-hotfix", "xen-cluster-managed"],
    );
}

#[test]
fn from_4_1_1_ubuntu() {
    let p = plan("4.1.1-ubuntu-kvm");
    assert_eq!(route(&p), ["4.1.1", "4.3.2"]);
    assert_eq!(paths(&p), ["4.1"]);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "apt-repo-4.1",
            "stop-management",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-install-apt",
            "kvm-local-storage-path",
            "start-management",
            "database-upgraded",
            "restart-system-vms",
        ],
    );
    assert_other_hop(&p, &["management-upgrade-apt", "md5-compat-authenticator"]);
    // One backup step per database for every source: the credentials
    // file is the first of /etc/cloudstack and /etc/cloud that exists.
    assert_taken(&p, &["backup-cloud-db", "backup-cloud-usage-db"]);
    assert_when_false(
        &p,
        &["vmware-encrypt-vcenter-password"],
        "hypervisor is [kvm]",
    );
}

#[test]
fn from_4_0_2_ubuntu() {
    let p = plan("4.0.2-ubuntu-kvm");
    assert_eq!(route(&p), ["4.0.2", "4.3.2"]);
    assert_eq!(paths(&p), ["4.0"]);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "apt-repo-4.0",
            "stop-management-legacy",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-install-apt",
            "components-to-componentcontext",
            // E never starts the management server: the recipe does.
            "start-management",
            "database-upgraded",
            "restart-system-vms",
            "purge-cloud-client",
        ],
    );
    // E has no local-storage fix and no VMware step.
    assert_other_hop(
        &p,
        &[
            "kvm-local-storage-path",
            "stop-management",
            "vmware-encrypt-vcenter-password",
            "components-xml-merge",
        ],
    );
    assert_when_false(
        &p,
        &["md5-compat-authenticator"],
        "md5_compat_auth is false",
    );
    assert_when_false(&p, &["xen-vhd-util"], "hypervisor is [kvm]");
}

#[test]
fn the_md5_authenticator_edit_is_made_only_when_asked() {
    let given = Given {
        roles: vec![],
        facts: vec![("md5_compat_auth".into(), "true".into())],
    };
    for fixture in ["4.0.2-ubuntu-kvm", "3.0.7-ubuntu-kvm", "2.2.14-ubuntu-kvm"] {
        let p = plan_with(fixture, &given);
        assert_taken(&p, &["md5-compat-authenticator"]);
        assert!(position(&p, "management-install-apt") < position(&p, "md5-compat-authenticator"));
        assert!(position(&p, "md5-compat-authenticator") < position(&p, "start-management"));
    }
    let p = plan_with("4.2.1-ubuntu-kvm", &given);
    assert_other_hop(&p, &["md5-compat-authenticator"]);
}

#[test]
fn from_3_0_7_ubuntu() {
    let p = plan("3.0.7-ubuntu-kvm");
    assert_eq!(route(&p), ["3.0.7", "4.3.2"]);
    assert_eq!(paths(&p), ["3.0"]);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "apt-repo-legacy",
            "stop-management-legacy",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-install-apt",
            "components-xml-merge",
            "start-management",
            "database-upgraded",
            "hosts-up",
            "api-port-8096",
            "restart-system-vms",
            "purge-cloud-client",
        ],
    );
    assert_other_hop(
        &p,
        &[
            "setup-encryption",
            "db-properties-merge",
            "kvm-local-storage-path",
            "apt-repo-4.0",
            "vmware-stop-management",
            "xen-vhd-util",
        ],
    );
    assert_when_false(&p, &["xen-hotfix"], "hypervisor is [kvm]");
}

#[test]
fn from_2_2_14_ubuntu() {
    let p = plan("2.2.14-ubuntu-kvm");
    assert_eq!(route(&p), ["2.2.14", "4.3.2"]);
    assert_eq!(paths(&p), ["2.2.14"]);
    assert_taken(
        &p,
        &[
            "kvm-host-credentials",
            "system-vm-template-ready",
            "apt-repo-legacy",
            "stop-management-legacy",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-install-apt",
            "components-xml-merge",
            "db-properties-merge",
            "setup-encryption",
            "start-management",
            "database-upgraded",
            "hosts-up",
            "restart-system-vms",
        ],
    );
    assert_other_hop(
        &p,
        &[
            "management-install-2.2.14-apt",
            "start-management-2.2.14",
            "kvm-local-storage-path",
        ],
    );
    // The database is encrypted before the management server first starts.
    assert!(position(&p, "setup-encryption") < position(&p, "start-management"));
    assert!(position(&p, "db-properties-merge") < position(&p, "setup-encryption"));
}

#[test]
fn from_2_2_5_ubuntu_kvm_goes_through_2_2_14() {
    let p = plan("2.2.5-ubuntu-kvm");
    assert_eq!(route(&p), ["2.2.5", "2.2.14", "4.3.2"]);
    assert_eq!(paths(&p), ["to-2.2.14", "2.2.14"]);
    // The first hop is the 2.2.14 Release Notes done as section G does
    // for 4.3: stop, dump both databases, install 2.2.14 pinned, start the
    // management server (which upgrades the database), wait for the
    // database to say 2.2.14.
    let first: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.hop == 0)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        first,
        [
            "stop-management-legacy",
            "backup-cloud-db",
            "backup-cloud-usage-db",
            "management-install-2.2.14-apt",
            "start-management-2.2.14",
            "database-at-2.2.14",
        ]
    );
    let Action::Packages(k) = &p
        .steps
        .iter()
        .find(|s| s.id == "management-install-2.2.14-apt")
        .unwrap()
        .action
    else {
        panic!("management-install-2.2.14-apt installs packages");
    };
    assert_eq!(k.names, ["cloud-client=2.2.14", "cloud-deps=2.2.14"]);
    let Action::Wait(w) = &p
        .steps
        .iter()
        .find(|s| s.id == "database-at-2.2.14")
        .unwrap()
        .action
    else {
        panic!("database-at-2.2.14 waits");
    };
    assert_eq!(
        w.until.sql.as_ref().unwrap().expect.as_deref(),
        Some("2.2.14")
    );
    // A second management server finds the database already upgraded by
    // the first: it installs 2.2.14 but starts no 2.2.14 server.
    let given = Given {
        facts: vec![("database_past_2_2_13".into(), "true".into())],
        roles: Vec::new(),
    };
    let p2 = plan_with("2.2.5-ubuntu-kvm", &given);
    assert!(taken_on(&p2, "management-install-2.2.14-apt", 0));
    for id in ["start-management-2.2.14", "database-at-2.2.14"] {
        assert!(!taken_on(&p2, id, 0), "{id}");
    }
    // Asked for, the source tarball is verified once, for 4.3.2, before
    // any hop.
    let asked = Given {
        facts: vec![("verify_source_release".into(), "true".into())],
        roles: Vec::new(),
    };
    let pv = plan_with("2.2.5-ubuntu-kvm", &asked);
    assert!(taken_on(&pv, "verify-source-4.3.2", 1));
    assert!(!taken_on(&pv, "verify-source-4.3.2", 0));
    assert!(!p.steps.iter().any(|s| s.id.starts_with("verify-source")));
    // Then the 2.2.14 procedure, with the KVM checks.
    assert_taken(
        &p,
        &[
            "kvm-host-credentials",
            "system-vm-template-ready",
            "apt-repo-legacy",
            "apt-update",
            "stop-management-legacy",
            "backup-cloud-db",
            "management-install-apt",
            "setup-encryption",
            "start-management",
            "hosts-up",
            "restart-system-vms",
            "purge-cloud-client",
        ],
    );
    // Xen: the hotfix gates are on this path, but this cloud is KVM.
    assert_when_false(
        &p,
        &["xen-cluster-unmanaged", "xen-hotfix", "xen-cluster-managed"],
        "hypervisor is [kvm]",
    );
    // VMware: the guide has no VMware step for 2.2.14 at all.
    assert_other_hop(&p, &VMWARE_STEPS);
    // yum is for RHEL.
    assert_when_false(
        &p,
        &[
            "yum-repo-legacy",
            "yum-makecache",
            "management-upgrade-yum-legacy",
            "rhel63-os-upgrade",
            "rhel63-reboot",
        ],
        "os.family is \"debian\"",
    );
    assert_no_manager(&p, Manager::Yum, "/etc/yum.repos.d/");
    // The agent steps run on KVM hosts, not on this management server.
    assert_when_false(&p, &KVM_AGENT_STEPS, "roles is [management]");
}

#[test]
fn from_2_2_5_on_a_ubuntu_kvm_host() {
    let p = plan("2.2.5-ubuntu-kvm-agent");
    assert_eq!(route(&p), ["2.2.5", "2.2.14", "4.3.2"]);
    let first: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.hop == 0)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(first, ["stop-agent-legacy", "agent-install-2.2.14-apt"]);
    assert_taken(
        &p,
        &[
            "apt-repo-legacy",
            "download-agent",
            "stop-agent-legacy",
            "end-stale-agent-jvm",
            "agent-install-apt",
            "agent-environment-properties",
            "agent-log4j-packaged",
            "agent-resource-class",
            "agent-bridge-names",
            "libvirt-qemu-hook",
            "libvirtd-restart",
            "start-agent",
            "agent-running",
            "purge-cloud-agent",
        ],
    );
    assert!(position(&p, "libvirtd-restart") < position(&p, "start-agent"));
    assert!(position(&p, "agent-install-apt") < position(&p, "agent-resource-class"));
    // Nothing that needs the database runs on a KVM host.
    for s in &p.steps {
        assert!(
            !matches!(s.action, Action::Db(_)),
            "`{}` runs SQL on a KVM host",
            s.id
        );
    }
    assert_when_false(
        &p,
        &[
            "system-vm-template-ready",
            "backup-cloud-db",
            "restart-system-vms",
            "kvm-host-credentials",
        ],
        "roles is [kvm]",
    );
    assert_when_false(&p, &["agent-upgrade-yum-legacy"], "os.family");
}

#[test]
fn from_4_0_2_on_a_ubuntu_kvm_host() {
    let p = plan("4.0.2-ubuntu-kvm-agent");
    assert_eq!(paths(&p), ["4.0"]);
    assert_taken(
        &p,
        &[
            "apt-repo-4.0",
            "stop-agent-legacy",
            "agent-install-apt",
            "agent-environment-properties",
            "agent-log4j-packaged",
            "start-agent",
            "purge-cloud-agent",
        ],
    );
    // The bridge renaming and the libvirt hook are for 3.0.x and 2.2.14.
    assert_other_hop(
        &p,
        &[
            "agent-resource-class",
            "agent-bridge-names",
            "libvirt-qemu-hook",
        ],
    );
}

// --- RHEL / CentOS, every source version: plans only -----------------------

#[track_caller]
fn assert_rhel(p: &Plan) {
    assert_when_false(p, &["apt-update"], "os.family is \"rhel\"");
    assert_taken(
        p,
        &["yum-makecache", "download-management", "start-management"],
    );
    assert_no_manager(p, Manager::Apt, "/etc/apt/");
}

#[test]
fn from_4_3_1_rhel_plan_only_no_rpm_host() {
    let p = plan("4.3.1-rhel-kvm");
    assert_eq!(paths(&p), ["4.3.x"]);
    assert_rhel(&p);
    assert_taken(&p, &["management-upgrade-yum", "kvm-local-storage-path"]);
    assert_other_hop(&p, &["yum-repo-4.2", "management-upgrade-yum-legacy"]);
}

#[test]
fn from_4_3_0_rhel_plan_only_no_rpm_host() {
    let p = plan("4.3.0-rhel-kvm");
    assert_eq!(route(&p), ["4.3.0", "4.3.2"]);
    assert_rhel(&p);
    assert_taken(&p, &["management-upgrade-yum"]);
}

#[test]
fn from_4_2_1_rhel_plan_only_no_rpm_host() {
    let p = plan("4.2.1-rhel-kvm");
    assert_eq!(paths(&p), ["4.2"]);
    assert_rhel(&p);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "yum-repo-4.2",
            "management-upgrade-yum",
            "restart-system-vms",
        ],
    );
    assert_when_false(&p, &["apt-repo-4.2"], "os.family is \"rhel\"");
    let repo = p.steps.iter().find(|s| s.id == "yum-repo-4.2").unwrap();
    let Action::Repo(r) = &repo.action else {
        panic!("yum-repo-4.2 is a repo step")
    };
    assert_eq!(r.file, "/etc/yum.repos.d/cloudstack.repo");
    assert_eq!(
        r.to.as_deref(),
        Some("baseurl=http://cloudstack.apt-get.eu/rhel/4.3/")
    );
    assert!(repo.undo.is_some());
}

#[test]
fn from_4_1_1_rhel_plan_only_no_rpm_host() {
    let p = plan("4.1.1-rhel-kvm");
    assert_eq!(paths(&p), ["4.1"]);
    assert_rhel(&p);
    assert_taken(
        &p,
        &[
            "system-vm-template-ready",
            "yum-repo-4.1",
            "management-upgrade-yum",
        ],
    );
}

#[test]
fn from_4_1_1_rhel_usage_server_plan_only_no_rpm_host() {
    let p = plan("4.1.1-rhel-usage");
    assert_eq!(paths(&p), ["4.1"]);
    assert_taken(
        &p,
        &[
            "yum-repo-4.1",
            "download-usage",
            "stop-usage",
            "usage-upgrade-yum",
            "start-usage",
        ],
    );
    assert_when_false(
        &p,
        &[
            "stop-management",
            "backup-cloud-db",
            "start-management",
            "restart-system-vms",
        ],
        "roles is [usage]",
    );
    assert_when_false(&p, &["usage-install-apt"], "os.family is \"rhel\"");
    assert_other_hop(&p, &["usage-upgrade-yum-legacy", "stop-usage-legacy"]);
}

#[test]
fn from_4_0_2_rhel_plan_only_no_rpm_host() {
    let p = plan("4.0.2-rhel-kvm");
    assert_eq!(paths(&p), ["4.0"]);
    assert_rhel(&p);
    // cloudstack-management comes in by upgrading the older cloud-client.
    assert_taken(
        &p,
        &[
            "yum-repo-4.0",
            "stop-management-legacy",
            "management-upgrade-yum-legacy",
            "components-to-componentcontext",
        ],
    );
    assert_other_hop(&p, &["management-upgrade-yum"]);
    // apt's purge of the old packages is not needed with yum.
    assert_when_false(&p, &["purge-cloud-client"], "os.family is \"rhel\"");
}

#[test]
fn from_3_0_7_rhel_plan_only_no_rpm_host() {
    let p = plan("3.0.7-rhel-kvm");
    assert_eq!(paths(&p), ["3.0"]);
    assert_rhel(&p);
    assert_taken(
        &p,
        &[
            "yum-repo-legacy",
            "management-upgrade-yum-legacy",
            "components-xml-merge",
        ],
    );
    // CentOS 6.3 needs no OS upgrade first.
    assert_when_false(
        &p,
        &["rhel63-repository", "rhel63-os-upgrade", "rhel63-reboot"],
        "os.version_id is 6.3",
    );
}

#[test]
fn from_3_0_7_rhel_xen_plan_only_no_rpm_host() {
    let p = plan("3.0.7-rhel-xen");
    assert_eq!(paths(&p), ["3.0"]);
    assert_taken(
        &p,
        &["xen-cluster-unmanaged", "xen-hotfix", "xen-cluster-managed"],
    );
    assert!(position(&p, "restart-system-vms") < position(&p, "xen-cluster-unmanaged"));
    assert!(position(&p, "xen-cluster-unmanaged") < position(&p, "xen-hotfix"));
    assert!(position(&p, "xen-hotfix") < position(&p, "xen-cluster-managed"));
    // vhd-utils is asked for 4.x sources only.
    assert_other_hop(&p, &["xen-vhd-util"]);
    assert_when_false(&p, &["rhel63-os-upgrade"], "hypervisor is [xen]");
}

#[test]
fn from_2_2_14_rhel_6_1_plan_only_no_rpm_host() {
    let p = plan("2.2.14-rhel-kvm");
    assert_eq!(paths(&p), ["2.2.14"]);
    assert_rhel(&p);
    assert_taken(
        &p,
        &[
            "kvm-host-credentials",
            "rhel63-repository",
            "rhel63-os-upgrade",
            "rhel63-reboot",
            "yum-repo-legacy",
            "management-upgrade-yum-legacy",
            "db-properties-merge",
            "setup-encryption",
        ],
    );
    // The OS is upgraded and rebooted before the CloudStack repository
    // points at 4.3 and before anything stops.
    assert!(position(&p, "rhel63-os-upgrade") < position(&p, "rhel63-reboot"));
    assert!(position(&p, "rhel63-reboot") < position(&p, "yum-repo-legacy"));
    assert!(position(&p, "rhel63-reboot") < position(&p, "stop-management-legacy"));
}

#[test]
fn from_2_2_5_rhel_plan_only_no_rpm_host() {
    let p = plan("2.2.5-rhel-kvm");
    assert_eq!(route(&p), ["2.2.5", "2.2.14", "4.3.2"]);
    assert_eq!(paths(&p), ["to-2.2.14", "2.2.14"]);
    assert_rhel(&p);
    assert_taken(
        &p,
        &[
            "yum-repo-legacy",
            "management-upgrade-yum-legacy",
            "setup-encryption",
        ],
    );
    assert_when_false(&p, &["apt-repo-legacy"], "os.family is \"rhel\"");
    assert!(Path::new(&fixture_path("2.2.5-rhel-kvm")).exists());
}

/// In a rollout the hosts-Up wait, the admin port steps and the system VM
/// restart are left to [fleet], which runs them once after every KVM host
/// (seed 003 L3403-3436); the plan keeps each one's action for it, where
/// the host's hops and `when` took the step.
#[test]
fn in_a_rollout_the_zone_wide_steps_are_left_to_the_fleet() {
    let r = recipe();
    let taken = [
        "hosts-up",
        "api-port-8096",
        "api-port-restart-management",
        "api-port-listening",
        "api-port-firewall",
        "restart-system-vms",
        "api-port-firewall-remove",
        "api-port-close",
        "api-port-close-restart",
        "api-port-closed-answers",
    ];
    let mut p = plan("4.2.1-ubuntu-kvm");
    let before = p.hash.clone();
    assert_taken(&p, &taken);
    p.defer_to_rollout(&r);
    assert_ne!(p.hash, before, "a changed plan hashes differently");
    for id in taken {
        assert!(
            !p.steps.iter().any(|s| s.id == id),
            "{id} still in the plan"
        );
        assert!(p.deferred(id).is_some(), "{id} not left to the fleet");
    }
    assert!(matches!(
        reason(&p, "restart-system-vms"),
        Some(SkipReason::Deferred { by }) if by == "restart-system-vms-once"
    ));
    assert!(
        p.deferred("restart-system-vms")
            .unwrap()
            .summary()
            .contains("sh -c"),
    );
    // The rest of the plan is as before.
    assert_taken(&p, &["start-management", "management-answers"]);
    // 4.3.x (B) restarts no system VM: nothing to leave to the fleet, which
    // then skips its step on this host; every host still waits for Up.
    let mut p = plan("4.3.1-ubuntu-kvm");
    p.defer_to_rollout(&r);
    assert!(p.deferred("restart-system-vms").is_none());
    assert!(p.deferred("hosts-up").is_some());
}
