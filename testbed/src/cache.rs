//! The cache directory: base images (built once, keyed by a hash of what went
//! into them) and the state of runs in progress (so a run killed with SIGKILL
//! can be cleaned up by the next one).
//!
//! Layout:
//! ```text
//! $HOIST_TESTBED_CACHE (default /var/cache/hoist-testbed)
//!   images/<suite>-<hash>/rootfs   the image, never modified once complete
//!   images/<suite>-<hash>/debs     the .debs it was built from (an OS mirror)
//!   images/<suite>-<hash>/ok       written last: the image is complete
//!   runs/<run-id>/                 one live run (hosts, keys, repo)
//!   locks/                         flock(2) files serialising builds
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{IoContext, Result};

/// Environment variable that moves the cache.
pub const CACHE_ENV: &str = "HOIST_TESTBED_CACHE";
/// Where the cache lives when [`CACHE_ENV`] is not set.
pub const DEFAULT_CACHE: &str = "/var/cache/hoist-testbed";

/// Root of the cache, from the environment or the default.
pub fn cache_dir() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// A subdirectory of the cache, created if missing.
pub(crate) fn subdir(name: &str) -> Result<PathBuf> {
    let d = cache_dir().join(name);
    fs::create_dir_all(&d).ctx("create", &d)?;
    Ok(d)
}

/// An exclusive advisory lock held until dropped. Serialises image builds
/// across test binaries and threads, which `cargo test` runs concurrently.
pub(crate) struct Lock {
    _flock: Flock<File>,
}

impl Lock {
    /// Block until the named lock is ours. Waits for another process's
    /// build, which itself is bounded by the build's own timeouts.
    pub(crate) fn acquire(name: &str) -> Result<Self> {
        let path = subdir("locks")?.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open", &path)?;
        let flock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| crate::Error::Sys {
                action: format!("flock {}", path.display()),
                source: e,
            })?;
        Ok(Self { _flock: flock })
    }
}

/// Disk used under `path`, in bytes, counting hard links once (`du -s`).
pub fn disk_usage(path: &Path) -> Result<u64> {
    let out = crate::cmd::run(
        std::process::Command::new("du")
            .arg("-s")
            .arg("--block-size=1")
            .arg(path),
        std::time::Duration::from_secs(120),
    )?;
    Ok(out
        .stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}
