//! Running a program with a bound on its time and its output.
//!
//! The child gets its own process group, so a timeout kills everything it
//! started, not just the first process. Standard input is closed: nothing
//! hoist runs may stop to ask a question.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// At most this much of each stream is kept; the rest is counted, not stored.
const KEEP: usize = 64 * 1024;

#[derive(Debug)]
pub struct Output {
    /// `None` when killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

/// Runs `cmd` (its stdin closed, output captured) for at most `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = Pid::from_raw(child.id() as i32);
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let status = wait_bounded(child, pgid, timeout)?;
    // The group may still hold the pipes open after the leader exits; kill
    // what is left so the readers finish.
    if status.is_none() {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let collect = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
        elapsed: start.elapsed(),
    })
}

/// Runs `cmd` with its standard output and error appended to `log` (stdin
/// closed), for at most `timeout`. The output is on disk as it is written,
/// whatever happens to hoist.
pub fn run_logged(
    cmd: &mut Command,
    timeout: Duration,
    log: &std::fs::File,
) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .spawn()?;
    let pgid = Pid::from_raw(child.id() as i32);
    let status = wait_bounded(child, pgid, timeout)?;
    Ok(Output {
        status,
        stdout: String::new(),
        stderr: String::new(),
        elapsed: start.elapsed(),
    })
}

/// Waits for the child, or kills its whole group at the timeout (`None`).
/// A thread blocks in wait(2) so the end is seen at once, not at the next
/// poll.
fn wait_bounded(
    mut child: std::process::Child,
    pgid: Pid,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(status) => status.map(Some),
        Err(_) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            // The waiter reaps the child once it is dead.
            let _ = rx.recv_timeout(Duration::from_secs(10));
            Ok(None)
        }
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// A command from argv.
pub fn argv(args: &[String]) -> Command {
    let mut c = Command::new(&args[0]);
    c.args(&args[1..]);
    c
}

/// A shell snippet, run by `/bin/sh -c`.
pub fn shell(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let o = run(
            &mut shell("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
        assert_eq!(o.status.and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        // The grandchild holds stdout open; without the group kill, the
        // reader would wait for it for 30 s.
        let o = run(
            &mut shell("sleep 30 & sleep 30"),
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(o.timed_out());
        assert!(o.elapsed < Duration::from_secs(10), "took {:?}", o.elapsed);
    }
}
