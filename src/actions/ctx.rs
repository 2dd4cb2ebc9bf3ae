//! What an action sees while it runs: the run's environment, the step's
//! time bound, the run log, the journal (for `each_once` hooks), and whether
//! a person is there to answer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::recipe::ServiceSpec;
use crate::run::journal::Journal;
use crate::sys::process;

/// A step's default bound when the recipe gives none: every wait is bounded.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

pub struct Ctx<'a> {
    pub product: &'a str,
    pub run: i64,
    pub recipe_dir: &'a Path,
    pub services: &'a [ServiceSpec],
    /// HOIST_FROM_VERSION, HOIST_TO_VERSION, HOIST_RUN_ID, HOIST_PHASE.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// The run's log: every child writes its output straight into it.
    pub log: &'a File,
    /// This step's own directory in the state directory (mode 0700), where
    /// an action keeps what its built-in undo needs (old files, old .debs,
    /// dumps). Created before the step runs.
    pub step_dir: PathBuf,
    /// The step may be undone. False for a point of no return: an action
    /// with a built-in undo then keeps nothing for it (a Debian major
    /// upgrade would otherwise have to keep every old `.deb` first).
    pub undoable: bool,
    pub journal: &'a mut Journal,
    /// A person is at a terminal.
    pub interactive: bool,
    /// The admin confirmed this step's person gate in advance
    /// (`--confirm ID`), and how, for the journal; `--yes` never does.
    pub confirmed: Option<String>,
    /// Set by a person gate that found no one to answer: the run pauses at
    /// the step (exit 3) for `hoist resume --confirm ID`, rather than fail.
    pub awaits_person: bool,
    /// Asks the person at the terminal (with the progress display out of
    /// the way); `None` when nothing can be read.
    pub ask: &'a dyn Fn(&str) -> Option<String>,
    /// Shows a line to the admin while the step runs (a followed log, where
    /// a long wait stands); with `--json`, a `step-progress` event.
    pub progress: &'a dyn Fn(&str),
}

impl Ctx<'_> {
    /// A path from the recipe: relative ones are relative to its directory.
    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.recipe_dir.join(p)
        }
    }

    /// Writes a line to the run log (what hoist itself did).
    pub fn note(&self, line: &str) {
        use std::io::Write;
        let mut log = self.log;
        let _ = writeln!(log, "hoist: {line}");
    }

    /// Runs a program with the run's environment, its output into the run
    /// log, bounded by `timeout`. `Err` says why it failed.
    pub fn run(&self, mut cmd: Command, what: &str, timeout: Duration) -> Result<(), String> {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.note(&format!("run {what}"));
        verdict(
            what,
            timeout,
            process::run_logged(&mut cmd, timeout, self.log),
        )
    }

    /// [`Ctx::run`], showing each line appended to `follow` while the
    /// command runs (see [`crate::sys::follow`]); the lines go to the run log
    /// too.
    pub fn run_following(
        &self,
        mut cmd: Command,
        what: &str,
        timeout: Duration,
        follow: &Path,
    ) -> Result<(), String> {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.note(&format!("run {what}, following {}", follow.display()));
        let mut follower = crate::sys::follow::Follower::start(follow);
        let show = |lines: Vec<String>| {
            for line in lines {
                self.note(&format!("{}: {line}", follow.display()));
                (self.progress)(&line);
            }
        };
        let log = self.log;
        let out = std::thread::scope(|scope| {
            let child = scope.spawn(move || process::run_logged(&mut cmd, timeout, log));
            // Bounded: the child's own deadline ends it, and with it this loop.
            while !child.is_finished() {
                show(follower.poll());
                std::thread::sleep(Duration::from_millis(250));
            }
            child.join()
        });
        show(follower.finish());
        let out =
            out.unwrap_or_else(|_| Err(std::io::Error::other("the command's waiter panicked")));
        verdict(what, timeout, out)
    }
}

/// What a finished command means for the step.
fn verdict(
    what: &str,
    timeout: Duration,
    out: std::io::Result<process::Output>,
) -> Result<(), String> {
    let out = out.map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.timed_out() {
        return Err(format!(
            "{what}: no end after {}, killed",
            humantime::format_duration(timeout)
        ));
    }
    match out.status.and_then(|s| s.code()) {
        Some(0) => Ok(()),
        Some(c) => Err(format!("{what}: exited with status {c}")),
        None => Err(format!("{what}: killed by a signal")),
    }
}
