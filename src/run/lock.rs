//! One hoist at a time per state directory.
//!
//! The lock is `flock` on `<state-dir>/lock`: the kernel releases it when
//! its holder dies, however it dies, so a stale lock file from a dead process
//! is never trusted; its content (pid, start time, command) only serves to
//! tell the admin who holds a live lock.
//!
//! Commands that change the host (upgrade, resume, rollback, fleet-action,
//! `firewall leftovers --remove`) take it exclusively. Commands that only
//! read (status, history, `firewall leftovers`) take none: they ask who holds
//! it with a shared probe ([`holder`]), released at once and never writing
//! the file. A writer that finds only such probes in its way (its shared
//! attempt succeeds) tries again, for a bounded time, so an admin's loop
//! polling `hoist status` never makes a resume fail.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::statedir::OpenError;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another hoist is running on this host ({holder}); wait for it, or see `hoist status`")]
    Held { holder: String },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Untrusted(#[from] crate::statedir::Untrusted),
}

impl LockError {
    /// The `error` of a refusal in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            LockError::Untrusted(_) => "untrusted-state-dir",
            _ => "locked",
        }
    }
}

/// How long a writer waits for readers' probes to let go.
const PROBES_WAIT: Duration = Duration::from_secs(5);

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
    let dir = crate::statedir::trusted(state_dir, true)?.unwrap_or_else(|| state_dir.into());
    let path = dir.join(file);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = match crate::statedir::open_file(&dir, &path, true, true) {
        Ok(f) => f,
        Err(OpenError::Untrusted(e)) => return Err(e.into()),
        Err(OpenError::Absent) => return Err(io(std::io::ErrorKind::NotFound.into())),
    };
    let deadline = Instant::now() + PROBES_WAIT;
    let mut flock = loop {
        file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => break f,
            Err((f, _)) => f,
        };
        // Held: by a writer (a shared lock is refused too), or by readers'
        // probes only (it is granted: let go and try again).
        file = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(shared) if Instant::now() < deadline => {
                let f = shared.unlock().map_err(|(_, e)| io(e.into()))?;
                std::thread::sleep(Duration::from_millis(2));
                f
            }
            Ok(_) => {
                return Err(LockError::Held {
                    holder: format!(
                        "commands reading the state held its lock for {} s",
                        PROBES_WAIT.as_secs()
                    ),
                });
            }
            Err((mut f, _)) => return Err(held(&mut f)),
        };
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
        crate::run::journal::now()
    )
    .map_err(io)?;
    flock.sync_all().map_err(io)?;
    Ok(Lock {
        _flock: flock,
        stale_from,
    })
}

fn held(file: &mut File) -> LockError {
    let mut holder = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut holder);
    let holder = holder.trim().to_string();
    LockError::Held {
        holder: if holder.is_empty() {
            "its pid is not yet written".into()
        } else {
            holder
        },
    }
}

/// Who holds the state directory's lock right now, if anyone: a shared,
/// non-blocking probe of the lock, released at once; the file is opened
/// read-only and never created or written.
pub fn holder(state_dir: &Path) -> Result<Option<String>, LockError> {
    let Some(dir) = crate::statedir::trusted(state_dir, false)? else {
        return Ok(None);
    };
    let path = dir.join("lock");
    let file = match crate::statedir::open_file(&dir, &path, false, false) {
        Ok(f) => f,
        Err(OpenError::Absent) => return Ok(None),
        Err(OpenError::Untrusted(e)) => return Err(e.into()),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_probe) => Ok(None),
        Err((mut f, _)) => match held(&mut f) {
            LockError::Held { holder } => Ok(Some(holder)),
            other => Err(other),
        },
    }
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

    #[test]
    fn a_probe_sees_the_holder_and_never_stops_a_writer() {
        let dir = std::env::temp_dir().join(format!("hoist-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(holder(&dir).unwrap(), None);
        assert!(!dir.exists(), "a probe creates nothing");
        let first = acquire(&dir, "resume").unwrap();
        let h = holder(&dir).unwrap().unwrap();
        assert!(h.contains("resume"), "{h}");
        drop(first);
        // A probe holding its shared lock while a writer comes.
        let path = dir.join("lock");
        let probe = Flock::lock(File::open(&path).unwrap(), FlockArg::LockSharedNonblock).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(probe);
        });
        let writer = acquire(&dir, "rollback").unwrap();
        t.join().unwrap();
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
