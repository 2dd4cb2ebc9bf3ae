//! The states of a run and of its steps, and the only transitions allowed
//! between them. The journal refuses any other change (DESIGN: "one table of
//! allowed transitions, nothing else").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An enum of states with its text form (journal, JSON, display) both ways;
/// `fleet::state` uses it too.
macro_rules! states {
    ($name:ident { $($(#[$doc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$doc])* #[serde(rename = $text)] $variant),* }

        impl $name {
            /// Every state, in the order declared (the tables and diagrams
            /// of docs/DURABILITY.md).
            pub const ALL: &[$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }
    };
}
pub(crate) use states;

states!(RunState {
    Planned = "planned",
    Preparing = "preparing",
    /// `-d`: everything downloaded and verified; nothing else will run.
    Prepared = "prepared",
    Applying = "applying",
    Verifying = "verifying",
    Committed = "committed",
    /// Stopped cleanly on SIGTERM/SIGINT between two steps; `resume` goes on.
    Paused = "paused",
    Failed = "failed",
    RollingBack = "rolling-back",
    RolledBack = "rolled-back",
    /// The rollback ended, but steps that ran were not undone (no undo, or
    /// skipped by the admin): the host is not as it was; status lists them.
    PartlyRolledBack = "partly-rolled-back",
    /// An undo failed: the host is neither before nor after; status says where.
    RollbackFailed = "rollback-failed",
});

states!(StepState {
    Pending = "pending",
    Running = "running",
    Done = "done",
    Failed = "failed",
    /// Not in this run (its `when` was false, once done, other hop).
    Skipped = "skipped",
    Undoing = "undoing",
    Undone = "undone",
    UndoFailed = "undo-failed",
    /// Its undo was skipped by the admin (`hoist rollback --skip`), with a
    /// reason in the journal: it stays as it was left.
    UndoSkipped = "undo-skipped",
});

use RunState as R;
use StepState as S;

/// Every allowed change of a run's state.
pub const RUN_TRANSITIONS: &[(RunState, RunState)] = &[
    (R::Planned, R::Preparing),
    (R::Preparing, R::Prepared),
    (R::Preparing, R::Applying),
    (R::Preparing, R::Verifying),
    (R::Applying, R::Verifying),
    (R::Verifying, R::Committed),
    (R::Applying, R::Committed),
    (R::Preparing, R::Committed),
    // A stop between steps, and going on from it.
    (R::Preparing, R::Paused),
    (R::Applying, R::Paused),
    (R::Verifying, R::Paused),
    (R::Paused, R::Preparing),
    (R::Paused, R::Applying),
    (R::Paused, R::Verifying),
    // Failure; after --no-rollback, the admin may fix the cause and resume.
    (R::Preparing, R::Failed),
    (R::Applying, R::Failed),
    (R::Verifying, R::Failed),
    (R::Failed, R::Preparing),
    (R::Failed, R::Applying),
    (R::Failed, R::Verifying),
    // Rollback, automatic or asked for (also of an interrupted run).
    (R::Failed, R::RollingBack),
    (R::Paused, R::RollingBack),
    // Killed between its creation and its first step: nothing to undo,
    // but the run must end.
    (R::Planned, R::RollingBack),
    (R::Preparing, R::RollingBack),
    (R::Applying, R::RollingBack),
    (R::Verifying, R::RollingBack),
    (R::RollingBack, R::RolledBack),
    (R::RollingBack, R::RollbackFailed),
    (R::RollingBack, R::PartlyRolledBack),
    // A rollback that failed may be tried again once the cause is fixed.
    (R::RollbackFailed, R::RollingBack),
];

/// Every allowed change of a step's state.
pub const STEP_TRANSITIONS: &[(StepState, StepState)] = &[
    (S::Pending, S::Running),
    (S::Running, S::Done),
    (S::Running, S::Failed),
    // Found running after a crash and re-run (its probe said not applied).
    (S::Running, S::Running),
    // Retried by resume after a failure.
    (S::Failed, S::Running),
    // Compensation: done steps, and failed or interrupted ones whose partial
    // effect the undo covers.
    (S::Done, S::Undoing),
    (S::Failed, S::Undoing),
    (S::Running, S::Undoing),
    (S::Undoing, S::Undone),
    (S::Undoing, S::UndoFailed),
    (S::Undoing, S::Undoing),
    (S::UndoFailed, S::Undoing),
    // The admin gives up on an undo, with a reason (`rollback --skip`).
    (S::Done, S::UndoSkipped),
    (S::Failed, S::UndoSkipped),
    (S::Running, S::UndoSkipped),
    (S::Undoing, S::UndoSkipped),
    (S::UndoFailed, S::UndoSkipped),
    // Failed past the run's point of no return, undone alone, and run
    // again by resume (forward is the only way from there).
    (S::Undone, S::Running),
    (S::UndoFailed, S::Running),
];

/// The one way out of a final state: a committed run of a fleet rollout
/// rolled back by `hoist fleet rollback` (`hoist rollback --rollout TAG`
/// on the host), when another host of the rollout failed. Not in
/// `RUN_TRANSITIONS`: `set_run_state` never takes it; only
/// `Journal::reopen_for_fleet_rollback` does, which journals why in the
/// same transaction. A plain `hoist rollback` never reopens a committed run.
pub const FLEET_ROLLBACK: (RunState, RunState) = (R::Committed, R::RollingBack);

pub fn run_allowed(from: RunState, to: RunState) -> bool {
    RUN_TRANSITIONS.contains(&(from, to))
}

pub fn step_allowed(from: StepState, to: StepState) -> bool {
    STEP_TRANSITIONS.contains(&(from, to))
}

impl RunState {
    /// The run is over: nothing will change it again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            R::Committed | R::Prepared | R::RolledBack | R::PartlyRolledBack
        )
    }

    /// A process works on it right now, or did when it was interrupted.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            R::Preparing | R::Applying | R::Verifying | R::RollingBack
        )
    }
}

/// A transition table as docs/DURABILITY.md shows it: where each state may
/// go, then a Mermaid `stateDiagram-v2` drawn from the same pairs, so the
/// page cannot say otherwise than the table the journal checks. The first
/// state is where a row starts; a state with no way out is final. `extra`
/// are transitions outside the table, drawn with their reason.
pub fn render_machine<T: Copy + PartialEq + fmt::Display>(
    states: &[T],
    transitions: &[(T, T)],
    extra: &[(T, T, &str)],
) -> String {
    // Mermaid ids take no `-`; the state's own name is its label.
    let id = |s: T| s.to_string().replace('-', "_");
    let mut lines = vec!["| state | may go to |".to_string(), "|---|---|".to_string()];
    for &s in states {
        let mut to: Vec<String> = transitions
            .iter()
            .filter(|(a, _)| *a == s)
            .map(|(_, b)| format!("`{b}`"))
            .collect();
        let is_final = to.is_empty();
        if is_final {
            to.push("(final)".to_string());
        }
        for (_, b, why) in extra.iter().filter(|(a, _, _)| *a == s) {
            to.push(format!("`{b}` ({why})"));
        }
        lines.push(format!("| `{s}` | {} |", to.join(", ")));
    }
    lines.extend([
        "".to_string(),
        "```mermaid".to_string(),
        "stateDiagram-v2".to_string(),
    ]);
    for &s in states.iter().filter(|s| s.to_string().contains('-')) {
        lines.push(format!("    state \"{s}\" as {}", id(s)));
    }
    if let Some(&first) = states.first() {
        lines.push(format!("    [*] --> {}", id(first)));
    }
    for &(a, b) in transitions {
        lines.push(format!("    {} --> {}", id(a), id(b)));
    }
    for &(a, b, why) in extra {
        lines.push(format!("    {} --> {}: {why}", id(a), id(b)));
    }
    for &s in states {
        if !transitions.iter().any(|(a, _)| *a == s) {
            lines.push(format!("    {} --> [*]", id(s)));
        }
    }
    lines.push("```".to_string());
    lines.join("\n") + "\n"
}

/// The run and step tables, as docs/DURABILITY.md shows them (its blocks
/// `run states` and `step states`).
pub fn diagrams() -> [(&'static str, String); 2] {
    [
        (
            "run states",
            render_machine(
                RunState::ALL,
                RUN_TRANSITIONS,
                &[(
                    FLEET_ROLLBACK.0,
                    FLEET_ROLLBACK.1,
                    "hoist fleet rollback only",
                )],
            ),
        ),
        (
            "step states",
            render_machine(StepState::ALL, STEP_TRANSITIONS, &[]),
        ),
    ]
}

/// Checks that docs/DURABILITY.md holds `text` between
/// `<!-- generated: NAME -->` and `<!-- end -->`; with `HOIST_BLESS=1`,
/// writes it there instead.
#[cfg(test)]
pub(crate) fn check_durability_doc(blocks: &[(&str, String)]) {
    use std::sync::Mutex;
    // The run's and the fleet's tests may bless the one page at once.
    static PAGE: Mutex<()> = Mutex::new(());
    let _one = PAGE.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DURABILITY.md");
    let mut page = std::fs::read_to_string(&path).unwrap();
    let bless = std::env::var_os("HOIST_BLESS").is_some_and(|v| v == "1");
    for (name, text) in blocks {
        let open = format!("<!-- generated: {name} -->\n");
        let start = page
            .find(&open)
            .unwrap_or_else(|| panic!("no `{open}` in {}", path.display()));
        let body = start + open.len();
        let end = body
            + page[body..]
                .find("<!-- end -->")
                .unwrap_or_else(|| panic!("no `<!-- end -->` after `{open}`"));
        if bless {
            page.replace_range(body..end, text);
        } else {
            assert_eq!(
                page[body..end],
                **text,
                "{} is out of date with the table of `{name}`: run \
                 `HOIST_BLESS=1 cargo test --lib state::tests::the_page_draws` to rewrite it",
                path.display()
            );
        }
    }
    if bless {
        std::fs::write(&path, page).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_draws_the_run_and_step_tables() {
        check_durability_doc(&diagrams());
    }

    #[test]
    fn final_states_lead_nowhere() {
        for (from, _) in RUN_TRANSITIONS {
            assert!(!from.is_final(), "{from} is final but has a way out");
        }
    }

    #[test]
    fn names_round_trip() {
        for (a, b) in RUN_TRANSITIONS {
            assert_eq!(a.as_str().parse::<RunState>().unwrap(), *a);
            assert_eq!(b.as_str().parse::<RunState>().unwrap(), *b);
        }
        for (a, _) in STEP_TRANSITIONS {
            assert_eq!(a.as_str().parse::<StepState>().unwrap(), *a);
        }
        assert!(!run_allowed(R::Committed, R::RollingBack));
        assert!(!RUN_TRANSITIONS.contains(&FLEET_ROLLBACK));
        assert!(step_allowed(S::Done, S::Undoing));
        assert!(!step_allowed(S::Undone, S::Done));
    }
}
