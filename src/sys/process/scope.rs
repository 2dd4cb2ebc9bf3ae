//! Which processes a step started, wherever they went.
//!
//! Every process hoist starts carries `HOIST_SCOPE=<scope>#<hoist pid>.<n>`
//! in its environment, where `<scope>` is `<state-id>/<run>/<step>` during a
//! run (`<state-id>` tells one state directory from another on the same
//! host). Children inherit it, so a step's processes are found by it after
//! they left its process group (`setsid`, a double fork) and after hoist
//! itself died (kill -9, the OOM killer, SIGHUP): `/proc/*/environ` is read.
//! This needs no systemd and no cgroup; its limit, written down in
//! docs/DURABILITY.md, is a process that clears its environment on
//! purpose (`env -i`, `sudo -i`) and leaves the group too. On a systemd
//! host a run's commands also get a transient scope each (`unit`), and a
//! process in one is found by its cgroup, which nothing it does can leave.
//!
//! Uses: when a command's first process ends, what it left behind is ended
//! (a check's `sleep 75 &` never outlives its bound); at a timeout, the
//! whole group and every marked process go; before `resume`, `rollback` or
//! a new `upgrade` acts, the processes a previous hoist's step left are
//! waited for, bounded, then ended, and the admin is told.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable that marks a process as a step's.
pub const VAR: &str = "HOIST_SCOPE";

/// The value a caller puts in `VAR` to say the command's descendants are
/// meant to outlive it: a service started by its own script daemonizes.
const DETACHED: &str = "detached";

static CURRENT: Mutex<Option<String>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(1);

/// What tells this state directory from any other on the host: its device
/// and inode (a path can be reached by several names).
pub fn state_id(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) => format!("{:x}.{:x}", m.dev(), m.ino()),
        Err(_) => "-".into(),
    }
}

/// The scope of a run's step: what its processes carry before `#`.
pub fn step_scope(state_id: &str, run: i64, key: &str) -> String {
    format!("{state_id}/{run}/{key}")
}

/// What identifies a step's processes, for the journal: their marker and,
/// on a systemd host, their scope units' names.
pub fn identity(scope: &str) -> String {
    let mut s = format!("{VAR}={scope}#{}.*", std::process::id());
    if super::unit::available()
        && let Some(unit) = super::unit::name(&format!("{scope}#{}.", std::process::id()))
    {
        s.push_str(&format!(
            ", systemd scopes {}*.scope",
            unit.trim_end_matches(".scope")
        ));
    }
    s
}

/// Every process started from now on, until `leave`, belongs to `scope`.
pub fn enter(scope: String) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(scope);
    }
}

pub fn leave() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

/// Says that `cmd`'s descendants may outlive it (a daemon started by a
/// service's own start command). It is still bounded by its timeout.
pub fn detach(cmd: &mut Command) {
    cmd.env(VAR, DETACHED);
}

/// Marks `cmd` before it is spawned; its marker, or `None` when detached
/// (it then carries no marker at all, so nothing ends its daemon later).
pub(super) fn mark(cmd: &mut Command) -> Option<String> {
    let detached = cmd
        .get_envs()
        .any(|(k, v)| k == VAR && v.is_some_and(|v| v == DETACHED));
    if detached {
        cmd.env_remove(VAR);
        return None;
    }
    let scope = CURRENT
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_else(|| "-".into());
    let marker = format!(
        "{scope}#{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    cmd.env(VAR, &marker);
    Some(marker)
}

/// Puts `cmd`, marked `marker`, in a transient scope of its own when it
/// belongs to a run and the host can make one (`unit`); the command to
/// spawn instead, if so.
pub(super) fn contain(cmd: &Command, marker: &str) -> Option<Command> {
    let (scope, _) = marker.split_once('#')?;
    if scope == "-" {
        return None;
    }
    super::unit::wrap(cmd, marker, &format!("hoist step {scope}"))
}

/// A process found by its marker or its scope's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    pub marker: String,
    /// The cgroup of its transient scope, when it runs in one.
    pub cgroup: Option<String>,
    /// Its command line, for the admin.
    pub command: String,
    /// The first process of its command (the leader of the group hoist
    /// made for it, not a session leader a `setsid` made): while it lives,
    /// the command has not ended.
    pub leader: bool,
    /// Its process group.
    pub pgrp: i32,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// Live processes whose marker satisfies `wanted`, hoist itself excepted.
/// Zombies are left out: they hold nothing and change nothing.
pub fn members(wanted: impl Fn(&str) -> bool) -> Vec<Member> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("{VAR}=");
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // The cgroup first: a process cannot leave it, while it can clear
        // its environment.
        let (cgroup, marker) = match super::unit::of(pid) {
            Some((cgroup, marker)) => (Some(cgroup), marker),
            None => {
                let Ok(env) = std::fs::read(entry.path().join("environ")) else {
                    continue;
                };
                let Some(marker) = env
                    .split(|b| *b == 0)
                    .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                else {
                    continue;
                };
                (None, marker)
            }
        };
        let Some((state, pgrp, session)) = stat(pid) else {
            continue;
        };
        if !wanted(&marker) || matches!(state, 'Z' | 'X') {
            continue;
        }
        let command = std::fs::read(entry.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        found.push(Member {
            pid,
            marker,
            cgroup,
            command,
            leader: pgrp == pid && session != pid,
            pgrp,
        });
    }
    found
}

/// State, process group and session of `pid`, from `/proc/<pid>/stat`
/// (after the command name, which may hold spaces and parentheses).
fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    Some((state, pgrp, session))
}

/// The processes a previous hoist's steps left running on this state
/// directory.
pub fn survivors(state_id: &str) -> Vec<Member> {
    let prefix = format!("{state_id}/");
    members(|m| m.starts_with(&prefix))
}

/// Ends the processes carrying exactly `marker`, and `group` if given:
/// SIGTERM, then SIGKILL to what is left after `grace`. Returns the
/// marked processes it found.
///
/// The group is signalled only while a marked process is still in it: its
/// leader is reaped, and a group id is free for reuse once the group is
/// empty, so a group with none of ours in it may be someone else's.
pub fn end(marker: &str, group: Option<Pid>, grace: Duration) -> Vec<Member> {
    let found = members(|m| m == marker);
    let group = group.filter(|g| found.iter().any(|m| m.pgrp == g.as_raw()));
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGTERM);
    }
    end_members(&found, grace, || members(|m| m == marker));
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGKILL);
    }
    found
}

/// SIGTERM to each, then waits up to `grace` for `still` to be empty, then
/// SIGKILL to what `still` returns. Bounded by `grace` plus one more wait.
pub fn end_members(found: &[Member], grace: Duration, still: impl Fn() -> Vec<Member>) {
    if found.is_empty() {
        return;
    }
    for m in found {
        let _ = kill(Pid::from_raw(m.pid), Signal::SIGTERM);
    }
    let until = Instant::now() + grace;
    let mut left = still();
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        left = still();
    }
    // A scope's cgroup goes at once, forks in flight included.
    let mut cgroups: Vec<&str> = left.iter().filter_map(|m| m.cgroup.as_deref()).collect();
    cgroups.dedup();
    for c in cgroups {
        super::unit::kill_all(c);
    }
    for m in &left {
        let _ = kill(Pid::from_raw(m.pid), Signal::SIGKILL);
    }
    // SIGKILL lands at once but the exit takes a moment; bounded.
    let until = Instant::now() + Duration::from_secs(5);
    while !still().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends every process of this scope (the run's current step): a second
/// SIGINT from the admin.
pub fn end_current(grace: Duration) -> Vec<Member> {
    let Some(scope) = CURRENT.lock().ok().and_then(|c| c.clone()) else {
        return Vec::new();
    };
    let prefix = format!("{scope}#{}.", std::process::id());
    let found = members(|m| m.starts_with(&prefix));
    end_members(&found, grace, || members(|m| m.starts_with(&prefix)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_command_carries_no_marker() {
        let mut c = Command::new("true");
        detach(&mut c);
        assert_eq!(mark(&mut c), None);
        assert!(c.get_envs().any(|(k, v)| k == VAR && v.is_none()));
    }

    #[test]
    fn markers_are_unique_per_command() {
        let a = mark(&mut Command::new("true")).unwrap();
        let b = mark(&mut Command::new("true")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_process_that_left_its_group_is_found_and_ended() {
        let mut c = Command::new("setsid");
        c.args(["sleep", "30"]);
        let marker = mark(&mut c).unwrap();
        let mut child = c.spawn().unwrap();
        let found = (0..100)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                members(|m| m == marker)
            })
            .find(|f| !f.is_empty())
            .unwrap_or_default();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].command.contains("sleep 30"), "{found:?}");
        let ended = end(&marker, None, Duration::from_secs(2));
        assert_eq!(ended.len(), 1);
        let _ = child.wait();
        assert!(members(|m| m == marker).is_empty());
    }
}
