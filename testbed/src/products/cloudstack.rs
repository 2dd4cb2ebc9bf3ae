//! Stand-in Apache CloudStack (seed 003): `cloudstack-management`,
//! `cloudstack-usage`, `cloudstack-agent` and `cloudstack-common` from 4.1
//! on, the old `cloud-client`, `cloud-usage`, `cloud-agent` and `cloud-deps`
//! names before (which the new packages conflict with and replace), with the
//! services of their time (`cloud-management`, `cloud-usage`, `cloud-agent`;
//! `cloudstack-*` from 4.1). None is started by its package: the admin
//! starts it, as the guide does after each install.
//!
//! - MariaDB databases `cloud` and `cloud_usage`, migrated by the management
//!   and usage servers when they start, as CloudStack does, on whatever
//!   server the host's MariaDB client is pointed at (a `[client]` section
//!   in /etc/mysql/conf.d: the database is usually on its own host). The
//!   `cloud` schema has the tables the upgrade guide reads and fixes
//!   (`version`, `host`, `host_details`, `storage_pool`, `configuration`,
//!   `vm_template`, `template_host_ref`, from 4.2 `image_store` and
//!   `template_store_ref`, `vm_instance`, `cluster`); each version's
//!   migration adds its `version` row, `Complete`. The 4.3 migration
//!   refuses, as CloudStack's does, a database whose KVM local storage paths
//!   end with a slash or without the 4.3 system VM template downloaded.
//! - The management server answers `/client/` (the UI) once its schema is
//!   right, and listens on `integration.api.port` too when the database
//!   sets it (read at start). 4.x ships `cloudstack-sysvmadm` and
//!   `cloudstack-setup-encryption` (see `runtime/cloudstack/`).
//! - The 4.1+ management package copies db.properties and the key from
//!   /etc/cloud/management on its first install, the 4.1+ agent copies
//!   agent.properties, environment.properties and log4j-cloud.xml from
//!   /etc/cloud/agent (keeping its own log4j-cloud.xml as .dpkg-dist), as
//!   the guide says APT does; the 4.x agent refuses to start with the old
//!   resource class. The agent needs `libvirtd` (the stand-in
//!   [`LIBVIRT_PACKAGE`]); 4.3's ships `cloudstack-agent-upgrade` and the
//!   libvirt qemu hook.
//! - Failure knob: while [`FAIL_POSTINST`] exists on a host, the 4.3
//!   management package's postinst fails there (its configuration step
//!   exits 1), so `apt-get` fails and dpkg leaves it half-configured.

use crate::aptrepo::AptRepo;
use crate::debspec::PackageSpec;
use crate::error::Result;
use crate::schema::{
    Engine, RUNTIME_PACKAGE, Schema, daemon_unit, daemon_unit_with, runtime_package,
};

/// Every stand-in version, oldest first.
pub const VERSIONS: &[&str] = &[
    "2.2.5", "2.2.14", "3.0.2", "4.0.2", "4.1.1", "4.2.1", "4.3.0", "4.3.1", "4.3.2",
];
/// Port of the management server's API (health at /health, UI at /client/).
pub const MANAGEMENT_PORT: u16 = 8080;
/// Port of the usage server's health check.
pub const USAGE_PORT: u16 = 8081;
/// Port of the agent's health check.
pub const AGENT_PORT: u16 = 8250;
/// Port of the stand-in libvirtd (libvirt's TCP port).
pub const LIBVIRT_PORT: u16 = 16509;
/// The stand-in libvirt daemon (`libvirtd.service`), which every agent
/// depends on.
pub const LIBVIRT_PACKAGE: &str = "hoist-standin-libvirtd";
/// While this file exists, the 4.3 management package's postinst fails.
pub const FAIL_POSTINST: &str = "/var/lib/hoist-standin/cloudstack-management.fail-postinst";
/// The apt repository's codename (the guide's lines say `precise`).
pub const CODENAME: &str = "precise";

/// Suite holding one version.
pub fn suite(version: &str) -> String {
    format!("cloudstack-{version}")
}

/// The repository component of a version's series (`4.3` for 4.3.2): the
/// guide's `deb URL precise 4.3`.
pub fn series(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Packages were renamed from `cloud-*` to `cloudstack-*` in 4.1.
pub fn renamed(version: &str) -> bool {
    !version.starts_with("2.") && !version.starts_with("3.") && !version.starts_with("4.0")
}

/// Package names of (management, usage, agent) in `version`.
pub fn names(version: &str) -> (&'static str, &'static str, &'static str) {
    if renamed(version) {
        (
            "cloudstack-management",
            "cloudstack-usage",
            "cloudstack-agent",
        )
    } else {
        ("cloud-client", "cloud-usage", "cloud-agent")
    }
}

/// Service names of (management, usage, agent) in `version`.
pub fn services(version: &str) -> (&'static str, &'static str, &'static str) {
    if renamed(version) {
        names(version)
    } else {
        ("cloud-management", "cloud-usage", "cloud-agent")
    }
}

/// Configuration directory of the management server / agent.
pub fn etc(version: &str) -> &'static str {
    if renamed(version) {
        "/etc/cloudstack"
    } else {
        "/etc/cloud"
    }
}

fn index(version: &str) -> u32 {
    VERSIONS.iter().position(|v| *v == version).unwrap_or(0) as u32 + 1
}

/// Schema version of the `cloud` database for `version`.
pub fn cloud_schema_version(version: &str) -> u32 {
    index(version)
}

/// Schema version of the `cloud_usage` database for `version`.
pub fn usage_schema_version(version: &str) -> u32 {
    if renamed(version) { 2 } else { 1 }
}

const CLOUD_V1: &str = "\
CREATE TABLE version (id bigint AUTO_INCREMENT PRIMARY KEY, version varchar(40) NOT NULL, updated datetime NOT NULL DEFAULT CURRENT_TIMESTAMP, step varchar(32) NOT NULL);
CREATE TABLE host (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, type varchar(32) NOT NULL DEFAULT 'Routing', status varchar(32) NOT NULL DEFAULT 'Up', hypervisor_type varchar(32) NULL, data_center_id bigint NOT NULL DEFAULT 1, resource_state varchar(32) NOT NULL DEFAULT 'Enabled', removed datetime NULL);
CREATE TABLE host_details (id bigint AUTO_INCREMENT PRIMARY KEY, host_id bigint NOT NULL, name varchar(255) NOT NULL, value varchar(255) NOT NULL);
CREATE TABLE storage_pool (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, pool_type varchar(32) NOT NULL, path varchar(255) NOT NULL, removed datetime NULL);
CREATE TABLE configuration (name varchar(255) PRIMARY KEY, value varchar(4095) NULL);
CREATE TABLE vm_template (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, removed datetime NULL);
CREATE TABLE template_host_ref (id bigint AUTO_INCREMENT PRIMARY KEY, host_id bigint NOT NULL, template_id bigint NOT NULL, download_state varchar(32) NULL);
CREATE TABLE vm_instance (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, type varchar(32) NOT NULL, state varchar(32) NOT NULL DEFAULT 'Running', update_count bigint NOT NULL DEFAULT 0, removed datetime NULL);
CREATE TABLE cluster (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, hypervisor_type varchar(32) NOT NULL, managed_state varchar(32) NOT NULL DEFAULT 'Managed', removed datetime NULL);
INSERT INTO configuration (name, value) VALUES ('integration.api.port', NULL);
";

/// 4.2 moves templates to image stores; the old tables stay.
const CLOUD_4_2: &str = "\
CREATE TABLE image_store (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, role varchar(32) NOT NULL DEFAULT 'Image', data_center_id bigint NULL, removed datetime NULL);
CREATE TABLE template_store_ref (id bigint AUTO_INCREMENT PRIMARY KEY, store_id bigint NOT NULL, template_id bigint NOT NULL, download_state varchar(32) NULL);
INSERT INTO image_store (id, name, role, data_center_id) SELECT id, name, 'Image', data_center_id FROM host WHERE type = 'SecondaryStorage' AND removed IS NULL;
INSERT INTO template_store_ref (store_id, template_id, download_state) SELECT host_id, template_id, download_state FROM template_host_ref;
";

/// What CloudStack's 4.3 database upgrade refuses (seed L206-222,
/// L2858-2863).
const CLOUD_4_3_CHECKS: &str = "\
DELIMITER //
BEGIN NOT ATOMIC
  IF EXISTS (SELECT 1 FROM storage_pool WHERE removed IS NULL AND pool_type = 'Filesystem' AND path LIKE '%/' AND path <> '/') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'KVM local storage path with a trailing slash: the 4.3 upgrade fails';
  END IF;
  IF EXISTS (SELECT 1 FROM host WHERE removed IS NULL AND type = 'Routing' AND hypervisor_type = 'KVM')
     AND NOT EXISTS (SELECT 1 FROM vm_template t JOIN template_store_ref r ON r.template_id = t.id
                     WHERE t.removed IS NULL AND t.name = 'systemvm-kvm-4.3' AND r.download_state = 'DOWNLOADED') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no 4.3 system VM template systemvm-kvm-4.3: the 4.3 upgrade fails';
  END IF;
END //
DELIMITER ;
";

fn cloud_schema(version: &str) -> Schema {
    let migrations = VERSIONS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut sql = match *v {
                "2.2.5" => CLOUD_V1.to_owned(),
                "4.2.1" => CLOUD_4_2.to_owned(),
                "4.3.0" => CLOUD_4_3_CHECKS.to_owned(),
                _ => String::new(),
            };
            sql.push_str(&format!(
                "INSERT INTO version (version, step) VALUES ('{v}', 'Complete');"
            ));
            (i as u32 + 1, sql)
        })
        .collect();
    Schema {
        engine: Engine::MariaDb,
        database: "cloud".into(),
        version: cloud_schema_version(version),
        migrations,
        migrate_in_postinst: false,
    }
}

fn usage_schema(version: &str) -> Schema {
    Schema {
        engine: Engine::MariaDb,
        database: "cloud_usage".into(),
        version: usage_schema_version(version),
        migrations: vec![
            (1, "CREATE TABLE usage_event (id bigint AUTO_INCREMENT PRIMARY KEY, type varchar(32) NOT NULL);".into()),
            (2, "ALTER TABLE usage_event ADD COLUMN zone_id bigint NULL;".into()),
        ],
        migrate_in_postinst: false,
    }
}

/// db.properties of `version` as shipped (the admin adds the credentials
/// and the database host); 4.3.2 adds a key (an edited copy conflicts).
pub fn db_properties(version: &str) -> String {
    let mut s = String::from(
        "db.cloud.host=localhost\ndb.cloud.port=3306\ndb.cloud.name=cloud\n\
         db.usage.host=localhost\ndb.usage.port=3306\ndb.usage.name=cloud_usage\n",
    );
    if version == "4.3.2" {
        s.push_str("db.cloud.keyStore=\n");
    }
    s
}

/// components.xml of `version`: changes at the rename.
pub fn components_xml(version: &str) -> String {
    let ns = if renamed(version) {
        "org.apache.cloudstack"
    } else {
        "com.cloud"
    };
    format!(
        "<components>\n  <management-server class=\"{ns}.server.ManagementServer\"/>\n</components>\n"
    )
}

/// The agent's resource class: it moved in 4.0 (seed L3353-3360).
pub fn resource_class(version: &str) -> &'static str {
    if version.starts_with("2.") || version.starts_with("3.") {
        "com.cloud.agent.resource.computing.LibvirtComputingResource"
    } else {
        "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource"
    }
}

/// agent.properties as shipped (the agent's identity is added locally).
pub fn agent_properties(version: &str) -> String {
    format!("resource={}\nport=8250\n", resource_class(version))
}

/// log4j-cloud.xml of the agent: logs under /var/log/cloud before 4.1.
pub fn agent_log4j(version: &str) -> String {
    let dir = if renamed(version) {
        "cloudstack"
    } else {
        "cloud"
    };
    format!(
        "<log4j:configuration>\n  <appender name=\"FILE\">\n    <param name=\"File\" value=\"/var/log/{dir}/agent/agent.log\"/>\n  </appender>\n</log4j:configuration>\n"
    )
}

/// The stand-in libvirt daemon.
pub fn libvirt_package() -> PackageSpec {
    PackageSpec::new(LIBVIRT_PACKAGE, "1.0")
        .description("libvirt daemon (stand-in)")
        .depends(RUNTIME_PACKAGE)
        .unit(
            "libvirtd.service",
            &daemon_unit("libvirtd", "1.0", LIBVIRT_PORT, None, &[], None),
        )
}

fn management(version: &str, common: &str) -> PackageSpec {
    let (name, _, _) = names(version);
    let (service, _, _) = services(version);
    let etc = etc(version);
    let cloud = cloud_schema(version);
    let mut m = PackageSpec::new(name, version)
        .description("CloudStack management server (stand-in)")
        .depends(&format!("{common} (= {version})"))
        .depends("mariadb-client")
        .depends(RUNTIME_PACKAGE)
        .conffile(
            &format!("{etc}/management/db.properties"),
            db_properties(version),
        )
        .conffile(
            &format!("{etc}/management/components.xml"),
            components_xml(version),
        )
        .conffile(
            &format!("{etc}/management/environment.properties"),
            "paths.script=/usr/share/cloudstack-common\n",
        )
        .schema(cloud.clone())
        .unit(
            &format!("{service}.service"),
            &daemon_unit_with(
                service,
                version,
                MANAGEMENT_PORT,
                Some((&cloud, name)),
                &[],
                None,
                &[
                    "--path /client/".into(),
                    "--port-setting integration.api.port".into(),
                ],
            ),
        )
        .no_start();
    if renamed(version) {
        m = m
            .conflicts("cloud-client")
            .replaces("cloud-client")
            .executable(
                "/usr/bin/cloudstack-sysvmadm",
                include_str!("../runtime/cloudstack/sysvmadm.sh"),
            )
            .executable(
                "/usr/bin/cloudstack-setup-encryption",
                include_str!("../runtime/cloudstack/setup-encryption.py"),
            );
        // [EXT] The Debian package's postinst carries the old
        // configuration over on its first install.
        let mut post = String::from(
            "if [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n\
             \x20 for f in db.properties key; do\n\
             \x20   if [ -f /etc/cloud/management/$f ]; then cp -a /etc/cloud/management/$f /etc/cloudstack/management/$f; fi\n\
             \x20 done\nfi",
        );
        if version.starts_with("4.3") {
            post.push_str(&format!(
                "\nif [ \"$1\" = configure ] && [ -e {FAIL_POSTINST} ]; then\n\
                 \x20 echo \"{name} {version}: configuration failed ({FAIL_POSTINST} exists)\" >&2\n\
                 \x20 exit 1\nfi"
            ));
        }
        m = m.postinst(&post);
    }
    m
}

fn agent(version: &str, common: &str) -> PackageSpec {
    let (_, _, name) = names(version);
    let (_, _, service) = services(version);
    let etc = etc(version);
    let props = format!("{etc}/agent/agent.properties");
    let mut extra = Vec::new();
    if renamed(version) {
        extra.push(format!("--require resource={}", resource_class(version)));
    }
    let mut a = PackageSpec::new(name, version)
        .description("CloudStack agent (stand-in)")
        .depends(&format!("{common} (= {version})"))
        .depends(RUNTIME_PACKAGE)
        .depends(LIBVIRT_PACKAGE)
        .conffile(&props, agent_properties(version))
        .conffile(
            &format!("{etc}/agent/environment.properties"),
            "paths.script=/usr/share/cloudstack-common\n",
        )
        .conffile(
            &format!("{etc}/agent/log4j-cloud.xml"),
            agent_log4j(version),
        )
        .unit(
            &format!("{service}.service"),
            &daemon_unit_with(
                service,
                version,
                AGENT_PORT,
                None,
                &[("libvirtd", LIBVIRT_PORT)],
                Some(&props),
                &extra,
            ),
        )
        .no_start();
    if renamed(version) {
        a = a.conflicts("cloud-agent").replaces("cloud-agent").postinst(
            "if [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n\
             \x20 for f in agent.properties environment.properties log4j-cloud.xml; do\n\
             \x20   if [ -f /etc/cloud/agent/$f ]; then\n\
             \x20     if [ $f = log4j-cloud.xml ]; then cp -a /etc/cloudstack/agent/$f /etc/cloudstack/agent/$f.dpkg-dist; fi\n\
             \x20     cp -a /etc/cloud/agent/$f /etc/cloudstack/agent/$f\n\
             \x20   fi\n\
             \x20 done\nfi",
        );
    }
    if version.starts_with("4.3") {
        a = a
            .executable(
                "/usr/bin/cloudstack-agent-upgrade",
                include_str!("../runtime/cloudstack/agent-upgrade.sh"),
            )
            .executable(
                "/usr/share/cloudstack-agent/lib/libvirtqemuhook",
                include_str!("../runtime/cloudstack/libvirtqemuhook"),
            );
    }
    a
}

/// All packages of one version: common, management, usage, agent.
pub fn packages(version: &str) -> Vec<PackageSpec> {
    let (_, usage_name, _) = names(version);
    let (_, usage_service, _) = services(version);
    let usage_s = usage_schema(version);
    let mut common = PackageSpec::new(
        if renamed(version) {
            "cloudstack-common"
        } else {
            "cloud-deps"
        },
        version,
    )
    .file(
        "/etc/cloudstack-release",
        format!("Cloudstack Release {version}\n"),
    );
    if renamed(version) {
        common = common.conflicts("cloud-deps").replaces("cloud-deps");
    }
    let common_name = common.name.clone();
    let mut u = PackageSpec::new(usage_name, version)
        .description("CloudStack usage server (stand-in)")
        .depends(&format!("{common_name} (= {version})"))
        .depends("mariadb-client")
        .depends(RUNTIME_PACKAGE)
        .schema(usage_s.clone())
        .unit(
            &format!("{usage_service}.service"),
            &daemon_unit(
                usage_service,
                version,
                USAGE_PORT,
                Some((&usage_s, usage_name)),
                &[],
                None,
            ),
        )
        .no_start();
    if renamed(version) {
        u = u.conflicts("cloud-usage").replaces("cloud-usage");
    }
    vec![
        common,
        management(version, &common_name),
        u,
        agent(version, &common_name),
    ]
}

/// Put every version in its own suite (with the runtime and libvirtd), and
/// every series in the component of the guide's layout, `dists/precise/4.3`
/// (4.3.0, 4.3.1 and 4.3.2 in `4.3`). Call [`AptRepo::publish`] afterwards.
pub fn add_to(repo: &mut AptRepo) -> Result<Vec<String>> {
    let mut suites = Vec::new();
    for v in VERSIONS {
        let s = suite(v);
        repo.add(&s, &runtime_package())?;
        repo.add(&s, &libvirt_package())?;
        repo.add_all(&s, &packages(v))?;
        repo.add_component(CODENAME, &series(v), &s);
        suites.push(s);
    }
    Ok(suites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_valid_and_renamed_at_4_1() {
        for v in VERSIONS {
            for p in packages(v) {
                p.validate().expect("valid spec");
            }
        }
        assert_eq!(names("4.0.2").0, "cloud-client");
        assert_eq!(services("4.0.2").0, "cloud-management");
        assert_eq!(names("4.1.1").0, "cloudstack-management");
        assert_eq!(series("4.3.2"), "4.3");
        assert_eq!(series("2.2.5"), "2.2");
        let m = &packages("4.3.0")[1];
        assert!(m.conflicts.contains(&"cloud-client".to_owned()));
        assert!(m.postinst.as_deref().unwrap().contains(FAIL_POSTINST));
        assert!(
            !packages("4.2.1")[1]
                .postinst
                .as_deref()
                .unwrap()
                .contains(FAIL_POSTINST)
        );
        assert_ne!(db_properties("4.3.1"), db_properties("4.3.2"));
        assert_eq!(cloud_schema_version("4.3.2"), VERSIONS.len() as u32);
    }
}
