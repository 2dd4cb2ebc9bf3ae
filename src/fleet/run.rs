//! The executor: walks a fleet plan item by item through a transport.
//!
//! A batch's hosts upgrade in parallel, at most `parallel` at once; the
//! next item starts only when the batch has ended. After each host's end
//! the failure thresholds are checked: once one is crossed no new host is
//! started (hosts already upgrading finish, each ending committed or
//! rolled back on its own), and the rollout is `stopped` with the hosts
//! not started left untouched. Run-once steps and gates run between
//! batches on their host; a failed one fails the rollout (`resume` runs it
//! again). Pause is checked between items.
//!
//! Durability (as a host's run): a host is journaled `running` before its
//! upgrade starts, and its end before anything is decided from it. After a
//! controller crash, `resume` walks the same plan from the journal: items
//! done are passed, hosts ended are never started again, and hosts left
//! `running` are asked through the transport (their own journal knows).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::journal::FleetJournal;
use super::plan::{FleetPlan, HostRef, Item};
use super::state::{FleetState, HostState, ItemState};
use super::transport::{HostEvent, HostJob, HostResult, OnceJob, RemoteStatus, Transport};
use crate::journal::JournalError;

/// How a walk of the plan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Paused,
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
}

#[derive(Default, Clone)]
pub struct Options {
    /// Set from outside (a signal, `hoist fleet pause`): the rollout stops
    /// cleanly before its next item.
    pub pause: Option<Arc<AtomicBool>>,
    /// Test hook: after this many host results are journaled the executor
    /// returns at once, journaling nothing more, as if killed; hosts still
    /// upgrading carry on in the transport.
    pub crash_after_hosts: Option<usize>,
}

pub struct Executor<'a> {
    journal: &'a mut FleetJournal,
    transport: &'a dyn Transport,
    options: Options,
    progress: &'a mut dyn FnMut(Progress<'_>),
    /// Host results journaled by this executor (for the crash hook).
    ended: usize,
}

enum Msg {
    Event(String, HostEvent),
    Ended(String, HostResult),
}

enum BatchEnd {
    Ok,
    Stop(String),
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
                    id, host, action, ..
                } => {
                    self.journal.item(run, seq, ItemState::Running, None)?;
                    let target = host_ref(plan, host);
                    match self.transport.run_once(
                        &target,
                        &OnceJob {
                            id,
                            action: action.as_ref(),
                        },
                    ) {
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
                    match self.batch(run, plan, &job, names, &label, &mut hosts)? {
                        BatchEnd::Ok => self.journal.item(run, seq, ItemState::Done, None)?,
                        BatchEnd::Crashed => return Ok(Outcome::Crashed),
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

    /// One batch: its hosts in parallel, bounded, thresholds after each end.
    fn batch(
        &mut self,
        run: i64,
        plan: &FleetPlan,
        job: &HostJob,
        names: &[String],
        label: &str,
        states: &mut HashMap<String, HostState>,
    ) -> Result<BatchEnd> {
        let state = |h: &str| states.get(h).copied().unwrap_or(HostState::Pending);
        let mut queue: VecDeque<HostRef> = VecDeque::new();
        let mut reattach = Vec::new();
        for h in names {
            match state(h) {
                HostState::Pending => queue.push_back(host_ref(plan, h)),
                HostState::Running => reattach.push(host_ref(plan, h)),
                HostState::Done | HostState::Failed => {}
            }
        }
        let failed_in = |states: &HashMap<String, HostState>| {
            names
                .iter()
                .filter(|h| states.get(*h) == Some(&HostState::Failed))
                .count()
        };
        let mut failed_total = states.values().filter(|s| **s == HostState::Failed).count();
        let mut stopping = threshold(plan, failed_total, failed_in(states), names.len(), label);
        let parallel = plan.parallel.max(1) as usize;
        let transport = self.transport;
        std::thread::scope(|scope| -> Result<BatchEnd> {
            let (tx, rx) = mpsc::channel::<Msg>();
            let mut inflight = 0usize;
            // Hosts left `running` by a crashed controller: their own
            // journal says how they ended, or they are followed to the end.
            for host in reattach {
                let tx = tx.clone();
                let job = job.clone();
                inflight += 1;
                scope.spawn(move || {
                    let name = host.name.clone();
                    let result = match transport.status(&host, &job) {
                        RemoteStatus::Ended(r) => r,
                        RemoteStatus::Running => transport.follow(&host, &job, &mut |e| {
                            let _ = tx.send(Msg::Event(name.clone(), e));
                        }),
                        RemoteStatus::NotStarted => transport.upgrade(&host, &job, &mut |e| {
                            let _ = tx.send(Msg::Event(name.clone(), e));
                        }),
                    };
                    let _ = tx.send(Msg::Ended(name, result));
                });
            }
            loop {
                let mut starting = Vec::new();
                while stopping.is_none() && inflight + starting.len() < parallel {
                    match queue.pop_front() {
                        Some(h) => starting.push(h),
                        None => break,
                    }
                }
                if !starting.is_empty() {
                    let changes: Vec<_> = starting
                        .iter()
                        .map(|h| (h.name.as_str(), HostState::Running, None))
                        .collect();
                    self.journal.hosts(run, &changes)?;
                    for host in starting {
                        states.insert(host.name.clone(), HostState::Running);
                        (self.progress)(Progress::HostStarted(&host.name));
                        let tx = tx.clone();
                        let job = job.clone();
                        inflight += 1;
                        scope.spawn(move || {
                            let name = host.name.clone();
                            let result = transport.upgrade(&host, &job, &mut |e| {
                                let _ = tx.send(Msg::Event(name.clone(), e));
                            });
                            let _ = tx.send(Msg::Ended(name, result));
                        });
                    }
                }
                if inflight == 0 {
                    break;
                }
                // Wait for something, then take everything already there:
                // results that arrive together are journaled together.
                let Ok(first) = rx.recv() else { break };
                let mut ended = Vec::new();
                for msg in std::iter::once(first).chain(rx.try_iter()) {
                    match msg {
                        Msg::Event(h, e) => (self.progress)(Progress::HostEvent(&h, &e)),
                        Msg::Ended(h, r) => ended.push((h, r)),
                    }
                }
                // The crash hook journals exactly its count, then stops.
                let room = self
                    .options
                    .crash_after_hosts
                    .map(|n| n.saturating_sub(self.ended));
                let crash = room.is_some_and(|room| ended.len() >= room);
                if let Some(room) = room {
                    ended.truncate(room);
                }
                if ended.is_empty() && !crash {
                    continue;
                }
                let details: Vec<String> = ended.iter().map(|(_, r)| r.detail()).collect();
                let changes: Vec<_> = ended
                    .iter()
                    .zip(&details)
                    .map(|((h, r), d)| {
                        let to = if r.ok() {
                            HostState::Done
                        } else {
                            HostState::Failed
                        };
                        (h.as_str(), to, (!r.ok()).then_some(d.as_str()))
                    })
                    .collect();
                self.journal.hosts(run, &changes)?;
                for (h, r) in &ended {
                    inflight -= 1;
                    self.ended += 1;
                    let to = if r.ok() {
                        HostState::Done
                    } else {
                        HostState::Failed
                    };
                    if to == HostState::Failed {
                        failed_total += 1;
                    }
                    states.insert(h.clone(), to);
                    (self.progress)(Progress::HostEnded(h, r));
                }
                if crash {
                    return Ok(BatchEnd::Crashed);
                }
                if stopping.is_none() {
                    stopping = threshold(plan, failed_total, failed_in(states), names.len(), label);
                }
            }
            Ok(match stopping {
                Some(why) => BatchEnd::Stop(why),
                None => BatchEnd::Ok,
            })
        })
    }
}

/// The reason to stop, when a threshold is crossed. `max_fail`: more than
/// N hosts failed in the whole rollout. `max_fail_percentage`: more than P%
/// of this batch failed (strictly more, as Ansible's).
fn threshold(
    plan: &FleetPlan,
    failed_total: usize,
    failed_batch: usize,
    batch_len: usize,
    label: &str,
) -> Option<String> {
    if let Some(n) = plan.max_fail
        && failed_total > n as usize
    {
        return Some(format!(
            "{failed_total} host(s) failed, more than max_fail = {n}"
        ));
    }
    if let Some(p) = plan.max_fail_percentage
        && failed_batch * 100 > p as usize * batch_len
    {
        return Some(format!(
            "{label}: {failed_batch} of {batch_len} host(s) failed, more than max_fail_percentage = {p}%"
        ));
    }
    None
}

fn host_ref(plan: &FleetPlan, name: &str) -> HostRef {
    plan.host(name).cloned().unwrap_or_else(|| HostRef {
        name: name.to_string(),
        address: name.to_string(),
        user: None,
        port: None,
        roles: Vec::new(),
    })
}
