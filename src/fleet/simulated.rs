//! `SimulatedTransport`: a transport that sleeps instead of connecting.
//!
//! For the executor's tests and the fleet bench (issue 7, bench (a): "a test
//! transport that sleeps instead of connecting; say so"). Each host's
//! upgrade takes a fixed time; faults are injected per host. The simulated
//! hosts' journals live in this value, not in the executor, so they outlive
//! a controller dropped mid-rollout, as real hosts outlive a crashed
//! controller. Nothing here touches the network or the disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::plan::HostRef;
use super::rollback::UNDO_SUFFIX;
use super::transport::{
    HostEvent, HostJob, HostResult, HostRollback, OnceJob, RemoteStatus, Transport,
};

/// A fault injected on one simulated host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Its health check fails after the upgrade; it rolls back.
    HealthCheck,
    /// It stops answering mid-upgrade (counted failed after the wait).
    Unreachable,
    /// A run-once step on it fails.
    OnceFails,
    /// Its upgrade commits, and its run is past its point of no return:
    /// its rollback is refused.
    PastPoint,
    /// Its upgrade and run-once steps succeed; an undo on it fails.
    UndoFails,
    /// Its upgrade commits; its rollback ends partly rolled back (a step
    /// there had no undo).
    PartlyUndone,
    /// Its plan meets the person's gate `person-gate`: its run pauses there
    /// until the rollout confirms it for this host.
    PersonGate,
}

/// The gate of [`Fault::PersonGate`].
pub const PERSON_GATE: &str = "person-gate";

#[derive(Default)]
struct SimHost {
    status: Option<RemoteStatus>,
    upgrades: u32,
}

pub struct SimulatedTransport {
    duration: Duration,
    faults: HashMap<String, Fault>,
    hosts: Mutex<HashMap<String, SimHost>>,
    /// What was done, in order: `upgrade H`, `once ID on H`, `rollback H`.
    log: Mutex<Vec<String>>,
    /// Host rollbacks under way now, and the most there were at once.
    rollbacks: Mutex<(usize, usize)>,
}

impl SimulatedTransport {
    /// Every host's upgrade takes `duration`.
    pub fn new(duration: Duration) -> Self {
        SimulatedTransport {
            duration,
            faults: HashMap::new(),
            hosts: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            rollbacks: Mutex::new((0, 0)),
        }
    }

    /// The most host rollbacks that were under way at once.
    pub fn peak_rollbacks(&self) -> usize {
        self.rollbacks.lock().map_or(0, |r| r.1)
    }

    /// Counts a rollback in (`+1`) or out (`-1`).
    fn rolling(&self, delta: isize) {
        let mut r = self.rollbacks.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = r.0.saturating_add_signed(delta);
        r.1 = r.1.max(r.0);
    }

    pub fn fault(mut self, host: &str, fault: Fault) -> Self {
        self.faults.insert(host.to_string(), fault);
        self
    }

    /// How many times a host's upgrade was started.
    pub fn upgrades(&self, host: &str) -> u32 {
        self.lock_hosts().get(host).map_or(0, |h| h.upgrades)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimHost>> {
        // A panicking test thread must not hide the others' results.
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, line: String) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
}

impl Transport for SimulatedTransport {
    fn upgrade(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        {
            let mut hosts = self.lock_hosts();
            let h = hosts.entry(host.name.clone()).or_default();
            h.upgrades += 1;
            h.status = Some(RemoteStatus::Running);
        }
        self.record(format!("upgrade {}", host.name));
        events(HostEvent::Started);
        self.go_on(host, job, events)
    }

    fn resume(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        self.record(format!("resume {}", host.name));
        self.go_on(host, job, events)
    }

    fn status(&self, host: &HostRef, _job: &HostJob) -> RemoteStatus {
        self.lock_hosts()
            .get(&host.name)
            .and_then(|h| h.status.clone())
            .unwrap_or(RemoteStatus::NotStarted)
    }

    fn follow(
        &self,
        host: &HostRef,
        job: &HostJob,
        _events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        // Bounded: a simulated upgrade never takes more than its duration.
        let deadline = Instant::now() + self.duration * 4 + Duration::from_secs(1);
        loop {
            match self.status(host, job) {
                RemoteStatus::Ended(r) => return r,
                RemoteStatus::NotStarted => {
                    return HostResult::Lost("never started (simulated)".into());
                }
                RemoteStatus::Running if Instant::now() >= deadline => {
                    return HostResult::Lost("still running after the wait (simulated)".into());
                }
                RemoteStatus::Running => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn run_once(
        &self,
        host: &HostRef,
        job: &OnceJob<'_>,
        _events: &mut dyn FnMut(HostEvent),
    ) -> Result<(), String> {
        self.record(format!("once {} on {}", job.id, host.name));
        // As `hoist fleet-action` on a host: a person's gate opens only
        // when confirmed for the rollout.
        if job.action.needs_person() && !job.confirmed(&host.name) {
            return Err(format!("{}: waits for a person", job.action.summary()));
        }
        match self.faults.get(&host.name) {
            Some(Fault::OnceFails) => Err(format!("{} failed (simulated)", job.action.summary())),
            Some(Fault::UndoFails) if job.id.ends_with(UNDO_SUFFIX) => {
                Err(format!("{} failed (simulated)", job.action.summary()))
            }
            _ => Ok(()),
        }
    }

    fn rollback(&self, host: &HostRef, job: &HostJob) -> Result<HostRollback, String> {
        // A host's rollback takes the upgrade's time, so rollbacks of one
        // batch overlap as they would on real hosts.
        self.rolling(1);
        std::thread::sleep(self.duration);
        let answer = self.roll_back(host, job);
        self.rolling(-1);
        answer
    }
}

impl SimulatedTransport {
    fn roll_back(&self, host: &HostRef, _job: &HostJob) -> Result<HostRollback, String> {
        self.record(format!("rollback {}", host.name));
        if self.faults.get(&host.name) == Some(&Fault::PastPoint) {
            return Err(
                "run 1 is past its point of no return (dist-upgrade: Debian has no downgrade): it cannot be rolled back (simulated)"
                    .into(),
            );
        }
        let mut hosts = self.lock_hosts();
        let h = hosts.entry(host.name.clone()).or_default();
        match &h.status {
            None | Some(RemoteStatus::NotStarted) => {
                Ok(HostRollback::NothingToDo("no run of this rollout".into()))
            }
            Some(RemoteStatus::Ended(HostResult::RolledBack(_))) => {
                Ok(HostRollback::NothingToDo("rolled back already".into()))
            }
            Some(_) if self.faults.get(&host.name) == Some(&Fault::PartlyUndone) => {
                h.status = Some(RemoteStatus::Ended(HostResult::Failed(
                    "partly rolled back (simulated)".into(),
                )));
                Ok(HostRollback::Partly(
                    "not undone: set-config (simulated)".into(),
                ))
            }
            Some(_) => {
                h.status = Some(RemoteStatus::Ended(HostResult::RolledBack(
                    "rolled back by the fleet rollback (simulated)".into(),
                )));
                Ok(HostRollback::RolledBack)
            }
        }
    }
}

impl SimulatedTransport {
    /// A host's run from where it stands to its end, as its faults say.
    fn go_on(
        &self,
        host: &HostRef,
        job: &HostJob,
        events: &mut dyn FnMut(HostEvent),
    ) -> HostResult {
        std::thread::sleep(self.duration);
        let result = match self.faults.get(&host.name) {
            Some(Fault::PersonGate)
                if !super::transport::confirmed_on(&job.confirm, &host.name)
                    .iter()
                    .any(|g| g == PERSON_GATE) =>
            {
                HostResult::Waiting {
                    gate: PERSON_GATE.into(),
                    message: "Tell the users (simulated)".into(),
                }
            }
            Some(Fault::HealthCheck) => {
                events(HostEvent::Step {
                    id: "health-check".into(),
                    state: "failed".into(),
                });
                HostResult::RolledBack("step health-check failed (simulated)".into())
            }
            Some(Fault::Unreachable) => HostResult::Lost("simulated host stopped answering".into()),
            _ => {
                events(HostEvent::Step {
                    id: "health-check".into(),
                    state: "done".into(),
                });
                HostResult::Committed
            }
        };
        // A host that stopped answering keeps `running` in its journal.
        if !matches!(result, HostResult::Lost(_)) {
            self.lock_hosts()
                .entry(host.name.clone())
                .or_default()
                .status = Some(RemoteStatus::Ended(result.clone()));
        }
        result
    }
}
