//! The run: executes a plan step by step, journaling every change, and
//! rolls it back or resumes it.
//!
//! Durability: a step is journaled `running` before its action starts and
//! `done` after it ends; its compensation was journaled with the plan before
//! the run started. So after a crash anywhere, the journal says which steps
//! are done, and the one found `running` is asked its probe before it is
//! run again.

pub mod journal;
pub mod leftover;
pub mod lock;
pub mod report;
mod rollback;
pub mod state;
pub mod testhook;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::actions::ctx::Ctx;
use crate::output::ui::Reporter;
use crate::plan::PlannedStep;
use crate::recipe::{Phase, ServiceSpec};
use crate::run::journal::{Journal, JournalError, RunRecord, StepChange};
use crate::run::state::{RunState, StepState};

/// The user running hoist, and the one who called sudo when it did.
fn who() -> String {
    let me = crate::statedir::user(nix::unistd::getuid().as_raw());
    match std::env::var("SUDO_USER") {
        Ok(u) if !u.is_empty() => format!("{me}, through sudo by {u}"),
        _ => me,
    }
}

/// How much of a step's output the journal keeps (the log has all of it).
const TAIL: u64 = 4096;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Options {
    pub yes: bool,
    pub download_only: bool,
    pub no_rollback: bool,
    pub json: bool,
    /// Run as a product's own command (`xivo-upgrade`): its words on screen.
    #[serde(default)]
    pub branded: bool,
    /// Person gates (step ids or keys) the admin confirmed in advance
    /// (`--confirm ID`); `resume --confirm` adds to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm: Vec<String>,
}

/// What the run needs besides its plan; journaled with it, so `resume` and
/// `rollback` do not depend on the recipe file still being as it was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    pub options: Options,
    pub recipe_dir: PathBuf,
    pub services: Vec<ServiceSpec>,
    /// How to read the product's version, to check after the last step
    /// that the run did what it said; `None` when the facts were not read
    /// off this host (`--facts FILE`).
    #[serde(default)]
    pub version: Option<crate::recipe::Probe>,
}

/// How a run ended this time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Committed,
    /// `-d`: everything downloaded and verified.
    Prepared,
    /// Stopped by SIGTERM/SIGINT between steps; `resume` goes on.
    Paused,
    /// Stopped at a person's gate with no one to answer: `hoist resume
    /// --confirm GATE` goes on.
    AwaitsPerson {
        step: String,
        message: String,
    },
    /// Failed, not rolled back (`--no-rollback`).
    Failed {
        step: String,
        error: String,
    },
    /// Failed and put back as it was.
    RolledBack {
        failed: Option<(String, String)>,
    },
    /// Rolled back, except the steps in `left` (each with why): the host
    /// is not as it was.
    PartlyRolledBack {
        failed: Option<(String, String)>,
        left: Vec<String>,
    },
    /// An undo failed.
    RollbackFailed {
        error: String,
    },
    /// A later hop failed and was undone back to the last stop the run
    /// reached; the hops before it are kept (`kept_hops`). The run stays
    /// failed there: `hoist resume` goes on, `hoist rollback --all` goes
    /// back to the start. `left` and `errors`: what going back to the stop
    /// did not put back, and undos that failed.
    FailedAtStop {
        failed: Option<(String, String)>,
        stop: String,
        left: Vec<String>,
        errors: Vec<String>,
    },
    /// Failed after the run's point of no return: nothing before the
    /// failed step is undone; the failed step's own changes are, when it
    /// has an undo (`undo`: `Some(Err)` when that failed too). The run
    /// stays failed for a fix forward and `hoist resume`.
    FailedPastPoint {
        step: String,
        error: String,
        point: String,
        why: String,
        undo: Option<Result<(), String>>,
    },
}

impl Ending {
    /// 0 done, 1 failed, 3 stopped and resumable (`sys::exit`).
    pub fn exit_code(&self) -> u8 {
        use crate::sys::exit::{EXIT_OK, EXIT_PAUSED, EXIT_REFUSED};
        match self {
            Ending::Committed | Ending::Prepared | Ending::RolledBack { failed: None } => EXIT_OK,
            Ending::Paused | Ending::AwaitsPerson { .. } => EXIT_PAUSED,
            _ => EXIT_REFUSED,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write the run log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// A run being driven.
pub struct Engine {
    pub journal: Journal,
    pub run: i64,
    pub record: RunRecord,
    pub stored: Stored,
    pub ui: Reporter,
    log: File,
    /// Tells this state directory's processes from others' (`process::scope`).
    state_id: String,
    interactive: bool,
    /// Hashes of hoist and of the recipe when the run (re)started, to tell a
    /// self-update that changed either.
    started_with: (String, String),
    /// The last step's `done`, not yet committed (see `commit`).
    deferred: Vec<StepChange>,
    /// Steps whose undo the admin skips (`hoist rollback --skip`), and why.
    pub skip_undo: Vec<String>,
    pub skip_reason: String,
    /// The last step's person gate found no one to answer.
    awaiting_person: bool,
}

/// How one execution of a step ended.
enum StepEnd {
    Done,
    Failed(String),
    /// The admin asked the run to stop (`process::stop`) and the step did
    /// not finish: it stays `running`, the run pauses, and `resume` asks
    /// its probe or runs it again, as after a crash.
    Interrupted(String),
    /// A person's gate found no one to answer (see `Ctx::awaits_person`):
    /// the step stays `running`, as interrupted, and runs again on resume.
    AwaitsPerson(String),
}

/// The step marked `point_of_no_return` that the run has started, if any,
/// and why it is one: past it the run only goes forward.
/// The first hop a failure now takes back: the hops before it reached
/// their stop, a supported version, and are kept (a later hop's failure
/// does not undo them: what the product wrote while at the stop stays),
/// unless a stop's path says `atomic_with_next`. `None`: the whole run is
/// undone (a single hop, a failure in the first one or in `prepare`, or
/// every step done).
pub fn kept_hops(record: &RunRecord) -> Option<usize> {
    let plan = &record.plan;
    if plan.hops.len() < 2 {
        return None;
    }
    // Steps run in plan order, so the first one not done tells the hop the
    // run stands in (prepare steps, of every hop, come first and change
    // nothing).
    let open =
        plan.steps
            .iter()
            .filter(|p| p.phase != Phase::Prepare)
            .find(|p| {
                record.steps.iter().any(|s| {
                    s.key == p.key && !matches!(s.state, StepState::Done | StepState::Skipped)
                })
            })?;
    (1..=open.hop)
        .rev()
        .find(|&k| !plan.hops[k - 1].atomic_with_next)
}

pub fn point_passed(record: &RunRecord) -> Option<(String, String)> {
    record
        .steps
        .iter()
        .filter(|s| !matches!(s.state, StepState::Pending | StepState::Skipped))
        .find_map(|s| {
            let p = record.plan.steps.iter().find(|p| p.key == s.key)?;
            Some((p.key.clone(), p.point_of_no_return.clone()?))
        })
}

pub fn file_sha256(path: &Path) -> String {
    use sha2::Digest;
    std::fs::read(path)
        .map(|b| hex::encode(sha2::Sha256::digest(&b)))
        .unwrap_or_default()
}

fn phase_state(p: Phase) -> RunState {
    match p {
        Phase::Prepare => RunState::Preparing,
        Phase::Verify | Phase::Post | Phase::Cleanup => RunState::Verifying,
        _ => RunState::Applying,
    }
}

fn rank(s: RunState) -> u8 {
    match s {
        RunState::Preparing => 1,
        RunState::Applying => 2,
        RunState::Verifying => 3,
        _ => 0,
    }
}

impl Engine {
    pub fn open(journal: Journal, run: i64, json: bool) -> Result<Engine, RunError> {
        crate::sys::process::stop::install();
        let dir = journal.dir().to_path_buf();
        let record = journal.load_run(run)?;
        let stored: Stored = serde_json::from_value(record.options.clone())
            .map_err(|e| RunError::Refused(format!("run {run}: unreadable options: {e}")))?;
        let path = journal.log_path(run);
        // Never through a symbolic link (the directory's trust check
        // refused any it found; this closes the window after it).
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| RunError::Log {
                path: path.display().to_string(),
                source,
            })?;
        let total = record
            .steps
            .iter()
            .filter(|s| s.state != StepState::Skipped)
            .count();
        // Hashing hoist costs a read of the binary: only for self-updates.
        let self_updates = record.plan.steps.iter().any(|s| s.self_update);
        let (exe, recipe) = if self_updates {
            (
                std::env::current_exe()
                    .map(|p| file_sha256(&p))
                    .unwrap_or_default(),
                file_sha256(Path::new(&record.recipe_path)),
            )
        } else {
            Default::default()
        };
        // The run's events in the systemd journal too, each step's with
        // its phase.
        let phases = record
            .plan
            .steps
            .iter()
            .map(|s| (s.key.clone(), s.phase.name().to_string()))
            .collect();
        let journald = crate::output::journald::Journald::open(run, phases);
        Ok(Engine {
            journal,
            run,
            record,
            stored,
            ui: Reporter::new(json, total).with_journald(journald),
            log,
            state_id: crate::sys::process::scope::state_id(&dir),
            interactive: crate::output::ui::interactive(),
            started_with: (exe, recipe),
            deferred: Vec::new(),
            skip_undo: Vec::new(),
            skip_reason: String::new(),
            awaiting_person: false,
        })
    }

    fn reload(&mut self) -> Result<(), RunError> {
        self.record = self.journal.load_run(self.run)?;
        Ok(())
    }

    fn step(&self, key: &str) -> Option<&PlannedStep> {
        self.record.plan.steps.iter().find(|s| s.key == key)
    }

    /// Changes the run's state, committing with it any step `done` still
    /// deferred.
    fn set_state(&mut self, to: RunState, error: Option<&str>) -> Result<(), RunError> {
        self.commit(Vec::new(), Some(to), error)
    }

    /// One durable commit: the deferred `done` of the last step, `steps`,
    /// and a run state change.
    fn commit(
        &mut self,
        steps: Vec<StepChange>,
        to: Option<RunState>,
        error: Option<&str>,
    ) -> Result<(), RunError> {
        let mut changes = std::mem::take(&mut self.deferred);
        changes.extend(steps);
        self.journal
            .commit(self.run, &changes, to.map(|t| (t, error)))?;
        let Some(to) = to else { return Ok(()) };
        if to == self.record.state {
            return Ok(());
        }
        self.record.state = to;
        self.ui.event(crate::output::wire::Event::RunState {
            run: self.run,
            state: to.as_str().to_string(),
        });
        Ok(())
    }

    /// The state the run moves to for a step of phase group `want`, if it
    /// must change (it only moves forward).
    fn next_state(&self, want: RunState) -> Option<RunState> {
        let cur = self.record.state;
        (cur != want && !(rank(cur) > rank(want) && rank(want) > 0)).then_some(want)
    }

    /// Moves the run's state forward to the phase group of the next step.
    fn enter(&mut self, want: RunState) -> Result<(), RunError> {
        match self.next_state(want) {
            Some(to) => self.set_state(to, None),
            None => Ok(()),
        }
    }

    /// Runs the steps not yet done, in order.
    pub fn drive(&mut self) -> Result<Ending, RunError> {
        let plan = self.record.plan.clone();
        let keys: Vec<(String, StepState)> = self
            .record
            .steps
            .iter()
            .filter(|s| s.state != StepState::Skipped)
            .map(|s| (s.key.clone(), s.state))
            .collect();
        let total = keys.len();
        // Steps undone back to a kept stop run again, forward.
        let kept = kept_hops(&self.record);
        let hop_of = |key: &str| {
            plan.steps
                .iter()
                .find(|s| s.key == key)
                .map_or(0, |s| s.hop)
        };
        if self.record.state == RunState::Planned {
            self.set_state(RunState::Preparing, None)?;
        }
        for (n, (key, state)) in keys.iter().enumerate() {
            let n = n + 1;
            match state {
                StepState::Done => continue,
                StepState::Pending | StepState::Running | StepState::Failed => {}
                // Failed past the point of no return and undone alone (see
                // `stop_past_point`): run again, forward.
                StepState::Undone | StepState::UndoFailed
                    if point_passed(&self.record).is_some()
                        || kept.is_some_and(|k| hop_of(key) >= k) => {}
                other => {
                    return Err(RunError::Refused(format!(
                        "step {key} is {other}: this run was being rolled back; finish with `hoist rollback`"
                    )));
                }
            }
            let Some(step) = plan.steps.iter().find(|s| &s.key == key).cloned() else {
                return Err(RunError::Refused(format!(
                    "step {key} is in the journal but not in its plan"
                )));
            };
            if crate::sys::process::stop::requested() {
                self.set_state(RunState::Paused, Some("stopped by a signal"))?;
                return Ok(Ending::Paused);
            }
            if self.stored.options.download_only && step.phase != Phase::Prepare {
                self.enter(RunState::Preparing)?;
                self.set_state(RunState::Prepared, None)?;
                return Ok(Ending::Prepared);
            }
            let run_to = self.next_state(phase_state(step.phase));
            if *state == StepState::Running && self.already_applied(&step) {
                self.commit(vec![StepChange::to(key, StepState::Done)], run_to, None)?;
                self.ui
                    .step_finished(n, total, key, "done (found applied)", 0.0, None);
                continue;
            }
            let error = match self.execute(&step, n, total, run_to)? {
                StepEnd::Done => None,
                StepEnd::Failed(e) => Some(e),
                StepEnd::AwaitsPerson(message) => {
                    self.journal
                        .event(self.run, "awaits-person", &format!("{key}: {message}"))?;
                    self.set_state(RunState::Paused, Some(&format!("{key} {message}")))?;
                    return Ok(Ending::AwaitsPerson {
                        step: key.clone(),
                        message,
                    });
                }
                StepEnd::Interrupted(e) => {
                    self.journal
                        .event(self.run, "interrupted", &format!("{key}: {e}"))?;
                    self.set_state(
                        RunState::Paused,
                        Some(&format!("stopped by a signal in {key}")),
                    )?;
                    return Ok(Ending::Paused);
                }
            };
            if let Some(error) = error {
                self.set_state(RunState::Failed, Some(&format!("{key}: {error}")))?;
                if self.stored.options.no_rollback {
                    return Ok(Ending::Failed {
                        step: key.clone(),
                        error,
                    });
                }
                self.reload()?;
                if let Some((point, why)) = point_passed(&self.record) {
                    return self.stop_past_point(&step, error, point, why);
                }
                if let Some(hop) = kept_hops(&self.record) {
                    return self.roll_back_to_stop(hop, Some((key.clone(), error)));
                }
                return self.rollback(Some((key.clone(), error)));
            }
            if step.self_update {
                self.reexec_if_updated(key)?;
            }
        }
        if self.stored.options.download_only {
            self.enter(RunState::Preparing)?;
            self.set_state(RunState::Prepared, None)?;
            return Ok(Ending::Prepared);
        }
        if let Err(error) = self.check_version() {
            let key = "(version check)".to_string();
            self.note(&error);
            self.set_state(RunState::Failed, Some(&format!("{key}: {error}")))?;
            self.reload()?;
            if self.stored.options.no_rollback || point_passed(&self.record).is_some() {
                return Ok(Ending::Failed { step: key, error });
            }
            return self.rollback(Some((key, error)));
        }
        self.enter(RunState::Preparing)?;
        self.set_state(RunState::Committed, None)?;
        Ok(Ending::Committed)
    }

    /// After the last step: the product says it is at the plan's target
    /// (the version itself, a release of a target series, or the target
    /// with a packaging revision), or the run is not committed.
    fn check_version(&self) -> Result<(), String> {
        let Some(probe) = &self.stored.version else {
            return Ok(());
        };
        let target = &self.record.plan.target;
        let now = crate::host::probe::version_now(probe);
        let reached = now.as_ref().is_some_and(|v| {
            v == target || v.in_series(target) || {
                let t = v.to_string();
                let t = t.split_once(':').map_or(t.as_str(), |(_, u)| u);
                t.rsplit_once('-').map_or(t, |(u, _)| u) == target.to_string()
            }
        });
        if reached {
            return Ok(());
        }
        Err(match now {
            Some(v) => format!(
                "every step is done, but {} reports version {v}, not the plan's target {target}",
                self.record.product
            ),
            None => format!(
                "every step is done, but the version of {} cannot be read any more (the plan's target is {target})",
                self.record.product
            ),
        })
    }

    /// A step found `running` after a crash: its probe says whether its
    /// effect is already there. Without a probe it runs again (steps must
    /// be idempotent or say how to check).
    fn already_applied(&mut self, step: &PlannedStep) -> bool {
        let applied = match &step.probe {
            Some(probe) => crate::host::checks::test(probe).is_ok(),
            None => match self.action_applied(step) {
                Some(a) => a,
                None => {
                    self.note(&format!(
                        "{} was interrupted and has no probe: running it again",
                        step.key
                    ));
                    return false;
                }
            },
        };
        self.note(&format!(
            "{} was interrupted; its probe says it is {}applied",
            step.key,
            if applied { "" } else { "not " }
        ));
        let _ = self.journal.event(
            self.run,
            "probe",
            &format!("{}: applied={applied}", step.key),
        );
        applied
    }

    /// Runs one step: journaled running, then done or failed. The outer
    /// `Err` is a journal failure; the inner one the step's.
    fn execute(
        &mut self,
        step: &PlannedStep,
        n: usize,
        total: usize,
        run_to: Option<RunState>,
    ) -> Result<StepEnd, RunError> {
        let key = step.key.as_str();
        // Durability point: the step is on disk as running (with the last
        // step's done) before its action starts.
        self.commit(vec![StepChange::to(key, StepState::Running)], run_to, None)?;
        let scope = crate::sys::process::scope::step_scope(&self.state_id, self.run, key);
        self.journal.event(
            self.run,
            "step-processes",
            &format!("{key}: {}", crate::sys::process::scope::identity(&scope)),
        )?;
        self.ui.step_started(n, total, key, &step.summary);
        self.note(&format!(
            "step {key} ({}): {}",
            step.phase.name(),
            step.summary
        ));
        let offset = self.log.seek(SeekFrom::End(0)).unwrap_or(0);
        let started = Instant::now();
        testhook::crash_at(key, "before");
        testhook::signal_at(key);
        let result = if testhook::fail_at(key) {
            Err("failed on purpose (HOIST_TEST_FAIL_AT)".to_string())
        } else {
            let mut result = Err(String::new());
            for attempt in 0..=step.retries {
                if attempt > 0 && crate::sys::process::stop::requested() {
                    break;
                }
                if attempt > 0 {
                    self.note(&format!(
                        "{key}: attempt {} of {}",
                        attempt + 1,
                        step.retries + 1
                    ));
                }
                result = self.apply(&step.action, step);
                if result.is_ok() || self.awaiting_person {
                    break;
                }
            }
            result
        };
        testhook::crash_at(key, "after");
        let result = result.and_then(|()| self.journal.still_there());
        let tail = self.tail_since(offset);
        let secs = started.elapsed().as_secs_f64();
        if let Err(e) = &result
            && std::mem::take(&mut self.awaiting_person)
        {
            self.note(&format!("{key} {e}"));
            self.ui
                .step_finished(n, total, key, "waits for a person", secs, Some(e));
            return Ok(StepEnd::AwaitsPerson(e.clone()));
        }
        if let Err(e) = &result
            && crate::sys::process::stop::requested()
        {
            self.note(&format!("{key} interrupted: {e}"));
            self.ui
                .step_finished(n, total, key, "interrupted", secs, Some(e));
            return Ok(StepEnd::Interrupted(e.clone()));
        }
        match &result {
            Ok(()) => {
                // Deferred: committed with whatever comes next (the next
                // step's start, or the run's end), before anything else acts.
                self.deferred.push(StepChange {
                    exit_status: Some(0),
                    output_tail: Some(tail),
                    once: step
                        .once
                        .then(|| (self.record.product.clone(), step.id.clone())),
                    ..StepChange::to(key, StepState::Done)
                });
                self.ui.step_finished(n, total, key, "done", secs, None);
            }
            Err(e) => {
                self.note(&format!("{key} failed: {e}"));
                self.commit(
                    vec![StepChange {
                        error: Some(e.clone()),
                        output_tail: Some(tail),
                        ..StepChange::to(key, StepState::Failed)
                    }],
                    None,
                    None,
                )?;
                self.ui
                    .step_finished(n, total, key, "FAILED", secs, Some(e));
            }
        }
        Ok(match result {
            Ok(()) => StepEnd::Done,
            Err(e) => StepEnd::Failed(e),
        })
    }

    /// Carries out `action` in the context of `step`.
    fn apply(&mut self, action: &crate::actions::Action, step: &PlannedStep) -> Result<(), String> {
        let (result, awaits) = self.with_ctx(step, |ctx| (action.apply(ctx), ctx.awaits_person));
        self.awaiting_person = awaits;
        if result.is_ok()
            && action.needs_person()
            && let Some(how) = self.confirmed(step)
        {
            // Who opened a person's gate, and when (the event's time).
            self.journal
                .event(self.run, "gate-confirmed", &format!("{}: {how}", step.key))
                .map_err(|e| e.to_string())?;
        }
        result
    }

    /// How the admin confirmed `step`'s person gate in advance, if they
    /// did: by its id (every hop's) or its key.
    fn confirmed(&self, step: &PlannedStep) -> Option<String> {
        let given = &self.stored.options.confirm;
        given
            .iter()
            .any(|g| *g == step.id || *g == step.key)
            .then(|| format!("confirmed in advance with --confirm by {}", who()))
    }

    /// A recipe's `undo` of `step`, in a directory of its own under the
    /// step's: what it saves never mixes with what the step saved (a `repo`
    /// switch back would otherwise read the step's saved original, from
    /// before the switch, and find nothing to switch).
    fn apply_undo(
        &mut self,
        undo: &crate::actions::Action,
        step: &PlannedStep,
    ) -> Result<(), String> {
        self.with_ctx(step, |ctx| {
            ctx.step_dir = ctx.step_dir.join("undo");
            crate::sys::fsutil::private_dir(&ctx.step_dir)
                .map_err(|e| format!("{}: {e}", ctx.step_dir.display()))?;
            undo.apply(ctx)
        })
    }

    /// The built-in undo of the step's action.
    fn compensate(&mut self, step: &PlannedStep) -> Result<(), String> {
        self.with_ctx(step, |ctx| step.action.compensate(ctx))
    }

    /// The action's own "already applied?" answer.
    fn action_applied(&mut self, step: &PlannedStep) -> Option<bool> {
        self.with_ctx(step, |ctx| step.action.applied(ctx))
    }

    /// Runs `f` with the context of `step`: its environment, time bound,
    /// log, and its own directory for what its undo needs.
    fn with_ctx<T>(&mut self, step: &PlannedStep, f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
        let hop =
            &self.record.plan.hops[step.hop.min(self.record.plan.hops.len().saturating_sub(1))];
        let env = vec![
            ("HOIST_FROM_VERSION".to_string(), hop.from.to_string()),
            ("HOIST_TO_VERSION".to_string(), hop.to.to_string()),
            ("HOIST_RUN_ID".to_string(), self.run.to_string()),
            ("HOIST_PHASE".to_string(), step.phase.name().to_string()),
        ];
        let step_dir = self.step_dir(&step.key);
        let confirmed = self.confirmed(step);
        let ui = &self.ui;
        let bound = step.bound();
        let ask = |q: &str| ui.suspend(|| crate::output::ui::ask_within(q, Some(bound)));
        let key = step.key.as_str();
        let progress = |line: &str| ui.progress(key, line);
        crate::sys::process::scope::enter(crate::sys::process::scope::step_scope(
            &self.state_id,
            self.run,
            &step.key,
        ));
        let mut ctx = Ctx::new(
            &self.record.product,
            &self.stored.recipe_dir,
            &self.stored.services,
            &self.log,
            &mut self.journal,
        )
        .with_run(self.run, env)
        .with_timeout(step.bound())
        .with_step_dir(step_dir, step.point_of_no_return.is_none())
        .with_person(self.interactive, confirmed, &ask)
        .with_progress(&progress);
        let out = f(&mut ctx);
        crate::sys::process::scope::leave();
        out
    }

    /// `<state>/runs/<run>/<step key>/`: what the step's built-in undo needs.
    fn step_dir(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self
            .journal
            .dir()
            .join("runs")
            .join(self.run.to_string())
            .join(safe);
        let _ = crate::sys::fsutil::private_dir(&dir);
        dir
    }

    pub fn note(&self, line: &str) {
        use std::io::Write;
        let mut log = &self.log;
        let _ = writeln!(log, "{}", crate::sys::clock::log_line(line));
    }

    /// The last bytes the step wrote to the log.
    fn tail_since(&mut self, offset: u64) -> String {
        let end = self.log.seek(SeekFrom::End(0)).unwrap_or(offset);
        let from = offset.max(end.saturating_sub(TAIL));
        let mut buf = Vec::new();
        if let Ok(mut f) = File::open(self.journal.log_path(self.run))
            && f.seek(SeekFrom::Start(from)).is_ok()
        {
            let _ = f.take(end - from).read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Seed 001, step 1: when a self-update step changed hoist or the
    /// recipe, run the new one: it resumes this run with a new plan.
    fn reexec_if_updated(&mut self, key: &str) -> Result<(), RunError> {
        self.commit(Vec::new(), None, None)?;
        let exe = std::env::current_exe().unwrap_or_default();
        let now = (
            file_sha256(&exe),
            file_sha256(Path::new(&self.record.recipe_path)),
        );
        if now == self.started_with {
            self.note(&format!("{key}: hoist and the recipe are unchanged"));
            return Ok(());
        }
        let what = match (now.0 != self.started_with.0, now.1 != self.started_with.1) {
            (true, true) => "hoist and the recipe",
            (true, false) => "hoist",
            _ => "the recipe",
        };
        self.journal.event(
            self.run,
            "reexec",
            &format!("{key} updated {what}: re-executing {}", exe.display()),
        )?;
        self.ui.line(&format!(
            "{key} updated {what}: continuing with the new one"
        ));
        self.ui.finish();
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("--state-dir").arg(self.journal.dir());
        if self.stored.options.json {
            cmd.arg("--json");
        }
        cmd.args(["resume", "--replan"]);
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        Err(RunError::Refused(format!(
            "cannot re-execute {}: {err}",
            exe.display()
        )))
    }
}
