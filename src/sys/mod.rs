//! The bottom layer: what every other module stands on and that imports
//! none of them: running programs (bounded, contained, signals), crash-safe
//! writes, and following a log file.

pub mod follow;
pub mod fsutil;
pub mod process;
