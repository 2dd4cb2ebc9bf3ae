//! `hoist fleet rollback`: every host the last rollout touched put back as
//! it was before it, and its run-once steps undone, newest first.
//!
//! After a stop (a host failed past the threshold), hosts upgraded before
//! the failure stay committed: for a product whose hosts must agree
//! (CloudStack's management servers share one database) the fleet is then
//! half upgraded. The rollback walks the rollout's plan items backwards,
//! the reverse of what happened:
//!
//! - a batch: its hosts in reverse order, at most the plan's `parallel` at
//!   once through the fleet's host pool (one at a time with `parallel =
//!   1`, a deterministic order); after the first failure no other host
//!   starts, those in flight finish and are journaled.
//!   A host whose run committed, failed, paused or was interrupted is asked
//!   to roll back its run of this rollout (`Transport::rollback`: `hoist
//!   rollback --rollout TAG` there, idempotent); a failed host whose own
//!   journal says it rolled back by itself, or never started, is skipped;
//!   a host not started is untouched and not listed at all;
//! - a run-once step that ran (done, failed or interrupted: its partial
//!   effect is covered, as a step's undo covers a failed step): its `undo`
//!   on its host, or on each host of a run-on-each step it ran on, in
//!   reverse host order; with `undo = "none"` it is skipped with the
//!   recipe's reason; with neither it is journaled `left` and the rollout
//!   ends `partly-rolled-back`, as a host's rollback ends of a step without
//!   one: never "rolled back" while something the rollout changed stays;
//! - gates, pauses and skipped items: nothing to undo.
//!
//! Each undo is journaled in `fleet_undos` (`running` before it starts, its
//! end before the next), so a rollback killed and run again passes what is
//! done; the first failure stops it `rollback-failed`, the host and the
//! reason journaled for `hoist fleet status`. Limits: a database restored
//! from its dump loses what was written after the dump (the host's journal
//! says so); a host's run past its point of no return, or under a later run,
//! is refused by the host.

use serde_json::{Map, Value, json};

use super::journal::{FleetJournal, RolloutView};
use super::plan::Item;
use super::pool::with_pool;
use super::run::host_ref;
use super::state::{FleetState, HostState, ItemState, UndoState};
use super::transport::{HostJob, HostResult, HostRollback, OnceJob, RemoteStatus, Transport};
use crate::actions::Action;
use crate::run::journal::JournalError;

/// Appended to a run-once step's id when its undo runs on a host (its log
/// and `HOIST_FLEET_STEP` there).
pub const UNDO_SUFFIX: &str = "-undo";

/// One thing the rollback does, in the order it does them.
#[derive(Clone, Debug)]
pub enum Undo {
    /// The host's run of this rollout rolled back (batch item `seq`).
    Host { seq: usize, host: String },
    /// A run-once step's `undo` on one host it ran on.
    Once {
        seq: usize,
        id: String,
        host: String,
        action: Box<Action>,
    },
    /// A run-once step that ran and has no `undo`: said, not done. With
    /// the recipe's reason (`undo = "none"`) it is not needed; without,
    /// what it changed is left.
    NotUndone {
        seq: usize,
        id: String,
        host: String,
        reason: Option<String>,
    },
}

impl Undo {
    pub fn seq(&self) -> usize {
        match self {
            Undo::Host { seq, .. } | Undo::Once { seq, .. } | Undo::NotUndone { seq, .. } => *seq,
        }
    }

    pub fn host(&self) -> &str {
        match self {
            Undo::Host { host, .. } | Undo::Once { host, .. } | Undo::NotUndone { host, .. } => {
                host
            }
        }
    }

    /// What it is, for the admin: the host, or the step on its host.
    pub fn label(&self) -> String {
        match self {
            Undo::Host { host, .. } => host.clone(),
            Undo::Once { id, host, .. } | Undo::NotUndone { id, host, .. } => {
                format!("{id} on {host}")
            }
        }
    }

    /// What it will do, in words.
    pub fn describe(&self) -> String {
        match self {
            Undo::Host { host, .. } => format!("roll back {host} (its run of this rollout)"),
            Undo::Once {
                id, host, action, ..
            } => format!("undo {id} on {host}: {}", action.summary()),
            Undo::NotUndone {
                id,
                host,
                reason: Some(why),
                ..
            } => format!("not undone: {id} on {host} (the recipe says it needs none: {why})"),
            Undo::NotUndone { id, host, .. } => {
                format!("LEFT as it is: {id} on {host} (no undo in the recipe)")
            }
        }
    }
}

/// Everything the rollout did that the rollback goes back over, newest
/// first (see the module's comment for what is listed).
pub fn undos(view: &RolloutView) -> Vec<Undo> {
    let ran = |s: ItemState| matches!(s, ItemState::Done | ItemState::Failed | ItemState::Running);
    let once =
        |seq: usize, id: &str, host: &str, undo: &Option<Box<Action>>, no: &Option<String>| {
            match undo {
                Some(action) => Undo::Once {
                    seq,
                    id: id.to_string(),
                    host: host.to_string(),
                    action: action.clone(),
                },
                None => Undo::NotUndone {
                    seq,
                    id: id.to_string(),
                    host: host.to_string(),
                    reason: no.clone(),
                },
            }
        };
    let mut out = Vec::new();
    for (seq, item) in view.plan.items.iter().enumerate().rev() {
        let state = view.items.get(seq).map_or(ItemState::Pending, |x| x.0);
        match item {
            Item::Batch { hosts, .. } => {
                for h in hosts.iter().rev() {
                    if view.host_state(h).is_some_and(|s| s != HostState::Pending) {
                        out.push(Undo::Host {
                            seq,
                            host: h.clone(),
                        });
                    }
                }
            }
            Item::RunOnce {
                id,
                host,
                gate: false,
                undo,
                no_undo,
                ..
            } if ran(state) => out.push(once(seq, id, host, undo, no_undo)),
            Item::RunOnEach {
                id,
                hosts,
                gate: false,
                undo,
                no_undo,
                ..
            } => {
                for h in hosts.iter().rev() {
                    if ran(view.item_host_state(seq, h)) {
                        out.push(once(seq, id, h, undo, no_undo));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// How a rollback ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    RolledBack,
    /// Every undo ran, but these were left as they are (labels and why).
    PartlyRolledBack(Vec<String>),
    /// An undo failed or a host refused: which, and why.
    Failed(String),
    /// Test hook only: stopped as if killed.
    Crashed,
}

#[derive(Debug)]
pub enum Progress<'a> {
    Started(&'a Undo),
    Ended(&'a Undo, UndoState, Option<&'a str>),
}

#[derive(Default, Clone)]
pub struct Options {
    /// Test hook: after this many undos are journaled ended, return at
    /// once, journaling nothing more, as if killed.
    pub crash_after: Option<usize>,
}

pub struct Rollback<'a> {
    journal: &'a mut FleetJournal,
    transport: &'a dyn Transport,
    options: Options,
    progress: &'a mut dyn FnMut(Progress<'_>),
}

type Result<T> = std::result::Result<T, JournalError>;

impl<'a> Rollback<'a> {
    pub fn new(
        journal: &'a mut FleetJournal,
        transport: &'a dyn Transport,
        options: Options,
        progress: &'a mut dyn FnMut(Progress<'_>),
    ) -> Self {
        Rollback {
            journal,
            transport,
            options,
            progress,
        }
    }

    /// Rolls back rollout `run`: every undo of [`undos`] not done yet, in
    /// order, each journaled; stops at the first failure.
    pub fn run(&mut self, run: i64) -> Result<Outcome> {
        let view = self.journal.load(run)?;
        match view.state {
            FleetState::RolledBack => return Ok(Outcome::RolledBack),
            FleetState::PartlyRolledBack => return Ok(Outcome::PartlyRolledBack(left(&view))),
            _ => {}
        }
        if view.state != FleetState::RollingBack {
            self.journal.set_state(run, FleetState::RollingBack, None)?;
        }
        let job = HostJob {
            product: view.plan.product.clone(),
            target: view.plan.target.clone(),
            rollout: run,
            confirm: Vec::new(),
        };
        let list = undos(&view);
        let mut ended = 0usize;
        let mut at = 0;
        while at < list.len() {
            // A batch's hosts go back together, bounded as the batch went
            // forward; everything else one at a time, in order.
            let group = match &list[at] {
                Undo::Host { seq, .. } => list[at..]
                    .iter()
                    .take_while(|x| matches!(x, Undo::Host { seq: s, .. } if s == seq))
                    .count(),
                _ => 1,
            };
            let todo: Vec<&Undo> = list[at..at + group]
                .iter()
                .filter(|u| !view.undo_state(u.seq(), u.host()).ended())
                .collect();
            at += group;
            if todo.is_empty() {
                continue;
            }
            if let Some(end) = self.some(run, &view, &job, &todo, &mut ended)? {
                return Ok(end);
            }
        }
        let view = self.journal.load(run)?;
        let left = left(&view);
        if left.is_empty() {
            self.journal.set_state(run, FleetState::RolledBack, None)?;
            return Ok(Outcome::RolledBack);
        }
        let why = format!("not undone: {}", left.join("; "));
        self.journal
            .set_state(run, FleetState::PartlyRolledBack, Some(&why))?;
        Ok(Outcome::PartlyRolledBack(left))
    }

    /// Undoes `todo` (one item's undos): a batch's hosts through the
    /// bounded pool, at most the plan's `parallel` at once, each journaled
    /// `running` before it is asked and its end as it comes; after a failure
    /// no other host starts. `Some` ends the rollback (failed, or the test
    /// hook's crash).
    fn some(
        &mut self,
        run: i64,
        view: &RolloutView,
        job: &HostJob,
        todo: &[&Undo],
        ended: &mut usize,
    ) -> Result<Option<Outcome>> {
        if !matches!(todo[0], Undo::Host { .. }) {
            let u = todo[0];
            let (state, detail) = self.one(run, view, job, u)?;
            return self.record(run, u, state, detail, ended, false);
        }
        let transport = self.transport;
        with_pool(
            view.plan.parallel as usize,
            |pool| -> Result<Option<Outcome>> {
                let mut queue = todo.iter().copied();
                let mut stop: Option<Outcome> = None;
                loop {
                    while stop.is_none() && pool.room() > 0 {
                        let Some(u) = queue.next() else { break };
                        let (seq, name) = (u.seq(), u.host().to_string());
                        self.journal
                            .undo(run, seq, &name, UndoState::Running, None)?;
                        (self.progress)(Progress::Started(u));
                        let host = host_ref(&view.plan, &name);
                        let committed = view.host_state(&name) == Some(HostState::Done);
                        let job = job.clone();
                        pool.start(name, move |_| host_undo(transport, &host, &job, committed));
                    }
                    let Some(done) = pool.next(|_, _| {}) else {
                        break;
                    };
                    pool.ended(done.len());
                    for (name, (state, detail)) in done {
                        let Some(u) = todo.iter().find(|u| u.host() == name) else {
                            continue;
                        };
                        // The first end wins; hosts in flight finish and are
                        // journaled, none starts.
                        let stopped = stop.is_some();
                        if let Some(end) = self.record(run, u, state, detail, ended, stopped)? {
                            stop = Some(end);
                        }
                    }
                }
                Ok(stop)
            },
        )
    }

    /// Journals an undo's end; `Some` when the rollback ends there (not
    /// again once `stopped`).
    fn record(
        &mut self,
        run: i64,
        u: &Undo,
        state: UndoState,
        detail: Option<String>,
        ended: &mut usize,
        stopped: bool,
    ) -> Result<Option<Outcome>> {
        self.journal
            .undo(run, u.seq(), u.host(), state, detail.as_deref())?;
        (self.progress)(Progress::Ended(u, state, detail.as_deref()));
        *ended += 1;
        if stopped {
            return Ok(None);
        }
        if self.options.crash_after.is_some_and(|n| *ended >= n) {
            return Ok(Some(Outcome::Crashed));
        }
        if state == UndoState::Failed {
            let why = format!("{}: {}", u.label(), detail.unwrap_or_default());
            self.journal
                .set_state(run, FleetState::RollbackFailed, Some(&why))?;
            return Ok(Some(Outcome::Failed(why)));
        }
        Ok(None)
    }

    /// One undo: its end state and detail (the journal's `running` is
    /// written here, before anything is asked of the host).
    fn one(
        &mut self,
        run: i64,
        view: &RolloutView,
        job: &HostJob,
        u: &Undo,
    ) -> Result<(UndoState, Option<String>)> {
        let (seq, name) = (u.seq(), u.host());
        let host = host_ref(&view.plan, name);
        let started = |me: &mut Self| -> Result<()> {
            me.journal.undo(run, seq, name, UndoState::Running, None)?;
            (me.progress)(Progress::Started(u));
            Ok(())
        };
        Ok(match u {
            Undo::NotUndone {
                reason: Some(why), ..
            } => (UndoState::Skipped, Some(format!("kept by design: {why}"))),
            Undo::NotUndone { reason: None, .. } => (
                UndoState::Left,
                Some("no undo in the recipe: what it changed is still there".into()),
            ),
            Undo::Host { .. } => {
                started(self)?;
                let committed = view.host_state(name) == Some(HostState::Done);
                host_undo(self.transport, &host, job, committed)
            }
            Undo::Once { id, action, .. } => {
                started(self)?;
                let id = format!("{id}{UNDO_SUFFIX}");
                // The undo's own progress lines are in the host's output
                // file; the rollback reports each undo's end.
                let job = OnceJob {
                    id: &id,
                    action,
                    confirm: &[],
                    step: None,
                };
                match self.transport.run_once(&host, &job, &mut |_| {}) {
                    Ok(()) => (UndoState::Done, None),
                    Err(e) => (UndoState::Failed, Some(e)),
                }
            }
        })
    }
}

/// A host's run of the rollout rolled back. A host that failed may have
/// rolled back by itself, or never started: its own journal says (a
/// committed host is asked directly).
fn host_undo(
    transport: &dyn Transport,
    host: &super::plan::HostRef,
    job: &HostJob,
    committed: bool,
) -> (UndoState, Option<String>) {
    if !committed {
        match transport.status(host, job) {
            RemoteStatus::NotStarted => {
                return (
                    UndoState::Skipped,
                    Some("its upgrade never started there".into()),
                );
            }
            RemoteStatus::Ended(HostResult::RolledBack(_)) => {
                return (
                    UndoState::Skipped,
                    Some("it rolled back by itself when its upgrade failed".into()),
                );
            }
            _ => {}
        }
    }
    match transport.rollback(host, job) {
        Ok(HostRollback::RolledBack) => (UndoState::Done, None),
        Ok(HostRollback::NothingToDo(why)) => (UndoState::Skipped, Some(why)),
        Ok(HostRollback::Partly(why)) => (UndoState::Left, Some(why)),
        Err(e) => (UndoState::Failed, Some(e)),
    }
}

/// What the rollback left as it is, from the journal: each `left` undo's
/// label and why.
fn left(view: &RolloutView) -> Vec<String> {
    view.undos
        .iter()
        .filter(|u| u.2 == UndoState::Left)
        .map(|(seq, host, _, detail)| {
            let (_, what) = label(view, *seq, host);
            format!("{what} ({})", detail.as_deref().unwrap_or("not undone"))
        })
        .collect()
}

/// A journaled undo as an [`Undo`]'s label: the host, or the step on it.
fn label(view: &RolloutView, seq: usize, host: &str) -> (bool, String) {
    match view.plan.items.get(seq) {
        Some(Item::RunOnce { id, .. } | Item::RunOnEach { id, .. }) => {
            (false, format!("{id} on {host}"))
        }
        _ => (true, host.to_string()),
    }
}

/// `hoist fleet status`'s lines about run-on-each steps (each host's
/// state) and the rollback (what was undone, skipped, failed), after the
/// lines it always had.
pub fn status_lines(view: &RolloutView) -> Vec<String> {
    let mut out = Vec::new();
    for (seq, item) in view.plan.items.iter().enumerate() {
        if let Item::RunOnEach {
            id, role, hosts, ..
        } = item
            && view.item_hosts.iter().any(|x| x.0 == seq)
        {
            let each: Vec<String> = hosts
                .iter()
                .map(|h| format!("{h} {}", view.item_host_state(seq, h)))
                .collect();
            out.push(format!("  {id} on every {role}: {}", each.join(", ")));
        }
    }
    if view.undos.is_empty() && !view.state.rolling_back() {
        return out;
    }
    let count = |s: UndoState| view.undos.iter().filter(|u| u.2 == s).count();
    out.push(format!(
        "  rollback: {} undone, {} skipped, {} left as they are, {} failed",
        count(UndoState::Done),
        count(UndoState::Skipped),
        count(UndoState::Left),
        count(UndoState::Failed)
    ));
    for (seq, host, state, detail) in &view.undos {
        let (is_host, what) = label(view, *seq, host);
        let detail = detail.as_deref().unwrap_or("");
        out.push(match state {
            UndoState::Done if is_host => format!("    rolled back: {what}"),
            UndoState::Done => format!("    undone: {what}"),
            UndoState::Skipped => format!("    skipped {what}: {detail}"),
            UndoState::Left => format!("    LEFT as it is: {what}: {detail}"),
            UndoState::Failed => format!("    FAILED {what}: {detail}"),
            UndoState::Running | UndoState::Pending => format!("    in progress: {what}"),
        });
    }
    out
}

/// `hoist fleet status --json`'s keys about run-on-each steps
/// (`run_on_each`) and the rollback (`rollback`), beside its others.
pub fn status_json(view: &RolloutView) -> Map<String, Value> {
    let mut out = Map::new();
    let each: Vec<Value> = view
        .plan
        .items
        .iter()
        .enumerate()
        .filter_map(|(seq, item)| match item {
            Item::RunOnEach {
                id, role, hosts, ..
            } => Some(json!({
                "item": seq + 1,
                "id": id,
                "role": role,
                "hosts": hosts.iter().map(|h| json!({
                    "host": h,
                    "state": view.item_host_state(seq, h),
                    "detail": view.item_hosts.iter().find(|x| x.0 == seq && &x.1 == h).and_then(|x| x.3.clone()),
                })).collect::<Vec<_>>(),
            })),
            _ => None,
        })
        .collect();
    if !each.is_empty() {
        out.insert("run_on_each".into(), Value::Array(each));
    }
    if !view.undos.is_empty() || view.state.rolling_back() {
        let undos: Vec<Value> = view
            .undos
            .iter()
            .map(|(seq, host, state, detail)| {
                let (is_host, _) = label(view, *seq, host);
                let id = match view.plan.items.get(*seq) {
                    Some(Item::RunOnce { id, .. } | Item::RunOnEach { id, .. }) => Some(id),
                    _ => None,
                };
                json!({
                    "item": seq + 1,
                    "kind": if is_host { "host" } else { "run_once" },
                    "id": id,
                    "host": host,
                    "state": state,
                    "detail": detail,
                })
            })
            .collect();
        out.insert("rollback".into(), json!({ "undos": undos }));
    }
    out
}
