//! Stand-in XiVO (seeds 000 and 001): the `xivo` metapackage, five daemons
//! that must start in order (sysconfd and confgend, then asterisk, agid,
//! ctid), `xivo-update-db`, a PostgreSQL
//! database `asterisk` whose schema changes with the version and is
//! migrated by `xivo-manage-db`'s postinst, a conffile that changes in
//! 1.2.3, the wizard precondition, and from 1.2.2 on `xivo-upgrade` with
//! its `-d`/`-f` options, pre/post-upgrade.d hooks and the firewall DROP
//! rule on SIP (udp 5060) held during the upgrade; the archive key that
//! changed after 1.2.3.

use crate::aptrepo::AptRepo;
use crate::debspec::PackageSpec;
use crate::error::Result;
use crate::schema::{Engine, Schema, daemon_unit, runtime_package};

/// Every stand-in version, oldest first. 1.1 -> 1.2 is unsupported; 1.2.0
/// and 1.2.1 predate `xivo-upgrade`.
pub const VERSIONS: &[&str] = &["1.1.21", "1.2.0", "1.2.1", "1.2.2", "1.2.3", "1.2.4"];

/// The daemons in start order: (unit, port, the ports it needs first).
/// `asterisk` answers on 5060 (TCP here, a health endpoint standing in for
/// SIP): the port a downtime probe watches.
pub const DAEMONS: &[(&str, u16, &[u16])] = &[
    ("xivo-sysconfd", 8668, &[]),
    ("xivo-confgend", 8669, &[]),
    ("asterisk", 5060, &[8668, 8669]),
    ("xivo-agid", 4573, &[5060]),
    ("xivo-ctid", 5003, &[5060, 4573]),
];

/// The schema migration command `xivo-manage-db` ships: migrates the
/// database to the installed version; `--check` exits 0 when it is there.
pub const UPDATE_DB: &str = "/usr/bin/xivo-update-db";

/// The database every XiVO version uses.
pub const DATABASE: &str = "asterisk";
/// Present once the web wizard ran; `xivo-upgrade` refuses to run without.
pub const WIZARD_DONE: &str = "/var/lib/xivo/configured";

/// XiVO's archive key changed after 1.2.3 (the docs' `apt-key add` of
/// `xivo_current.key` before upgrading from 1.2.3 or earlier). 1.2.4 is
/// signed with the new key only, as the archive is after the change; the
/// older releases with the old one: hosts refuse 1.2.4 until they trust
/// the new key. Hosts find the key here.
pub const NEW_KEY: &str = "/srv/hoist-repo/keys/xivo_current.gpg";

/// Whether `version`'s suite is signed with the new key (only).
pub fn signed_with_new_key(version: &str) -> bool {
    !version.starts_with("1.1.") && schema_version(version) >= 5
}

/// Suite holding one version: switch a host to it to "publish" a release.
pub fn suite(version: &str) -> String {
    format!("xivo-{version}")
}

/// Schema version the code of `version` needs.
pub fn schema_version(version: &str) -> u32 {
    match version {
        v if v.starts_with("1.1.") => 1,
        "1.2.0" => 2,
        "1.2.1" | "1.2.2" => 3,
        "1.2.3" => 4,
        _ => 5,
    }
}

fn schema(version: &str) -> Schema {
    Schema {
        engine: Engine::PostgreSql,
        database: DATABASE.into(),
        version: schema_version(version),
        migrations: vec![
            (1, "CREATE TABLE userfeatures (id serial PRIMARY KEY, firstname text NOT NULL, lastname text);".into()),
            (2, "CREATE TABLE linefeatures (id serial PRIMARY KEY, name text NOT NULL, protocol text NOT NULL DEFAULT 'sip');".into()),
            (3, "ALTER TABLE userfeatures ADD COLUMN language text;".into()),
            (4, "ALTER TABLE linefeatures ADD COLUMN user_id integer REFERENCES userfeatures(id);".into()),
            (5, "CREATE INDEX linefeatures_name_idx ON linefeatures (name);".into()),
        ],
        migrate_in_postinst: true,
    }
}

/// The sysconfd conffile; 1.2.3 adds a setting, so a locally edited copy
/// conflicts on the upgrade to 1.2.3.
pub fn sysconfd_conf(version: &str) -> String {
    let mut c = String::from("# xivo-sysconfd configuration\nport=8668\nlog_level=info\n");
    if schema_version(version) >= 4 {
        c.push_str("# since 1.2.3\nallowed_networks=127.0.0.0/8\n");
    }
    c
}

const XIVO_SERVICE: &str = r#"#!/bin/sh
# xivo-service start|stop|restart|status: all XiVO daemons, in order.
set -e
order="xivo-sysconfd xivo-confgend asterisk xivo-agid xivo-ctid"
reverse="xivo-ctid xivo-agid asterisk xivo-confgend xivo-sysconfd"
case "$1" in
    start) for s in $order; do systemctl start "$s"; done ;;
    stop) for s in $reverse; do systemctl stop "$s"; done ;;
    restart) "$0" stop; "$0" start ;;
    status) for s in $order; do printf '%s: ' "$s"; systemctl is-active "$s" || true; done ;;
    *) echo "usage: xivo-service start|stop|restart|status" >&2; exit 2 ;;
esac
"#;

const XIVO_UPGRADE: &str = r#"#!/bin/sh
# xivo-upgrade [-d] [-f]: upgrade xivo-upgrade itself first, then run
# real-xivo-upgrade, which upgrades XiVO.
set -e
if [ ! -e /var/lib/xivo/configured ]; then
    echo "You must run the wizard before using xivo-upgrade" >&2
    exit 1
fi
apt-get update -q
apt-get install -q -y xivo-upgrade
exec /usr/bin/real-xivo-upgrade "$@"
"#;

const REAL_XIVO_UPGRADE: &str = r#"#!/bin/sh
# real-xivo-upgrade [-d] [-f]: the six steps of xivo-upgrade.
set -e
download_only=0
force=0
while getopts df opt; do
    case $opt in
        d) download_only=1 ;;
        f) force=1 ;;
        *) echo "usage: xivo-upgrade [-d] [-f]" >&2; exit 2 ;;
    esac
done
current=$(cat /usr/share/xivo/XIVO-VERSION)
new=$(apt-cache policy xivo | sed -n 's/^ *Candidate: //p')
echo "current version: $current"
echo "new version: $new"
if [ "$current" = "$new" ]; then
    echo "XiVO is up to date"
    exit 0
fi
if [ $download_only = 1 ]; then
    apt-get -q -y --download-only dist-upgrade
    exit 0
fi
if [ $force = 0 ]; then
    printf 'Would you like to upgrade your system (all services will be restarted) [Y/n]? '
    read -r answer
    case "$answer" in ""|y|Y|yes) ;; *) echo "upgrade aborted"; exit 1 ;; esac
fi
for hook in /usr/share/xivo-upgrade/pre-upgrade.d/*; do
    if [ -x "$hook" ]; then "$hook"; fi
done
# No SIP registration while daemons are down; removed at the end only, so
# an aborted upgrade leaves it behind (see the docs' warning).
iptables -I INPUT -p udp --dport 5060 -j DROP
xivo-service stop
apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade
for hook in /usr/share/xivo-upgrade/post-upgrade.d/*; do
    if [ -x "$hook" ]; then "$hook"; fi
done
xivo-service start
iptables -D INPUT -p udp --dport 5060 -j DROP
echo "XiVO upgraded to $(cat /usr/share/xivo/XIVO-VERSION)"
"#;

/// All packages of one version.
pub fn packages(version: &str) -> Vec<PackageSpec> {
    let exact = |p: &str| format!("{p} (= {version})");
    let schema = schema(version);
    let update_db = format!(
        "#!/bin/sh\n# xivo-update-db [--check]: migrate the asterisk database to this\n\
         # version's schema; --check: exit 0 when it is there already.\nset -eu\n\
         target=$(cat {dir}/target)\n\
         if [ \"${{1:-}}\" = --check ]; then\n\
         \x20 current=$(runuser -u postgres -- psql -qAt -d {DATABASE} -c 'SELECT max(version) FROM schema_version' 2>/dev/null || true)\n\
         \x20 [ \"$current\" = \"$target\" ]\n\
         \x20 exit\nfi\nexec {cmd}\n",
        dir = Schema::dir("xivo-manage-db"),
        cmd = schema.migrate_command("xivo-manage-db"),
    );
    let mut pkgs = vec![
        PackageSpec::new("xivo-manage-db", version)
            .description("XiVO database schema and migrations")
            .depends("postgresql")
            .depends(crate::schema::RUNTIME_PACKAGE)
            .executable(UPDATE_DB, update_db)
            .schema(schema.clone()),
    ];
    for (unit, port, needs) in DAEMONS {
        let needs: Vec<(&str, u16)> = needs
            .iter()
            .filter_map(|p| DAEMONS.iter().find(|d| d.1 == *p).map(|d| (d.0, d.1)))
            .collect();
        let (db, conf) = match *unit {
            "xivo-sysconfd" => (None, Some("/etc/xivo/sysconfd.conf")),
            "asterisk" => (None, None),
            _ => (Some((&schema, "xivo-manage-db")), None),
        };
        let mut p = PackageSpec::new(unit, version)
            .depends(crate::schema::RUNTIME_PACKAGE)
            .unit(
                &format!("{unit}.service"),
                &daemon_unit(unit, version, *port, db, &needs, conf),
            );
        if db.is_some() {
            p = p.depends(&exact("xivo-manage-db"));
        }
        if let Some(c) = conf {
            p = p.conffile(c, sysconfd_conf(version));
        }
        for (dep, _) in &needs {
            p = p.depends(&exact(dep));
        }
        pkgs.push(p);
    }
    let mut xivo = PackageSpec::new("xivo", version)
        .description("XiVO IPBX (stand-in)")
        .file("/usr/share/xivo/XIVO-VERSION", format!("{version}\n"))
        .executable("/usr/sbin/xivo-service", XIVO_SERVICE)
        .executable(
            "/usr/sbin/xivo-wizard",
            format!("#!/bin/sh\nset -e\nmkdir -p /var/lib/xivo\ntouch {WIZARD_DONE}\n"),
        )
        .depends("iptables");
    for (unit, _, _) in DAEMONS {
        xivo = xivo.depends(&exact(unit));
    }
    if !version.starts_with("1.1.") {
        xivo = xivo.preinst(
            "if [ \"$1\" = upgrade ] && dpkg --compare-versions \"$2\" lt 1.2; then\n\
             \x20 echo \"Upgrading to XiVO 1.2 from XiVO 1.1 is not supported\" >&2\n\
             \x20 exit 1\nfi",
        );
    }
    pkgs.push(xivo);
    if has_xivo_upgrade(version) {
        pkgs.push(
            PackageSpec::new("xivo-upgrade", version)
                .description("upgrade XiVO safely")
                .executable("/usr/bin/xivo-upgrade", XIVO_UPGRADE)
                .executable("/usr/bin/real-xivo-upgrade", REAL_XIVO_UPGRADE)
                .file("/usr/share/xivo-upgrade/pre-upgrade.d/.keep", "")
                .file("/usr/share/xivo-upgrade/post-upgrade.d/.keep", "")
                .depends("iptables"),
        );
    }
    pkgs
}

/// `xivo-upgrade` first appeared in 1.2.2.
pub fn has_xivo_upgrade(version: &str) -> bool {
    !matches!(version, "1.2.0" | "1.2.1") && !version.starts_with("1.1.")
}

/// Put every version in its own suite (with the runtime). Call
/// [`AptRepo::publish`] afterwards.
pub fn add_to(repo: &mut AptRepo) -> Result<Vec<String>> {
    let mut suites = Vec::new();
    for v in VERSIONS {
        let s = suite(v);
        repo.add(&s, &runtime_package())?;
        repo.add_all(&s, &packages(v))?;
        if signed_with_new_key(v) {
            let at = repo.sign_suite_with(&s, "xivo_current")?;
            debug_assert_eq!(at, NEW_KEY);
        }
        suites.push(s);
    }
    Ok(suites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_changes_with_versions() {
        let s: Vec<u32> = VERSIONS.iter().map(|v| schema_version(v)).collect();
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
        assert_eq!(schema_version("1.2.2"), schema_version("1.2.1"));
        assert_ne!(sysconfd_conf("1.2.2"), sysconfd_conf("1.2.3"));
    }

    #[test]
    fn specs_are_valid() {
        for v in VERSIONS {
            for p in packages(v) {
                p.validate().expect("valid spec");
            }
            assert_eq!(
                packages(v).iter().any(|p| p.name == "xivo-upgrade"),
                has_xivo_upgrade(v)
            );
        }
    }
}
