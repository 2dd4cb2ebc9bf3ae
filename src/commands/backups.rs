//! `hoist backups`: the database dumps `db` backups keep, from their index
//! (`actions::db::backups`).

use std::path::Path;

use crate::actions::db::backups::load;
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED};
use crate::sys::size::human_size;

/// `hoist backups`: newest first, with size, date, database and run; a
/// dump deleted by hand since is shown as missing.
pub fn list(state_dir: &Path, json: bool) -> u8 {
    if let Err(e) = crate::statedir::trusted(state_dir, false) {
        return crate::output::wire::refuse(
            json,
            EXIT_REFUSED,
            "untrusted-state-dir",
            &e.to_string(),
        );
    }
    let mut entries = load(state_dir);
    entries.sort_by_key(|e| std::cmp::Reverse(e.created));
    if json {
        let backups: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["exists"] = e.path.exists().into();
                v
            })
            .collect();
        crate::output::wire::print_doc(crate::output::wire::Backups { backups });
        return EXIT_OK;
    }
    if entries.is_empty() {
        outln!("no database dump was taken by hoist on this host");
        return EXIT_OK;
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
    EXIT_OK
}
