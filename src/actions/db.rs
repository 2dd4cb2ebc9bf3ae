//! `db`: back up, restore, or run SQL against PostgreSQL or MySQL/MariaDB.
//! Credentials are read from files on the host, never put in argv (seed 003
//! runs `mysqldump -u root -p`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;

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
    /// (CloudStack's `db.properties`: `db.cloud.username`, `db.cloud.password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

impl Credentials {
    pub fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
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
    pub database: String,
    /// The dump file, for `backup` and `restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_file: Option<String>,
    #[serde(default)]
    pub credentials: Credentials,
}

impl Kind for Db {
    const NAME: &'static str = "db";

    fn summary(&self) -> String {
        let engine = match self.engine {
            Engine::Postgresql => "PostgreSQL",
            Engine::Mysql => "MySQL",
        };
        let dump = self.dump.as_deref().unwrap_or("?");
        match self.op {
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

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["db", "exec"]
    }

    fn disruptive(&self) -> bool {
        self.op != Op::Backup
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        self.credentials.validate(span, problems);
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
                &[("sql", self.sql.is_some()), ("sql_file", self.sql_file.is_some())],
                problems,
            ),
            _ => {}
        }
    }
}
