//! Running a program with a bound on its time and its output.
//!
//! The child gets its own process group and a marker in its environment
//! (`scope`), so a timeout ends everything it started, not just the first
//! process, and when the first process ends, what it left behind is ended
//! too: a command's time bound includes its descendants. Standard input is
//! closed: nothing hoist runs may stop to ask a question.

pub mod scope;
pub mod stop;
pub mod unit;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    let marker = scope::mark(cmd);
    let mut contained = marker.as_deref().and_then(|m| scope::contain(cmd, m));
    let cmd = contained.as_mut().unwrap_or(cmd);
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
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().map(|r| reader(r, tx.clone()));
    let err = child.stderr.take().map(|r| reader(r, tx.clone()));
    drop(tx);
    let deadline = Instant::now() + timeout;
    let (status, killed) = wait_bounded(child, pgid, marker.clone(), deadline)?;
    end_leftovers(marker.as_deref(), pgid, killed);
    // Both pipes closed once nothing holds them; a process that left the
    // group and cleared its marker could hold one: not past the deadline.
    let mut open = usize::from(out.is_some()) + usize::from(err.is_some());
    while open > 0 {
        let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        match rx.recv_timeout(wait) {
            Ok(()) => open -= 1,
            Err(_) => break,
        }
    }
    let collect = |k: Option<Kept>| k.map(|k| k.take()).unwrap_or_default();
    Ok(Output {
        status: (!killed).then_some(status),
        stdout: collect(out),
        stderr: collect(err),
        elapsed: start.elapsed(),
    })
}

/// What the first process left behind when it ended (or everything, at a
/// timeout): ended, its group and its marked descendants. Not for a
/// detached command (`marker` `None`): its daemon is meant to stay.
fn end_leftovers(marker: Option<&str>, pgid: Pid, killed: bool) {
    let Some(marker) = marker else { return };
    let grace = if killed {
        Duration::ZERO
    } else {
        LEFTOVER_GRACE
    };
    scope::end(marker, Some(pgid), grace);
}

/// How long what a command left behind gets after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

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
    let marker = scope::mark(cmd);
    let mut contained = marker.as_deref().and_then(|m| scope::contain(cmd, m));
    let cmd = contained.as_mut().unwrap_or(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .spawn()?;
    let pgid = Pid::from_raw(child.id() as i32);
    let (status, killed) = wait_bounded(child, pgid, marker.clone(), Instant::now() + timeout)?;
    end_leftovers(marker.as_deref(), pgid, killed);
    Ok(Output {
        status: (!killed).then_some(status),
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
        let id = watchdog::watch(pgid, None, Instant::now() + timeout, Arc::clone(&killed));
        Deadline { id, killed }
    }

    /// Ends the watch; whether the deadline had killed the child.
    pub fn release(self) -> bool {
        watchdog::release(self.id);
        self.killed.load(Ordering::SeqCst)
    }
}

/// Waits for the child, or kills its whole group and its marked
/// descendants at the deadline (`true`: killed). The wait blocks in
/// wait(2), so the end is seen at once; one watchdog thread, shared by
/// every child, enforces the deadlines (a thread per child cost more than
/// the child itself for short commands).
fn wait_bounded(
    mut child: std::process::Child,
    pgid: Pid,
    marker: Option<String>,
    deadline: Instant,
) -> std::io::Result<(ExitStatus, bool)> {
    let killed = Arc::new(AtomicBool::new(false));
    let id = watchdog::watch(pgid, marker, deadline, Arc::clone(&killed));
    let status = child.wait();
    watchdog::release(id);
    Ok((status?, killed.load(Ordering::SeqCst)))
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
        Watch(u64, Watched),
        Release(u64),
    }

    struct Watched {
        pgid: Pid,
        marker: Option<String>,
        deadline: Instant,
        killed: Arc<AtomicBool>,
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

    pub fn watch(
        pgid: Pid,
        marker: Option<String>,
        deadline: Instant,
        killed: Arc<AtomicBool>,
    ) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        send(Msg::Watch(
            id,
            Watched {
                pgid,
                marker,
                deadline,
                killed,
            },
        ));
        id
    }

    pub fn release(id: u64) {
        send(Msg::Release(id));
    }

    fn run(rx: Receiver<Msg>) {
        let mut watched: HashMap<u64, Watched> = HashMap::new();
        loop {
            let now = Instant::now();
            for w in watched.values().filter(|w| w.deadline <= now) {
                w.killed.store(true, Ordering::SeqCst);
                let _ = killpg(w.pgid, Signal::SIGKILL);
                // Descendants that left the group go too: the bound is
                // the command's, all of it.
                if let Some(m) = &w.marker {
                    for p in super::scope::members(|x| x == m) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                    }
                }
            }
            watched.retain(|_, w| w.deadline > now);
            let wait = watched
                .values()
                .map(|w| w.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(wait) {
                Ok(Msg::Watch(id, w)) => {
                    watched.insert(id, w);
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

/// A stream's bytes as they are read (at most `KEEP`), shared with the
/// thread reading them, which says on `done` when the stream closed.
struct Kept(Arc<std::sync::Mutex<Vec<u8>>>);

impl Kept {
    fn take(self) -> String {
        let bytes = self
            .0
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn reader<R: Read + Send + 'static>(mut r: R, done: std::sync::mpsc::Sender<()>) -> Kept {
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = Arc::clone(&kept);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut k) = shared.lock() {
                let room = KEEP.saturating_sub(k.len());
                k.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        let _ = done.send(());
    });
    Kept(kept)
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
    fn a_background_child_ends_with_its_command() {
        // `sleep 30 &` keeps stdout open: without ending it, the check
        // would take 30 s and pass.
        let o = run(&mut shell("sleep 30 & true"), Duration::from_secs(20)).unwrap();
        assert!(o.success());
        assert!(o.elapsed < Duration::from_secs(10), "took {:?}", o.elapsed);
    }

    #[test]
    fn a_descendant_that_left_the_group_ends_at_the_timeout() {
        let o = run(
            &mut shell("setsid sleep 30 & sleep 30"),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(o.timed_out());
        assert!(o.elapsed < Duration::from_secs(10), "took {:?}", o.elapsed);
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
