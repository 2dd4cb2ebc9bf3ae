//! hoist-testbed: booted Debian hosts, a signed apt repository and stand-in
//! products, for hoist's end-to-end tests.
//!
//! ```no_run
//! use hoist_testbed::{Suite, Testbed};
//! let tb = Testbed::builder()
//!     .host("h1", Suite::Bookworm)
//!     .host("h2", Suite::Bookworm)
//!     .start()?;
//! let h1 = tb.host("h1")?;
//! assert_eq!(h1.exec("hostname")?.stdout.trim(), "h1");
//! h1.reboot()?;
//! let h2 = tb.host("h2")?;
//! tb.crash(&h2)?; // power cut, then boot again
//! tb.teardown()?;
//! # Ok::<(), hoist_testbed::Error>(())
//! ```
//!
//! See README.md for the design, the cache and the measured timings.

mod aptrepo;
mod cache;
mod cgroup;
mod cmd;
mod debspec;
mod error;
mod gpg;
mod host;
mod image;
pub mod leftovers;
mod mirror;
mod mounts;
mod net;
mod nspawn;
mod preflight;
pub mod products;
mod run;
mod schema;
mod signals;
mod ssh;
mod suite;
mod testbed;
mod wheel;

pub use aptrepo::AptRepo;
pub use cache::{CACHE_ENV, DEFAULT_CACHE, cache_dir, disk_usage};
pub use cmd::{Output, wait_for};
pub use debspec::{FileSpec, PackageSpec, UnitSpec};
pub use error::{Error, Result};
pub use gpg::SigningKey;
pub use host::{
    BOOT_TIMEOUT, EXEC_TIMEOUT, Host, REPO_KEYRING, REPO_MOUNT, SHUTDOWN_LOG, SHUTDOWN_UNIT,
};
pub use image::{DEFAULT_PACKAGES, Image, ImageSpec, MIRROR_ENV};
pub use mirror::Mirror;
pub use preflight::check as preflight;
pub use run::sweep_dead as sweep_dead_runs;
pub use schema::{
    DAEMON, Engine, MIGRATE, RUNTIME_PACKAGE, Schema, daemon_unit, daemon_unit_with,
    runtime_package,
};
pub use ssh::SshFiles;
pub use suite::Suite;
pub use testbed::{Testbed, TestbedBuilder};
pub use wheel::WheelSpec;
