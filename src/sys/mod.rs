//! The bottom layer: what every other module stands on and that imports
//! none of them: running programs (bounded, contained, signals), crash-safe
//! writes, following a log file, the package databases, sizes as the
//! admin reads them, the clock and the exit codes.

pub mod clock;
pub mod exit;
pub mod follow;
pub mod fsutil;
pub mod pkgdb;
pub mod process;
pub mod size;
