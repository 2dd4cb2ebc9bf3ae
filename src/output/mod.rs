//! What hoist shows: every line for the admin (`out`, the one writer to
//! stdout and stderr), a run's reporter (`ui`: plain lines, a progress bar,
//! JSON Lines events), the typed messages between processes (`wire`) and
//! located problems (`diag`).

// First: its macros (`outln!`, `out!`, `errln!`) are for every module.
#[macro_use]
pub mod out;

pub mod diag;
pub mod ui;
pub mod wire;
