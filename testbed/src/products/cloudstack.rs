//! Stand-in Apache CloudStack (seed 003): `cloudstack-management`,
//! `cloudstack-usage`, `cloudstack-agent` and `cloudstack-common` from 4.1
//! on, the old `cloud-client`, `cloud-usage`, `cloud-agent` names before
//! (which the new packages conflict with and replace). MariaDB databases
//! `cloud` and `cloud_usage`, migrated by the management and usage servers
//! when they start, as CloudStack does. Conffiles `db.properties`,
//! `environment.properties`, `components.xml` and `agent.properties` under
//! /etc/cloud (old) or /etc/cloudstack (new), some changing between
//! versions so that local edits conflict; the new agent's postinst copies
//! the old agent's properties over, as the guide says APT does.

use crate::aptrepo::AptRepo;
use crate::debspec::PackageSpec;
use crate::error::Result;
use crate::schema::{Engine, RUNTIME_PACKAGE, Schema, daemon_unit, runtime_package};

/// Every stand-in version, oldest first.
pub const VERSIONS: &[&str] = &[
    "2.2.14", "3.0.2", "4.0.2", "4.1.1", "4.2.1", "4.3.0", "4.3.1", "4.3.2",
];
/// Port of the management server's API (health at /health).
pub const MANAGEMENT_PORT: u16 = 8080;
/// Port of the usage server's health check.
pub const USAGE_PORT: u16 = 8081;
/// Port of the agent's health check.
pub const AGENT_PORT: u16 = 8250;

/// Suite holding one version.
pub fn suite(version: &str) -> String {
    format!("cloudstack-{version}")
}

/// Packages were renamed from `cloud-*` to `cloudstack-*` in 4.1.
pub fn renamed(version: &str) -> bool {
    !["2.2.14", "3.0.2", "4.0.2"].contains(&version)
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

fn cloud_schema(version: &str) -> Schema {
    let migrations = (1..=VERSIONS.len() as u32)
        .map(|v| {
            let sql = if v == 1 {
                "CREATE TABLE host (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(255) NOT NULL, status varchar(32) NOT NULL DEFAULT 'Up');".to_owned()
            } else {
                format!("ALTER TABLE host ADD COLUMN upgrade_{v} integer NULL;")
            };
            (v, sql)
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

/// db.properties of `version`; 4.3.2 adds a key (an edited copy conflicts).
pub fn db_properties(version: &str) -> String {
    let mut s = String::from(
        "db.cloud.host=localhost\ndb.cloud.port=3306\ndb.cloud.name=cloud\n\
         db.usage.host=localhost\ndb.usage.name=cloud_usage\n",
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

/// agent.properties as shipped (the agent's identity is added locally).
pub fn agent_properties(version: &str) -> String {
    let class = if renamed(version) {
        "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource"
    } else {
        "com.cloud.agent.resource.computing.LibvirtComputingResource"
    };
    format!("resource={class}\nport=8250\n")
}

/// All packages of one version.
pub fn packages(version: &str) -> Vec<PackageSpec> {
    let (mgmt, usage, agent) = names(version);
    let etc = etc(version);
    let exact = |p: &str| format!("{p} (= {version})");
    let cloud = cloud_schema(version);
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
    let common_name = common.name.clone();
    let mut m = PackageSpec::new(mgmt, version)
        .description("CloudStack management server (stand-in)")
        .depends(&exact(&common_name))
        .depends("mariadb-server")
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
            &format!("{mgmt}.service"),
            &daemon_unit(
                mgmt,
                version,
                MANAGEMENT_PORT,
                Some((&cloud, mgmt)),
                &[],
                None,
            ),
        );
    let mut u = PackageSpec::new(usage, version)
        .description("CloudStack usage server (stand-in)")
        .depends(&exact(&common_name))
        .schema(usage_s.clone())
        .unit(
            &format!("{usage}.service"),
            &daemon_unit(
                usage,
                version,
                USAGE_PORT,
                Some((&usage_s, usage)),
                &[],
                None,
            ),
        );
    let mut a = PackageSpec::new(agent, version)
        .description("CloudStack agent (stand-in)")
        .depends(&exact(&common_name))
        .depends(RUNTIME_PACKAGE)
        .conffile(
            &format!("{etc}/agent/agent.properties"),
            agent_properties(version),
        )
        .conffile(
            &format!("{etc}/agent/environment.properties"),
            "paths.script=/usr/share/cloudstack-common\n",
        )
        .unit(
            &format!("{agent}.service"),
            &daemon_unit(
                agent,
                version,
                AGENT_PORT,
                None,
                &[],
                Some(&format!("{etc}/agent/agent.properties")),
            ),
        );
    if renamed(version) {
        m = m.conflicts("cloud-client").replaces("cloud-client");
        u = u.conflicts("cloud-usage").replaces("cloud-usage");
        a = a.conflicts("cloud-agent").replaces("cloud-agent");
        common = common.conflicts("cloud-deps").replaces("cloud-deps");
        a = a.postinst(
            "if [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n\
             \x20 for f in agent.properties environment.properties; do\n\
             \x20   if [ -f /etc/cloud/agent/$f ]; then cp -a /etc/cloud/agent/$f /etc/cloudstack/agent/$f; fi\n\
             \x20 done\nfi",
        );
    }
    vec![common, m, u, a]
}

/// Put every version in its own suite (with the runtime). Call
/// [`AptRepo::publish`] afterwards.
pub fn add_to(repo: &mut AptRepo) -> Result<Vec<String>> {
    let mut suites = Vec::new();
    for v in VERSIONS {
        let s = suite(v);
        repo.add(&s, &runtime_package())?;
        repo.add_all(&s, &packages(v))?;
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
        assert_eq!(names("4.1.1").0, "cloudstack-management");
        let m = &packages("4.3.0")[1];
        assert!(m.conflicts.contains(&"cloud-client".to_owned()));
        assert_ne!(db_properties("4.3.1"), db_properties("4.3.2"));
    }
}
