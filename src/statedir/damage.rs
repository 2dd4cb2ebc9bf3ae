//! A journal that lost what the host shows happened.
//!
//! Runs leave traces beside the journal: a run's log `runs/N.log` and its
//! step directories `runs/N/`, made only after run N was committed. A
//! journal missing or empty while such traces exist, or knowing fewer runs
//! than they show (its `-wal`, which held the last commits, deleted), would
//! read as "no upgrade has run" or as an older state: hoist would then plan
//! anew over a half-upgraded host. It is refused instead.

use std::path::Path;

/// The highest run number the run logs and step directories show.
pub fn traces(dir: &Path) -> Option<i64> {
    std::fs::read_dir(dir.join("runs"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".log")
                .unwrap_or(&name)
                .parse::<i64>()
                .ok()
        })
        .max()
}

fn advice(dir: &Path) -> String {
    format!(
        "hoist cannot tell what was done on this host without it. Restore it from a backup (with its -wal file), or, after checking the host by hand (the run logs are in {runs}), move the state directory aside (`mv {d} {d}.damaged`) to start afresh",
        runs = dir.join("runs").display(),
        d = dir.display()
    )
}

/// Before the journal is opened: refused when it is missing or empty while
/// runs left traces.
pub fn check_before(dir: &Path) -> Result<(), String> {
    let Some(run) = traces(dir) else {
        return Ok(());
    };
    let path = dir.join("journal.db");
    let what = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing",
        Ok(m) if m.len() == 0 => "is empty (0 bytes)",
        _ => return Ok(()),
    };
    Err(format!(
        "the journal {} {what}, but run {run} left its log and step directories in {}: {}",
        path.display(),
        dir.join("runs").display(),
        advice(dir)
    ))
}

/// Once opened: refused when it knows fewer runs than their traces
/// (`traces`, listed before the journal was read) show.
pub fn check_after(dir: &Path, traces: Option<i64>, last_run: Option<i64>) -> Result<(), String> {
    let Some(run) = traces else {
        return Ok(());
    };
    if last_run.is_some_and(|l| l >= run) {
        return Ok(());
    }
    Err(format!(
        "the journal {} knows {} but run {run} left its log and step directories in {}: the journal lost its last changes (its -wal file deleted, or the file replaced). {}",
        dir.join("journal.db").display(),
        match last_run {
            Some(l) => format!("runs up to {l} only"),
            None => "no run".into(),
        },
        dir.join("runs").display(),
        advice(dir)
    ))
}

/// What an SQLite error means for the admin, when it means damage.
pub fn explain(e: &rusqlite::Error, dir: &Path) -> Option<String> {
    match e.sqlite_error_code()? {
        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => {
            Some(format!("the journal is damaged; {}", advice(dir)))
        }
        rusqlite::ErrorCode::SystemIoFailure => Some(format!(
            "the disk failed to read or write it ({} free there); check the disk (`dmesg`)",
            super::space::free_text(dir)
        )),
        _ => None,
    }
}
