//! Sessions to other hosts over OpenSSH: the system `ssh`, so the admin's
//! `~/.ssh/config`, agent and known_hosts apply as they do for everything
//! else they run (Ansible does the same). One master connection per host
//! (`ControlMaster`), shared by every command sent to it: one handshake,
//! then a command costs a round trip.
//!
//! Never a prompt: `BatchMode=yes`, so an unknown host key or a missing key
//! is an error at once instead of a question nobody answers at 3 a.m.
//! Secrets never go in argv: what a command needs travels on its stdin.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::sys::process::Output;

/// How to reach one host, as an inventory names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// What `ssh` is given: an alias of the admin's ssh config or an address.
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// `ssh -i KEY`, and only it (`IdentitiesOnly`): the key the inventory
    /// names (`ansible_ssh_private_key_file`), as Ansible passes it.
    pub key: Option<String>,
}

/// Settings shared by every session of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// `ssh -F FILE`; `None`: the admin's own configuration.
    pub config: Option<PathBuf>,
    /// Bound on connecting, and on every command that names no other.
    pub connect_timeout: Duration,
    /// Where the control sockets live (mode 0700). A socket path must fit
    /// in 108 bytes, so keep it short.
    pub control_dir: PathBuf,
}

/// An open master connection to one host; closed when dropped.
pub struct Session {
    target: Target,
    options: Options,
    control: PathBuf,
}

impl Session {
    /// Connects (bounded by `connect_timeout`) and keeps the connection
    /// open for the commands that follow.
    pub fn open(target: Target, options: &Options) -> Result<Session, String> {
        crate::sys::fsutil::private_dir(&options.control_dir)
            .map_err(|e| format!("{}: {e}", options.control_dir.display()))?;
        let control = options.control_dir.join(socket_name(&target));
        let session = Session {
            target,
            options: options.clone(),
            control,
        };
        // The master backgrounds itself after the first command (`true`)
        // and lives until `-O exit` or 10 idle minutes.
        // Its output goes to a file, not a pipe: the master keeps what it
        // inherited open, and a pipe would never see its end.
        let mut c = session.base();
        c.args(["-o", "ControlMaster=yes", "-o", "ControlPersist=600"])
            .arg("--")
            .arg(&session.target.host)
            .arg("true");
        let err_path = session.control.with_extension("err");
        let err_file =
            std::fs::File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
        let out = crate::sys::process::run_logged(
            &mut c,
            options.connect_timeout + Duration::from_secs(5),
            &err_file,
        )
        .map_err(|e| format!("ssh {}: {e}", session.target.host))?;
        let said = std::fs::read_to_string(&err_path).unwrap_or_default();
        let _ = std::fs::remove_file(&err_path);
        if !out.success() {
            return Err(format!(
                "ssh {}: cannot connect{}: {}",
                session.target.host,
                if out.timed_out() {
                    " (no answer in time)"
                } else {
                    ""
                },
                last_line(&said)
            ));
        }
        Ok(session)
    }

    /// `ssh` with the options every use shares.
    fn base(&self) -> Command {
        let mut c = Command::new("ssh");
        if let Some(cfg) = &self.options.config {
            c.arg("-F").arg(cfg);
        }
        c.arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                self.options.connect_timeout.as_secs().max(1)
            ));
        if let Some(u) = &self.target.user {
            c.arg("-l").arg(u);
        }
        if let Some(p) = self.target.port {
            c.arg("-p").arg(p.to_string());
        }
        if let Some(k) = &self.target.key {
            c.arg("-i").arg(k).args(["-o", "IdentitiesOnly=yes"]);
        }
        c
    }

    /// The command running `argv` on the host through the master, quoted
    /// for the remote shell.
    pub fn command(&self, argv: &[&str]) -> Result<Command, String> {
        let remote = shlex::try_join(argv.iter().copied()).map_err(|e| format!("{argv:?}: {e}"))?;
        let mut c = self.base();
        c.args(["-o", "ControlMaster=no", "-T", "--"])
            .arg(&self.target.host)
            .arg(remote);
        Ok(c)
    }

    /// Runs `argv` on the host, `stdin` fed to it, bounded by `timeout`.
    pub fn run(
        &self,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, String> {
        let mut c = self.command(argv)?;
        let what = || format!("on {}: {}", self.target.host, argv.join(" "));
        match stdin {
            None => {
                crate::sys::process::run(&mut c, timeout).map_err(|e| format!("{}: {e}", what()))
            }
            Some(bytes) => crate::sys::process::run_with_stdin(&mut c, bytes, timeout)
                .map_err(|e| format!("{}: {e}", what())),
        }
    }

    /// Runs `argv` on the host and hands each line of its standard output
    /// to `on_line` as it comes (a host's JSON events); its stderr is kept
    /// for the error. The exit code, or `None` when killed at `timeout`.
    pub fn stream(
        &self,
        argv: &[&str],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Option<i32>, String> {
        self.stream_err(argv, timeout, on_line)
            .map(|(code, _)| code)
    }

    /// `stream`, and the command's standard error with its exit code.
    pub fn stream_err(
        &self,
        argv: &[&str],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(Option<i32>, String), String> {
        self.stream_fed(argv, None, timeout, on_line)
    }

    /// `stream_err`, with `stdin` fed to the command (what must not be in
    /// argv).
    pub fn stream_fed(
        &self,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(Option<i32>, String), String> {
        use std::os::unix::process::CommandExt;
        let mut c = self.command(argv)?;
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = c
            .spawn()
            .map_err(|e| format!("ssh {}: {e}", self.target.host))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A writer thread: a command that does not read must not hold
            // us past the deadline. A closed pipe (it exited) ends it.
            let bytes = bytes.to_vec();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = child.stdout.take().ok_or("ssh: no stdout")?;
        let mut stderr = child.stderr.take().ok_or("ssh: no stderr")?;
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let deadline = crate::sys::process::Deadline::kill_at(&child, timeout);
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => on_line(&l),
                Err(_) => break,
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("ssh {}: {e}", self.target.host))?;
        let killed = deadline.release();
        let stderr = err.join().unwrap_or_default();
        if killed {
            return Ok((None, stderr));
        }
        match status.code() {
            Some(255) => Err(format!(
                "ssh {}: connection lost: {}",
                self.target.host,
                last_line(&stderr)
            )),
            code => Ok((code, stderr)),
        }
    }

    /// Writes `bytes` to `path` on the host with `mode`, atomically (a
    /// temporary file renamed over it), and checks the SHA-256 the host
    /// computes of what it received before the rename.
    pub fn put(
        &self,
        bytes: &[u8],
        path: &str,
        mode: u32,
        timeout: Duration,
    ) -> Result<(), String> {
        let want = hex::encode(Sha256::digest(bytes));
        let tmp = format!("{path}.hoist-tmp");
        let script = format!(
            "set -e; umask 077; cat > {t}; chmod {mode:o} {t}; set -- $(sha256sum {t}); \
             if [ \"$1\" = {want} ]; then mv -f {t} {p}; else rm -f {t}; echo \"checksum $1\" >&2; exit 3; fi",
            t = quote(&tmp)?,
            p = quote(path)?,
        );
        let out = self.run(&["sh", "-c", &script], Some(bytes), timeout)?;
        if out.success() {
            Ok(())
        } else {
            Err(format!(
                "copy to {}:{path}: {}",
                self.target.host,
                last_line(&out.stderr)
            ))
        }
    }

    /// Ends the master connection.
    pub fn close(&self) {
        let mut c = self.base();
        c.args(["-O", "exit", "--"]).arg(&self.target.host);
        let _ = crate::sys::process::run(&mut c, Duration::from_secs(10));
        let _ = std::fs::remove_file(&self.control);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

/// A short, stable socket name per target.
fn socket_name(t: &Target) -> String {
    let key = format!(
        "{}@{}:{} {}",
        t.user.as_deref().unwrap_or(""),
        t.host,
        t.port.unwrap_or(0),
        t.key.as_deref().unwrap_or("")
    );
    format!(
        "{}.sock",
        &hex::encode(Sha256::digest(key.as_bytes()))[..16]
    )
}

fn quote(s: &str) -> Result<String, String> {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .map_err(|e| format!("{s:?}: {e}"))
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_short_and_distinct() {
        let t = |h: &str, u: Option<&str>, p| Target {
            host: h.into(),
            user: u.map(String::from),
            port: p,
            key: None,
        };
        let a = socket_name(&t("master.example.org", Some("root"), None));
        let b = socket_name(&t("master.example.org", Some("admin"), None));
        let c = socket_name(&t("master.example.org", Some("root"), Some(2222)));
        let d = socket_name(&Target {
            key: Some("~/.ssh/other".into()),
            ..t("master.example.org", Some("root"), None)
        });
        assert_eq!(a.len(), 21);
        assert!(a != b && a != c && b != c && a != d);
        assert_eq!(a, socket_name(&t("master.example.org", Some("root"), None)));
    }

    #[test]
    fn remote_commands_are_quoted_for_the_shell() {
        let o = Options {
            config: None,
            connect_timeout: Duration::from_secs(5),
            control_dir: "/tmp/x".into(),
        };
        let s = Session {
            target: Target {
                host: "h".into(),
                user: None,
                port: None,
                key: Some("/root/.ssh/fleet key".into()),
            },
            options: o,
            control: "/tmp/x/s.sock".into(),
        };
        let c = s.command(&["echo", "a b", "$HOME", "it's"]).unwrap();
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let remote = args.last().unwrap();
        assert_eq!(
            shlex::split(remote).unwrap(),
            ["echo", "a b", "$HOME", "it's"]
        );
        // The inventory's key, and only it, as one argument.
        let i = args.iter().position(|a| a == "-i").expect("-i");
        assert_eq!(args[i + 1], "/root/.ssh/fleet key");
        assert!(args.iter().any(|a| a == "IdentitiesOnly=yes"), "{args:?}");
        std::mem::forget(s);
    }
}
