//! Running one container: the systemd-nspawn command line and the thread
//! that supervises it. A container whose systemd runs `systemctl reboot`
//! makes nspawn exit with status 133; the supervisor then starts it again on
//! the same disk, as a machine's firmware would. Any other exit (power-off,
//! a crash the harness caused) ends the supervision.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// nspawn's exit status when the container asked for a reboot.
const REBOOT_STATUS: i32 = 133;
/// A container rebooting in a loop is a bug in the test; stop after this.
const MAX_REBOOTS: u64 = 50;

/// What the supervisor reports about the container.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Boots started so far (the first boot counts).
    pub boots: u64,
    /// Pid of the running systemd-nspawn, if any.
    pub nspawn_pid: Option<i32>,
    /// Restart after a reboot request; cleared by a crash or power-off.
    pub restart: bool,
    /// How the last nspawn ended.
    pub last_exit: Option<String>,
}

/// Everything needed to start the container again.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub machine: String,
    pub root: PathBuf,
    pub netns: PathBuf,
    pub cgroups: Vec<PathBuf>,
    pub binds_ro: Vec<(PathBuf, String)>,
    pub console_log: PathBuf,
}

impl Spec {
    /// `sh` joins the host's cgroups, then execs nspawn (same pid), under
    /// `setpriv --pdeathsig TERM`: if the test process dies without running
    /// teardown, nspawn is told to shut its container down.
    fn command(&self) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(
                r#"while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; done; shift; exec "$@""#,
            )
            .arg("sh");
        c.args(self.cgroups.iter());
        c.arg("--");
        c.args(["setpriv", "--pdeathsig", "TERM", "systemd-nspawn"]);
        let mut args: Vec<OsString> = vec![
            "--quiet".into(),
            "--boot".into(),
            // No systemd-machined on the runner (and no need for one).
            "--register=no".into(),
            // Stay in the cgroup the wrapper put us in; see cgroup.rs.
            "--keep-unit".into(),
            "--console=read-only".into(),
            // Never write into the runner's /var/log/journal.
            "--link-journal=no".into(),
            "--resolv-conf=off".into(),
            "--timezone=off".into(),
            // Firewall rules (XiVO's SIP DROP) in the host's own netns.
            "--capability=CAP_NET_ADMIN".into(),
            format!("--machine={}", self.machine).into(),
        ];
        let mut dir = OsString::from("--directory=");
        dir.push(&self.root);
        args.push(dir);
        let mut ns = OsString::from("--network-namespace-path=");
        ns.push(&self.netns);
        args.push(ns);
        for (from, to) in &self.binds_ro {
            let mut b = OsString::from("--bind-ro=");
            b.push(from);
            b.push(":");
            b.push(to);
            args.push(b);
        }
        c.args(args);
        c
    }
}

/// Start supervising: boot now, reboot on request, stop on any other exit.
pub(crate) fn supervise(spec: Spec, state: Arc<Mutex<State>>) -> JoinHandle<()> {
    {
        let mut s = lock(&state);
        s.restart = true;
        s.last_exit = None;
    }
    thread::spawn(move || {
        let mut reboots = 0;
        loop {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spec.console_log);
            let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
                Err(_) => (Stdio::null(), Stdio::null()),
            };
            // Spawn under the lock so that a crash() racing with a reboot
            // either sees the new pid or stops the restart.
            let mut s = lock(&state);
            if !s.restart {
                return;
            }
            let spawned = spec
                .command()
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    s.last_exit = Some(format!("could not start systemd-nspawn: {e}"));
                    s.restart = false;
                    return;
                }
            };
            s.nspawn_pid = Some(child.id() as i32);
            s.boots += 1;
            drop(s);
            let status = child.wait();
            let mut s = lock(&state);
            s.nspawn_pid = None;
            s.last_exit = Some(match &status {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            });
            let reboot = matches!(&status, Ok(st) if st.code() == Some(REBOOT_STATUS));
            if reboot && s.restart && reboots < MAX_REBOOTS {
                reboots += 1;
                continue;
            }
            s.restart = false;
            return;
        }
    })
}

/// Lock the state even if a panicking thread poisoned it: the state is
/// plain data and teardown must still be able to read it.
pub(crate) fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Direct children of `pid` (the container's init is nspawn's child).
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}
