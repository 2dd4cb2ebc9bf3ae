//! What an action sees while it runs: the run's environment, the step's
//! time bound, the run log, the run's record (events, `once` marks, the
//! state directory) through [`Recorder`], the admin's stop, and whether a
//! person is there to answer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::recipe::ServiceSpec;
use crate::sys::process;

/// A step's default bound when the recipe gives none: every wait is bounded.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The part of the run's record an action may use, and no more: the journal
/// implements it (in `run::journal`), so actions never hold the journal
/// itself and cannot move a run's or a step's state.
pub trait Recorder {
    /// The state directory: where a reboot leaves its marker and `db` its
    /// index of dumps.
    fn state_dir(&self) -> &Path;

    /// Records what the run saw (`stale-services`, `conffiles`) for
    /// `hoist status` and the report.
    fn event(&mut self, run: i64, kind: &str, detail: &str) -> Result<(), String>;

    /// The `once` marks of `product` on this host.
    fn once_done(&self, product: &str) -> Result<Vec<String>, String>;

    /// Marks `name` done once for `product`, by `run`.
    fn mark_once(&mut self, product: &str, name: &str, run: i64) -> Result<(), String>;
}

/// Built by [`Ctx::new`] and its `with_` setters; the fields stay public for
/// the actions that read them (`ctx.run`, `ctx.step_dir`, ...).
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
    /// The run's record, private: actions use it through [`Ctx::event`],
    /// [`Ctx::once_done`], [`Ctx::mark_once`] and [`Ctx::state_dir`].
    record: &'a mut dyn Recorder,
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

/// No one to ask: outside a terminal, nothing is read.
fn no_answer(_: &str) -> Option<String> {
    None
}

/// Nothing shown while the step runs.
fn no_progress(_: &str) {}

impl<'a> Ctx<'a> {
    /// The context of `product`'s actions, their output into `log`, run
    /// outside a run (run 0, no environment), bounded by [`DEFAULT_TIMEOUT`],
    /// keeping nothing (the temporary directory), with no person to ask and
    /// nothing to show: the preflight's. A step's own adds the `with_`
    /// settings.
    pub fn new(
        product: &'a str,
        recipe_dir: &'a Path,
        services: &'a [ServiceSpec],
        log: &'a File,
        record: &'a mut dyn Recorder,
    ) -> Self {
        Ctx {
            product,
            run: 0,
            recipe_dir,
            services,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            log,
            step_dir: std::env::temp_dir(),
            undoable: true,
            record,
            interactive: false,
            confirmed: None,
            awaits_person: false,
            ask: &no_answer,
            progress: &no_progress,
        }
    }

    /// A step of run `run`, with its environment (`HOIST_*`).
    pub fn with_run(mut self, run: i64, env: Vec<(String, String)>) -> Self {
        self.run = run;
        self.env = env;
        self
    }

    /// The step's time bound.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The step's own directory, and whether the step may be undone (what
    /// the built-in undo keeps there).
    pub fn with_step_dir(mut self, step_dir: PathBuf, undoable: bool) -> Self {
        self.step_dir = step_dir;
        self.undoable = undoable;
        self
    }

    /// Who can answer a gate: a person at a terminal (`interactive`, asked
    /// through `ask`), and the admin's confirmation given in advance.
    pub fn with_person(
        mut self,
        interactive: bool,
        confirmed: Option<String>,
        ask: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        self.interactive = interactive;
        self.confirmed = confirmed;
        self.ask = ask;
        self
    }

    /// Where the step's lines of progress go.
    pub fn with_progress(mut self, progress: &'a dyn Fn(&str)) -> Self {
        self.progress = progress;
        self
    }

    /// Records an event of this run (see [`Recorder::event`]).
    pub fn event(&mut self, kind: &str, detail: &str) -> Result<(), String> {
        self.record.event(self.run, kind, detail)
    }

    /// The product's `once` marks on this host.
    pub fn once_done(&self) -> Result<Vec<String>, String> {
        self.record.once_done(self.product)
    }

    /// Marks `name` done once for the product, by this run.
    pub fn mark_once(&mut self, name: &str) -> Result<(), String> {
        self.record.mark_once(self.product, name, self.run)
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.record.state_dir()
    }

    /// Whether the admin asked the run to stop (a signal): a wait ends at
    /// once rather than at its bound (see [`crate::sys::process::stop`]).
    pub fn stop_requested(&self) -> bool {
        process::stop::requested()
    }

    /// Sleeps `d`, or less when the admin asks the run to stop: then
    /// `false`.
    pub fn sleep(&self, d: Duration) -> bool {
        process::stop::sleep(d)
    }

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
        let _ = writeln!(log, "{}", crate::sys::clock::log_line(line));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A record that keeps what actions tell it.
    #[derive(Default)]
    struct Kept {
        dir: PathBuf,
        events: Vec<(i64, String, String)>,
        marks: Vec<(String, String, i64)>,
    }

    impl Recorder for Kept {
        fn state_dir(&self) -> &Path {
            &self.dir
        }
        fn event(&mut self, run: i64, kind: &str, detail: &str) -> Result<(), String> {
            self.events.push((run, kind.into(), detail.into()));
            Ok(())
        }
        fn once_done(&self, product: &str) -> Result<Vec<String>, String> {
            Ok(self
                .marks
                .iter()
                .filter(|m| m.0 == product)
                .map(|m| m.1.clone())
                .collect())
        }
        fn mark_once(&mut self, product: &str, name: &str, run: i64) -> Result<(), String> {
            self.marks.push((product.into(), name.into(), run));
            Ok(())
        }
    }

    fn null_log() -> File {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap()
    }

    #[test]
    fn the_constructor_gives_the_preflight_s_context() {
        let log = null_log();
        let mut kept = Kept {
            dir: "/var/lib/hoist".into(),
            ..Kept::default()
        };
        let ctx = Ctx::new("app", Path::new("/r"), &[], &log, &mut kept);
        assert_eq!((ctx.product, ctx.run), ("app", 0));
        assert!(ctx.env.is_empty());
        assert_eq!(ctx.timeout, DEFAULT_TIMEOUT);
        assert_eq!(ctx.step_dir, std::env::temp_dir());
        assert!(ctx.undoable);
        assert!(!ctx.interactive && !ctx.awaits_person);
        assert_eq!(ctx.confirmed, None);
        assert_eq!((ctx.ask)("continue?"), None);
        (ctx.progress)("shown nowhere");
        assert_eq!(ctx.path("a/b"), Path::new("/r/a/b"));
        assert_eq!(ctx.path("/etc/x"), Path::new("/etc/x"));
        assert_eq!(ctx.state_dir(), Path::new("/var/lib/hoist"));
    }

    #[test]
    fn the_settings_of_a_step_are_kept() {
        let log = null_log();
        let mut kept = Kept::default();
        let ask = |q: &str| Some(format!("yes to {q}"));
        let shown = std::cell::RefCell::new(Vec::new());
        let progress = |line: &str| shown.borrow_mut().push(line.to_string());
        let env = vec![("HOIST_RUN_ID".to_string(), "4".to_string())];
        let ctx = Ctx::new("app", Path::new("/r"), &[], &log, &mut kept)
            .with_run(4, env.clone())
            .with_timeout(Duration::from_secs(5))
            .with_step_dir("/s/4/step".into(), false)
            .with_person(true, Some("--confirm".into()), &ask)
            .with_progress(&progress);
        assert_eq!(ctx.run, 4);
        assert_eq!(ctx.env, env);
        assert_eq!(ctx.timeout, Duration::from_secs(5));
        assert_eq!(ctx.step_dir, Path::new("/s/4/step"));
        assert!(!ctx.undoable);
        assert!(ctx.interactive);
        assert_eq!(ctx.confirmed.as_deref(), Some("--confirm"));
        assert_eq!((ctx.ask)("go").as_deref(), Some("yes to go"));
        (ctx.progress)("waiting");
        assert_eq!(*shown.borrow(), ["waiting"]);
    }

    #[test]
    fn events_and_marks_carry_the_run_and_the_product() {
        let log = null_log();
        let mut kept = Kept::default();
        let mut ctx =
            Ctx::new("app", Path::new("/r"), &[], &log, &mut kept).with_run(9, Vec::new());
        ctx.event("conffiles", "/etc/app.conf").unwrap();
        assert!(ctx.once_done().unwrap().is_empty());
        ctx.mark_once("hook:/h/10-x").unwrap();
        assert_eq!(ctx.once_done().unwrap(), ["hook:/h/10-x"]);
        drop(ctx);
        assert_eq!(
            kept.events,
            [(9, "conffiles".to_string(), "/etc/app.conf".to_string())]
        );
        assert_eq!(
            kept.marks,
            [("app".to_string(), "hook:/h/10-x".to_string(), 9)]
        );
    }
}
