//! How the controller reaches a host: the [`Transport`] trait.
//!
//! The executor only ever talks to hosts through it: `ssh::SshTransport`
//! (issue 7: the system `ssh` with ControlMaster, the admin's
//! `~/.ssh/config`, agent and known_hosts; hoist's binary and the recipe
//! copied and checksummed on the host; `hoist upgrade --json` run there
//! with its JSON Lines events streamed back) for real hosts,
//! `simulated::SimulatedTransport` (sleeps instead of connecting) for
//! tests and the bench.

use serde::{Deserialize, Serialize};

use super::plan::HostRef;
use crate::actions::Action;

/// What the controller asks a host to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostJob {
    pub product: String,
    /// `--to`; none: the host's own candidate.
    pub target: Option<String>,
    /// The controller's rollout, so a host's journal can name it.
    pub rollout: i64,
    /// The person gates the admin confirmed (`--confirm GATE` for every
    /// host, `GATE@HOST` for one); each host gets its own as `--confirm`.
    #[serde(default)]
    pub confirm: Vec<String>,
}

/// The gates of `confirm` (`GATE` or `GATE@HOST`) that hold on `host`.
pub fn confirmed_on(confirm: &[String], host: &str) -> Vec<String> {
    confirm
        .iter()
        .filter_map(|c| match c.rsplit_once('@') {
            Some((gate, h)) if h == host => Some(gate.to_string()),
            Some(_) => None,
            None => Some(c.clone()),
        })
        .collect()
}

/// One event of a host's upgrade, as its `--json` events stream them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HostEvent {
    Started,
    Step { id: String, state: String },
    Note { text: String },
}

/// How a host's upgrade ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum HostResult {
    Committed,
    /// It failed and its own journal put it back.
    RolledBack(String),
    /// It failed and stopped for the admin (`--no-rollback`, or the
    /// rollback itself failed).
    Failed(String),
    /// No answer within the bounded wait (a host that died mid-upgrade):
    /// counted failed; its own journal takes over when it is back.
    Lost(String),
    /// Its run paused at a person's gate nobody confirmed (`gate`: the
    /// step id `--confirm` takes; `message`: what the person must do).
    /// Not a failure: resumed with the gate confirmed.
    Waiting {
        gate: String,
        message: String,
    },
}

impl HostResult {
    pub fn ok(&self) -> bool {
        matches!(self, HostResult::Committed)
    }

    /// For the journal and the status: what happened, in words.
    pub fn detail(&self) -> String {
        match self {
            HostResult::Committed => "committed".into(),
            HostResult::RolledBack(e) => format!("{e}; rolled back"),
            HostResult::Failed(e) => format!("{e}; stopped, not rolled back"),
            HostResult::Lost(e) => format!("no answer: {e}"),
            HostResult::Waiting { gate, message } => {
                format!("waits for a person at gate {gate}: {message}")
            }
        }
    }
}

/// A host's upgrade as its own journal says, read after a controller crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteStatus {
    /// This rollout's upgrade never started there.
    NotStarted,
    /// Still running (the host carried on while the controller was down).
    Running,
    Ended(HostResult),
}

/// How a host's rollback of this rollout's run ended, when it did not
/// fail (a refusal or a failed undo is the `Err` of
/// [`Transport::rollback`], with the host's own words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum HostRollback {
    /// Its run is rolled back now (it was committed, failed, paused or
    /// interrupted).
    RolledBack,
    /// Nothing to do there, and why (rolled back already, never ran).
    NothingToDo(String),
    /// Its rollback ended, but steps there were not undone (the host's
    /// `partly-rolled-back`): what its rollback said.
    Partly(String),
}

/// A run-once step for a host: one action of the registry.
#[derive(Clone, Debug)]
pub struct OnceJob<'a> {
    pub id: &'a str,
    pub action: &'a Action,
    /// The rollout's confirmed gates (see [`confirmed_on`]).
    pub confirm: &'a [String],
    /// The host step the run-once step takes (`step = ID`): the host runs
    /// it only when its plan of this rollout took that step.
    pub step: Option<&'a str>,
}

impl OnceJob<'_> {
    /// Whether the admin confirmed this step, when it is a person's gate,
    /// for `host`.
    pub fn confirmed(&self, host: &str) -> bool {
        confirmed_on(self.confirm, host)
            .iter()
            .any(|g| g == self.id)
    }
}

pub trait Transport: Sync {
    /// Runs the host's upgrade and streams its events; returns how it
    /// ended. Bounded: a host that stops answering is `Lost`.
    fn upgrade(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult;

    /// Reads the host's own journal: did this rollout's upgrade start
    /// there, and how did it end?
    fn status(&self, host: &HostRef, job: &HostJob) -> RemoteStatus;

    /// Follows an upgrade already running on the host (found so on resume)
    /// to its end, bounded as `upgrade`.
    fn follow(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult;

    /// Runs one action on the host (a run-once step, a gate's wait, or a
    /// run-once step's undo).
    fn run_once(
        &self,
        host: &HostRef,
        job: &OnceJob<'_>,
        events: &mut dyn FnMut(HostEvent),
    ) -> Result<(), String>;

    /// Resumes the host's run of this rollout where it paused (at a
    /// person's gate), with the job's confirmed gates for that host, and
    /// streams its events as `upgrade`. Bounded as `upgrade`.
    fn resume(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult;

    /// Rolls back the host's run of this rollout, committed or not
    /// (`hoist rollback --rollout TAG` there); idempotent. Bounded as
    /// `upgrade`.
    fn rollback(&self, host: &HostRef, job: &HostJob) -> Result<HostRollback, String>;
}
