//! Running external programs (debootstrap, ip, ssh, gpg, dpkg-deb...) with a
//! deadline. Every wait in the harness is bounded: a hung child is killed and
//! reported as a timeout with whatever it printed so far.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit code, or `None` if killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// `true` when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// How a command is described in errors: program and arguments, never stdin
/// (which is where secrets and scripts go).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion within `timeout`, feeding `stdin`, and return its
/// output whatever the exit status.
pub(crate) fn run_unchecked(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        action: "spawn",
        path: what.clone().into(),
        source: e,
    })?;
    // Feed stdin and drain both pipes on threads so that a chatty child can
    // never block on a full pipe while we poll for its exit.
    let feeder = stdin.map(|bytes| {
        let bytes = bytes.to_vec();
        let mut pipe = child.stdin.take();
        thread::spawn(move || {
            if let Some(p) = pipe.as_mut() {
                // A child that exits without reading its stdin is not an error.
                let _ = p.write_all(&bytes);
            }
        })
    });
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_deadline(&mut child, timeout);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(Error::Timeout {
            what: format!("`{what}` (stdout: {stdout:?}, stderr: {stderr:?})"),
            after: timeout,
        }),
    }
}

/// Run `cmd` and fail unless it exits with status 0.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    run_stdin(cmd, None, timeout)
}

/// Like [`run`], with bytes on stdin.
pub(crate) fn run_stdin(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let out = run_unchecked(cmd, stdin, timeout)?;
    if out.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child` until `timeout`; kill it and return `None` on expiry.
pub(crate) fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Poll `probe` every `every` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        thread::sleep(every);
    }
}
