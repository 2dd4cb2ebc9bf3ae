//! A test host: a booted Debian system (systemd as PID 1 in a
//! systemd-nspawn container) with its own disk, address and SSH host key.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd::{self, Output, wait_for};
use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::nspawn::{self, State, children_of, lock};
use crate::ssh::SshFiles;
use crate::suite::Suite;

/// Default bound for one command run over SSH.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound for a host to answer SSH after it was started.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Where each host sees the run's apt repository.
pub const REPO_MOUNT: &str = "/srv/hoist-repo";
/// The repository's signing key inside each host. In trusted.gpg.d rather
/// than a `signed-by=` keyring so that a recipe can trust another key for
/// the same repository (a vendor's key rotation) the way admins did.
pub const REPO_KEYRING: &str = "/etc/apt/trusted.gpg.d/hoist-testbed.gpg";

/// Unit that appends the boot id to [`SHUTDOWN_LOG`] on a clean shutdown.
pub const SHUTDOWN_UNIT: &str = "hoist-testbed-shutdown.service";
/// Boot ids of the boots that ended with a clean shutdown, one a line.
pub const SHUTDOWN_LOG: &str = "/var/log/hoist-testbed-shutdowns";

/// One booted (or stopped) test host. Created by [`crate::Testbed`].
pub struct Host {
    pub(crate) name: String,
    pub(crate) addr: Ipv4Addr,
    pub(crate) image: Image,
    pub(crate) root: PathBuf,
    pub(crate) spec: nspawn::Spec,
    pub(crate) ssh: SshFiles,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("suite", &self.suite())
            .finish()
    }
}

impl Host {
    /// Host name (also its name in the run's ssh_config and /etc/hosts).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Address on the test LAN.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Debian release the host was created from.
    pub fn suite(&self) -> Suite {
        self.image.spec.suite
    }

    /// The host's root file system as seen from the runner (its own
    /// writable layer over the base image). Reading is fine while it runs;
    /// files written here appear in the host at once.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Console output of every boot of this host.
    pub fn console_log(&self) -> &Path {
        &self.spec.console_log
    }

    /// `ssh -F <run's ssh_config> <host>`: add arguments and run it.
    pub fn ssh_command(&self) -> Command {
        self.ssh.command(&self.name)
    }

    /// Run a bash script as root on the host; fail unless it exits 0.
    /// The script travels on stdin (never in argv) into a temporary file
    /// that bash then runs with stdin from /dev/null: a command that reads
    /// stdin (a dpkg conffile prompt) sees end-of-file, as in a
    /// non-interactive run, instead of eating the rest of the script.
    pub fn exec(&self, script: &str) -> Result<Output> {
        self.exec_timeout(script, EXEC_TIMEOUT)
    }

    /// [`Host::exec`] with an explicit bound.
    pub fn exec_timeout(&self, script: &str, timeout: Duration) -> Result<Output> {
        let out = self.exec_unchecked_timeout(script, timeout)?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::Command {
                command: format!("on {}: {}", self.name, script.trim()),
                status: out.status.to_string(),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }
    }

    /// Run a bash script and return its output whatever its exit status.
    pub fn exec_unchecked(&self, script: &str) -> Result<Output> {
        self.exec_unchecked_timeout(script, EXEC_TIMEOUT)
    }

    fn exec_unchecked_timeout(&self, script: &str, timeout: Duration) -> Result<Output> {
        let mut c = self.ssh_command();
        c.args([
            "--",
            "f=$(mktemp) && cat > \"$f\" && bash \"$f\" </dev/null; rc=$?; rm -f \"$f\"; exit $rc",
        ]);
        cmd::run_unchecked(&mut c, Some(script.as_bytes()), timeout)
    }

    /// Boots started so far, reboots included. Compare before and after an
    /// action that reboots the host on its own (a recipe's reboot step).
    pub fn boots(&self) -> u64 {
        lock(&self.state).boots
    }

    /// `true` while systemd-nspawn runs for this host.
    pub fn is_running(&self) -> bool {
        lock(&self.state).nspawn_pid.is_some()
            || self
                .supervisor
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|h| !h.is_finished())
    }

    /// Start the host and wait until it answers SSH.
    pub fn boot(&self) -> Result<()> {
        self.start()?;
        self.wait_ssh(BOOT_TIMEOUT)
    }

    /// Start the container without waiting (several hosts boot in parallel).
    pub(crate) fn start(&self) -> Result<()> {
        let mut sup = self.supervisor.lock().unwrap_or_else(|p| p.into_inner());
        if sup.as_ref().is_some_and(|h| !h.is_finished()) {
            return Err(Error::Spec(format!(
                "host {} is already running",
                self.name
            )));
        }
        if let Some(h) = sup.take() {
            let _ = h.join();
        }
        *sup = Some(nspawn::supervise(self.spec.clone(), self.state.clone()));
        Ok(())
    }

    /// Wait until `ssh host true` succeeds, bounded by `timeout`. Fails at
    /// once if the container stopped.
    pub fn wait_ssh(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut c = self.ssh_command();
            c.args(["-o", "ConnectTimeout=2", "--", "true"]);
            if cmd::run_unchecked(&mut c, None, Duration::from_secs(10)).is_ok_and(|o| o.success())
            {
                return Ok(());
            }
            if !self.is_running() {
                return Err(Error::Command {
                    command: format!("boot {}", self.name),
                    status: lock(&self.state)
                        .last_exit
                        .clone()
                        .unwrap_or_else(|| "not started".into()),
                    stdout: String::new(),
                    stderr: self.console_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "ssh on {} ({})\n{}",
                        self.name,
                        self.addr,
                        self.console_tail()
                    ),
                    after: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until systemd finished booting; returns its state (`running`
    /// or `degraded`, with the failed units listed in the latter case).
    pub fn wait_ready(&self, timeout: Duration) -> Result<String> {
        self.wait_ssh(timeout)?;
        let out = self.exec_unchecked_timeout(
            "timeout 100 systemctl is-system-running --wait; \
             systemctl --failed --no-legend --plain | cut -d' ' -f1",
            timeout,
        )?;
        Ok(out.stdout.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The kernel-visible identity of the current boot (nspawn gives each
    /// container boot a fresh one).
    pub fn boot_id(&self) -> Result<String> {
        Ok(self
            .exec("cat /proc/sys/kernel/random/boot_id")?
            .stdout
            .trim()
            .to_owned())
    }

    /// Boot ids of the boots that ended with a clean shutdown (reboot or
    /// power-off); a power cut adds nothing.
    pub fn clean_shutdowns(&self) -> Vec<String> {
        fs::read_to_string(self.root.join(SHUTDOWN_LOG.trim_start_matches('/')))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `systemctl reboot` in the host, then wait until it is back on SSH.
    /// The disk is the same; processes and /run are not.
    pub fn reboot(&self) -> Result<()> {
        let before = self.boots();
        // The connection may drop before ssh reports success: not an error.
        let _ = self.exec_unchecked_timeout("systemctl reboot", Duration::from_secs(30));
        self.wait_for_boot(before, BOOT_TIMEOUT)
    }

    /// Wait until the host has booted again after boot number `before`
    /// (from [`Host::boots`]) and answers SSH.
    pub fn wait_for_boot(&self, before: u64, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        wait_for(
            &format!("{} to boot again", self.name),
            timeout,
            Duration::from_millis(100),
            || (self.boots() > before).then_some(()),
        )?;
        self.wait_ssh(timeout.saturating_sub(started.elapsed()))
    }

    /// Power cut: kill the container's init with SIGKILL (no unit is
    /// stopped, nothing is synced by the host) and do not restart it. Call
    /// [`Host::boot`] to power it on again with the same disk.
    pub fn crash(&self) -> Result<()> {
        let pid = {
            let mut s = lock(&self.state);
            s.restart = false;
            s.nspawn_pid
        };
        if let Some(pid) = pid {
            // The kernel kills every process of the container's pid
            // namespace when its init dies; nspawn then exits on its own.
            let inits = children_of(pid);
            let target = if inits.is_empty() { vec![pid] } else { inits };
            for p in target {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        self.join_supervisor(Duration::from_secs(30))
    }

    /// Clean shutdown (`systemctl poweroff`), bounded; a host that does
    /// not stop in time is crashed.
    pub fn power_off(&self) -> Result<()> {
        lock(&self.state).restart = false;
        let _ = self.exec_unchecked_timeout("systemctl poweroff", Duration::from_secs(30));
        if self.join_supervisor(Duration::from_secs(60)).is_err() {
            return self.crash();
        }
        Ok(())
    }

    fn join_supervisor(&self, timeout: Duration) -> Result<()> {
        let mut sup = self.supervisor.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = sup.take() else {
            return Ok(());
        };
        let waited = wait_for(
            &format!("systemd-nspawn of {} to exit", self.name),
            timeout,
            Duration::from_millis(50),
            || handle.is_finished().then_some(()),
        );
        match waited {
            Ok(()) => {
                let _ = handle.join();
                Ok(())
            }
            Err(e) => {
                *sup = Some(handle);
                Err(e)
            }
        }
    }

    /// Plain HTTP GET from the runner to a service on the host; returns the
    /// status code and body. For health checks of the stand-in daemons.
    pub fn http_get(&self, port: u16, path: &str) -> Result<(u16, String)> {
        let addr = SocketAddr::from((self.addr, port));
        let t = Duration::from_secs(5);
        let io = |e: std::io::Error| Error::Io {
            action: "http get",
            path: format!("{addr}{path}").into(),
            source: e,
        };
        let mut s = TcpStream::connect_timeout(&addr, t).map_err(io)?;
        s.set_read_timeout(Some(t)).map_err(io)?;
        s.set_write_timeout(Some(t)).map_err(io)?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.name).map_err(io)?;
        let mut resp = String::new();
        s.take(1 << 20).read_to_string(&mut resp).map_err(io)?;
        let code = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| Error::Spec(format!("not an HTTP response from {addr}: {resp:?}")))?;
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((code, body.to_owned()))
    }

    /// Write a file into the host's disk from the runner.
    pub fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> Result<()> {
        let p = self.root.join(path.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).ctx("create", parent)?;
        }
        fs::write(&p, contents).ctx("write", &p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).ctx("chmod", &p)
    }

    /// Point apt at `suites` of the run's repository (replacing any earlier
    /// choice); the "switch the repository" step of the seed procedures.
    pub fn use_suites(&self, suites: &[&str]) -> Result<()> {
        let mut list = String::from("# written by hoist-testbed\n");
        for s in suites {
            list.push_str(&format!("deb file:{REPO_MOUNT} {s} main\n"));
        }
        self.write_file(
            "/etc/apt/sources.list.d/hoist-testbed.list",
            list.as_bytes(),
            0o644,
        )
    }

    /// Point apt at `suites` of an HTTP mirror (`base`, e.g.
    /// `http://mirror.xivo.fr/`) in `/etc/apt/sources.list.d/<list>.list`,
    /// instead of the repository mount: packages are then downloaded into
    /// apt's cache as from a vendor's mirror.
    pub fn use_mirror(&self, list: &str, base: &str, suites: &[&str]) -> Result<()> {
        let mut text = String::new();
        for s in suites {
            text.push_str(&format!("deb {base} {s} main\n"));
        }
        self.exec("rm -f /etc/apt/sources.list.d/hoist-testbed.list")?;
        self.write_file(
            &format!("/etc/apt/sources.list.d/{list}.list"),
            text.as_bytes(),
            0o644,
        )
    }

    fn console_tail(&self) -> String {
        let text = fs::read_to_string(&self.spec.console_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!("console of {}:\n{}", self.name, lines[from..].join("\n"))
    }
}
