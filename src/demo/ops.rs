//! The demo product's own upgrade operations, run by the recipe's `exec`
//! steps as `hoist demo-internal OP --dir D`. Each one is idempotent (a second
//! run finds the work done and says so) and crash-safe (killed at any instant,
//! it leaves the old state or the new one), because hoist may re-run a step
//! that was interrupted.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::durable::{self, Context, Res};
use super::layout::{Config, Layout, Release};
use super::tar;

/// Opens the data read-write. The first statement rolls back a transaction a
/// killed writer left half done (SQLite's hot journal), so what follows sees
/// a consistent file.
pub fn open(path: &Path) -> Res<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(path, flags).ctx(|| format!("open {}", path.display()))?;
    // A rollback journal (not WAL) keeps the data in one file, so a backup is
    // a copy of that file; FULL makes each commit durable.
    db.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;")
        .ctx(|| format!("{}", path.display()))?;
    Ok(db)
}

pub fn open_read_only(path: &Path) -> Res<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).ctx(|| format!("open {}", path.display()))
}

pub fn schema(db: &Connection) -> Res<i64> {
    db.query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx(|| "read the schema version".to_string())
}

pub fn row_count(db: &Connection) -> Res<i64> {
    db.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .ctx(|| "count the rows".to_string())
}

fn data_path(layout: &Layout) -> Res<PathBuf> {
    Ok(Config::load(layout)?.data)
}

/// SQLite's own files beside the data: stale once the data is replaced.
fn sidecars(data: &Path) -> Vec<PathBuf> {
    ["-journal", "-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = data.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

/// `check-data`: SQLite's integrity check (the recipe's preflight check).
pub fn check_data(layout: &Layout) -> Res<String> {
    let data = data_path(layout)?;
    let db = open(&data)?;
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .ctx(|| format!("integrity check of {}", data.display()))?;
    if verdict != "ok" {
        return Err(format!("{}: {verdict}", data.display()));
    }
    Ok(format!(
        "{}: intact (schema {}, {} rows)",
        data.display(),
        schema(&db)?,
        row_count(&db)?
    ))
}

/// `backup`: a byte copy of the data, taken with the service stopped.
pub fn backup(layout: &Layout) -> Res<String> {
    let data = data_path(layout)?;
    // Settle any half-done transaction first, so the copy is consistent.
    let (schema, rows) = {
        let db = open(&data)?;
        (schema(&db)?, row_count(&db)?)
    };
    let to = layout.backup();
    durable::mkdir(to.parent().unwrap_or(&layout.dir))?;
    let bytes = durable::copy(&data, &to)?;
    Ok(format!(
        "backed up {} to {} ({bytes} bytes, schema {schema}, {rows} rows)",
        data.display(),
        to.display()
    ))
}

/// `restore`: puts the backup back, byte for byte.
pub fn restore(layout: &Layout) -> Res<String> {
    let data = data_path(layout)?;
    let from = layout.backup();
    if !from.exists() {
        return Err(format!(
            "no backup at {}: nothing to restore",
            from.display()
        ));
    }
    let (schema, rows) = {
        let db = open_read_only(&from)?;
        (schema(&db)?, row_count(&db)?)
    };
    // A journal left by a killed migration belongs to the file being
    // replaced; SQLite must not apply it to the restored one.
    for side in sidecars(&data) {
        durable::remove(&side)?;
    }
    let bytes = durable::copy(&from, &data)?;
    Ok(format!(
        "restored {} from {} ({bytes} bytes, schema {schema}, {rows} rows)",
        data.display(),
        from.display()
    ))
}

/// `migrate`: schema 1 -> 2 (adds `items.slug` and fills it), in one
/// transaction; at schema 2 already, does nothing.
pub fn migrate(layout: &Layout) -> Res<String> {
    move_schema(
        layout,
        (1, 2),
        "ALTER TABLE items ADD COLUMN slug TEXT NOT NULL DEFAULT '';
         UPDATE items SET slug = lower(replace(name, ' ', '-'));
         PRAGMA user_version = 2;",
    )
}

/// `unmigrate`: schema 2 -> 1 (drops `items.slug`), keeping rows written
/// since the backup; at schema 1 already, does nothing.
pub fn unmigrate(layout: &Layout) -> Res<String> {
    move_schema(
        layout,
        (2, 1),
        "ALTER TABLE items DROP COLUMN slug; PRAGMA user_version = 1;",
    )
}

/// Moves the data from schema `from` to `to` with `sql`, in one
/// transaction: idempotent (at `to` already, nothing to do) and
/// crash-safe (the transaction is all or nothing).
fn move_schema(layout: &Layout, (from, to): (i64, i64), sql: &str) -> Res<String> {
    let data = data_path(layout)?;
    let mut db = open(&data)?;
    let tx = db
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx(|| "begin".to_string())?;
    match schema(&tx)? {
        s if s == to => {
            return Ok(format!(
                "{}: already at schema {to}, nothing to do",
                data.display()
            ));
        }
        s if s == from => {}
        other => {
            return Err(format!(
                "{}: schema {other}, expected {from} or {to}",
                data.display()
            ));
        }
    }
    tx.execute_batch(sql)
        .ctx(|| format!("migrate to schema {to}"))?;
    let rows = row_count(&tx)?;
    tx.commit().ctx(|| "commit".to_string())?;
    Ok(format!(
        "{}: schema {from} -> {to}, {rows} rows",
        data.display()
    ))
}

/// `schema [--is N]`: prints the data's schema; with `--is`, answers whether
/// it is N (a step's probe: exit 0 when the migration is applied).
pub fn schema_is(layout: &Layout, expect: Option<i64>) -> Res<(bool, String)> {
    let data = data_path(layout)?;
    let found = schema(&open(&data)?)?;
    Ok((expect.is_none_or(|e| e == found), found.to_string()))
}

/// The release `current` points to, as `releases/V` (relative, so the demo
/// directory can move).
fn link_target(version: &str) -> PathBuf {
    Path::new("releases").join(version)
}

pub fn is_current(layout: &Layout, version: &str) -> bool {
    fs::read_link(layout.current()).is_ok_and(|t| t == link_target(version))
}

/// `switch V`: points `current` at releases/V by an atomic symlink flip.
pub fn switch(layout: &Layout, version: &str) -> Res<String> {
    let release = layout.release(version);
    Release::load(&release).ctx(|| format!("release {version} is not unpacked"))?;
    if is_current(layout, version) {
        return Ok(format!("current is already {version}"));
    }
    durable::symlink(&link_target(version), &layout.current())?;
    Ok(format!("current -> releases/{version}"))
}

/// `unpack ARTIFACT`: the release into releases/V, appearing whole or not at
/// all (unpacked beside, fsynced, renamed into place).
pub fn unpack(layout: &Layout, artifact: &Path) -> Res<String> {
    let bytes = fs::read(artifact).ctx(|| format!("read {}", artifact.display()))?;
    let files = tar::unpack(&bytes).ctx(|| format!("{}", artifact.display()))?;
    let manifest = files
        .iter()
        .find(|(n, _)| n == "release.toml")
        .ok_or_else(|| format!("{}: no release.toml", artifact.display()))?;
    let release: Release = std::str::from_utf8(&manifest.1)
        .ok()
        .and_then(|t| toml::from_str(t).ok())
        .ok_or_else(|| format!("{}: release.toml unreadable", artifact.display()))?;
    let version = release.version.as_str();
    if version.contains('/') || version.starts_with('.') || version.is_empty() {
        return Err(format!("{}: bad version `{version}`", artifact.display()));
    }
    let dest = layout.release(version);
    if dest.exists() {
        Release::load(&dest)?;
        return Ok(format!(
            "release {version} is already unpacked in {}",
            dest.display()
        ));
    }
    let partial = layout.releases().join(format!(".{version}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).ctx(|| format!("remove {}", partial.display()))?;
    }
    durable::mkdir(&partial)?;
    for (name, data) in &files {
        durable::write(&partial.join(name), data, 0o644)?;
    }
    fs::rename(&partial, &dest)
        .ctx(|| format!("rename {} to {}", partial.display(), dest.display()))?;
    durable::fsync_dir(&layout.releases())?;
    Ok(format!(
        "unpacked release {version} ({} files) into {}",
        files.len(),
        dest.display()
    ))
}

/// `discard V`: removes an unpacked release (the undo of `unpack`); never
/// the one `current` points to.
pub fn discard(layout: &Layout, version: &str) -> Res<String> {
    if is_current(layout, version) {
        return Err(format!(
            "release {version} is current: switch away from it first"
        ));
    }
    let dest = layout.release(version);
    if !dest.exists() {
        return Ok(format!("release {version} is not there, nothing to do"));
    }
    // Renamed away first, so a crash mid-removal never leaves a half release
    // under the real name.
    let gone = layout.releases().join(format!(".{version}.discarded"));
    if gone.exists() {
        fs::remove_dir_all(&gone).ctx(|| format!("remove {}", gone.display()))?;
    }
    fs::rename(&dest, &gone).ctx(|| format!("rename {}", dest.display()))?;
    durable::fsync_dir(&layout.releases())?;
    fs::remove_dir_all(&gone).ctx(|| format!("remove {}", gone.display()))?;
    Ok(format!("removed release {version}"))
}
