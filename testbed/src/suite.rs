//! Debian releases the harness can boot.

use std::fmt;

/// A Debian release a base image is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    /// Debian 11, the "before" side of an OS major upgrade.
    Bullseye,
    /// Debian 12, the default.
    Bookworm,
}

impl Suite {
    /// The codename apt and debootstrap use.
    pub fn codename(self) -> &'static str {
        match self {
            Suite::Bullseye => "bullseye",
            Suite::Bookworm => "bookworm",
        }
    }

    /// `VERSION_ID` in the image's /etc/os-release.
    pub fn version_id(self) -> &'static str {
        match self {
            Suite::Bullseye => "11",
            Suite::Bookworm => "12",
        }
    }

    /// Major version of PostgreSQL that Debian ships in this release.
    pub fn postgresql_major(self) -> u32 {
        match self {
            Suite::Bullseye => 13,
            Suite::Bookworm => 15,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}
