//! What hoist shows: every line for the admin (`out`, the one writer to
//! stdout and stderr), a run's reporter (`ui`: plain lines, a progress bar,
//! JSON Lines events, and the same events in the systemd journal:
//! `journald`), a run's report (`report`), the Prometheus textfile
//! (`metrics`), the typed messages between processes (`wire`) and located
//! problems (`diag`).

// First: its macros (`outln!`, `out!`, `errln!`) are for every module.
#[macro_use]
pub mod out;

pub mod diag;
pub mod journald;
pub mod metrics;
pub mod report;
pub mod ui;
pub mod wire;
