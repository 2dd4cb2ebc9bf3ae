//! The journal: where a run stands, durably.
//!
//! SQLite in WAL mode with `synchronous=FULL`: a committed transaction is on
//! disk before the call returns, so after a crash or a power cut the journal
//! says exactly which steps were done. Every state change is one transaction
//! that first checks the change against `state`'s table. The plan, with
//! every step's compensation (`undo`), is written when the run is created:
//! a compensation is journaled before the change it undoes is made.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::plan::Plan;
use crate::run::state::{RunState, StepState, run_allowed, step_allowed};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Inside the journal, before the file is named (see `Journal::named`).
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal {path}: {source}{}", .advice.as_deref().map(|a| format!(": {a}")).unwrap_or_default())]
    File {
        path: String,
        source: rusqlite::Error,
        advice: Option<String>,
    },
    #[error(
        "the journal {path} cannot be written: the disk is full ({free} free in {dir}). Free some space there, then `hoist resume` (or `hoist rollback`); `hoist status` shows where the run stopped"
    )]
    DiskFull {
        path: String,
        dir: String,
        free: String,
    },
    #[error("journal: cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Untrusted(#[from] crate::statedir::Untrusted),
    #[error("{0}")]
    Damaged(String),
    #[error("journal: {what} cannot go from {from} to {to}")]
    Transition {
        what: String,
        from: String,
        to: String,
    },
    #[error("journal: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, JournalError>;

mod access;
mod record;
pub use access::connect_sqlite;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    state TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    recipe_path TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL,
    services_before TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT
);
-- Large and written once (or on --replan): kept out of `runs`, whose row
-- every step updates, so a commit rewrites a few small pages only.
CREATE TABLE IF NOT EXISTS run_data (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    plan_json TEXT NOT NULL,
    facts_json TEXT NOT NULL,
    options_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    step_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    exit_status INTEGER,
    error TEXT,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    output_tail TEXT NOT NULL DEFAULT '',
    undo_json TEXT,
    skip_reason TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS once_done (
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (product, name)
);
";

/// The journal's clock: the one every event line uses too.
pub use crate::sys::clock::now;

/// A step as the journal knows it.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub seq: i64,
    pub key: String,
    pub step_id: String,
    pub phase: String,
    pub state: StepState,
    pub attempts: i64,
    pub exit_status: Option<i64>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub output_tail: String,
    pub has_undo: bool,
    pub skip_reason: Option<String>,
}

/// A run as the journal knows it.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub product: String,
    pub state: RunState,
    pub from: String,
    pub to: String,
    pub plan_hash: String,
    #[serde(skip)]
    pub plan: Plan,
    pub recipe_path: String,
    pub recipe_sha256: String,
    #[serde(skip)]
    pub facts_json: String,
    pub options: serde_json::Value,
    pub services_before: Vec<String>,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
}

/// The journal event that ties a host's run to the controller's rollout
/// (`hoist upgrade --rollout TAG` records it; the fleet finds the run by it).
pub const ROLLOUT_EVENT: &str = "fleet-rollout";

/// The journal event that keeps how a step ended going forward (its state,
/// times and error, as JSON) when its undo starts and replaces them.
pub const RAN_EVENT: &str = "step-ran";

/// An event of a run's history, as `hoist status --json` shows it.
pub use crate::output::wire::JournalEvent as Event;

/// What a step's state change also records.
#[derive(Clone, Debug, Default)]
pub struct StepUpdate<'a> {
    pub exit_status: Option<i64>,
    pub error: Option<&'a str>,
    pub output_tail: Option<&'a str>,
}

pub struct Journal {
    conn: Connection,
    dir: PathBuf,
    /// The state directory's and the journal file's (device, inode) when
    /// opened: a step that removed or replaced them is told (`still_there`).
    ids: [(u64, u64); 2],
}

impl Journal {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full output of a run's steps.
    pub fn log_path(&self, run: i64) -> PathBuf {
        self.dir.join("runs").join(format!("{run}.log"))
    }

    /// Writes the run, its plan, and every step (pending, or skipped with
    /// its reason) in one transaction.
    pub fn create_run(
        &mut self,
        plan: &Plan,
        facts_json: &str,
        options: &serde_json::Value,
        services_before: &[String],
    ) -> Result<i64> {
        let run = self.write(|j| {
            let plan_json =
                serde_json::to_string(plan).map_err(|e| JournalError::Corrupt(e.to_string()))?;
            let t = now();
            let tx = j
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO runs (product, state, from_version, to_version, plan_hash,
                recipe_path, recipe_sha256, services_before, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    plan.product,
                    RunState::Planned.as_str(),
                    plan.current.as_str(),
                    plan.target.as_str(),
                    plan.hash,
                    plan.recipe,
                    plan.recipe_sha256,
                    serde_json::to_string(services_before).unwrap_or_else(|_| "[]".into()),
                    t,
                ],
            )?;
            let run = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO run_data (run_id, plan_json, facts_json, options_json)
             VALUES (?1, ?2, ?3, ?4)",
                params![run, plan_json, facts_json, options.to_string()],
            )?;
            insert_steps(&tx, run, plan, 0)?;
            tx.commit()?;
            Ok(run)
        })?;
        // Made here with mode 0600, whatever the umask: the engine appends
        // to it, and a group-writable log would make the state untrusted.
        let _ = crate::statedir::open_file(&self.dir, &self.log_path(run), true, true);
        Ok(run)
    }

    /// Replaces the plan of a run whose recipe changed (`resume --replan`):
    /// steps already done or failed stay as they are; pending steps are
    /// replaced by the new plan's steps that are not done.
    pub fn replace_plan(&mut self, run: i64, plan: &Plan) -> Result<()> {
        self.write(|j| {
            let plan_json =
                serde_json::to_string(plan).map_err(|e| JournalError::Corrupt(e.to_string()))?;
            let tx = j
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM steps WHERE run_id = ?1 AND state IN ('pending', 'skipped')",
                params![run],
            )?;
            let kept: Vec<String> = {
                let mut st = tx.prepare("SELECT key FROM steps WHERE run_id = ?1")?;
                st.query_map(params![run], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?
            };
            let mut filtered = plan.clone();
            filtered.steps.retain(|s| !kept.contains(&s.key));
            filtered.skipped.retain(|s| !kept.contains(&s.key));
            let base: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM steps WHERE run_id = ?1",
                params![run],
                |r| r.get(0),
            )?;
            insert_steps(&tx, run, &filtered, base + 1)?;
            tx.execute(
                "UPDATE runs SET plan_hash = ?2, recipe_sha256 = ?3, updated_at = ?4 WHERE id = ?1",
                params![run, plan.hash, plan.recipe_sha256, now()],
            )?;
            tx.execute(
                "UPDATE run_data SET plan_json = ?2 WHERE run_id = ?1",
                params![run, plan_json],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn set_run_state(&mut self, run: i64, to: RunState, error: Option<&str>) -> Result<()> {
        self.commit(run, &[], Some((to, error)))
    }

    pub fn set_step_state(
        &mut self,
        run: i64,
        key: &str,
        to: StepState,
        u: StepUpdate<'_>,
    ) -> Result<()> {
        let change = StepChange {
            key: key.to_string(),
            to,
            exit_status: u.exit_status,
            error: u.error.map(String::from),
            output_tail: u.output_tail.map(String::from),
            once: None,
        };
        self.commit(run, &[change], None)
    }

    /// Applies step changes (in order), their `once` marks, and a change of
    /// the run's state in one transaction: one durable commit. The engine
    /// commits a step's `done` with the next step's `running`, so a step
    /// costs one fsync while each is still on disk before the next acts.
    pub fn commit(
        &mut self,
        run: i64,
        steps: &[StepChange],
        run_to: Option<(RunState, Option<&str>)>,
    ) -> Result<()> {
        self.write(|j| {
            let tx = j
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = now();
            for c in steps {
                step_change(&tx, run, c, &t)?;
            }
            if let Some((to, error)) = run_to {
                let from: String =
                    tx.query_row("SELECT state FROM runs WHERE id = ?1", params![run], |r| {
                        r.get(0)
                    })?;
                let from: RunState = from.parse().map_err(JournalError::Corrupt)?;
                if from != to {
                    if !run_allowed(from, to) {
                        return Err(JournalError::Transition {
                            what: format!("run {run}"),
                            from: from.to_string(),
                            to: to.to_string(),
                        });
                    }
                    let finished = to.is_final().then(|| t.clone());
                    tx.execute(
                        "UPDATE runs SET state = ?2, finished_at = COALESCE(?3, finished_at),
                        error = CASE WHEN ?4 IS NULL THEN error ELSE ?4 END WHERE id = ?1",
                        params![run, to.as_str(), finished, error],
                    )?;
                }
            }
            tx.prepare_cached("UPDATE runs SET updated_at = ?2 WHERE id = ?1")?
                .execute(params![run, t])?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn event(&mut self, run: i64, kind: &str, detail: &str) -> Result<()> {
        self.write(|j| {
            j.conn.execute(
                "INSERT INTO events (run_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![run, now(), kind, detail],
            )?;
            Ok(())
        })
    }

    pub fn events(&self, run: i64) -> Result<Vec<Event>> {
        self.read(|j| {
            let mut st = j
                .conn
                .prepare("SELECT at, kind, detail FROM events WHERE run_id = ?1 ORDER BY id")?;
            let rows = st.query_map(params![run], |r| {
                Ok(Event {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Names done once and for all on this host (`once` steps, `each_once`
    /// hook scripts as `hook:<dir>/<name>`).
    pub fn once_done(&self, product: &str) -> Result<Vec<String>> {
        self.read(|j| {
            let mut st = j
                .conn
                .prepare("SELECT name FROM once_done WHERE product = ?1 ORDER BY name")?;
            let rows = st.query_map(params![product], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub fn mark_once(&mut self, product: &str, name: &str, run: i64) -> Result<()> {
        self.write(|j| {
            j.conn.execute(
            "INSERT OR IGNORE INTO once_done (product, name, run_id, at) VALUES (?1, ?2, ?3, ?4)",
            params![product, name, run, now()],
        )?;
            Ok(())
        })
    }

    /// Forgets a `once` mark (its step was undone by a rollback).
    pub fn unmark_once(&mut self, product: &str, name: &str) -> Result<()> {
        self.write(|j| {
            j.conn.execute(
                "DELETE FROM once_done WHERE product = ?1 AND name = ?2",
                params![product, name],
            )?;
            Ok(())
        })
    }

    /// The run tagged with fleet rollout `tag` (its `fleet-rollout` event),
    /// if one was made on this host.
    pub fn run_of_rollout(&self, tag: &str) -> Result<Option<i64>> {
        self.read(|j| {
            Ok(j.conn
                .query_row(
                    "SELECT run_id FROM events WHERE kind = ?1 AND detail = ?2
                 ORDER BY id DESC LIMIT 1",
                    params![ROLLOUT_EVENT, tag],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// A committed run reopened for `hoist fleet rollback`
    /// ([`crate::run::state::FLEET_ROLLBACK`], the one way out of `committed`):
    /// `rolling-back`, with the event saying who asked and what it costs,
    /// in one transaction.
    pub fn reopen_for_fleet_rollback(&mut self, run: i64, why: &str) -> Result<()> {
        self.write(|j| {
            let tx = j
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let from: String =
                tx.query_row("SELECT state FROM runs WHERE id = ?1", params![run], |r| {
                    r.get(0)
                })?;
            let from: RunState = from.parse().map_err(JournalError::Corrupt)?;
            let (allowed_from, to) = crate::run::state::FLEET_ROLLBACK;
            if from != allowed_from {
                return Err(JournalError::Transition {
                    what: format!("run {run}"),
                    from: from.to_string(),
                    to: to.to_string(),
                });
            }
            let t = now();
            tx.execute(
                "UPDATE runs SET state = ?2, finished_at = NULL, updated_at = ?3 WHERE id = ?1",
                params![run, to.as_str(), t],
            )?;
            tx.execute(
            "INSERT INTO events (run_id, at, kind, detail) VALUES (?1, ?2, 'fleet-rollback', ?3)",
            params![run, t, why],
        )?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn latest_run(&self) -> Result<Option<RunRecord>> {
        self.read(|j| {
            let id: Option<i64> = j
                .conn
                .query_row("SELECT MAX(id) FROM runs", [], |r| r.get(0))
                .optional()?
                .flatten();
            id.map(|id| j.load_run(id)).transpose()
        })
    }

    pub fn run_ids(&self) -> Result<Vec<i64>> {
        self.read(|j| {
            let mut st = j.conn.prepare("SELECT id FROM runs ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub fn load_run(&self, id: i64) -> Result<RunRecord> {
        self.read(|j| {
        let mut run = j.conn.query_row(
            "SELECT r.id, r.product, r.state, r.from_version, r.to_version, r.plan_hash, d.plan_json,
                r.recipe_path, r.recipe_sha256, d.facts_json, d.options_json, r.services_before,
                r.started_at, r.updated_at, r.finished_at, r.error
             FROM runs r JOIN run_data d ON d.run_id = r.id WHERE r.id = ?1",
            params![id],
            |r| {
                let state: String = r.get(2)?;
                let plan_json: String = r.get(6)?;
                let options: String = r.get(10)?;
                let services: String = r.get(11)?;
                Ok((
                    state,
                    plan_json,
                    options,
                    services,
                    RunRecord {
                        id: r.get(0)?,
                        product: r.get(1)?,
                        state: RunState::Planned,
                        from: r.get(3)?,
                        to: r.get(4)?,
                        plan_hash: r.get(5)?,
                        plan: Plan::empty(),
                        recipe_path: r.get(7)?,
                        recipe_sha256: r.get(8)?,
                        facts_json: r.get(9)?,
                        options: serde_json::Value::Null,
                        services_before: Vec::new(),
                        started_at: r.get(12)?,
                        updated_at: r.get(13)?,
                        finished_at: r.get(14)?,
                        error: r.get(15)?,
                        steps: Vec::new(),
                    },
                ))
            },
        )?;
        let corrupt = |e: serde_json::Error| JournalError::Corrupt(format!("run {id}: {e}"));
        run.4.state = run.0.parse().map_err(JournalError::Corrupt)?;
        run.4.plan = serde_json::from_str(&run.1).map_err(corrupt)?;
        run.4.options = serde_json::from_str(&run.2).map_err(corrupt)?;
        run.4.services_before = serde_json::from_str(&run.3).map_err(corrupt)?;
        let mut st = j.conn.prepare(
            "SELECT seq, key, step_id, phase, state, attempts, exit_status, error, started_at,
                finished_at, duration_ms, output_tail, undo_json IS NOT NULL, skip_reason
             FROM steps WHERE run_id = ?1 ORDER BY seq",
        )?;
        let steps = st.query_map(params![id], |r| {
            let state: String = r.get(4)?;
            Ok((
                state,
                StepRecord {
                    seq: r.get(0)?,
                    key: r.get(1)?,
                    step_id: r.get(2)?,
                    phase: r.get(3)?,
                    state: StepState::Pending,
                    attempts: r.get(5)?,
                    exit_status: r.get(6)?,
                    error: r.get(7)?,
                    started_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    duration_ms: r.get(10)?,
                    output_tail: r.get(11)?,
                    has_undo: r.get(12)?,
                    skip_reason: r.get(13)?,
                },
            ))
        })?;
        for s in steps {
            let (state, mut rec) = s?;
            rec.state = state.parse().map_err(JournalError::Corrupt)?;
            run.4.steps.push(rec);
        }
        Ok(run.4)
            })
    }
}

/// A change of one step's state, with what it records.
#[derive(Clone, Debug)]
pub struct StepChange {
    pub key: String,
    pub to: StepState,
    pub exit_status: Option<i64>,
    pub error: Option<String>,
    pub output_tail: Option<String>,
    /// Marks this step id done once and for all on this host, with it.
    pub once: Option<(String, String)>,
}

impl StepChange {
    pub fn to(key: &str, to: StepState) -> StepChange {
        StepChange {
            key: key.to_string(),
            to,
            exit_status: None,
            error: None,
            output_tail: None,
            once: None,
        }
    }
}

fn step_change(tx: &rusqlite::Transaction<'_>, run: i64, c: &StepChange, t: &str) -> Result<()> {
    let key = c.key.as_str();
    let from: String = tx
        .prepare_cached("SELECT state FROM steps WHERE run_id = ?1 AND key = ?2")?
        .query_row(params![run, key], |r| r.get(0))?;
    let from: StepState = from.parse().map_err(JournalError::Corrupt)?;
    if !step_allowed(from, c.to) {
        return Err(JournalError::Transition {
            what: format!("step {key}"),
            from: from.to_string(),
            to: c.to.to_string(),
        });
    }
    if c.to == StepState::Undoing {
        // The undo's times and error replace the step's own: what the step
        // did going forward is kept first, in the same transaction, for the
        // run's report (`run::report`).
        tx.prepare_cached(
            "INSERT INTO events (run_id, at, kind, detail)
             SELECT run_id, ?3, ?4, json_object('key', key, 'state', state,
                'started_at', started_at, 'finished_at', finished_at,
                'duration_ms', duration_ms, 'error', error)
             FROM steps WHERE run_id = ?1 AND key = ?2",
        )?
        .execute(params![run, key, t, RAN_EVENT])?;
    }
    match c.to {
        StepState::Running | StepState::Undoing => {
            let bump = i64::from(c.to == StepState::Running);
            tx.prepare_cached(
                "UPDATE steps SET state = ?3, attempts = attempts + ?4, started_at = ?5,
                    finished_at = NULL, error = NULL WHERE run_id = ?1 AND key = ?2",
            )?
            .execute(params![run, key, c.to.as_str(), bump, t])?;
        }
        _ => {
            tx.prepare_cached(
                "UPDATE steps SET state = ?3, finished_at = ?4,
                    duration_ms = CAST((julianday(?4) - julianday(started_at)) * 86400000 AS INTEGER),
                    exit_status = COALESCE(?5, exit_status), error = COALESCE(?6, error),
                    output_tail = COALESCE(?7, output_tail)
                 WHERE run_id = ?1 AND key = ?2",
            )?
            .execute(params![run, key, c.to.as_str(), t, c.exit_status, c.error, c.output_tail])?;
        }
    }
    if let Some((product, name)) = &c.once {
        tx.execute(
            "INSERT OR IGNORE INTO once_done (product, name, run_id, at) VALUES (?1, ?2, ?3, ?4)",
            params![product, name, run, t],
        )?;
    }
    Ok(())
}

fn insert_steps(tx: &rusqlite::Transaction<'_>, run: i64, plan: &Plan, base: i64) -> Result<()> {
    let mut st = tx.prepare(
        "INSERT INTO steps (run_id, seq, key, step_id, phase, state, undo_json, skip_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (i, s) in plan.steps.iter().enumerate() {
        let undo = s
            .undo
            .as_ref()
            .map(|u| serde_json::to_string(u).unwrap_or_default());
        st.execute(params![
            run,
            base + i as i64,
            s.key,
            s.id,
            s.phase.name(),
            StepState::Pending.as_str(),
            undo,
            Option::<String>::None
        ])?;
    }
    let offset = base + plan.steps.len() as i64;
    for (i, s) in plan.skipped.iter().enumerate() {
        st.execute(params![
            run,
            offset + i as i64,
            s.key,
            s.id,
            s.phase.name(),
            StepState::Skipped.as_str(),
            Option::<String>::None,
            s.reason.to_string()
        ])?;
    }
    Ok(())
}

/// The state directory holds the journal and logs: root's alone.
fn create_private_dir(dir: &Path) -> Result<()> {
    crate::sys::fsutil::private_dir(&dir.join("runs")).map_err(|source| JournalError::Dir {
        path: dir.display().to_string(),
        source,
    })
}
