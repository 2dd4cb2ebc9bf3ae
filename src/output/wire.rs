//! Every message that crosses a process, typed once and used by both sides:
//! the JSON Lines a host's `hoist upgrade|resume|rollback --json` and `hoist
//! fleet-action` write and the fleet's controller reads, the answer of
//! `hoist status --json`, and the events of `hoist fleet ... --json`. Each
//! line is one [`Line`]: the schema number, the time, the event's name and
//! its fields. docs/WIRE.md lists every event and field; a test keeps it
//! true.
//!
//! Reading is lenient where versions may differ (a field a line lacks takes
//! its default, an unknown event is passed over) and strict where they must
//! not: a line of a newer schema is refused with both numbers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped when an event's fields change incompatibly (a field removed or
/// its meaning changed); a new event or field keeps the number.
pub const SCHEMA: u32 = 1;

/// One line: the envelope around an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line<E> {
    #[serde(default)]
    pub schema: u32,
    /// When it was said (`sys::clock`); empty in a line that had none.
    #[serde(default)]
    pub at: String,
    #[serde(flatten)]
    pub event: E,
}

/// What a host's hoist says while it upgrades, resumes or rolls back, and
/// the answer of `hoist fleet-action`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A run was created from its plan.
    RunStarted {
        run: i64,
        #[serde(default)]
        product: String,
        #[serde(default)]
        from: String,
        #[serde(default)]
        to: String,
        #[serde(default)]
        plan_hash: String,
        #[serde(default)]
        steps: usize,
    },
    /// An unfinished run goes on (`hoist resume`), from `state`.
    RunResumed {
        run: i64,
        #[serde(default)]
        state: String,
    },
    /// The run moved to `state` (the host's run state machine).
    RunState {
        run: i64,
        #[serde(default)]
        state: String,
    },
    StepStarted {
        step: String,
        #[serde(default)]
        n: usize,
        #[serde(default)]
        total: usize,
        #[serde(default)]
        summary: String,
    },
    StepFinished {
        step: String,
        #[serde(default)]
        n: usize,
        /// done, failed, skipped...
        #[serde(default)]
        state: String,
        #[serde(default)]
        seconds: f64,
        #[serde(default)]
        error: Option<String>,
    },
    /// A line from a running step (a followed log, a long wait).
    StepProgress {
        step: String,
        #[serde(default)]
        line: String,
    },
    UndoStarted {
        step: String,
        #[serde(default)]
        summary: String,
    },
    UndoFinished {
        step: String,
        #[serde(default)]
        state: String,
        #[serde(default)]
        seconds: f64,
        #[serde(default)]
        error: Option<String>,
    },
    /// The run's end: its final or paused state and what to do next.
    RunFinished {
        #[serde(default)]
        run: i64,
        state: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        log: Option<String>,
        /// Paused at a person's gate nobody confirmed.
        #[serde(default)]
        awaits_person: Option<AwaitsPerson>,
    },
    /// Nothing to do: the product is at the target already.
    UpToDate {
        #[serde(default)]
        current: String,
        #[serde(default)]
        target: String,
    },
    /// `hoist rollback` found nothing to undo (`reason`: the run's state).
    NothingToRollBack {
        #[serde(default)]
        run: Option<i64>,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    },
    /// Something the admin should know that changes nothing.
    Notice {
        #[serde(default)]
        about: String,
        #[serde(default)]
        message: String,
    },
    /// Refused before anything changed (`error`: a stable code).
    Refused {
        #[serde(default)]
        error: String,
        #[serde(default)]
        message: String,
    },
    /// `hoist fleet-action`'s answer, its last line.
    ActionFinished {
        step: String,
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    },
    /// An event this reader does not know (a newer hoist's, same schema).
    #[serde(other)]
    Unknown,
}

/// The person's gate a paused run waits at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitsPerson {
    /// What `--confirm` takes.
    pub gate: String,
    /// The step's key (`gate@version`).
    #[serde(default)]
    pub step: String,
    pub message: String,
}

/// The answer of `hoist status --json`: the newest run (`R`: the journal's
/// record on the host, the fields it reads on the controller) and its
/// journal events (`E`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status<R, E> {
    #[serde(default)]
    pub schema: u32,
    /// How many runs the journal holds (0: none ever).
    #[serde(default)]
    pub runs: usize,
    #[serde(default = "none")]
    pub run: Option<R>,
    /// The key of the step the run is at.
    #[serde(default)]
    pub at: Option<String>,
    /// Who holds the host's lock, when a hoist runs now.
    #[serde(default)]
    pub running_now: Option<String>,
    /// Why the run stopped, when the disk was full.
    #[serde(default)]
    pub disk_full: Option<String>,
    /// What the admin does next.
    #[serde(default)]
    pub next: String,
    #[serde(default)]
    pub log: Option<String>,
    #[serde(default = "Vec::new")]
    pub events: Vec<E>,
}

fn none<T>() -> Option<T> {
    None
}

impl<R, E> Status<R, E> {
    /// The answer of a journal with no run yet.
    pub fn no_run() -> Status<R, E> {
        Status {
            schema: SCHEMA,
            runs: 0,
            run: None,
            at: None,
            running_now: None,
            disk_full: None,
            next: "hoist upgrade".to_string(),
            log: None,
            events: Vec::new(),
        }
    }
}

/// A run as the controller reads it from `hoist status --json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunBrief {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// One event of a host's journal (the run's own history, not a line).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEvent {
    #[serde(default)]
    pub at: String,
    pub kind: String,
    #[serde(default)]
    pub detail: String,
}

/// What `hoist fleet upgrade|resume|rollback --json` says on the
/// controller. Documents made elsewhere (the fleet plan, a rollout's
/// summary, a host's result) are carried as their own JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum FleetEvent {
    FleetPlan {
        plan: Value,
    },
    RolloutStarted {
        rollout: i64,
        tag: String,
    },
    /// The rollout's `n`th item (a batch, a run-once step, a gate) began.
    FleetItem {
        n: usize,
        item: String,
    },
    HostStarted {
        host: String,
    },
    /// What a host's hoist said, as the controller reads it.
    HostEvent {
        host: String,
        detail: Value,
    },
    HostFinished {
        host: String,
        ok: bool,
        result: Value,
    },
    /// A run-once or run-on-each step on a host ended.
    HostStepFinished {
        host: String,
        id: String,
        ok: bool,
        error: Option<String>,
    },
    RolloutFinished {
        rollout: i64,
        state: String,
        summary: Option<Value>,
        seconds: f64,
    },
    /// The undos a fleet rollback will run, newest first.
    FleetRollbackPlan {
        rollout: i64,
        state: String,
        undos: Vec<String>,
    },
    /// A fleet rollback's undo began (`what`: the host or step).
    #[serde(rename = "undo-started")]
    FleetUndoStarted {
        what: String,
    },
    #[serde(rename = "undo-finished")]
    FleetUndoFinished {
        what: String,
        /// The host, or the controller's for a run-once step.
        host: String,
        state: String,
        detail: Option<String>,
    },
    RollbackFinished {
        rollout: i64,
        state: Option<String>,
        error: Option<String>,
        left: Option<Vec<String>>,
        summary: Option<Value>,
    },
    Refused {
        error: String,
        message: String,
    },
}

/// A whole document a command prints with `--json` (not a line): the
/// schema number beside the command's own fields (`body`, an object).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Doc<T> {
    #[serde(default)]
    pub schema: u32,
    #[serde(flatten)]
    pub body: T,
}

/// Prints `body` as a document, with the schema number.
pub fn print_doc<T: Serialize>(body: T) {
    let doc = Doc {
        schema: SCHEMA,
        body,
    };
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// `hoist lint --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LintReport {
    pub errors: usize,
    pub warnings: usize,
    /// Each with `file`, `line`, `column`, `code`, `severity`, `message`.
    pub problems: Vec<Value>,
}

/// `hoist plan --json` when there is nothing to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanUpToDate {
    pub up_to_date: bool,
    pub current: String,
    pub target: String,
}

/// `hoist history --json`: every run, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub runs: Vec<HistoryRun>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRun {
    pub run: i64,
    pub product: String,
    pub from: String,
    pub to: String,
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub plan_hash: String,
    pub error: Option<String>,
}

/// `hoist backups --json`: the dumps, newest first, each as the index
/// keeps it plus whether its file is still there (`exists`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backups {
    pub backups: Vec<Value>,
}

/// `hoist firewall leftovers --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leftovers {
    /// Each temporary rule: its text, the steps that add it, where it was
    /// found and removed, the files that keep a copy.
    pub rules: Vec<Value>,
    /// Who holds the host's lock, when a hoist runs now.
    pub live: Option<String>,
    pub unfinished_run: Option<i64>,
    pub errors: Vec<String>,
    /// Why nothing was looked for, when nothing was.
    #[serde(default)]
    pub message: Option<String>,
}

/// `event` as one line, with the schema number and the time.
pub fn line<E: Serialize>(event: E) -> String {
    let line = Line {
        schema: SCHEMA,
        at: crate::sys::clock::now(),
        event,
    };
    serde_json::to_string(&line).unwrap_or_else(|e| {
        // Only a map with non-string keys fails; none of these has one.
        format!(r#"{{"schema":{SCHEMA},"event":"unknown","error":"{e}"}}"#)
    })
}

/// Writes `event` as one line on standard output.
pub fn emit<E: Serialize>(event: E) {
    outln!("{}", line(event));
}

/// The one refusal printer: with `--json`, a `refused` line on standard
/// output; otherwise `hoist: MESSAGE` on standard error. Returns `code`.
pub fn refuse(json: bool, code: u8, error: &str, message: &str) -> u8 {
    if json {
        emit(Event::Refused {
            error: error.to_string(),
            message: message.to_string(),
        });
    } else {
        errln!("hoist: {message}");
    }
    code
}

/// Why a line was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Not JSON or not an event: a stray message, passed over.
    NotAnEvent,
    /// A newer hoist's schema: what it says cannot be trusted to mean the
    /// same here.
    Newer(u32),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::NotAnEvent => write!(f, "not an event line"),
            Unread::Newer(n) => write!(
                f,
                "the other side speaks event schema {n}, this hoist reads {SCHEMA}: \
                 run the same hoist on both"
            ),
        }
    }
}

/// Reads one line. A line with no schema number is read as this schema (a
/// hand-written line, a test).
pub fn read<E: DeserializeOwned>(text: &str) -> Result<Line<E>, Unread> {
    let v: Value = serde_json::from_str(text.trim()).map_err(|_| Unread::NotAnEvent)?;
    let schema = v.get("schema").and_then(Value::as_u64).unwrap_or(0);
    if schema > u64::from(SCHEMA) {
        return Err(Unread::Newer(u32::try_from(schema).unwrap_or(u32::MAX)));
    }
    serde_json::from_value(v).map_err(|_| Unread::NotAnEvent)
}

#[cfg(test)]
mod tests;
