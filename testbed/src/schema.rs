//! Database schemas of the stand-in products, one version per package
//! version, migrated for real by a small script (`migrate`) that the
//! runtime package ships, and checked by the stand-in daemons (a daemon of
//! version N is unhealthy on a schema other than its own).

use crate::debspec::{FileSpec, PackageSpec};

/// Package that ships the stand-in daemon and the migration script; every
/// package with a schema or a daemon depends on it.
pub const RUNTIME_PACKAGE: &str = "hoist-standin-runtime";
/// The daemon program, in [`RUNTIME_PACKAGE`].
pub const DAEMON: &str = "/usr/lib/hoist-standin/daemon";
/// The migration program, in [`RUNTIME_PACKAGE`].
pub const MIGRATE: &str = "/usr/lib/hoist-standin/migrate";

/// Which database server holds a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    PostgreSql,
    MariaDb,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::PostgreSql => "postgresql",
            Engine::MariaDb => "mariadb",
        }
    }
}

/// A database schema at one version, with the migrations leading to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub engine: Engine,
    pub database: String,
    /// The version this package's code needs.
    pub version: u32,
    /// `(version, SQL)` steps; those above `version` are not shipped.
    pub migrations: Vec<(u32, String)>,
    /// Migrate in the postinst (XiVO). Otherwise the product migrates
    /// itself, e.g. at daemon start (CloudStack, WalT).
    pub migrate_in_postinst: bool,
}

impl Schema {
    /// Directory where the package ships its migrations.
    pub fn dir(package: &str) -> String {
        format!("/usr/share/{package}/schema")
    }

    /// The command that migrates the database to this package's version.
    pub fn migrate_command(&self, package: &str) -> String {
        format!(
            "{MIGRATE} {} {} {}",
            self.engine.as_str(),
            self.database,
            Self::dir(package)
        )
    }

    pub(crate) fn files(&self, package: &str) -> Vec<FileSpec> {
        let dir = Self::dir(package);
        let mut files: Vec<FileSpec> = self
            .migrations
            .iter()
            .filter(|(v, _)| *v <= self.version)
            .map(|(v, sql)| FileSpec {
                path: format!("{dir}/{v}.sql"),
                contents: sql.clone().into_bytes(),
                mode: 0o644,
            })
            .collect();
        files.push(FileSpec {
            path: format!("{dir}/target"),
            contents: format!("{}\n", self.version).into_bytes(),
            mode: 0o644,
        });
        files
    }

    pub(crate) fn postinst_snippet(&self, package: &str) -> String {
        if self.migrate_in_postinst {
            format!(
                "if [ \"$1\" = configure ]; then {}; fi",
                self.migrate_command(package)
            )
        } else {
            String::new()
        }
    }
}

/// The runtime package: the daemon and the migration script.
pub fn runtime_package() -> PackageSpec {
    PackageSpec::new(RUNTIME_PACKAGE, "1.0")
        .description("runtime of hoist's stand-in products")
        .depends("python3")
        .executable(DAEMON, include_str!("runtime/daemon.py"))
        .executable(MIGRATE, include_str!("runtime/migrate.sh"))
}

/// A systemd unit running the stand-in daemon. `needs` are (unit, port)
/// pairs of daemons on the same host that must be up first: the unit is
/// ordered after them and the daemon refuses to start until they answer.
pub fn daemon_unit(
    name: &str,
    version: &str,
    port: u16,
    db: Option<(&Schema, &str)>,
    needs: &[(&str, u16)],
    config: Option<&str>,
) -> String {
    daemon_unit_with(name, version, port, db, needs, config, &[])
}

/// [`daemon_unit`] with more arguments for the daemon (`--path`,
/// `--require`, `--port-setting`: see `runtime/daemon.py`).
pub fn daemon_unit_with(
    name: &str,
    version: &str,
    port: u16,
    db: Option<(&Schema, &str)>,
    needs: &[(&str, u16)],
    config: Option<&str>,
    extra: &[String],
) -> String {
    let mut args = format!("--name {name} --version {version} --port {port}");
    for e in extra {
        args.push(' ');
        args.push_str(e);
    }
    let mut after = vec!["network.target".to_owned()];
    let mut pre = String::new();
    if let Some((schema, package)) = db {
        args.push_str(&format!(
            " --db {}:{} --schema {}",
            schema.engine.as_str(),
            schema.database,
            schema.version
        ));
        after.push(match schema.engine {
            Engine::PostgreSql => "postgresql.service".into(),
            Engine::MariaDb => "mariadb.service".into(),
        });
        if !schema.migrate_in_postinst {
            pre = format!("ExecStartPre={}\n", schema.migrate_command(package));
        }
    }
    for (unit, port) in needs {
        args.push_str(&format!(" --needs {port}"));
        after.push(format!("{unit}.service"));
    }
    if let Some(c) = config {
        args.push_str(&format!(" --config {c}"));
    }
    format!(
        "[Unit]\nDescription=stand-in {name} {version}\nAfter={after}\n\n\
         [Service]\nType=notify\n{pre}ExecStart={DAEMON} {args}\nTimeoutStartSec=60\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        after = after.join(" ")
    )
}
