//! Opening the journal in a state directory that deserves trust, naming
//! the file in its errors, retrying a write on a full disk, and telling
//! whether a step removed it.

use std::path::Path;

use rusqlite::{Connection, params};

use super::{Journal, JournalError, Result, SCHEMA, now};

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The journal file's path in an error from SQLite, what it means for the
/// admin when it means damage, and a full disk told as such.
fn name_error(dir: &Path, e: JournalError) -> JournalError {
    name_error_at(dir, "journal.db", e)
}

fn name_error_at(dir: &Path, file: &str, e: JournalError) -> JournalError {
    let JournalError::Sql(source) = e else {
        return e;
    };
    let path = dir.join(file).display().to_string();
    if crate::statedir::space::is_full(&source, dir) {
        return JournalError::DiskFull {
            path,
            dir: dir.display().to_string(),
            free: crate::statedir::space::free_text(dir),
        };
    }
    JournalError::File {
        advice: crate::statedir::damage::explain(&source, dir),
        path,
        source,
    }
}

/// The one way hoist opens a SQLite file of the state directory `dir`
/// (the host's journal, the controller's `fleet.db`): without following a
/// symbolic link, waiting up to 10 s for a writer, in WAL mode with
/// `synchronous=FULL` (a committed transaction is on disk before hoist acts
/// on it) and foreign keys on, `schema` applied; errors name the file.
pub fn connect_sqlite(dir: &Path, file: &str, schema: &str) -> Result<Connection> {
    let named = |e: rusqlite::Error| name_error_at(dir, file, e.into());
    let path = dir.join(file);
    let conn = Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(named)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(named)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(named)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Corrupt(format!(
            "{}: journal_mode is {mode}, not wal",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(named)?;
    conn.execute_batch(schema).map_err(named)?;
    Ok(conn)
}

impl Journal {
    /// Opens (creating) the journal in `dir` to change it: the state
    /// directory is made if need be and checked (`statedir`), and gets its
    /// reserve against a full disk.
    pub fn open(dir: &Path) -> Result<Journal> {
        let dir = crate::statedir::trusted(dir, true)?.unwrap_or_else(|| dir.to_path_buf());
        super::create_private_dir(&dir)?;
        let journal = Journal::connect(&dir)?;
        crate::statedir::space::ensure_reserve(&dir);
        Ok(journal)
    }

    /// Opens the journal to read it; `None` when there is none and no run
    /// left traces. Creates nothing.
    pub fn open_existing(dir: &Path) -> Result<Option<Journal>> {
        let Some(dir) = crate::statedir::trusted(dir, false)? else {
            return Ok(None);
        };
        if !dir.join("journal.db").exists() {
            crate::statedir::damage::check_before(&dir).map_err(JournalError::Damaged)?;
            return Ok(None);
        }
        Journal::connect(&dir).map(Some)
    }

    fn connect(dir: &Path) -> Result<Journal> {
        crate::statedir::damage::check_before(dir).map_err(JournalError::Damaged)?;
        let named = |e: rusqlite::Error| name_error(dir, e.into());
        let path = dir.join("journal.db");
        // The traces are listed before the journal is read: a run's log is
        // made after its row is committed, so a run that starts in between
        // (a writer beside this reader) is in the journal too, never taken
        // for a journal that lost it.
        let traces = crate::statedir::damage::traces(dir);
        let conn = connect_sqlite(dir, "journal.db", SCHEMA)?;
        let last: Option<i64> = conn
            .query_row("SELECT MAX(id) FROM runs", [], |r| r.get(0))
            .map_err(named)?;
        crate::statedir::damage::check_after(dir, traces, last).map_err(JournalError::Damaged)?;
        Ok(Journal {
            ids: [
                identity(dir).unwrap_or_default(),
                identity(&path).unwrap_or_default(),
            ],
            conn,
            dir: dir.to_path_buf(),
        })
    }

    /// Whether the state directory and the journal are still the ones
    /// opened: a step that deleted or replaced them (a hook's `rm -rf`)
    /// fails, since what follows could no longer be journaled.
    pub fn still_there(&self) -> std::result::Result<(), String> {
        let file = self.dir.join("journal.db");
        for (path, id) in [(&self.dir, self.ids[0]), (&file, self.ids[1])] {
            if identity(path) != Some(id) {
                return Err(format!(
                    "{} was {} while the step ran: the run's journal and saved files are gone from the state directory {}",
                    path.display(),
                    if path.exists() { "replaced" } else { "deleted" },
                    self.dir.display()
                ));
            }
        }
        Ok(())
    }

    /// A change, named on error; on a full disk, retried once after the
    /// reserve is given up (`statedir::space`), which is journaled.
    pub(super) fn write<T>(&mut self, mut f: impl FnMut(&mut Journal) -> Result<T>) -> Result<T> {
        use crate::statedir::space;
        match f(self) {
            Err(JournalError::Sql(e)) if space::is_full(&e, &self.dir) => {
                let free = space::free_text(&self.dir);
                if !space::release_reserve(&self.dir) {
                    return Err(name_error(&self.dir, JournalError::Sql(e)));
                }
                let detail = format!(
                    "the disk of the state directory {} is full ({free} free: {e}); deleted the reserve {} to finish the run ({} free now)",
                    self.dir.display(),
                    space::reserve_path(&self.dir).display(),
                    space::free_text(&self.dir)
                );
                errln!("hoist: {detail}");
                let _ = self.conn.execute(
                    "INSERT INTO events (run_id, at, kind, detail)
                     SELECT COALESCE(MAX(id), 0), ?1, 'disk-full', ?2 FROM runs",
                    params![now(), detail],
                );
                f(self).map_err(|e| name_error(&self.dir, e))
            }
            r => r.map_err(|e| name_error(&self.dir, e)),
        }
    }

    /// A read, named on error.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Journal) -> Result<T>) -> Result<T> {
        f(self).map_err(|e| name_error(&self.dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hoist-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_damaged_journal_is_named_with_what_to_do() {
        let d = scratch("damaged");
        crate::sys::fsutil::private_dir(&d).unwrap();
        std::fs::write(d.join("journal.db"), vec![7u8; 8192]).unwrap();
        let e = Journal::open_existing(&d).err().unwrap().to_string();
        assert!(
            e.contains(&format!("journal {}", d.join("journal.db").display())),
            "{e}"
        );
        assert!(
            e.contains("damaged") && e.contains("move the state directory aside"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_state_directory_moved_away_is_not_still_there() {
        let d = scratch("moved");
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.still_there(), Ok(()));
        let aside = d.with_extension("aside");
        std::fs::rename(&d, &aside).unwrap();
        let e = j.still_there().unwrap_err();
        assert!(e.contains("was deleted while the step ran"), "{e}");
        std::fs::create_dir(&d).unwrap();
        let e = j.still_there().unwrap_err();
        assert!(e.contains("was replaced"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&aside).unwrap();
    }
}
