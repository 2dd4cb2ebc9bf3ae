//! One error type for the whole harness: a test wants to print it and fail,
//! rarely to branch on it, so the variants say *what* failed and carry the
//! evidence (command line, exit status, stderr) needed to debug it from CI logs.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while preparing or driving test hosts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine cannot run the testbed at all (not root, missing binary,
    /// no overlayfs...). Tests must fail loudly with this, never skip.
    #[error("the testbed cannot run on this machine: {0}")]
    Unsupported(String),

    /// A command exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Command {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },

    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },

    /// Some file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A system call through `nix` failed.
    #[error("{action}: {source}")]
    Sys {
        action: String,
        #[source]
        source: nix::Error,
    },

    /// A declarative spec (package, host, suite) is inconsistent.
    #[error("invalid spec: {0}")]
    Spec(String),

    /// Teardown could not remove everything; lists what is left.
    #[error("teardown left things behind: {0:?}")]
    Leftovers(Vec<String>),
}

/// Result with the harness error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path and a verb to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}

/// Attach a description to a `nix::Error`.
pub(crate) trait SysContext<T> {
    fn sys(self, action: impl Into<String>) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, action: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Sys {
            action: action.into(),
            source,
        })
    }
}
