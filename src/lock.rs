//! One hoist at a time per state directory.
//!
//! The lock is `flock` on `<state-dir>/lock`: the kernel releases it when
//! its holder dies, however it dies, so a stale lock file from a dead process
//! is never trusted; its content (pid, start time, command) only serves to
//! tell the admin who holds a live lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another hoist is running on this host ({holder}); wait for it, or see `hoist status`")]
    Held { holder: String },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Held until dropped.
pub struct Lock {
    _flock: Flock<File>,
    /// The pid a dead previous holder left in the file, if any.
    pub stale_from: Option<String>,
}

pub fn acquire(state_dir: &Path, what: &str) -> Result<Lock, LockError> {
    acquire_file(state_dir, "lock", what)
}

/// The lock in another file of the state directory: the fleet
/// controller's (`fleet.lock`) is not the host's own, so a controller that
/// is also one of its hosts can upgrade itself.
pub fn acquire_file(state_dir: &Path, file: &str, what: &str) -> Result<Lock, LockError> {
    let path = state_dir.join(file);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    crate::fsutil::private_dir(state_dir).map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let mut flock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_string();
            return Err(LockError::Held {
                holder: if holder.is_empty() {
                    "its pid is not yet written".into()
                } else {
                    holder
                },
            });
        }
    };
    let mut previous = String::new();
    let _ = flock.read_to_string(&mut previous);
    let stale_from = (!previous.trim().is_empty()).then(|| previous.trim().to_string());
    flock.set_len(0).map_err(io)?;
    flock.rewind().map_err(io)?;
    write!(
        flock,
        "pid {}, started {}, {what}",
        std::process::id(),
        crate::journal::now()
    )
    .map_err(io)?;
    flock.sync_all().map_err(io)?;
    Ok(Lock {
        _flock: flock,
        stale_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("hoist-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = acquire(&dir, "upgrade").unwrap();
        let err = acquire(&dir, "upgrade").err().unwrap();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("started "), "{text}");
        drop(first);
        let again = acquire(&dir, "resume").unwrap();
        // The file still names the previous holder, who is gone: reported,
        // not trusted.
        assert!(again.stale_from.unwrap().contains("upgrade"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
