//! The states of a rollout, of each host in it and of each item of its
//! plan, and the only transitions allowed between them (as `state` does
//! for one host's run: the controller's journal refuses anything else).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::run::state::states;

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
    /// `hoist fleet rollback` is putting back what the rollout did (or was
    /// killed doing it: run it again, done undos are not done again).
    RollingBack = "rolling-back",
    /// Every host the rollout touched rolled back, every run-once undo run.
    RolledBack = "rolled-back",
    /// An undo failed or a host refused: `hoist fleet status` says which.
    RollbackFailed = "rollback-failed",
    /// Every undo ran, but something the rollout changed was not put back
    /// (a run-once step without `undo` nor `undo = "none"`, a host whose
    /// own rollback ended partly): the fleet is NOT as it was, and
    /// `hoist fleet status` lists what is left. Final, as the host's own
    /// `partly-rolled-back`.
    PartlyRolledBack = "partly-rolled-back",
});

states!(HostState {
    /// Not started: nothing was done on it by this rollout.
    Pending = "pending",
    /// Its upgrade was started; its own journal knows where it is.
    Running = "running",
    /// Its run paused at a person's gate nobody confirmed: not a failure,
    /// and the rest of its batch goes on; `hoist fleet resume --confirm
    /// GATE@HOST` resumes its run there.
    Waiting = "waiting",
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

states!(UndoState {
    /// Not undone yet (a row absent from the journal is pending).
    Pending = "pending",
    Running = "running",
    Done = "done",
    Failed = "failed",
    /// Nothing to undo there (the host rolled back by itself, its run never
    /// started), or nothing needed (`undo = "none"`, with its reason).
    Skipped = "skipped",
    /// Not put back and nothing can be done about it by running the
    /// rollback again: a run-once step that ran without any `undo`, or a
    /// host whose own rollback left steps not undone. Ends the rollout
    /// `partly-rolled-back`.
    Left = "left",
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
                // `hoist fleet rollback`, from wherever the rollout ended
                // (`running` or `planned`: a controller that died, since
                // the rollback holds the lock), and again after a failure.
                | (
                    Planned | Running | Paused | Stopped | Failed | Done | RollbackFailed,
                    RollingBack
                )
                | (RollingBack, RolledBack | RollbackFailed | PartlyRolledBack)
        )
    }

    /// A rollback started and not finished: `hoist fleet rollback` again.
    pub fn rolling_back(self) -> bool {
        matches!(self, FleetState::RollingBack | FleetState::RollbackFailed)
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
        matches!(
            (self, to),
            (Pending, Running) | (Running, Done | Failed | Waiting) | (Waiting, Running)
        )
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

/// A state kept per item and host in the controller's journal (a host of
/// a run-on-each item, an undo of the rollback): a row absent is pending,
/// each change checked against the state's own table.
pub trait PerHost: Copy + fmt::Display + FromStr<Err = String> {
    const PENDING: Self;
    fn allows(self, to: Self) -> bool;
    fn text(self) -> &'static str;
}

impl PerHost for ItemState {
    const PENDING: Self = ItemState::Pending;
    fn allows(self, to: Self) -> bool {
        self.can_go(to)
    }
    fn text(self) -> &'static str {
        self.as_str()
    }
}

impl PerHost for UndoState {
    const PENDING: Self = UndoState::Pending;
    fn allows(self, to: Self) -> bool {
        self.can_go(to)
    }
    fn text(self) -> &'static str {
        self.as_str()
    }
}

impl UndoState {
    pub fn can_go(self, to: UndoState) -> bool {
        use UndoState::*;
        matches!(
            (self, to),
            (Pending, Running | Skipped | Left)
                | (Running, Done | Failed | Skipped | Left)
                // Found running after a killed rollback: asked again (a
                // host's rollback and the recipe's undos are idempotent).
                | (Running, Running)
                | (Failed, Running)
        )
    }

    /// Nothing more to do for it.
    pub fn ended(self) -> bool {
        matches!(self, UndoState::Done | UndoState::Skipped | UndoState::Left)
    }
}

/// The machine drawn from every pair `allowed` lets through, in
/// declaration order: the table the `can_go` functions spell as patterns.
fn draw_of<T: Copy + PartialEq + fmt::Display>(
    all: &[T],
    allowed: impl Fn(T, T) -> bool,
) -> String {
    let mut table = Vec::new();
    for &a in all {
        table.extend(all.iter().filter(|&&b| allowed(a, b)).map(|&b| (a, b)));
    }
    crate::run::state::render_machine(all, &table, &[])
}

/// The rollout, host, item and undo tables, as docs/DURABILITY.md shows
/// them (its blocks `rollout states`, `host states`, `item states` and
/// `undo states`).
pub fn diagrams() -> [(&'static str, String); 4] {
    [
        (
            "rollout states",
            draw_of(FleetState::ALL, FleetState::can_go),
        ),
        ("host states", draw_of(HostState::ALL, HostState::can_go)),
        ("item states", draw_of(ItemState::ALL, ItemState::can_go)),
        ("undo states", draw_of(UndoState::ALL, UndoState::can_go)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_draws_the_rollout_host_item_and_undo_tables() {
        crate::run::state::check_durability_doc(&diagrams());
    }

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

    #[test]
    fn a_host_waiting_for_a_person_is_not_ended_and_only_resumes() {
        assert!(HostState::Running.can_go(HostState::Waiting));
        assert!(HostState::Waiting.can_go(HostState::Running));
        assert!(!HostState::Waiting.ended());
        for to in [HostState::Done, HostState::Failed, HostState::Pending] {
            assert!(!HostState::Waiting.can_go(to), "{to}");
        }
        assert!(!HostState::Pending.can_go(HostState::Waiting));
    }

    #[test]
    fn a_rolled_back_rollout_goes_nowhere_and_a_done_undo_is_not_redone() {
        for to in [FleetState::Running, FleetState::RollingBack] {
            assert!(!FleetState::RolledBack.can_go(to));
            assert!(!FleetState::PartlyRolledBack.can_go(to));
        }
        assert!(FleetState::RollingBack.can_go(FleetState::PartlyRolledBack));
        assert!(!FleetState::PartlyRolledBack.resumable());
        assert!(!FleetState::PartlyRolledBack.rolling_back());
        assert!(FleetState::Stopped.can_go(FleetState::RollingBack));
        assert!(FleetState::RollbackFailed.can_go(FleetState::RollingBack));
        assert!(!FleetState::RollingBack.can_go(FleetState::Running));
        assert!(!FleetState::RollingBack.resumable());
        for to in [UndoState::Running, UndoState::Pending] {
            assert!(!UndoState::Done.can_go(to));
            assert!(!UndoState::Skipped.can_go(to));
            assert!(!UndoState::Left.can_go(to));
        }
    }
}
