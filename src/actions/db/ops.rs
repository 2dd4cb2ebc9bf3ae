//! What `db` steps do: dump, verify, keep, restore, and SQL in one
//! transaction with its check.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::backups::{self, Entry};
use super::client::{Client, stdin_from, stdout_to};
use super::{Check, DEFAULT_KEEP, Db, Engine};
use crate::actions::ctx::Ctx;

/// A query that answers a check or a wait: bounded on its own, well
/// within any step's time.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The dump `protect = true` takes, in the step's directory.
const BEFORE: &str = "before.dump";

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Postgresql => "postgresql",
        Engine::Mysql => "mysql",
    }
}

pub fn preflight(db: &Db) -> Result<(), String> {
    // Only what can never work is refused here: the credentials files may
    // be written by earlier steps (CloudStack moves db.properties in 4.1).
    if let Some(f) = &db.credentials.defaults_file
        && let Ok(meta) = std::fs::metadata(f)
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(format!(
                "{f} holds database credentials and every user can read it: make it mode 0600 first"
            ));
        }
    }
    Ok(())
}

/// The query whose first value a check or a wait compares. PostgreSQL
/// compares the server's text form (as the in-transaction check does).
fn value_query(engine: Engine, query: &str) -> String {
    let q = query.trim().trim_end_matches(';').trim();
    match engine {
        Engine::Postgresql => {
            format!("SELECT coalesce(x::text, 'NULL') FROM ({q}) AS hoist_q(x) LIMIT 1")
        }
        Engine::Mysql => q.to_string(),
    }
}

/// The first value `query` returns (`None`: no row).
pub fn query_value(
    ctx: &Ctx<'_>,
    engine: Engine,
    database: &str,
    query: &str,
    creds: &super::Credentials,
) -> Result<Option<String>, String> {
    let client = Client::new(engine, creds, &ctx.step_dir)?;
    client.query(
        ctx,
        Some(database),
        &value_query(engine, query),
        QUERY_TIMEOUT,
    )
}

pub fn check_holds(db: &Db, check: &Check, ctx: &Ctx<'_>) -> Result<bool, String> {
    let got = query_value(ctx, db.engine, &db.database, &check.query, &db.credentials)?;
    Ok(got.as_deref() == Some(check.expect.as_str()))
}

/// `backup`: a verified dump at `dump`, the one it replaces kept aside, at
/// most `keep` of this path kept, every one recorded for `hoist backups`.
pub fn backup(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dest = ctx.path(db.dump.as_deref().unwrap_or_default());
    let client = Client::new(db.engine, &db.credentials, &ctx.step_dir)?;
    let tmp = write_dump(&client, db, ctx, &dest)?;
    let bytes = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    let state_dir = ctx.state_dir().to_path_buf();
    let mut entries = backups::load(&state_dir);
    if dest.exists() {
        let aside = aside_name(&dest);
        std::fs::rename(&dest, &aside).map_err(|e| format!("{}: {e}", dest.display()))?;
        for e in entries.iter_mut().filter(|e| e.path == dest) {
            e.path = aside.clone();
        }
        ctx.note(&format!("the previous dump is kept as {}", aside.display()));
    }
    std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    sync_parent(&dest)?;
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    entries.push(Entry {
        path: dest.clone(),
        slot: dest.clone(),
        engine: engine_name(db.engine).into(),
        database: db.database.clone(),
        product: ctx.product.to_string(),
        run: ctx.run,
        step: ctx
            .step_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        created,
        bytes,
    });
    // Retention: the newest `keep` dumps of this path; only dumps hoist
    // recorded are ever deleted.
    let keep = db.keep.unwrap_or(DEFAULT_KEEP) as usize;
    let mut same: Vec<(u64, usize)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.slot == dest)
        .map(|(i, e)| (e.created, i))
        .collect();
    same.sort_by_key(|k| std::cmp::Reverse(*k));
    // Never a dump of this run: an earlier hop's may be what its rollback
    // restores.
    let old: Vec<usize> = same
        .iter()
        .skip(keep)
        .map(|(_, i)| *i)
        .filter(|i| entries[*i].run != ctx.run)
        .collect();
    for &i in &old {
        let p = &entries[i].path;
        match std::fs::remove_file(p) {
            Ok(()) => ctx.note(&format!("retention (keep {keep}): removed {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => ctx.note(&format!("retention: cannot remove {}: {e}", p.display())),
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        !old.contains(&(i - 1))
    });
    backups::save(&state_dir, &entries)
        .map_err(|e| format!("{}: {e}", state_dir.join("backups.json").display()))?;
    ctx.note(&format!(
        "dump of {} verified: {} ({})",
        db.database,
        dest.display(),
        crate::sys::size::human_size(bytes)
    ));
    Ok(())
}

/// `<dump>.<its date>`, free.
fn aside_name(dest: &Path) -> PathBuf {
    let when = std::fs::metadata(dest)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    let stamp: String = humantime::format_rfc3339_seconds(when)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = format!("{}.{stamp}", dest.display());
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while p.exists() {
        p = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    p
}

fn sync_parent(p: &Path) -> Result<(), String> {
    let dir = p.parent().unwrap_or(Path::new("/"));
    crate::sys::fsutil::sync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Dumps the database into a temporary file beside `dest` (mode 0600),
/// fsyncs it and checks it reads back; returns the temporary file.
fn write_dump(client: &Client, db: &Db, ctx: &Ctx<'_>, dest: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dest.parent().unwrap_or(Path::new("/"));
    if !dir.exists() {
        crate::sys::fsutil::private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = crate::sys::fsutil::tmp_beside(dest);
    let _ = std::fs::remove_file(&tmp);
    // A dump holds the data and often password hashes: owner only.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let (cmd, what) = match db.engine {
        Engine::Postgresql => {
            let mut c = client.command("pg_dump");
            c.arg("-Fc").arg(format!("--dbname={}", db.database));
            (c, format!("pg_dump -Fc {}", db.database))
        }
        Engine::Mysql => {
            // Seed 003's options; --databases puts CREATE DATABASE and USE
            // in the dump, so it restores the database with its character
            // set, and says which database it is.
            let mut c = client.command("mysqldump");
            c.args([
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--databases",
                &db.database,
            ]);
            (c, format!("mysqldump {}", db.database))
        }
    };
    let result = ctx
        .run(stdout_to(cmd, &tmp), &what, ctx.timeout)
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("{}: {e}", tmp.display()))
        })
        .and_then(|()| verify(db.engine, &db.database, &tmp, ctx));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// The dump reads back and is a whole dump of `database`: pg_restore
/// lists its contents; a MySQL dump names the database and ends with
/// mysqldump's completion line (absent when it stopped half way).
fn verify(engine: Engine, database: &str, dump: &Path, ctx: &Ctx<'_>) -> Result<(), String> {
    let shown = dump.display();
    match engine {
        Engine::Postgresql => {
            let mut c = std::process::Command::new("pg_restore");
            c.arg("--list").arg(dump);
            let out = crate::sys::process::run(&mut c, ctx.timeout)
                .map_err(|e| format!("pg_restore: cannot run: {e}"))?;
            if !out.success() {
                return Err(format!(
                    "{shown} does not read back (pg_restore --list): {}",
                    out.stderr.trim()
                ));
            }
            let named = out.stdout.lines().any(|l| {
                l.starts_with(';') && l.split_once("dbname:").map(|x| x.1.trim()) == Some(database)
            });
            if !named {
                return Err(format!("{shown} is not a dump of database {database}"));
            }
        }
        Engine::Mysql => {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(dump).map_err(|e| format!("{shown}: {e}"))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let mut head = vec![0u8; 64 * 1024];
            let n = f.read(&mut head).map_err(|e| format!("{shown}: {e}"))?;
            let head = String::from_utf8_lossy(&head[..n]);
            let mut tail = Vec::new();
            f.seek(SeekFrom::Start(len.saturating_sub(512)))
                .and_then(|_| f.read_to_end(&mut tail))
                .map_err(|e| format!("{shown}: {e}"))?;
            let tail = String::from_utf8_lossy(&tail);
            if !tail.contains("-- Dump completed") {
                return Err(format!(
                    "{shown} is incomplete: no `-- Dump completed` line at its end"
                ));
            }
            if !head.contains(&format!("USE `{}`;", database.replace('`', "``"))) {
                return Err(format!("{shown} is not a dump of database {database}"));
            }
        }
    }
    Ok(())
}

/// `restore`: the database as it was dumped, exactly.
/// The built-in undo of a `backup` with `restore_on_rollback`: the
/// database from the dump this step wrote (found in the index by run and
/// step, wherever it was moved aside since). No dump recorded: the step
/// ended before its dump was complete, and nothing after it ran.
pub fn restore_own_dump(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let step = ctx
        .step_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let slot = ctx.path(db.dump.as_deref().unwrap_or_default());
    let state_dir = ctx.state_dir().to_path_buf();
    let Some(entry) = backups::load(&state_dir)
        .into_iter()
        .find(|e| e.run == ctx.run && e.step == step && e.slot == slot)
    else {
        ctx.note(&format!(
            "no dump of {} was completed by this step: nothing to restore",
            db.database
        ));
        return Ok(());
    };
    ctx.note(&format!(
        "restore {} from this step's dump {}",
        db.database,
        entry.path.display()
    ));
    let client = Client::new(db.engine, &db.credentials, &ctx.step_dir)?;
    restore_from(&client, db, ctx, &entry.path)
}

pub fn restore(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dump = ctx.path(db.dump.as_deref().unwrap_or_default());
    let client = Client::new(db.engine, &db.credentials, &ctx.step_dir)?;
    restore_from(&client, db, ctx, &dump)
}

fn restore_from(client: &Client, db: &Db, ctx: &Ctx<'_>, dump: &Path) -> Result<(), String> {
    // Checked before the database is dropped: a dump that does not read
    // back must not replace anything.
    verify(db.engine, &db.database, dump, ctx)?;
    match db.engine {
        Engine::Postgresql => {
            // DROP DATABASE waits for no one: sessions left on it (the
            // services are stopped by then) are ended, and said so.
            let ended = client.query(
                ctx,
                Some("postgres"),
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = {} AND pid <> pg_backend_pid()",
                    pg_literal(&db.database)
                ),
                QUERY_TIMEOUT,
            )?;
            if let Some(n) = ended.filter(|n| n != "0") {
                ctx.note(&format!("ended {n} session(s) on {}", db.database));
            }
            // --clean --create: the database is dropped and created again
            // from the dump, so objects made after the dump go too.
            let mut c = client.command("pg_restore");
            c.args(["--clean", "--if-exists", "--create", "--exit-on-error"])
                .arg("--dbname=postgres");
            ctx.run(
                stdin_from(c, dump),
                &format!("pg_restore --clean --create {}", db.database),
                ctx.timeout,
            )
        }
        Engine::Mysql => {
            client.query(
                ctx,
                None,
                &format!("DROP DATABASE IF EXISTS `{}`", db.database.replace('`', "``")),
                QUERY_TIMEOUT,
            )?;
            let mut c = client.command("mysql");
            c.arg("--batch");
            ctx.run(
                stdin_from(c, dump),
                &format!("mysql {} < {}", db.database, dump.display()),
                ctx.timeout,
            )
        }
    }
    .map_err(|e| {
        format!(
            "{e}; the dump {} is intact: `hoist rollback` tries again",
            dump.display()
        )
    })?;
    ctx.note(&format!("{} restored from {}", db.database, dump.display()));
    Ok(())
}

fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn mysql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `sql`: the statements and the check in one transaction.
pub fn sql(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let client = Client::new(db.engine, &db.credentials, &ctx.step_dir)?;
    if let Some(check) = &db.check
        && check_holds(db, check, ctx)?
    {
        ctx.note(&format!(
            "check already holds ({} returns {:?}): nothing to do",
            check.query.trim(),
            check.expect
        ));
        return Ok(());
    }
    if db.protect {
        let before = ctx.step_dir.join(BEFORE);
        // The first dump of this run is the state before the step; a
        // second attempt (retry, resume) must not replace it.
        if !before.exists() {
            let tmp = write_dump(&client, db, ctx, &before)?;
            std::fs::rename(&tmp, &before).map_err(|e| format!("{}: {e}", before.display()))?;
            sync_parent(&before)?;
            ctx.note(&format!(
                "dumped {} for the undo: {}",
                db.database,
                before.display()
            ));
        }
    }
    let mut statements = match (&db.sql, &db.sql_file) {
        (Some(s), _) => s.clone(),
        (_, Some(f)) => {
            let p = ctx.path(f);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?
        }
        _ => return Err("`sql` or `sql_file` is needed".into()),
    };
    statements = statements.trim_end().to_string();
    if !statements.ends_with(';') {
        statements.push(';');
    }
    let script = match db.engine {
        // psql --single-transaction wraps the script in BEGIN/COMMIT; the
        // check raises inside it, so a wrong result commits nothing.
        Engine::Postgresql => {
            let mut s = statements;
            if let Some(c) = &db.check {
                let q = c.query.trim().trim_end_matches(';');
                s.push_str(&format!(
                    "\nDO $hoist_check$\nDECLARE v text;\nBEGIN\n  SELECT coalesce(x::text, 'NULL') INTO v FROM ({q}) AS hoist_q(x) LIMIT 1;\n  IF v IS DISTINCT FROM {e} THEN\n    RAISE EXCEPTION 'hoist check failed: got %, expected %', coalesce(v, 'no row'), {e};\n  END IF;\nEND\n$hoist_check$;\n",
                    e = pg_literal(&c.expect)
                ));
            }
            s
        }
        // MySQL has no assertion outside stored programs: a scalar
        // subquery that returns two rows exactly when the check is false
        // raises an error (in SET; DO swallows it), and the client stops before COMMIT, so the server rolls
        // back. DDL commits by itself in MySQL (use `protect`).
        Engine::Mysql => {
            let mut s = format!("START TRANSACTION;\n{statements}\n");
            if let Some(c) = &db.check {
                let q = c.query.trim().trim_end_matches(';');
                let e = mysql_literal(&c.expect);
                let wrong = format!(
                    "NOT (CAST(COALESCE(@hoist_check, 'NULL') AS BINARY) <=> CAST({e} AS BINARY))"
                );
                s.push_str(&format!(
                    "SET @hoist_check = ({q});\nSELECT CONCAT('hoist check: got ', COALESCE(@hoist_check, 'NULL'), ', expected ', {e});\nSET @hoist_wrong = (SELECT 1 FROM DUAL WHERE {wrong} UNION ALL SELECT 2 FROM DUAL WHERE {wrong});\n"
                ));
            }
            s.push_str("COMMIT;\n");
            s
        }
    };
    let file = ctx.step_dir.join("statements.sql");
    crate::sys::fsutil::write_atomic(&file, script.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let what = format!("{} on {}", client.program(), db.database);
    ctx.run(
        stdin_from(client.sql_command(&db.database), &file),
        &what,
        ctx.timeout,
    )
    .map_err(|e| {
        let why = if db.check.is_some() {
            "the statements or their check failed"
        } else {
            "the statements failed"
        };
        format!("{why} ({e}); the transaction was rolled back (see the run log)")
    })
}

/// The built-in undo of `sql` with `protect`: the dump taken before it.
pub fn put_back(db: &Db, ctx: &mut Ctx<'_>) -> Result<(), String> {
    let before = ctx.step_dir.join(BEFORE);
    if !before.exists() {
        ctx.note("no dump was taken before the statements: nothing to put back");
        return Ok(());
    }
    let client = Client::new(db.engine, &db.credentials, &ctx.step_dir)?;
    restore_from(&client, db, ctx, &before)
}
