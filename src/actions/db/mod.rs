//! `db`: back up, restore, or run SQL against PostgreSQL or MySQL/MariaDB.
//! Credentials are read from files on the host, never put in argv (seed 003
//! runs `mysqldump -u root -p`).
//!
//! - `backup` (seed 001: "backup the database"; seed 003: `mysqldump`;
//!   seed 004: `pg_dump -Fc walt`) writes the dump beside its final name,
//!   fsyncs it, checks it reads back, then renames it into place; the dump
//!   it replaces is kept aside, and `keep` dumps per `dump` path are kept.
//! - `restore` puts a database back exactly as dumped: it is dropped and
//!   created again from the dump, so tables a migration added go too.
//! - `sql` runs its statements in one transaction together with its
//!   `check`, which must hold before the commit (CloudStack's storage_pool
//!   trailing-slash fix: the count of such paths must then be 0). With
//!   `protect = true` the database is dumped into the step's directory first
//!   and rollback restores it.
//! - `upgrade_cluster` and `drop_cluster` (seed 004: `pg_upgradecluster`,
//!   `pg_dropcluster`) move a Debian PostgreSQL cluster to a new major,
//!   checked by a fingerprint of its data, with an undo that puts the old
//!   cluster back (see `cluster.rs`).

pub mod backups;
mod client;
mod cluster;
mod jasypt;
mod ops;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;

pub use client::Client;
pub use ops::query_value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgresql,
    Mysql,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Backup,
    Restore,
    Sql,
    #[serde(rename = "upgrade_cluster")]
    UpgradeCluster,
    #[serde(rename = "drop_cluster")]
    DropCluster,
}

impl Op {
    /// The ops on a whole cluster (Debian's postgresql-common), not on one
    /// database.
    pub fn on_cluster(self) -> bool {
        matches!(self, Op::UpgradeCluster | Op::DropCluster)
    }
}

/// How `pg_upgradecluster` moves the data (its `-m`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// pg_dump and restore into the new cluster; the old one is untouched.
    #[default]
    Dump,
    /// pg_upgrade, copying the data files.
    Upgrade,
    /// pg_upgrade with hard links: fast, but the old cluster cannot be
    /// started again once the new one has run.
    Link,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Dump => "dump",
            Method::Upgrade => "upgrade",
            Method::Link => "link",
        }
    }
}

/// How to log in. Every form keeps the secret off the command line.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Run the client as this OS user (PostgreSQL peer authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// A MySQL option file (`/etc/mysql/debian.cnf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults_file: Option<String>,
    /// A properties file and the keys holding user and password
    /// (CloudStack's `db.properties`: `db.cloud.username`, `db.cloud.password`),
    /// or a list of such files of which the first that exists is read
    /// (CloudStack moved it from /etc/cloud to /etc/cloudstack in 4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<PropertiesFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
    /// Keys of the same file naming the server (`db.cloud.host`,
    /// `db.cloud.port`): CloudStack's database is often on another host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_key: Option<String>,
}

/// `properties`: one file, or files tried in order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PropertiesFile {
    One(String),
    FirstOf(Vec<String>),
}

impl PropertiesFile {
    /// The files, in the order they are tried.
    pub fn candidates(&self) -> &[String] {
        match self {
            PropertiesFile::One(f) => std::slice::from_ref(f),
            PropertiesFile::FirstOf(v) => v,
        }
    }

    /// The first file that exists on this host, or why none does.
    pub fn resolve(&self) -> Result<&str, String> {
        let c = self.candidates();
        c.iter()
            .find(|f| std::path::Path::new(f).exists())
            .map(String::as_str)
            .ok_or_else(|| match c {
                [one] => format!("{one}: no such file"),
                _ => format!("none of {} exists", c.join(", ")),
            })
    }
}

impl Credentials {
    /// None given (the default).
    pub fn is_empty(&self) -> bool {
        self.os_user.is_none()
            && self.defaults_file.is_none()
            && self.properties.is_none()
            && self.user_key.is_none()
            && self.password_key.is_none()
            && self.host_key.is_none()
            && self.port_key.is_none()
    }

    pub fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if self.os_user.is_some() && self.properties.is_some() {
            problems.push(
                Problem::error(
                    "one-of",
                    span.clone(),
                    "`credentials` takes `os_user` or `properties`, not both",
                )
                .label("the password file is written for hoist's own user"),
            );
        }
        if self.properties.is_none() && (self.host_key.is_some() || self.port_key.is_some()) {
            problems.push(
                Problem::error(
                    "missing-key",
                    span.clone(),
                    "`host_key` and `port_key` name keys of `credentials.properties`",
                )
                .label("add `properties`"),
            );
        }
        if let Some(PropertiesFile::FirstOf(files)) = &self.properties
            && files.iter().all(|f| f.trim().is_empty())
        {
            problems.push(
                Problem::error(
                    "bad-value",
                    span.clone(),
                    "`credentials.properties` lists no file",
                )
                .label("name the file, or the files to try in order"),
            );
        }
        if self.properties.is_some() && (self.user_key.is_none() || self.password_key.is_none()) {
            problems.push(
                Problem::error(
                    "missing-key",
                    span.clone(),
                    "`credentials.properties` needs `user_key` and `password_key`",
                )
                .label("which keys of the file hold the user and the password?"),
            );
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Db {
    pub op: Op,
    pub engine: Engine,
    /// Every op but the cluster ones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
    /// The dump file, for `backup` and `restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_file: Option<String>,
    /// `sql`: a query returning one value, and the value it must return
    /// once the statements are applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// `sql`: dump the database into the step's directory first, so that
    /// rollback restores it (the statements' own undo).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    /// `backup`: how many dumps of this `dump` path to keep, this one
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// `backup`: rollback restores the database from the very dump this
    /// step wrote, wherever a later backup to the same path moved it (two
    /// hops of one route both dump to `cloud.sql`: undoing the first must
    /// restore the first's dump, not the second's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore_on_rollback: bool,
    #[serde(default)]
    pub credentials: Credentials,
    /// `upgrade_cluster`: the old and the new major (`"13"`, `"9.6"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `upgrade_cluster`, `drop_cluster`: the cluster's name (`main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `upgrade_cluster`: the upgraded cluster's name (default: `cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// `upgrade_cluster`: drop the empty `<to>/<new_cluster>` the new
    /// major's package created, as Debian's procedure does first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_empty_target: bool,
    /// `drop_cluster`: the major of the cluster to drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub query: String,
    pub expect: String,
}

/// Dumps kept per `dump` path when the recipe does not say.
pub const DEFAULT_KEEP: u32 = 3;

impl Kind for Db {
    const NAME: &'static str = "db";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let engine = match self.engine {
            Engine::Postgresql => "PostgreSQL",
            Engine::Mysql => "MySQL",
        };
        let dump = self.dump.as_deref().unwrap_or("?");
        match self.op {
            Op::UpgradeCluster | Op::DropCluster => cluster::summary(self),
            Op::Backup => format!("back up {engine} database {} to {dump}", self.database),
            Op::Restore => format!("restore {engine} database {} from {dump}", self.database),
            Op::Sql => match (&self.sql, &self.sql_file) {
                (Some(sql), _) => format!(
                    "SQL on {engine} {}: {}",
                    self.database,
                    super::exec::first_line(sql)
                ),
                (_, Some(f)) => format!("SQL file {f} on {engine} {}", self.database),
                _ => format!("SQL on {engine} {}", self.database),
            },
        }
    }

    /// A distribution upgrade, a large dump or cluster upgrade takes
    /// hours on a slow disk or mirror.
    fn default_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(6 * 3600)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["db", "exec"]
    }

    fn touches_database(&self) -> bool {
        true
    }

    fn disruptive(&self) -> bool {
        self.op != Op::Backup
    }

    /// A backup only adds a dump beside the data; the data is untouched.
    fn changes_host(&self) -> bool {
        self.op != Op::Backup
    }

    fn executable(&self) -> bool {
        true
    }

    fn preflight(&self, _ctx: &Ctx<'_>) -> Result<(), String> {
        ops::preflight(self)
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.op {
            Op::Backup => ops::backup(self, ctx),
            Op::Restore => ops::restore(self, ctx),
            Op::Sql => ops::sql(self, ctx),
            Op::UpgradeCluster => cluster::upgrade(self, ctx),
            Op::DropCluster => cluster::drop(self, ctx),
        }
    }

    fn builtin_undo(&self) -> bool {
        (self.op == Op::Sql && self.protect)
            || (self.op == Op::Backup && self.restore_on_rollback)
            || self.op == Op::UpgradeCluster
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.op {
            Op::UpgradeCluster => cluster::undo_upgrade(self, ctx),
            Op::Sql if self.protect => ops::put_back(self, ctx),
            Op::Backup if self.restore_on_rollback => ops::restore_own_dump(self, ctx),
            _ => Err(
                "`db` has a built-in undo only for `upgrade_cluster`, `sql` with `protect = true` and `backup` with `restore_on_rollback = true`"
                    .into(),
            ),
        }
    }

    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        match (&self.op, &self.check) {
            (Op::Sql, Some(check)) => ops::check_holds(self, check, ctx).ok(),
            (Op::UpgradeCluster, _) => cluster::upgrade_applied(self, ctx),
            (Op::DropCluster, _) => cluster::drop_applied(self),
            _ => None,
        }
    }

    fn preview(&self, _recipe_dir: &std::path::Path) -> Option<String> {
        cluster::preview(self)
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        self.credentials.validate(span, problems);
        if self.op.on_cluster() {
            cluster::validate(self, span, problems);
            return;
        }
        let cluster_keys = [
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("cluster", self.cluster.is_some()),
            ("new_cluster", self.new_cluster.is_some()),
            ("method", self.method.is_some()),
            ("replace_empty_target", self.replace_empty_target),
            ("version", self.version.is_some()),
        ];
        for (key, set) in cluster_keys {
            if set {
                problems.push(
                    Problem::error(
                        "unused-key",
                        span.clone(),
                        format!("`db` takes `{key}` only with the cluster ops"),
                    )
                    .label(format!("remove `{key}`")),
                );
            }
        }
        if self.database.is_empty() {
            problems.push(
                Problem::error(
                    "missing-key",
                    span.clone(),
                    "`db` needs `database` (the database's name)",
                )
                .label("add `database`"),
            );
        }
        let misplaced = [
            ("check", self.check.is_some() && self.op != Op::Sql, "`sql`"),
            ("protect", self.protect && self.op != Op::Sql, "`sql`"),
            (
                "keep",
                self.keep.is_some() && self.op != Op::Backup,
                "`backup`",
            ),
            (
                "restore_on_rollback",
                self.restore_on_rollback && self.op != Op::Backup,
                "`backup`",
            ),
            (
                "dump",
                self.dump.is_some() && self.op == Op::Sql,
                "`backup` and `restore`",
            ),
        ];
        for (key, wrong, ops) in misplaced {
            if wrong {
                problems.push(
                    Problem::error(
                        "unused-key",
                        span.clone(),
                        format!("`db` takes `{key}` only with op {ops}"),
                    )
                    .label(format!("remove `{key}`")),
                );
            }
        }
        if self.keep == Some(0) {
            problems.push(
                Problem::error("bad-value", span.clone(), "`keep` must be at least 1")
                    .label("the dump just taken is always kept"),
            );
        }
        match self.op {
            Op::Backup | Op::Restore if self.dump.is_none() => problems.push(
                Problem::error(
                    "missing-key",
                    span.clone(),
                    "`db` backup and restore need `dump` (the dump file's path)",
                )
                .label("add `dump`"),
            ),
            Op::Sql => super::exactly_one(
                "db",
                span,
                &[
                    ("sql", self.sql.is_some()),
                    ("sql_file", self.sql_file.is_some()),
                ],
                problems,
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(toml_text: &str) -> Credentials {
        toml::from_str(toml_text).expect("credentials parse")
    }

    #[test]
    fn properties_is_a_file_or_the_first_existing_of_a_list() {
        let dir = std::env::temp_dir().join(format!("hoist-props-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.properties");
        let new = dir.join("new.properties");
        std::fs::write(&old, "db.cloud.username=cloud\n").unwrap();
        let (o, n) = (old.display().to_string(), new.display().to_string());

        let one = creds(&format!(
            "properties = {o:?}\nuser_key = \"u\"\npassword_key = \"p\""
        ));
        assert_eq!(one.properties, Some(PropertiesFile::One(o.clone())));
        assert_eq!(one.properties.as_ref().unwrap().resolve().unwrap(), o);
        // A plain string still serialises as a string (plans keep their hash).
        assert_eq!(
            serde_json::to_value(&one).unwrap()["properties"],
            serde_json::json!(o)
        );

        let list = creds(&format!(
            "properties = [{n:?}, {o:?}]\nuser_key = \"u\"\npassword_key = \"p\""
        ));
        let files = list.properties.clone().unwrap();
        assert_eq!(files.candidates(), [n.clone(), o.clone()]);
        // The new one does not exist yet: the old one is read.
        assert_eq!(files.resolve().unwrap(), o);
        std::fs::write(&new, "db.cloud.username=cloud\n").unwrap();
        assert_eq!(files.resolve().unwrap(), n);
        std::fs::remove_file(&new).unwrap();
        std::fs::remove_file(&old).unwrap();
        let err = files.resolve().unwrap_err();
        assert!(
            err.contains("none of") && err.contains(&n) && err.contains(&o),
            "{err}"
        );

        let mut problems = Vec::new();
        list.validate(&(0..1), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let empty = creds("properties = []\nuser_key = \"u\"\npassword_key = \"p\"");
        empty.validate(&(0..1), &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("lists no file"),
            "{problems:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
