//! The host's commands, as the command line calls them: `upgrade`, `resume`
//! and `rollback` with their report (`upgrade`), `status` and `history`
//! (`status`), `report` (a run's report, and its file and metrics at its
//! end), `backups`, `firewall leftovers` (`leftovers`), `completions` and
//! `man` (`manual`), and the two the fleet's controller runs on a host:
//! `fleet-action` (`fleet_action`) and `rollback --rollout TAG`
//! (`rollout_rollback`).

pub mod backups;
pub mod fleet_action;
pub mod leftovers;
pub mod manual;
pub mod report;
pub mod rollout_rollback;
pub mod status;
pub mod upgrade;
