//! The executor: walks a fleet plan item by item through a transport.
//!
//! A batch's hosts upgrade in parallel, at most `parallel` at once; the
//! next item starts only when the batch has ended. After each host's end
//! the failure thresholds are checked: once one is crossed no new host is
//! started (hosts already upgrading finish, each ending committed or
//! rolled back on its own), and the rollout is `stopped` with the hosts
//! not started left untouched. Which thresholds: a stage's own when it has
//! any (its `max_fail` counting its own failed hosts), else the fleet-wide
//! ones (their `max_fail` counting the failed hosts of every stage without
//! thresholds of its own). Run-once steps and gates run between batches on
//! their host; a failed one fails the rollout (`resume` runs it again). A
//! run-on-each step (`on = { every = ROLE }`) runs on its hosts as a batch
//! does, at most `parallel` at once, each host journaled `running` before
//! it starts and its end after; after a failed host none is started, the
//! running ones finish, and the item fails; `resume` runs it again only on
//! the hosts where it is not done. Pause is checked between items.
//!
//! Durability (as a host's run): a host is journaled `running` before its
//! upgrade starts, and its end before anything is decided from it. After a
//! controller crash, `resume` walks the same plan from the journal: items
//! done are passed, hosts ended are never started again, and hosts left
//! `running` are asked through the transport (their own journal knows).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::journal::FleetJournal;
use super::plan::{FleetPlan, HostRef, Item, StagePlan, Thresholds};
use super::pool::with_pool;
use super::state::{FleetState, HostState, ItemState};
use super::transport::{HostEvent, HostJob, HostResult, OnceJob, RemoteStatus, Transport};
use crate::run::journal::JournalError;

/// How a walk of the plan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Paused,
    /// Hosts wait for a person at a gate (the rest of their batch went
    /// on): which, and what `hoist fleet resume --confirm` takes.
    Waiting(String),
    /// A threshold was crossed; the reason.
    Stopped(String),
    /// A run-once step or gate failed.
    Failed(String),
    /// Test hook only: the controller stopped as if killed.
    Crashed,
}

/// What the admin (or the UI) sees while the rollout runs.
#[derive(Debug)]
pub enum Progress<'a> {
    Item(usize, &'a Item),
    HostStarted(&'a str),
    HostEvent(&'a str, &'a HostEvent),
    HostEnded(&'a str, &'a HostResult),
    /// One host of a run-on-each step ended: its host, the step, the result.
    OnceEnded(&'a str, &'a str, &'a std::result::Result<(), String>),
}

#[derive(Default, Clone)]
pub struct Options {
    /// Set from outside (a signal, `hoist fleet pause`): the rollout stops
    /// cleanly before its next item.
    pub pause: Option<Arc<AtomicBool>>,
    /// Test hook: after this many host results (a host's upgrade, or one
    /// host of a run-on-each step) are journaled the executor returns at
    /// once, journaling nothing more, as if killed; hosts still upgrading
    /// carry on in the transport.
    pub crash_after_hosts: Option<usize>,
    /// Person gates the admin confirmed (`--confirm GATE[@HOST]`).
    pub confirm: Vec<String>,
    /// Asks the person at the controller's terminal (the question; true
    /// for yes) when a host's run pauses at a person's gate: yes resumes
    /// that host's run with the gate confirmed. `None`: no one to ask.
    pub ask: Option<Asker>,
}

/// See [`Options::ask`].
pub type Asker = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub struct Executor<'a> {
    journal: &'a mut FleetJournal,
    transport: &'a dyn Transport,
    options: Options,
    progress: &'a mut dyn FnMut(Progress<'_>),
    /// Host results journaled by this executor (for the crash hook).
    ended: usize,
}

/// What a host's thread says: its events as they come, then how it ended
/// (a batch's upgrade: a `HostResult`; a run-on-each step: ok or why not).
enum BatchEnd {
    Ok,
    Stop(String),
    /// Every other host of the batch ended; these wait for a person.
    Waiting(String),
    Crashed,
}

enum EachEnd {
    Ok,
    Failed(String),
    Crashed,
}

type Result<T> = std::result::Result<T, JournalError>;

impl<'a> Executor<'a> {
    pub fn new(
        journal: &'a mut FleetJournal,
        transport: &'a dyn Transport,
        options: Options,
        progress: &'a mut dyn FnMut(Progress<'_>),
    ) -> Self {
        Executor {
            journal,
            transport,
            options,
            progress,
            ended: 0,
        }
    }

    /// Journals a new rollout of `plan` and runs it.
    pub fn start(&mut self, plan: &FleetPlan) -> Result<(i64, Outcome)> {
        let run = self.journal.create(plan)?;
        self.journal.set_state(run, FleetState::Running, None)?;
        let outcome = self.walk(run)?;
        Ok((run, outcome))
    }

    /// Runs a rollout already journaled (`FleetJournal::create`): for a
    /// transport that needs the rollout's id before it starts.
    pub fn run(&mut self, run: i64) -> Result<Outcome> {
        self.journal.set_state(run, FleetState::Running, None)?;
        self.walk(run)
    }

    /// Carries on with the last rollout (after a crash, a pause, a failed
    /// step); `None` when there is nothing to resume.
    pub fn resume(&mut self) -> Result<Option<(i64, Outcome)>> {
        let Some(view) = self.journal.latest()? else {
            return Ok(None);
        };
        if !view.state.resumable() {
            return Ok(None);
        }
        if view.state != FleetState::Running {
            self.journal.set_state(view.id, FleetState::Running, None)?;
        }
        let outcome = self.walk(view.id)?;
        Ok(Some((view.id, outcome)))
    }

    fn walk(&mut self, run: i64) -> Result<Outcome> {
        let view = self.journal.load(run)?;
        let plan = &view.plan;
        let mut hosts: HashMap<String, HostState> =
            view.hosts.iter().map(|(h, s, _)| (h.clone(), *s)).collect();
        let job = HostJob {
            product: plan.product.clone(),
            target: plan.target.clone(),
            rollout: run,
            confirm: self.options.confirm.clone(),
        };
        for (seq, item) in plan.items.iter().enumerate() {
            let state = view.items[seq].0;
            if matches!(state, ItemState::Done | ItemState::Skipped) {
                continue;
            }
            if self
                .options
                .pause
                .as_ref()
                .is_some_and(|p| p.load(Ordering::SeqCst))
            {
                self.journal.set_state(run, FleetState::Paused, None)?;
                return Ok(Outcome::Paused);
            }
            (self.progress)(Progress::Item(seq, item));
            match item {
                Item::Skipped { reason, .. } => {
                    self.journal
                        .item(run, seq, ItemState::Skipped, Some(reason))?;
                }
                Item::Pause { after } => {
                    if state == ItemState::Pending {
                        self.journal.item(run, seq, ItemState::Running, None)?;
                    }
                    self.journal.item(run, seq, ItemState::Done, None)?;
                    let why = format!("paused after stage {after}");
                    self.journal
                        .set_state(run, FleetState::Paused, Some(&why))?;
                    return Ok(Outcome::Paused);
                }
                Item::RunOnce {
                    id,
                    host,
                    action,
                    step,
                    ..
                } => {
                    self.journal.item(run, seq, ItemState::Running, None)?;
                    let target = host_ref(plan, host);
                    let job = OnceJob {
                        id,
                        action: action.as_ref(),
                        confirm: &self.options.confirm,
                        step: step.as_deref(),
                    };
                    let transport = self.transport;
                    let progress = &mut self.progress;
                    let mut events = |e: HostEvent| progress(Progress::HostEvent(host, &e));
                    match transport.run_once(&target, &job, &mut events) {
                        Ok(()) => self.journal.item(run, seq, ItemState::Done, None)?,
                        Err(e) => {
                            self.journal.item(run, seq, ItemState::Failed, Some(&e))?;
                            let why = format!("{id} on {host}: {e}");
                            self.journal
                                .set_state(run, FleetState::Failed, Some(&why))?;
                            return Ok(Outcome::Failed(why));
                        }
                    }
                }
                Item::RunOnEach {
                    id,
                    hosts: names,
                    action,
                    step,
                    ..
                } => {
                    self.journal.item(run, seq, ItemState::Running, None)?;
                    let done: Vec<&str> = view
                        .item_hosts
                        .iter()
                        .filter(|(s, _, st, _)| *s == seq && *st == ItemState::Done)
                        .map(|(_, h, _, _)| h.as_str())
                        .collect();
                    let todo: Vec<HostRef> = names
                        .iter()
                        .filter(|h| !done.contains(&h.as_str()))
                        .map(|h| host_ref(plan, h))
                        .collect();
                    let confirm = self.options.confirm.clone();
                    let job = OnceJob {
                        id,
                        action: action.as_ref(),
                        confirm: &confirm,
                        step: step.as_deref(),
                    };
                    match self.each(run, seq, plan, &job, todo)? {
                        EachEnd::Ok => self.journal.item(run, seq, ItemState::Done, None)?,
                        EachEnd::Crashed => return Ok(Outcome::Crashed),
                        EachEnd::Failed(why) => {
                            self.journal.item(run, seq, ItemState::Failed, Some(&why))?;
                            self.journal
                                .set_state(run, FleetState::Failed, Some(&why))?;
                            return Ok(Outcome::Failed(why));
                        }
                    }
                }
                Item::Batch {
                    stage,
                    number,
                    hosts: names,
                    ..
                } => {
                    if state == ItemState::Pending {
                        self.journal.item(run, seq, ItemState::Running, None)?;
                    }
                    let label = format!("stage {stage}, batch {number}");
                    let limits = Limits::of(plan, stage);
                    match self.batch(run, plan, &job, names, &label, &limits, &mut hosts)? {
                        BatchEnd::Ok => self.journal.item(run, seq, ItemState::Done, None)?,
                        BatchEnd::Crashed => return Ok(Outcome::Crashed),
                        BatchEnd::Waiting(why) => {
                            self.journal
                                .set_state(run, FleetState::Paused, Some(&why))?;
                            return Ok(Outcome::Waiting(why));
                        }
                        BatchEnd::Stop(why) => {
                            self.journal
                                .set_state(run, FleetState::Stopped, Some(&why))?;
                            return Ok(Outcome::Stopped(why));
                        }
                    }
                }
            }
        }
        self.journal.set_state(run, FleetState::Done, None)?;
        Ok(Outcome::Done)
    }

    /// One run-on-each step on the hosts where it is not done yet: in
    /// parallel, at most `parallel` at once, each host journaled `running`
    /// before it starts and its end before anything is decided from it.
    fn each(
        &mut self,
        run: i64,
        seq: usize,
        plan: &FleetPlan,
        job: &OnceJob<'_>,
        todo: Vec<HostRef>,
    ) -> Result<EachEnd> {
        let mut queue: VecDeque<HostRef> = todo.into();
        let transport = self.transport;
        let mut failures: Vec<String> = Vec::new();
        with_pool(plan.parallel as usize, |pool| -> Result<EachEnd> {
            loop {
                // After a failed host none is started: the item has failed
                // whatever the others do, and hosts not started stay as
                // they were (the same rule as a batch past its threshold).
                let starting = next_hosts(&mut queue, pool.room(), failures.is_empty());
                if !starting.is_empty() {
                    let changes: Vec<_> = starting
                        .iter()
                        .map(|h| (h.name.as_str(), ItemState::Running, None))
                        .collect();
                    self.journal.item_hosts(run, seq, &changes)?;
                    for host in starting {
                        (self.progress)(Progress::HostStarted(&host.name));
                        let job = job.clone();
                        pool.start(host.name.clone(), move |events| {
                            transport.run_once(&host, &job, events)
                        });
                    }
                }
                let progress = &mut self.progress;
                let Some(mut ended) = pool.next(|h, e| progress(Progress::HostEvent(h, e))) else {
                    break;
                };
                if ended.is_empty() {
                    continue;
                }
                let crash = self.crash_hook(&mut ended);
                let changes: Vec<_> = ended
                    .iter()
                    .map(|(h, r)| match r {
                        Ok(()) => (h.as_str(), ItemState::Done, None),
                        Err(e) => (h.as_str(), ItemState::Failed, Some(e.as_str())),
                    })
                    .collect();
                self.journal.item_hosts(run, seq, &changes)?;
                pool.ended(ended.len());
                for (h, r) in &ended {
                    self.ended += 1;
                    if let Err(e) = r {
                        failures.push(format!("{} on {h}: {e}", job.id));
                    }
                    (self.progress)(Progress::OnceEnded(h, job.id, r));
                }
                if crash {
                    return Ok(EachEnd::Crashed);
                }
            }
            Ok(if failures.is_empty() {
                EachEnd::Ok
            } else {
                EachEnd::Failed(failures.join("; "))
            })
        })
    }

    /// The test hook that crashes the controller after its count of ended
    /// hosts: `ended` cut to what is journaled before; true when it is
    /// time to stop.
    fn crash_hook<R>(&self, ended: &mut Vec<(String, R)>) -> bool {
        let room = self
            .options
            .crash_after_hosts
            .map(|n| n.saturating_sub(self.ended));
        let crash = room.is_some_and(|room| ended.len() >= room);
        if let Some(room) = room {
            ended.truncate(room);
        }
        crash
    }

    /// One batch: its hosts in parallel, bounded, thresholds after each end.
    #[allow(clippy::too_many_arguments)]
    fn batch(
        &mut self,
        run: i64,
        plan: &FleetPlan,
        job: &HostJob,
        names: &[String],
        label: &str,
        limits: &Limits,
        states: &mut HashMap<String, HostState>,
    ) -> Result<BatchEnd> {
        let state = |h: &str| states.get(h).copied().unwrap_or(HostState::Pending);
        let mut queue: VecDeque<HostRef> = VecDeque::new();
        let mut reattach = Vec::new();
        let mut wake = Vec::new();
        for h in names {
            match state(h) {
                HostState::Pending => queue.push_back(host_ref(plan, h)),
                HostState::Running => reattach.push(host_ref(plan, h)),
                HostState::Waiting => wake.push(host_ref(plan, h)),
                HostState::Done | HostState::Failed => {}
            }
        }
        // Hosts paused at a person's gate: their runs are resumed with the
        // gates confirmed now (unconfirmed, they pause there again).
        if !wake.is_empty() {
            let changes: Vec<_> = wake
                .iter()
                .map(|h| (h.name.as_str(), HostState::Running, None))
                .collect();
            self.journal.hosts(run, &changes)?;
            for h in &wake {
                states.insert(h.name.clone(), HostState::Running);
            }
        }
        let failed_in = |states: &HashMap<String, HostState>| {
            names
                .iter()
                .filter(|h| states.get(*h) == Some(&HostState::Failed))
                .count()
        };
        let failed_scope = |states: &HashMap<String, HostState>| {
            limits
                .hosts
                .iter()
                .filter(|h| states.get(*h) == Some(&HostState::Failed))
                .count()
        };
        let mut stopping = threshold(
            limits,
            failed_scope(states),
            failed_in(states),
            names.len(),
            label,
        );
        let transport = self.transport;
        with_pool(plan.parallel as usize, |pool| -> Result<BatchEnd> {
            // Hosts left `running` by a crashed controller: their own
            // journal says how they ended, or they are followed to the end.
            for host in reattach {
                let job = job.clone();
                pool.start(host.name.clone(), move |events| {
                    match transport.status(&host, &job) {
                        RemoteStatus::Ended(r) => r,
                        RemoteStatus::Running => transport.follow(&host, &job, events),
                        RemoteStatus::NotStarted => transport.upgrade(&host, &job, events),
                    }
                });
            }
            for host in wake {
                (self.progress)(Progress::HostStarted(&host.name));
                let job = job.clone();
                pool.start(host.name.clone(), move |events| {
                    transport.resume(&host, &job, events)
                });
            }
            loop {
                let starting = next_hosts(&mut queue, pool.room(), stopping.is_none());
                if !starting.is_empty() {
                    let changes: Vec<_> = starting
                        .iter()
                        .map(|h| (h.name.as_str(), HostState::Running, None))
                        .collect();
                    self.journal.hosts(run, &changes)?;
                    for host in starting {
                        states.insert(host.name.clone(), HostState::Running);
                        (self.progress)(Progress::HostStarted(&host.name));
                        let job = job.clone();
                        pool.start(host.name.clone(), move |events| {
                            transport.upgrade(&host, &job, events)
                        });
                    }
                }
                // Wait for something, then take everything already there:
                // results that arrive together are journaled together.
                let progress = &mut self.progress;
                let Some(mut ended) = pool.next(|h, e| progress(Progress::HostEvent(h, e))) else {
                    break;
                };
                // The crash hook journals exactly its count, then stops.
                let crash = self.crash_hook(&mut ended);
                if ended.is_empty() && !crash {
                    continue;
                }
                let details: Vec<String> = ended.iter().map(|(_, r)| r.detail()).collect();
                let changes: Vec<_> = ended
                    .iter()
                    .zip(&details)
                    .map(|((h, r), d)| (h.as_str(), host_state(r), (!r.ok()).then_some(d.as_str())))
                    .collect();
                self.journal.hosts(run, &changes)?;
                pool.ended(ended.len());
                for (h, r) in &ended {
                    self.ended += 1;
                    states.insert(h.clone(), host_state(r));
                    (self.progress)(Progress::HostEnded(h, r));
                }
                // A person at the controller's terminal may answer a host's
                // gate now: that host's run goes on, the others are not held.
                for (h, r) in &ended {
                    let (HostResult::Waiting { gate, message }, Some(ask), None) =
                        (r, &self.options.ask, &stopping)
                    else {
                        continue;
                    };
                    let question = format!(
                        "{h}: gate {gate} waits for a person: {message}\nType yes when it is done (anything else leaves {h} waiting): "
                    );
                    if !ask(&question) {
                        continue;
                    }
                    self.journal
                        .hosts(run, &[(h.as_str(), HostState::Running, None)])?;
                    states.insert(h.clone(), HostState::Running);
                    let mut job = job.clone();
                    job.confirm.push(format!("{gate}@{h}"));
                    let host = host_ref(plan, h);
                    pool.start(h.clone(), move |events| {
                        transport.resume(&host, &job, events)
                    });
                }
                if crash {
                    return Ok(BatchEnd::Crashed);
                }
                if stopping.is_none() {
                    stopping = threshold(
                        limits,
                        failed_scope(states),
                        failed_in(states),
                        names.len(),
                        label,
                    );
                }
            }
            let waiting: Vec<String> = names
                .iter()
                .filter(|h| states.get(*h) == Some(&HostState::Waiting))
                .cloned()
                .collect();
            Ok(match stopping {
                Some(why) => BatchEnd::Stop(why),
                None if !waiting.is_empty() => BatchEnd::Waiting(format!(
                    "{} wait(s) for a person at a gate: `hoist fleet status` says which; `hoist fleet resume --confirm GATE@HOST` goes on",
                    waiting.join(", ")
                )),
                None => BatchEnd::Ok,
            })
        })
    }
}

/// The state a host's result leaves it in.
fn host_state(r: &HostResult) -> HostState {
    match r {
        HostResult::Committed => HostState::Done,
        HostResult::Waiting { .. } => HostState::Waiting,
        _ => HostState::Failed,
    }
}

/// The thresholds in force for a stage's batches and the hosts its
/// `max_fail` counts.
struct Limits {
    thresholds: Thresholds,
    /// A stage with thresholds of its own counts its own hosts; the
    /// fleet-wide thresholds count the hosts of every stage without (so a
    /// host a stage's own threshold tolerated does not stop a later stage
    /// before it starts).
    hosts: Vec<String>,
    /// `Some(stage)` when the stage's own thresholds are in force.
    own: Option<String>,
}

impl Limits {
    fn of(plan: &FleetPlan, stage: &str) -> Limits {
        let hosts_of =
            |s: &StagePlan| -> Vec<String> { s.batches.iter().flatten().cloned().collect() };
        match plan.stage(stage).and_then(|s| s.thresholds.map(|t| (s, t))) {
            Some((s, t)) => Limits {
                thresholds: t,
                hosts: hosts_of(s),
                own: Some(stage.to_string()),
            },
            None => Limits {
                thresholds: plan.fleet_thresholds(),
                hosts: plan
                    .stages
                    .iter()
                    .filter(|s| s.thresholds.is_none())
                    .flat_map(hosts_of)
                    .collect(),
                own: None,
            },
        }
    }
}

/// The reason to stop, when a threshold is crossed. `max_fail`: more than
/// N hosts of the scope failed. `max_fail_percentage`: more than P% of this
/// batch failed (strictly more, as Ansible's).
fn threshold(
    limits: &Limits,
    failed_scope: usize,
    failed_batch: usize,
    batch_len: usize,
    label: &str,
) -> Option<String> {
    if let Some(n) = limits.thresholds.max_fail
        && failed_scope > n as usize
    {
        return Some(match &limits.own {
            None => format!("{failed_scope} host(s) failed, more than max_fail = {n}"),
            Some(stage) => format!(
                "stage {stage}: {failed_scope} of its host(s) failed, more than its max_fail = {n}"
            ),
        });
    }
    if let Some(p) = limits.thresholds.max_fail_percentage
        && failed_batch * 100 > p as usize * batch_len
    {
        return Some(format!(
            "{label}: {failed_batch} of {batch_len} host(s) failed, more than max_fail_percentage = {p}%"
        ));
    }
    None
}

pub(super) fn host_ref(plan: &FleetPlan, name: &str) -> HostRef {
    plan.host(name).cloned().unwrap_or_else(|| HostRef {
        name: name.to_string(),
        address: name.to_string(),
        user: None,
        port: None,
        key: None,
        roles: Vec::new(),
    })
}

/// The next hosts to start: up to `room` from the front of `queue`, none
/// once `open` is false.
fn next_hosts(queue: &mut VecDeque<HostRef>, room: usize, open: bool) -> Vec<HostRef> {
    if !open {
        return Vec::new();
    }
    let n = room.min(queue.len());
    queue.drain(..n).collect()
}
