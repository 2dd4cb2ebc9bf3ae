//! `upgrade_cluster` and `drop_cluster`: a Debian PostgreSQL cluster moved
//! to a new major with postgresql-common's own tools, as seed 004 does by
//! hand (`pg_dropcluster --stop 11 main`, `pg_upgradecluster 9.6 main`, later
//! `pg_dropcluster 9.6 main`).
//!
//! `upgrade_cluster` is checked and undoable:
//!
//! - before: the old cluster's fingerprint (every database, and each table's
//!   exact row count) and its config files that `pg_upgradecluster` changes
//!   (`postgresql.conf`: its port; `start.conf`: `manual`) are kept in the
//!   step's directory;
//! - after: the new cluster must be online on the old one's port with the
//!   same fingerprint, else the step fails and the engine undoes it;
//! - undo: the new cluster is dropped, the old one's files put back byte for
//!   byte and the old cluster started; an empty target dropped first is
//!   created again.
//!
//! Markers in the step's directory say how far an attempt went, so a retry
//! or a resume after a crash removes only a half-made cluster this step
//! created, and the undo puts back only what the step changed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{Client, stdout_to};
use super::{Credentials, Db, Engine, Method, Op};
use crate::actions::ctx::Ctx;
use crate::actions::saved::Saved;
use crate::output::diag::Problem;

/// Written before `pg_upgradecluster` runs: from then on, the new cluster
/// (if it exists) is this step's, and the old one may have been changed.
const UPGRADING: &str = "cluster-upgrading";
/// The old cluster as it was (port, fingerprint), written once it was seen
/// online: the undo starts it again only then.
const BEFORE: &str = "cluster-before.json";
/// Written before the empty target is dropped: its port, to create it again.
const TARGET_DROPPED: &str = "cluster-target-dropped";

/// pg_lsclusters and similar quick calls.
const QUICK: Duration = Duration::from_secs(60);

/// The databases a new cluster holds by itself.
const DEFAULT_DATABASES: &[&str] = &["postgres", "template0", "template1"];

/// A cluster: major version and name.
#[derive(Clone, Copy)]
struct Cl<'a> {
    version: &'a str,
    name: &'a str,
}

impl std::fmt::Display for Cl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.version, self.name)
    }
}

/// postgresql-common's configuration root (its tools honour the variable).
fn conf_root() -> PathBuf {
    std::env::var_os("PG_CLUSTER_CONF_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/postgresql"))
}

impl Cl<'_> {
    fn conf_dir(&self) -> PathBuf {
        conf_root().join(self.version).join(self.name)
    }

    /// Its configuration directory is there (what `pg_dropcluster`
    /// removes last, and what `pg_createcluster` makes first).
    fn exists(&self) -> bool {
        self.conf_dir().exists()
    }

    /// `start.conf` says `manual`: what `pg_upgradecluster` writes into the
    /// old cluster's as its last change to it.
    fn manual(&self) -> bool {
        std::fs::read_to_string(self.conf_dir().join("start.conf"))
            .is_ok_and(|t| start_mode(&t) == Some("manual"))
    }
}

/// The mode a `start.conf` sets: its first word outside comments.
fn start_mode(text: &str) -> Option<&str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
}

/// A major as postgresql-common takes it: `15`, `9.6`.
fn major_ok(v: &str) -> bool {
    let mut parts = v.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let first = parts.next();
    match (parts.next(), parts.next()) {
        (None, _) => digits(first),
        (second @ Some(_), None) => digits(first) && digits(second),
        _ => false,
    }
}

/// A cluster name postgresql-common accepts (`[-.\w]+`), that is also one
/// path component and never read as an option.
fn name_ok(n: &str) -> bool {
    n.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The upgrade a step asks for, its values checked (again at run time:
/// `{{ fact }}` placeholders are filled in after the lint).
struct Upgrade<'a> {
    old: Cl<'a>,
    new: Cl<'a>,
    method: Method,
    replace: bool,
}

fn upgrade_of(db: &Db) -> Result<Upgrade<'_>, String> {
    let from = db.from.as_deref().ok_or("`upgrade_cluster` needs `from`")?;
    let to = db.to.as_deref().ok_or("`upgrade_cluster` needs `to`")?;
    let cluster = db.cluster.as_deref().unwrap_or("main");
    let new_cluster = db.new_cluster.as_deref().unwrap_or(cluster);
    for (key, v) in [("from", from), ("to", to)] {
        if !major_ok(v) {
            return Err(format!(
                "`{key}` = {v:?} is not a PostgreSQL major (`15`, `9.6`)"
            ));
        }
    }
    for (key, v) in [("cluster", cluster), ("new_cluster", new_cluster)] {
        if !name_ok(v) {
            return Err(format!(
                "`{key}` = {v:?} is not a cluster name (letters, digits, `_`, `-`, `.`)"
            ));
        }
    }
    if from == to && cluster == new_cluster {
        return Err(format!("{from}/{cluster} would be upgraded into itself"));
    }
    Ok(Upgrade {
        old: Cl {
            version: from,
            name: cluster,
        },
        new: Cl {
            version: to,
            name: new_cluster,
        },
        method: db.method.unwrap_or_default(),
        replace: db.replace_empty_target,
    })
}

fn dropped_of(db: &Db) -> Result<Cl<'_>, String> {
    let version = db
        .version
        .as_deref()
        .ok_or("`drop_cluster` needs `version`")?;
    let name = db.cluster.as_deref().unwrap_or("main");
    if !major_ok(version) {
        return Err(format!(
            "`version` = {version:?} is not a PostgreSQL major (`15`, `9.6`)"
        ));
    }
    if !name_ok(name) {
        return Err(format!(
            "`cluster` = {name:?} is not a cluster name (letters, digits, `_`, `-`, `.`)"
        ));
    }
    Ok(Cl { version, name })
}

pub fn summary(db: &Db) -> String {
    let or_q = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let cluster = db.cluster.as_deref().unwrap_or("main");
    match db.op {
        Op::DropCluster => format!(
            "drop PostgreSQL cluster {}/{cluster} (pg_dropcluster --stop)",
            or_q(&db.version)
        ),
        _ => format!(
            "upgrade PostgreSQL cluster {}/{cluster} to {}/{} (pg_upgradecluster, method {})",
            or_q(&db.from),
            or_q(&db.to),
            db.new_cluster.as_deref().unwrap_or(cluster),
            db.method.unwrap_or_default().name()
        ),
    }
}

pub fn preview(db: &Db) -> Option<String> {
    match db.op {
        Op::DropCluster => Some(
            "irreversible: the cluster's data directory and configuration are deleted; no undo puts them back"
                .into(),
        ),
        Op::UpgradeCluster => {
            let u = upgrade_of(db).ok()?;
            let (old, new) = (u.old, u.new);
            let mut lines = Vec::new();
            if u.replace {
                lines.push(format!(
                    "first drops {new}, the empty cluster the new major's package made (refused if it holds a database or a table)"
                ));
            }
            lines.push(match u.method {
                Method::Dump => "method dump: pg_dump and restore into the new cluster; the old one's data is not touched".to_string(),
                Method::Upgrade => "method upgrade: pg_upgrade, copying the data files; the old one's are not touched".to_string(),
                Method::Link => format!(
                    "method link: pg_upgrade with hard links; once {new} has run, {old} cannot be started again: no undo after the upgrade"
                ),
            });
            lines.push(format!(
                "{new} takes {old}'s port; {old} is kept, stopped, set to manual start, on another port, until it is dropped"
            ));
            lines.push(
                "checked: the databases and every table's row count, before and after; a difference fails the step"
                    .into(),
            );
            let mut undo = format!("undo: drop {new}, put back {old}'s postgresql.conf and start.conf, start {old}");
            if u.replace {
                undo.push_str(&format!(", create the empty {new} again"));
            }
            lines.push(undo);
            Some(lines.join("\n"))
        }
        _ => None,
    }
}

pub fn validate(db: &Db, span: &Range<usize>, problems: &mut Vec<Problem>) {
    let op = match db.op {
        Op::UpgradeCluster => "upgrade_cluster",
        _ => "drop_cluster",
    };
    let mut bad = |code: &'static str, message: String, label: &str| {
        problems.push(Problem::error(code, span.clone(), message).label(label.to_string()));
    };
    if db.engine != Engine::Postgresql {
        bad(
            "wrong-engine",
            format!("`{op}` is for PostgreSQL clusters only"),
            "set `engine = \"postgresql\"`",
        );
    }
    let upgrade = db.op == Op::UpgradeCluster;
    let unused = [
        ("database", !db.database.is_empty()),
        ("dump", db.dump.is_some()),
        ("sql", db.sql.is_some()),
        ("sql_file", db.sql_file.is_some()),
        ("check", db.check.is_some()),
        ("protect", db.protect),
        ("keep", db.keep.is_some()),
        // The tools run as root and the client as `postgres` by itself.
        ("credentials", !db.credentials.is_empty()),
        ("from", !upgrade && db.from.is_some()),
        ("to", !upgrade && db.to.is_some()),
        ("new_cluster", !upgrade && db.new_cluster.is_some()),
        ("method", !upgrade && db.method.is_some()),
        ("replace_empty_target", !upgrade && db.replace_empty_target),
        ("version", upgrade && db.version.is_some()),
    ];
    for (key, set) in unused {
        if set {
            bad(
                "unused-key",
                format!("`{op}` does not take `{key}`"),
                &format!("remove `{key}`"),
            );
        }
    }
    // Values with a `{{ fact }}` are checked once filled in, at run time.
    let templated = |v: &str| v.contains("{{");
    let mut majors = Vec::new();
    if upgrade {
        for (key, v) in [("from", &db.from), ("to", &db.to)] {
            match v {
                None => bad(
                    "missing-key",
                    format!("`upgrade_cluster` needs `{key}` (a PostgreSQL major)"),
                    &format!("add `{key}`"),
                ),
                Some(v) => majors.push((key, v.as_str())),
            }
        }
    } else {
        match &db.version {
            None => bad(
                "missing-key",
                "`drop_cluster` needs `version` (the cluster's PostgreSQL major)".into(),
                "add `version`",
            ),
            Some(v) => majors.push(("version", v.as_str())),
        }
    }
    for (key, v) in majors {
        if !templated(v) && !major_ok(v) {
            bad(
                "bad-value",
                format!("`{key}` = {v:?} is not a PostgreSQL major"),
                "a major such as \"15\" or \"9.6\"",
            );
        }
    }
    for (key, v) in [("cluster", &db.cluster), ("new_cluster", &db.new_cluster)] {
        if let Some(v) = v
            && !templated(v)
            && !name_ok(v)
        {
            bad(
                "bad-value",
                format!("`{key}` = {v:?} is not a cluster name"),
                "letters, digits, `_`, `-` and `.`, not first",
            );
        }
    }
    let cluster = db.cluster.as_deref().unwrap_or("main");
    if upgrade
        && let Some(from) = &db.from
        && db.to.as_ref() == Some(from)
        && db.new_cluster.as_deref().unwrap_or(cluster) == cluster
    {
        bad(
            "bad-value",
            format!("`from` and `to` are both {from:?}: the cluster would be upgraded into itself"),
            "a later major in `to`, or another `new_cluster`",
        );
    }
}

// --- the host's clusters ------------------------------------------------------

/// What `pg_lsclusters` says of one cluster.
struct Status {
    port: String,
    online: bool,
    datadir: PathBuf,
}

/// `None` when the cluster does not exist.
fn status(c: Cl<'_>) -> Result<Option<Status>, String> {
    let mut cmd = Command::new("pg_lsclusters");
    cmd.args(["--no-header", c.version, c.name])
        .current_dir("/");
    let out = crate::sys::process::run(&mut cmd, QUICK)
        .map_err(|e| format!("pg_lsclusters: cannot run: {e} (is postgresql-common installed?)"))?;
    if !out.success() {
        if !c.exists() {
            return Ok(None);
        }
        return Err(format!("pg_lsclusters {c}: {}", out.stderr.trim()));
    }
    Ok(parse_lsclusters(&out.stdout, c))
}

/// The line of `pg_lsclusters --no-header` for `c`: version, name, port,
/// status (`online`, `down`, `online,recovery`), owner, data directory, log.
fn parse_lsclusters(text: &str, c: Cl<'_>) -> Option<Status> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 6 && f[0] == c.version && f[1] == c.name).then(|| Status {
            port: f[2].to_string(),
            online: f[3].split(',').any(|s| s == "online"),
            datadir: PathBuf::from(f[5]),
        })
    })
}

fn online(c: Cl<'_>) -> Result<bool, String> {
    Ok(status(c)?.is_some_and(|s| s.online))
}

/// Runs one of postgresql-common's tools, its output into the run log.
fn tool(ctx: &Ctx<'_>, program: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir("/");
    ctx.run(cmd, &format!("{program} {}", args.join(" ")), ctx.timeout)
}

/// postgresql's systemd generator reads `start.conf`: after it changes, the
/// units must be generated again (as `pg_upgradecluster` does).
fn daemon_reload(ctx: &Ctx<'_>) {
    if Path::new("/run/systemd/system").is_dir()
        && let Err(e) = tool(ctx, "systemctl", &["daemon-reload"])
    {
        ctx.note(&format!("systemctl daemon-reload: {e}"));
    }
}

fn mark(path: &Path, text: &str) -> Result<(), String> {
    crate::sys::fsutil::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

// --- fingerprint ----------------------------------------------------------------

/// What must be the same in the old and the new cluster: every database,
/// and in each one that takes connections, each table with its exact row
/// count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    databases: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Fingerprint {
    fn describe(&self) -> String {
        let tables: usize = self.databases.values().map(BTreeMap::len).sum();
        let rows: u64 = self.databases.values().flat_map(|t| t.values()).sum();
        format!(
            "{} databases, {tables} tables, {rows} rows",
            self.databases.len()
        )
    }

    /// The differences, at most `max` of them, said for the admin.
    fn differences(&self, after: &Fingerprint, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (db, tables) in &self.databases {
            match after.databases.get(db) {
                None => out.push(format!("database {db} is missing")),
                Some(new) => {
                    for (t, n) in tables {
                        match new.get(t) {
                            None => out.push(format!("{db}: table {t} is missing")),
                            Some(m) if m != n => {
                                out.push(format!("{db}: table {t} has {m} rows, had {n}"))
                            }
                            _ => {}
                        }
                    }
                    for t in new.keys().filter(|t| !tables.contains_key(*t)) {
                        out.push(format!("{db}: table {t} is new"));
                    }
                }
            }
        }
        for db in after
            .databases
            .keys()
            .filter(|d| !self.databases.contains_key(*d))
        {
            out.push(format!("database {db} is new"));
        }
        let n = out.len();
        if n > max {
            out.truncate(max);
            out.push(format!("and {} more", n - max));
        }
        out
    }
}

/// Each table's row count, in one query: `query_to_xml` runs the count
/// for each row of the catalogue (PostgreSQL 8.3 and later).
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname), \
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname !~ '^pg_(toast|temp_)'";

const DATABASES: &str = "SELECT datname, datallowconn FROM pg_database";

/// Runs `sql` on database `db` of cluster `c` as `postgres` (peer
/// authentication, as the cluster's tools do) and returns its rows. The
/// output goes through a file: it may be larger than what a pipe keeps.
fn rows(ctx: &Ctx<'_>, c: Cl<'_>, db: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let creds = Credentials {
        os_user: Some("postgres".into()),
        ..Credentials::default()
    };
    let client = Client::new(Engine::Postgresql, &creds, &ctx.step_dir)?;
    let mut cmd = client.command("psql");
    cmd.arg("--cluster")
        .arg(c.to_string())
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-F", "\u{1f}", "-R", "\u{1e}", "-c", sql])
        // The name as it is: a `--dbname` with `=` would be read as a
        // connection string.
        .env("PGDATABASE", db);
    let file = ctx.step_dir.join("cluster-query.out");
    let _ = std::fs::remove_file(&file);
    let out = crate::sys::process::run(&mut stdout_to(cmd, &file), ctx.timeout)
        .map_err(|e| format!("psql: cannot run: {e}"))?;
    let text = std::fs::read(&file).map(|b| String::from_utf8_lossy(&b).into_owned());
    let _ = std::fs::remove_file(&file);
    if out.timed_out() {
        return Err(format!(
            "psql on {c} ({db}) got no answer within {}",
            humantime::format_duration(ctx.timeout)
        ));
    }
    if !out.success() {
        return Err(format!("psql on {c} ({db}): {}", out.stderr.trim()));
    }
    let text = text.map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text
        .trim_end_matches('\n')
        .split('\u{1e}')
        .filter(|r| !r.is_empty())
        .map(|r| r.split('\u{1f}').map(str::to_string).collect())
        .collect())
}

fn fingerprint(ctx: &Ctx<'_>, c: Cl<'_>) -> Result<Fingerprint, String> {
    let mut fp = Fingerprint::default();
    for row in rows(ctx, c, "postgres", DATABASES)? {
        let [name, allow] = row.as_slice() else {
            return Err(format!(
                "{c}: unexpected answer listing the databases: {row:?}"
            ));
        };
        let mut tables = BTreeMap::new();
        if allow == "t" {
            for t in rows(ctx, c, name, TABLES)? {
                let [table, count] = t.as_slice() else {
                    return Err(format!(
                        "{c} ({name}): unexpected answer counting rows: {t:?}"
                    ));
                };
                let count = count
                    .parse()
                    .map_err(|_| format!("{c} ({name}): {table}: row count {count:?}"))?;
                tables.insert(table.clone(), count);
            }
        }
        fp.databases.insert(name.clone(), tables);
    }
    Ok(fp)
}

#[derive(Serialize, Deserialize)]
struct Before {
    port: String,
    fingerprint: Fingerprint,
}

// --- upgrade_cluster --------------------------------------------------------------

pub fn upgrade(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let u = upgrade_of(db)?;
    let (old, new) = (u.old, u.new);
    let dir = ctx.step_dir.clone();
    let ours = dir.join(UPGRADING).exists();
    if upgraded(&u, &dir) {
        // An earlier attempt got as far as pg_upgradecluster's end (a
        // resume asks `upgrade_applied` first): check what it made.
        ctx.note(&format!(
            "{new} exists and {old} is set to manual start: upgraded already"
        ));
        return check_new(ctx, &u);
    }
    if !old.exists() {
        return Err(format!(
            "there is no PostgreSQL cluster {old} (pg_lsclusters)"
        ));
    }
    let Some(st) = status(old)? else {
        return Err(format!(
            "there is no PostgreSQL cluster {old} (pg_lsclusters)"
        ));
    };
    if !st.online {
        if !ours {
            return Err(format!(
                "{old} is not online: its data cannot be checked before and after; start it (`pg_ctlcluster {} {} start`)",
                old.version, old.name
            ));
        }
        // An earlier attempt's pg_upgradecluster stopped it.
        tool(ctx, "pg_ctlcluster", &[old.version, old.name, "start"])?;
    }
    if new.exists() {
        if ours {
            // pg_upgradecluster died half way (the old cluster is not set
            // to manual): what it made is this step's, and goes.
            ctx.note(&format!(
                "{new} is left from an interrupted attempt: dropping it"
            ));
            tool(ctx, "pg_dropcluster", &["--stop", new.version, new.name])?;
        } else if u.replace {
            refuse_unless_empty(ctx, new)?;
        } else {
            return Err(format!(
                "{new} exists already: pg_upgradecluster would refuse. If it is the empty cluster the package made, set `replace_empty_target = true`; else move its data away first"
            ));
        }
    }
    let fp = fingerprint(ctx, old)?;
    ctx.note(&format!(
        "{old} before the upgrade: {} (port {})",
        fp.describe(),
        st.port
    ));
    let before = Before {
        port: st.port.clone(),
        fingerprint: fp,
    };
    let json = serde_json::to_vec_pretty(&before).map_err(|e| e.to_string())?;
    crate::sys::fsutil::write_atomic(&dir.join(BEFORE), &json)
        .map_err(|e| format!("{}: {e}", dir.join(BEFORE).display()))?;
    let saved = Saved::new(&dir);
    for f in ["postgresql.conf", "start.conf"] {
        let p = old.conf_dir().join(f);
        saved
            .save_once(&p)
            .map_err(|e| format!("saving {}: {e}", p.display()))?;
    }
    if new.exists() {
        // Checked empty just above; its port is kept to create it again.
        let port = status(new)?.map(|s| s.port).unwrap_or_default();
        mark(&dir.join(TARGET_DROPPED), &port)?;
        tool(ctx, "pg_dropcluster", &["--stop", new.version, new.name])?;
        ctx.note(&format!(
            "dropped the empty {new} (port {port}); the undo creates it again"
        ));
    }
    mark(&dir.join(UPGRADING), &new.to_string())?;
    let mut args = vec!["-v", new.version];
    // `-m upgrade --link` rather than `-m link`: older postgresql-common
    // (stretch's) knows only the former.
    args.extend(match u.method {
        Method::Dump => ["-m", "dump"].as_slice(),
        Method::Upgrade => ["-m", "upgrade"].as_slice(),
        Method::Link => ["-m", "upgrade", "--link"].as_slice(),
    });
    // The third argument would be a data directory: the new name is
    // `--rename`.
    if new.name != old.name {
        args.extend(["--rename", new.name]);
    }
    args.extend([old.version, old.name]);
    tool(ctx, "pg_upgradecluster", &args)?;
    check_new(ctx, &u)
}

/// The target must hold nothing but what `pg_createcluster` puts in a
/// cluster: its default databases, no table in them.
fn refuse_unless_empty(ctx: &Ctx<'_>, new: Cl<'_>) -> Result<(), String> {
    if !online(new)? {
        return Err(format!(
            "{new} is not online, so hoist cannot tell it is empty: start it (`pg_ctlcluster {} {} start`) or move its data away and drop it by hand",
            new.version, new.name
        ));
    }
    let fp = fingerprint(ctx, new)?;
    let mut held: Vec<String> = fp
        .databases
        .keys()
        .filter(|d| !DEFAULT_DATABASES.contains(&d.as_str()))
        .map(|d| format!("database {d}"))
        .collect();
    for (d, tables) in &fp.databases {
        held.extend(tables.keys().map(|t| format!("table {t} in {d}")));
    }
    if !held.is_empty() {
        return Err(format!(
            "{new} is not empty ({}): refusing to drop it; nothing was changed",
            held.join(", ")
        ));
    }
    Ok(())
}

/// After pg_upgradecluster: the new cluster online, on the old one's port,
/// with the old one's fingerprint.
fn check_new(ctx: &Ctx<'_>, u: &Upgrade<'_>) -> Result<(), String> {
    let (old, new) = (u.old, u.new);
    if !online(new)? {
        // pg_upgradecluster starts it only when the old one ran.
        tool(ctx, "pg_ctlcluster", &[new.version, new.name, "start"])?;
    }
    let Some(st) = status(new)?.filter(|s| s.online) else {
        return Err(format!(
            "{new} is not online after the upgrade (pg_lsclusters)"
        ));
    };
    let before: Option<Before> = std::fs::read(ctx.step_dir.join(BEFORE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(before) = before else {
        ctx.note(&format!(
            "no fingerprint of {old} was taken by this step: {new} is not compared"
        ));
        return Ok(());
    };
    if st.port != before.port {
        return Err(format!(
            "{new} listens on port {}, not on {old}'s port {}: clients would not find it",
            st.port, before.port
        ));
    }
    let after = fingerprint(ctx, new)?;
    let diff = before.fingerprint.differences(&after, 10);
    if !diff.is_empty() {
        return Err(format!(
            "{new} does not hold what {old} held: {}",
            diff.join("; ")
        ));
    }
    ctx.note(&format!(
        "{new} is online on port {} with the same {} as {old}; {old} is kept stopped, set to manual start, until it is dropped",
        st.port,
        after.describe()
    ));
    Ok(())
}

/// The built-in undo: the old cluster back as it was, running; the new one
/// gone; an empty target dropped by the step created again.
pub fn undo_upgrade(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let u = upgrade_of(db)?;
    let (old, new) = (u.old, u.new);
    let dir = ctx.step_dir.clone();
    if dir.join(UPGRADING).exists() {
        if u.method == Method::Link
            && let Some(st) = status(old)?
            && st.datadir.join("global/pg_control.old").exists()
        {
            return Err(format!(
                "{old} was upgraded with hard links (method link) and cannot be started again; restore the databases from a dump"
            ));
        }
        if new.exists() {
            tool(ctx, "pg_dropcluster", &["--stop", new.version, new.name])?;
        }
        let put = Saved::new(&dir)
            .restore()
            .map_err(|e| format!("putting back {old}'s configuration: {e}"))?;
        for p in put {
            ctx.note(&format!("put back {}", p.display()));
        }
        daemon_reload(ctx);
        // Running, it may still have pg_upgradecluster's restricted access
        // or its own old port: it starts again (below) on its own
        // configuration. Stopped first, not restarted: when
        // pg_upgradecluster failed half way it left the cluster running
        // outside systemd, and a restart (redirected to systemctl) fails
        // then; a stop goes straight to pg_ctl when the unit is inactive.
        if online(old)? {
            tool(ctx, "pg_ctlcluster", &[old.version, old.name, "stop"])?;
        }
        // Done with the new cluster: a second undo (after a crash) must
        // not take an empty target created below for it.
        let _ = std::fs::remove_file(dir.join(UPGRADING));
        crate::sys::fsutil::sync_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // It ran when the step began (the step checks); started again only then.
    if dir.join(BEFORE).exists() && old.exists() && !online(old)? {
        tool(ctx, "pg_ctlcluster", &[old.version, old.name, "start"])?;
    }
    if let Ok(port) = std::fs::read_to_string(dir.join(TARGET_DROPPED))
        && !new.exists()
    {
        let mut args = vec![];
        if !port.trim().is_empty() {
            args.extend(["--port", port.trim()]);
        }
        args.extend([new.version, new.name]);
        tool(ctx, "pg_createcluster", &args)?;
        tool(ctx, "pg_ctlcluster", &[new.version, new.name, "start"])?;
        ctx.note(&format!("created the empty {new} again"));
    }
    Ok(())
}

/// pg_upgradecluster, run by this step, got to its end: the new cluster
/// exists and the old one is set to manual start, its last change to it.
/// The marker keeps an old cluster the admin had set to manual, beside a
/// target that was there before, from passing for an upgrade done.
fn upgraded(u: &Upgrade<'_>, step_dir: &Path) -> bool {
    step_dir.join(UPGRADING).exists() && u.new.exists() && u.old.manual()
}

/// Done when upgraded (above), so a resume never runs pg_upgradecluster
/// again over a finished upgrade.
pub fn upgrade_applied(db: &Db, ctx: &Ctx<'_>) -> Option<bool> {
    let u = upgrade_of(db).ok()?;
    Some(upgraded(&u, &ctx.step_dir))
}

// --- drop_cluster -----------------------------------------------------------------

pub fn drop(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let c = dropped_of(db)?;
    if !c.exists() {
        ctx.note(&format!("there is no cluster {c}: nothing to drop"));
        return Ok(());
    }
    tool(ctx, "pg_dropcluster", &["--stop", c.version, c.name])?;
    if c.exists() {
        return Err(format!("{c} is still there after pg_dropcluster"));
    }
    Ok(())
}

pub fn drop_applied(db: &Db) -> Option<bool> {
    dropped_of(db).ok().map(|c| !c.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_and_names() {
        for v in ["15", "9.6", "10"] {
            assert!(major_ok(v), "{v}");
        }
        for v in ["", "15.", ".6", "9.6.1", "x", "1 5", "-1"] {
            assert!(!major_ok(v), "{v}");
        }
        for n in ["main", "upgraded", "a-b.c_d", "_x"] {
            assert!(name_ok(n), "{n}");
        }
        for n in ["", ".", "..", "-x", "a/b", "a b", "é"] {
            assert!(!name_ok(n), "{n}");
        }
    }

    #[test]
    fn start_conf_mode() {
        let upgraded = "# This cluster was upgraded to a newer major version. The old\n# cluster ...\n\nmanual\n";
        assert_eq!(start_mode(upgraded), Some("manual"));
        assert_eq!(start_mode("# comment\nauto # boot\n"), Some("auto"));
        assert_eq!(start_mode("# only comments\n"), None);
    }

    #[test]
    fn lsclusters_lines() {
        let text = "13  main    5433 down   postgres /var/lib/postgresql/13/main /var/log/postgresql/postgresql-13-main.log\n\
                    15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log\n\
                    15  standby 5434 online,recovery postgres /srv/pg /var/log/x.log\n";
        let s = parse_lsclusters(
            text,
            Cl {
                version: "15",
                name: "main",
            },
        )
        .unwrap();
        assert_eq!((s.port.as_str(), s.online), ("5432", true));
        assert_eq!(s.datadir, PathBuf::from("/var/lib/postgresql/15/main"));
        let s = parse_lsclusters(
            text,
            Cl {
                version: "13",
                name: "main",
            },
        )
        .unwrap();
        assert!(!s.online);
        assert!(
            parse_lsclusters(
                text,
                Cl {
                    version: "15",
                    name: "standby"
                }
            )
            .unwrap()
            .online
        );
        assert!(
            parse_lsclusters(
                text,
                Cl {
                    version: "11",
                    name: "main"
                }
            )
            .is_none()
        );
    }

    #[test]
    fn fingerprint_differences_are_named() {
        let fp = |dbs: &[(&str, &[(&str, u64)])]| Fingerprint {
            databases: dbs
                .iter()
                .map(|(d, t)| {
                    (
                        d.to_string(),
                        t.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
                    )
                })
                .collect(),
        };
        let before = fp(&[
            ("walt", &[("public.nodes", 3), ("public.images", 2)]),
            ("postgres", &[]),
        ]);
        assert!(before.differences(&before.clone(), 10).is_empty());
        let after = fp(&[
            ("walt", &[("public.nodes", 2), ("public.logs", 0)]),
            ("other", &[]),
        ]);
        assert_eq!(
            before.differences(&after, 10),
            [
                "database postgres is missing",
                "walt: table public.images is missing",
                "walt: table public.nodes has 2 rows, had 3",
                "walt: table public.logs is new",
                "database other is new",
            ]
        );
        assert_eq!(before.differences(&after, 2).last().unwrap(), "and 3 more");
        assert_eq!(before.describe(), "2 databases, 2 tables, 5 rows");
    }
}

#[cfg(test)]
mod lint_tests {
    /// Each problem of a recipe holding `steps`, as `code line:col`.
    fn lint(steps: &str) -> Vec<String> {
        let text = format!(
            "[product]\nname = \"pg\"\nversion = {{ package = \"pg\" }}\n\n[[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n[[facts]]\nname = \"pg.old\"\ntype = \"version\"\n\n{steps}"
        );
        let loaded = crate::recipe::load_str(std::path::Path::new("r.toml"), text.as_str());
        // Whether a step says how it is undone is the recipe's own lint.
        loaded
            .problems
            .iter()
            .filter(|p| p.problem.code != "no-undo")
            .map(|p| {
                let (line, col) = p.line_col();
                format!("{} {line}:{col} {}", p.problem.code, p.problem.message)
            })
            .collect()
    }

    fn step(n: usize, db: &str) -> String {
        format!("[[steps]]\nid = \"s{n}\"\nphase = \"migrate\"\ndb = {db}\n\n")
    }

    #[test]
    fn valid_cluster_steps_lint_clean() {
        let steps = [
            r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15", replace_empty_target = true }"#,
            r#"{ op = "upgrade_cluster", engine = "postgresql", from = "9.6", to = "11", cluster = "main", new_cluster = "walt", method = "link" }"#,
            r#"{ op = "upgrade_cluster", engine = "postgresql", from = "{{ pg.old }}", to = "15" }"#,
            r#"{ op = "upgrade_cluster", engine = "postgresql", from = "15", to = "15", new_cluster = "upgraded" }"#,
            r#"{ op = "drop_cluster", engine = "postgresql", version = "13" }"#,
        ];
        let text: String = steps.iter().enumerate().map(|(n, s)| step(n, s)).collect();
        assert_eq!(lint(&text), Vec::<String>::new());
    }

    #[test]
    fn each_mistake_is_located() {
        // Line 17 is the first step's `db` line; its table starts at column 6.
        let cases = [
            (
                r#"{ op = "upgrade_cluster", engine = "mysql", from = "13", to = "15" }"#,
                "wrong-engine 17:6 `upgrade_cluster` is for PostgreSQL clusters only",
            ),
            (
                r#"{ op = "drop_cluster", engine = "mysql", version = "13" }"#,
                "wrong-engine 17:6 `drop_cluster` is for PostgreSQL clusters only",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", to = "15" }"#,
                "missing-key 17:6 `upgrade_cluster` needs `from` (a PostgreSQL major)",
            ),
            (
                r#"{ op = "drop_cluster", engine = "postgresql" }"#,
                "missing-key 17:6 `drop_cluster` needs `version` (the cluster's PostgreSQL major)",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15.x" }"#,
                "bad-value 17:6 `to` = \"15.x\" is not a PostgreSQL major",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15", new_cluster = "../x" }"#,
                "bad-value 17:6 `new_cluster` = \"../x\" is not a cluster name",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", from = "15", to = "15" }"#,
                "bad-value 17:6 `from` and `to` are both \"15\": the cluster would be upgraded into itself",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", database = "walt", from = "13", to = "15" }"#,
                "unused-key 17:6 `upgrade_cluster` does not take `database`",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15", credentials = { os_user = "postgres" } }"#,
                "unused-key 17:6 `upgrade_cluster` does not take `credentials`",
            ),
            (
                r#"{ op = "drop_cluster", engine = "postgresql", version = "13", to = "15" }"#,
                "unused-key 17:6 `drop_cluster` does not take `to`",
            ),
            (
                r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15", version = "13" }"#,
                "unused-key 17:6 `upgrade_cluster` does not take `version`",
            ),
            (
                r#"{ op = "backup", engine = "postgresql", dump = "/x.dump" }"#,
                "missing-key 17:6 `db` needs `database` (the database's name)",
            ),
            (
                r#"{ op = "sql", engine = "postgresql", database = "walt", sql = "SELECT 1", cluster = "main" }"#,
                "unused-key 17:6 `db` takes `cluster` only with the cluster ops",
            ),
        ];
        for (db, expected) in cases {
            assert_eq!(lint(&step(0, db)), [expected], "{db}");
        }
        let method = lint(&step(
            0,
            r#"{ op = "upgrade_cluster", engine = "postgresql", from = "13", to = "15", method = "clone" }"#,
        ));
        assert!(
            method.len() == 1 && method[0].starts_with("unknown-value"),
            "{method:?}"
        );
    }
}
