//! The states of a rollout, of each host in it and of each item of its
//! plan, and the only transitions allowed between them (as `state` does
//! for one host's run: the controller's journal refuses anything else).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::states;

states!(FleetState {
    /// Created with its plan; nothing done yet.
    Planned = "planned",
    Running = "running",
    /// Stopped cleanly between batches (a `pause_after` stage, or asked);
    /// `resume` goes on.
    Paused = "paused",
    /// A failure threshold was crossed: hosts not yet started are untouched.
    Stopped = "stopped",
    /// A run-once step or a gate failed; `resume` tries it again.
    Failed = "failed",
    Done = "done",
});

states!(HostState {
    /// Not started: nothing was done on it by this rollout.
    Pending = "pending",
    /// Its upgrade was started; its own journal knows where it is.
    Running = "running",
    /// Its upgrade committed.
    Done = "done",
    /// Its upgrade failed (rolled back, or stopped for the admin), or it
    /// did not answer within the bounded wait.
    Failed = "failed",
});

states!(ItemState {
    Pending = "pending",
    Running = "running",
    Done = "done",
    Failed = "failed",
    Skipped = "skipped",
});

impl FleetState {
    /// The one table of allowed rollout transitions.
    pub fn can_go(self, to: FleetState) -> bool {
        use FleetState::*;
        matches!(
            (self, to),
            (Planned, Running)
                | (Running, Paused | Stopped | Failed | Done)
                | (Paused | Failed, Running)
        )
    }

    /// `resume` may carry on from here (a crash leaves `running`).
    pub fn resumable(self) -> bool {
        matches!(
            self,
            FleetState::Planned | FleetState::Running | FleetState::Paused | FleetState::Failed
        )
    }
}

impl HostState {
    pub fn can_go(self, to: HostState) -> bool {
        use HostState::*;
        matches!((self, to), (Pending, Running) | (Running, Done | Failed))
    }

    pub fn ended(self) -> bool {
        matches!(self, HostState::Done | HostState::Failed)
    }
}

impl ItemState {
    pub fn can_go(self, to: ItemState) -> bool {
        use ItemState::*;
        matches!(
            (self, to),
            (Pending, Running | Skipped)
                | (Running, Done | Failed)
                // A run-once step found running after a crash is run again
                // (actions are idempotent or say how to check, as steps).
                | (Running, Running)
                | (Failed, Running)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_host_is_never_started_again() {
        for to in [HostState::Pending, HostState::Running] {
            assert!(!HostState::Done.can_go(to));
            assert!(!HostState::Failed.can_go(to));
        }
        assert!(HostState::Pending.can_go(HostState::Running));
        assert!(!FleetState::Stopped.can_go(FleetState::Running));
        assert!(FleetState::Paused.can_go(FleetState::Running));
    }
}
