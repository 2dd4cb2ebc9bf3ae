//! hoist's exit codes, the one place they are defined (README.md, "Exit
//! codes", says the same for the admin). Every command returns one of these;
//! a run's ending maps to them too (`run::Ending`). They sit in the bottom
//! layer because every layer that ends a command needs them and they need
//! nothing.

/// Success: clean, ready, planned, upgraded, downloaded, up to date, rolled
/// back on request; for `hoist fleet upgrade | resume`, every host of the
/// plan upgraded.
pub const EXIT_OK: u8 = 0;

/// Refused or failed: lint errors, an inhibitor, no supported path, another
/// hoist running, a failed step, a state directory refused, too little free
/// space, a journal that cannot be written, the prompt answered no ("Abort",
/// as apt), a partly rolled back run; for the fleet, a failure threshold
/// reached or a failed run-once step or undo. Also a command that only reads
/// whose output cannot be written (a full disk).
pub const EXIT_REFUSED: u8 = 1;

/// Usage: a bad argument, an unreadable or invalid recipe or facts, no
/// terminal to confirm on.
pub const EXIT_USAGE: u8 = 2;

/// Paused, resumable: a run stopped by SIGTERM, SIGINT or SIGHUP or waiting
/// at a person's gate (`hoist resume` goes on); a rollout paused
/// (`pause_after`, a signal: `hoist fleet resume` goes on).
pub const EXIT_PAUSED: u8 = 3;

/// A command that only reads whose reader has gone (`hoist history | head
/// -3`): 128 + SIGPIPE, what a shell reports for a program SIGPIPE killed.
pub const EXIT_BROKEN_PIPE: u8 = 141;
