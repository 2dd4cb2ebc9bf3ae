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

use FleetState as F;
use HostState as H;
use ItemState as I;
use UndoState as U;

/// The one table of allowed rollout transitions.
pub const ROLLOUT_TRANSITIONS: &[(FleetState, FleetState)] = &[
    (F::Planned, F::Running),
    (F::Running, F::Paused),
    (F::Running, F::Stopped),
    (F::Running, F::Failed),
    (F::Running, F::Done),
    (F::Paused, F::Running),
    (F::Failed, F::Running),
    // `hoist fleet rollback`, from wherever the rollout ended (`running` or
    // `planned`: a controller that died, since the rollback holds the
    // lock), and again after a failure.
    (F::Planned, F::RollingBack),
    (F::Running, F::RollingBack),
    (F::Paused, F::RollingBack),
    (F::Stopped, F::RollingBack),
    (F::Failed, F::RollingBack),
    (F::Done, F::RollingBack),
    (F::RollbackFailed, F::RollingBack),
    (F::RollingBack, F::RolledBack),
    (F::RollingBack, F::RollbackFailed),
    (F::RollingBack, F::PartlyRolledBack),
];

/// The one table of a host's transitions in a rollout.
pub const HOST_TRANSITIONS: &[(HostState, HostState)] = &[
    (H::Pending, H::Running),
    (H::Running, H::Done),
    (H::Running, H::Failed),
    (H::Running, H::Waiting),
    (H::Waiting, H::Running),
];

/// The one table of an item's transitions (and of a host's part in a
/// run-on-each item).
pub const ITEM_TRANSITIONS: &[(ItemState, ItemState)] = &[
    (I::Pending, I::Running),
    (I::Pending, I::Skipped),
    (I::Running, I::Done),
    (I::Running, I::Failed),
    // A run-once step found running after a crash is run again (actions
    // are idempotent or say how to check, as steps).
    (I::Running, I::Running),
    (I::Failed, I::Running),
];

/// The one table of an undo's transitions in a fleet rollback.
pub const UNDO_TRANSITIONS: &[(UndoState, UndoState)] = &[
    (U::Pending, U::Running),
    (U::Pending, U::Skipped),
    (U::Pending, U::Left),
    (U::Running, U::Done),
    (U::Running, U::Failed),
    (U::Running, U::Skipped),
    (U::Running, U::Left),
    // Found running after a killed rollback: asked again (a host's
    // rollback and the recipe's undos are idempotent).
    (U::Running, U::Running),
    (U::Failed, U::Running),
];

impl FleetState {
    /// Allowed by the rollout's table (`ROLLOUT_TRANSITIONS`).
    pub fn can_go(self, to: FleetState) -> bool {
        ROLLOUT_TRANSITIONS.contains(&(self, to))
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
    /// Allowed by the host's table (`HOST_TRANSITIONS`).
    pub fn can_go(self, to: HostState) -> bool {
        HOST_TRANSITIONS.contains(&(self, to))
    }

    pub fn ended(self) -> bool {
        matches!(self, HostState::Done | HostState::Failed)
    }
}

impl ItemState {
    /// Allowed by the item's table (`ITEM_TRANSITIONS`).
    pub fn can_go(self, to: ItemState) -> bool {
        ITEM_TRANSITIONS.contains(&(self, to))
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
    /// Allowed by the undo's table (`UNDO_TRANSITIONS`).
    pub fn can_go(self, to: UndoState) -> bool {
        UNDO_TRANSITIONS.contains(&(self, to))
    }

    /// Nothing more to do for it.
    pub fn ended(self) -> bool {
        matches!(self, UndoState::Done | UndoState::Skipped | UndoState::Left)
    }
}

fn draw<T: Copy + PartialEq + fmt::Display>(all: &[T], table: &[(T, T)]) -> String {
    crate::run::state::render_machine(all, table, &[])
}

/// The rollout, host, item and undo tables, as docs/DURABILITY.md shows
/// them (its blocks `rollout states`, `host states`, `item states` and
/// `undo states`).
pub fn diagrams() -> [(&'static str, String); 4] {
    [
        ("rollout states", draw(FleetState::ALL, ROLLOUT_TRANSITIONS)),
        ("host states", draw(HostState::ALL, HOST_TRANSITIONS)),
        ("item states", draw(ItemState::ALL, ITEM_TRANSITIONS)),
        ("undo states", draw(UndoState::ALL, UNDO_TRANSITIONS)),
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
