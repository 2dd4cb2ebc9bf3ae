//! The index of the database dumps `db` backups keep, which `hoist
//! backups` (`commands::backups`) lists.
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
