//! A run: everything one `Testbed` owns on this machine, recorded so that it
//! can always be removed. The record lives on tmpfs (/run, like the netns
//! and mounts it describes) and names the owning process; a run whose owner
//! is gone (SIGKILL, OOM, power loss of the CI job) is swept by the next
//! run that starts, so a killed test never poisons the following ones.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cache;
use crate::cgroup;
use crate::cmd::wait_for;
use crate::error::{Error, IoContext, Result};
use crate::mounts;
use crate::net::{Lan, RUNTIME_DIR};

/// A run's identity and directories.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    /// `$CACHE/runs/<id>`: host layers, keys, the apt repository.
    pub dir: PathBuf,
}

fn records_dir() -> PathBuf {
    PathBuf::from(RUNTIME_DIR).join("runs")
}

/// `starttime` of a process (field 22 of /proc/PID/stat), which tells a
/// live owner from a new process that reused its pid.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19)?.parse().ok()
}

impl Run {
    /// Register a new run owned by this process, sweeping dead runs first.
    pub(crate) fn start() -> Result<Run> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        sweep_dead();
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("r{pid}n{n}");
        let dir = cache::subdir("runs")?.join(&id);
        mounts::remove_tree(&dir)?;
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        let rec = records_dir();
        fs::create_dir_all(&rec).ctx("create", &rec)?;
        let me = pid as i32;
        let body = format!("{me} {} {}\n", start_time(me).unwrap_or(0), dir.display());
        fs::write(rec.join(&id), body).ctx("write", rec.join(&id))?;
        Ok(Run { id, dir })
    }

    /// Remove everything of this run: processes in its cgroups, mounts under
    /// its directory, its netns and slots, its cgroups, its files, its
    /// record. Idempotent; used by teardown and by the sweeper.
    pub(crate) fn remove(&self) -> Result<()> {
        remove_run(&self.id, &self.dir)
    }
}

fn remove_run(id: &str, dir: &Path) -> Result<()> {
    let groups: Vec<PathBuf> = cgroup::hierarchies()
        .iter()
        .map(|h| cgroup::run_group(h, id))
        .collect();
    // SIGKILL of every process, container init included: the kernel then
    // kills the rest of each container's pid namespace.
    for g in &groups {
        for pid in cgroup::pids_in(g) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    wait_for(
        &format!("the processes of run {id} to exit"),
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            groups
                .iter()
                .all(|g| cgroup::pids_in(g).is_empty())
                .then_some(())
        },
    )?;
    let mut errors = Vec::new();
    if let Err(e) = mounts::unmount_all_under(dir) {
        errors.push(e.to_string());
    }
    for lan in Lan::owned_by(id) {
        match lan.delete() {
            Ok(()) => lan.release(),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for g in &groups {
        if let Err(e) = cgroup::remove_tree(g) {
            errors.push(e.to_string());
        }
        // The shared parent goes when the last run does; another live run
        // keeps it busy, which is fine.
        if let Some(parent) = g.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
    if let Err(e) = mounts::remove_tree(dir) {
        errors.push(e.to_string());
    }
    if errors.is_empty() {
        let _ = fs::remove_file(records_dir().join(id));
        Ok(())
    } else {
        Err(Error::Leftovers(errors))
    }
}

/// Remove the runs whose owner process is gone. Best effort: a run that
/// cannot be removed now is tried again by the next sweep.
pub fn sweep_dead() {
    let Ok(entries) = fs::read_dir(records_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let Ok(body) = fs::read_to_string(e.path()) else {
            continue;
        };
        let mut parts = body.split_whitespace();
        let pid: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let started: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let dir = PathBuf::from(parts.next().unwrap_or_default());
        let alive = pid > 0 && start_time(pid) == Some(started);
        if !alive && !dir.as_os_str().is_empty() {
            let _ = remove_run(&id, &dir);
        }
    }
}

/// Ids of the runs recorded now (live or not yet swept).
pub fn recorded_runs() -> Vec<String> {
    fs::read_dir(records_dir())
        .map(|es| {
            es.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id() as i32;
        let a = start_time(me);
        assert!(a.is_some());
        assert_eq!(a, start_time(me));
    }
}
