//! Fleet: one product rolled out across many hosts (DESIGN "Fleet"; issue 7).
//!
//! Inventory + the recipe's `[fleet]` + a target --`plan`--> a [`plan::FleetPlan`]
//! (stages, batches, hosts, run-once steps and gates, in order);
//! the plan --`run::Executor`--> each host's own upgrade through a
//! [`transport::Transport`], the controller's own journal (`journal`)
//! recording every state change so a crashed controller resumes without
//! redoing finished hosts. Hosts are reached over SSH (`ssh`: the
//! transport; `events`: reading a host's hoist; `commands::fleet_action`: the host side;
//! `drive`: `hoist fleet upgrade | resume`).

pub mod cli;
pub mod drive;
pub mod events;
pub mod inventory;
pub mod journal;
pub mod metrics;
pub mod plan;
pub mod pool;
pub mod rollback;
pub mod run;
pub mod simulated;
pub mod ssh;
pub mod state;
pub mod status;
pub mod transport;
