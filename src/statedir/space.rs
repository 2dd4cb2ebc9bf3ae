//! Room for the journal on a full disk.
//!
//! A run that cannot write its journal cannot say how it ended. So the state
//! directory keeps a ballast file, `reserve` ([`RESERVE`] bytes written with
//! real blocks, fsynced), made when the journal is opened for a change and
//! space allows. When a journal write fails for want of space, the journal
//! deletes the reserve, journals a `disk-full` event and tries once more:
//! enough for the rest of the run, its rollback and its end. A run is not
//! even created with less than [`MIN_FREE`] free in the state directory.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Free space a new run needs in the state directory (documented in README
/// and ARCHITECTURE): the journal of a long run, its logs, and what actions
/// save in the step directories before they change anything.
pub const MIN_FREE: u64 = 64 << 20;

/// The ballast's size: the writes of a run's end and of a rollback, with
/// the journal's write-ahead log growing by a page per change.
pub const RESERVE: u64 = 8 << 20;

const NAME: &str = "reserve";

pub fn reserve_path(dir: &Path) -> PathBuf {
    dir.join(NAME)
}

pub use crate::sys::fsutil::free;

/// `free`, for a message: "12.0 MiB" or "unknown".
pub fn free_text(dir: &Path) -> String {
    free(dir)
        .map(crate::sys::size::human_size)
        .unwrap_or_else(|| "unknown".into())
}

/// Refuses a new run when the state directory has less than [`MIN_FREE`].
pub fn check_free(dir: &Path) -> Result<(), String> {
    let Some(have) = free(dir) else {
        return Ok(());
    };
    if have >= MIN_FREE {
        return Ok(());
    }
    Err(format!(
        "only {} free in the state directory {}, and a run needs {}: its journal, its logs and what it saves to undo its steps. Free some space there, then upgrade again; nothing was changed",
        crate::sys::size::human_size(have),
        dir.display(),
        crate::sys::size::human_size(MIN_FREE)
    ))
}

/// Makes the reserve when it is missing and the disk can spare it (it
/// leaves [`MIN_FREE`] beside it). A partial one is removed: it would be a
/// reserve in name only.
pub fn ensure_reserve(dir: &Path) {
    let path = reserve_path(dir);
    if std::fs::symlink_metadata(&path).is_ok() {
        return;
    }
    if free(dir).is_none_or(|f| f < RESERVE + MIN_FREE) {
        return;
    }
    let tmp = dir.join(format!(".{NAME}.hoist-tmp"));
    let made = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        // Zeros written, not a sparse file: the blocks must really be taken.
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..RESERVE / chunk.len() as u64 {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        crate::sys::fsutil::sync_dir(dir)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Deletes the reserve, durably; whether there was one.
pub fn release_reserve(dir: &Path) -> bool {
    let gone = std::fs::remove_file(reserve_path(dir)).is_ok();
    if gone {
        let _ = crate::sys::fsutil::sync_dir(dir);
    }
    gone
}

/// Whether the disk of `dir` is (nearly) full: less than a reserve's worth.
pub fn nearly_full(dir: &Path) -> bool {
    free(dir).is_some_and(|f| f < RESERVE)
}

/// Whether a journal error is a full disk: SQLite's own code, or an I/O
/// error while the disk is full.
pub fn is_full(e: &rusqlite::Error, dir: &Path) -> bool {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => true,
        Some(rusqlite::ErrorCode::SystemIoFailure) => nearly_full(dir),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_takes_real_blocks_and_goes_once() {
        let d = std::env::temp_dir().join(format!("hoist-reserve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        crate::sys::fsutil::private_dir(&d).unwrap();
        ensure_reserve(&d);
        if free(&d).is_some_and(|f| f > RESERVE + MIN_FREE) {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(reserve_path(&d)).unwrap();
            assert_eq!(m.len(), RESERVE);
            assert!(m.blocks() * 512 >= RESERVE, "sparse: {} blocks", m.blocks());
            assert!(release_reserve(&d));
            assert!(!release_reserve(&d));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
