//! Running a program with a bound on its time and its output.
//!
//! The child gets its own process group, so a timeout kills everything it
//! started, not just the first process. Standard input is closed: nothing
//! hoist runs may stop to ask a question.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    run_fed(cmd, None, timeout)
}

/// Runs `cmd` with `input` as its standard input (then closed), output
/// captured, for at most `timeout`: how a secret or a file reaches a
/// command without appearing in its argv.
pub fn run_with_stdin(
    cmd: &mut Command,
    input: &[u8],
    timeout: Duration,
) -> std::io::Result<Output> {
    run_fed(cmd, Some(input.to_vec()), timeout)
}

fn run_fed(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = Pid::from_raw(child.id() as i32);
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // A writer thread: a child that does not read must not block us
        // past the timeout. A closed pipe (the child exited) ends it.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&bytes);
        });
    }
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

/// A deadline on a child spawned in its own process group (`process_group(0)`)
/// that the caller waits for itself: at the deadline its whole group is
/// killed.
pub struct Deadline {
    id: u64,
    killed: Arc<AtomicBool>,
}

impl Deadline {
    pub fn kill_at(child: &std::process::Child, timeout: Duration) -> Deadline {
        let killed = Arc::new(AtomicBool::new(false));
        let pgid = Pid::from_raw(child.id() as i32);
        let id = watchdog::watch(pgid, Instant::now() + timeout, Arc::clone(&killed));
        Deadline { id, killed }
    }

    /// Ends the watch; whether the deadline had killed the child.
    pub fn release(self) -> bool {
        watchdog::release(self.id);
        self.killed.load(Ordering::SeqCst)
    }
}

/// Waits for the child, or kills its whole group at the timeout (`None`).
/// The wait blocks in wait(2), so the end is seen at once; one watchdog
/// thread, shared by every child, enforces the deadlines (a thread per child
/// cost more than the child itself for short commands).
fn wait_bounded(
    mut child: std::process::Child,
    pgid: Pid,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let killed = Arc::new(AtomicBool::new(false));
    let id = watchdog::watch(pgid, Instant::now() + timeout, Arc::clone(&killed));
    let status = child.wait();
    watchdog::release(id);
    let status = status?;
    Ok((!killed.load(Ordering::SeqCst)).then_some(status))
}

mod watchdog {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    enum Msg {
        Watch(u64, Pid, Instant, Arc<AtomicBool>),
        Release(u64),
    }

    static TX: OnceLock<Mutex<Sender<Msg>>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);

    fn send(m: Msg) {
        let tx = TX.get_or_init(|| {
            let (tx, rx) = channel();
            std::thread::spawn(move || run(rx));
            Mutex::new(tx)
        });
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(m);
        }
    }

    pub fn watch(pgid: Pid, deadline: Instant, killed: Arc<AtomicBool>) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        send(Msg::Watch(id, pgid, deadline, killed));
        id
    }

    pub fn release(id: u64) {
        send(Msg::Release(id));
    }

    fn run(rx: Receiver<Msg>) {
        let mut watched: HashMap<u64, (Pid, Instant, Arc<AtomicBool>)> = HashMap::new();
        loop {
            let now = Instant::now();
            for (pgid, _, killed) in watched.values().filter(|w| w.1 <= now) {
                killed.store(true, Ordering::SeqCst);
                let _ = killpg(*pgid, Signal::SIGKILL);
            }
            watched.retain(|_, w| w.1 > now);
            let wait = watched
                .values()
                .map(|w| w.1.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(wait) {
                Ok(Msg::Watch(id, pgid, deadline, killed)) => {
                    watched.insert(id, (pgid, deadline, killed));
                }
                Ok(Msg::Release(id)) => {
                    watched.remove(&id);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
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
