//! The host's commands, as the command line calls them: `upgrade`, `resume`
//! and `rollback` with their report (`upgrade`), `status` and `history`
//! (`status`), and `backups`.

pub mod backups;
pub mod status;
pub mod upgrade;
