//! The database dumps `db` backups keep, and `hoist backups` listing them.
//!
//! Each dump a `backup` step writes is recorded in `<state>/backups.json`
//! (written atomically), so the admin can find every dump of every run and
//! retention only ever deletes files hoist itself wrote, never one the admin
//! put beside them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const INDEX: &str = "backups.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Where the dump is now (a kept older dump is renamed aside).
    pub path: PathBuf,
    /// The recipe's `dump`: dumps of one slot are counted together for
    /// retention.
    pub slot: PathBuf,
    pub engine: String,
    pub database: String,
    pub product: String,
    pub run: i64,
    pub step: String,
    /// Seconds since the epoch, when the dump was complete.
    pub created: u64,
    pub bytes: u64,
}

/// Every recorded dump; an unreadable or absent index is empty.
pub fn load(state_dir: &Path) -> Vec<Entry> {
    std::fs::read(state_dir.join(INDEX))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save(state_dir: &Path, entries: &[Entry]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
    crate::sys::fsutil::write_atomic(&state_dir.join(INDEX), &json)
}

/// `hoist backups`: newest first, with size, date, database and run; a
/// dump deleted by hand since is shown as missing.
pub fn list(state_dir: &Path, json: bool) -> u8 {
    if let Err(e) = crate::statedir::trusted(state_dir, false) {
        return crate::commands::upgrade::refuse(json, 1, "untrusted-state-dir", &e.to_string());
    }
    let mut entries = load(state_dir);
    entries.sort_by_key(|e| std::cmp::Reverse(e.created));
    if json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["exists"] = e.path.exists().into();
                v
            })
            .collect();
        outln!("{}", serde_json::Value::Array(list));
        return 0;
    }
    if entries.is_empty() {
        outln!("no database dump was taken by hoist on this host");
        return 0;
    }
    outln!(
        "{:<20}  {:>10}  {:<10}  {:<16}  {:>4}  path",
        "date (UTC)",
        "size",
        "engine",
        "database",
        "run"
    );
    for e in &entries {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.created);
        let when = humantime::format_rfc3339_seconds(when).to_string();
        let missing = if e.path.exists() { "" } else { "  (missing)" };
        outln!(
            "{:<20}  {:>10}  {:<10}  {:<16}  {:>4}  {}{missing}",
            when.trim_end_matches('Z').replace('T', " "),
            human_size(e.bytes),
            e.engine,
            e.database,
            e.run,
            e.path.display()
        );
    }
    0
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
