//! The one way hoist writes to its standard output and standard error:
//! `outln!`, `out!` and `errln!`, the confirmation question, the progress
//! bar and clap's help and usage errors. Nothing else in hoist writes there
//! (`tests/output.rs` checks it).
//!
//! A write here never panics. Rust ignores SIGPIPE, so a reader gone away
//! is an EPIPE on write, which `println!` turns into a panic: exit 101 in
//! the middle of a run, a service stopped and nothing rolled back. SIGPIPE
//! stays ignored (its default action would kill a run just the same); what
//! a failed write means is the command's to say, with [`set_policy`]:
//!
//! - [`Policy::GoOn`], a command that changes the host: the work goes on
//!   exactly as it would have, and the journal and the run log keep
//!   everything the admin would have read. The first failure of a stream is
//!   remembered, said once on stderr when it is stdout, and that stream is
//!   left alone from then on.
//! - [`Policy::Quit`], a command that only reads (the default, so clap's
//!   help and errors, shown before a command is chosen, have it): a broken
//!   pipe ends it at once and quietly with [`EXIT_BROKEN_PIPE`], as a shell
//!   reports a program SIGPIPE killed; any other failure (a full disk, an
//!   I/O error) ends it with 1 and one line on stderr.

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::exit::{EXIT_BROKEN_PIPE, EXIT_REFUSED, EXIT_USAGE};

/// What a failed write does to the command (see the module's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The command only reads: it ends.
    Quit,
    /// The command changes the host: it goes on, unseen.
    GoOn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

static GO_ON: AtomicBool = AtomicBool::new(false);
/// Per stream: a write to it has failed.
static FAILED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

pub fn set_policy(policy: Policy) {
    GO_ON.store(policy == Policy::GoOn, Ordering::SeqCst);
}

pub fn policy() -> Policy {
    if GO_ON.load(Ordering::SeqCst) {
        Policy::GoOn
    } else {
        Policy::Quit
    }
}

/// Whether a write to `stream` has failed (the output is incomplete).
pub fn failed(stream: Stream) -> bool {
    FAILED[stream as usize].load(Ordering::SeqCst)
}

/// A line on standard output: `outln!("{x}")`, like `println!`.
macro_rules! outln {
    () => {
        $crate::output::out::write($crate::output::out::Stream::Stdout, format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::out::write($crate::output::out::Stream::Stdout, format_args!($($arg)*), true)
    };
}

/// Text on standard output without a newline added, like `print!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::out::write($crate::output::out::Stream::Stdout, format_args!($($arg)*), false)
    };
}

/// A line on standard error, like `eprintln!`.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::out::write($crate::output::out::Stream::Stderr, format_args!($($arg)*), true)
    };
}

/// Writes and flushes at once: a failure is seen at the write that met it,
/// not at exit, when nothing can be done about it.
pub fn write(stream: Stream, args: fmt::Arguments, newline: bool) {
    if failed(stream) {
        return;
    }
    let put = |w: &mut dyn Write| -> io::Result<()> {
        w.write_fmt(args)?;
        if newline {
            w.write_all(b"\n")?;
        }
        w.flush()
    };
    let result = match stream {
        Stream::Stdout => put(&mut io::stdout().lock()),
        Stream::Stderr => put(&mut io::stderr().lock()),
    };
    if let Err(e) = result {
        failure(stream, &e);
    }
}

fn failure(stream: Stream, e: &io::Error) {
    let first = !FAILED[stream as usize].swap(true, Ordering::SeqCst);
    match policy() {
        Policy::Quit => {
            if e.kind() == io::ErrorKind::BrokenPipe {
                std::process::exit(EXIT_BROKEN_PIPE.into());
            }
            if stream == Stream::Stdout {
                let _ = writeln!(
                    io::stderr().lock(),
                    "hoist: cannot write to standard output: {e}"
                );
            }
            std::process::exit(EXIT_REFUSED.into());
        }
        Policy::GoOn => {
            if first && stream == Stream::Stdout {
                write(
                    Stream::Stderr,
                    format_args!(
                        "hoist: cannot write to standard output: {e}; going on unseen (the journal and the run log keep everything)"
                    ),
                    true,
                );
            }
        }
    }
}

/// Asks a question on the terminal; `None` when no answer can be read.
pub fn ask(question: &str) -> Option<String> {
    ask_within(question, None)
}

/// [`ask`], giving up after `within` (a gate's bound), or at once when the
/// admin asks the run to stop (a signal must pause a gate at once, not
/// after someone types).
pub fn ask_within(question: &str, within: Option<std::time::Duration>) -> Option<String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    write(Stream::Stderr, format_args!("{question}"), false);
    let stdin = io::stdin();
    let until = within.map(|w| std::time::Instant::now() + w);
    loop {
        if crate::sys::process::stop::requested()
            || until.is_some_and(|u| std::time::Instant::now() >= u)
        {
            return None;
        }
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) => continue,
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).ok()?;
    Some(line)
}

/// Someone can answer a question.
pub fn interactive() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Shows clap's help, version or usage error as clap would (its colours,
/// its stream) and gives its exit code; a failed write follows the policy.
pub fn clap_error(e: &clap::Error) -> u8 {
    let stream = if e.use_stderr() {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let shown = e.print().and_then(|()| match stream {
        Stream::Stdout => io::stdout().flush(),
        Stream::Stderr => io::stderr().flush(),
    });
    if let Err(err) = shown {
        failure(stream, &err);
    }
    u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE)
}

/// A progress bar on stderr, when it is a terminal. indicatif draws it
/// itself and drops its own failed writes (a bar never panics on them).
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    pub fn on_terminal(total: u64) -> Option<Bar> {
        if !stderr_is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(total);
        let template = if crate::output::diag::colour_wanted() {
            "{spinner:.cyan} [{pos}/{len}] {wide_msg} {elapsed:.dim}"
        } else {
            "{spinner} [{pos}/{len}] {wide_msg} {elapsed}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(Bar(bar))
    }

    /// A line above the bar (stderr, as the bar).
    pub fn line(&self, text: &str) {
        if !failed(Stream::Stderr) {
            self.0.println(text);
        }
    }

    pub fn set_position(&self, n: u64) {
        self.0.set_position(n);
    }

    pub fn set_message(&self, message: String) {
        self.0.set_message(message);
    }

    /// Runs `f` with the bar out of the way (a question).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        self.0.suspend(f)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Standard error, handed to a child as its standard output: what it says
/// goes to the admin without mixing into a JSON stdout.
pub fn stderr_for_child() -> std::process::Stdio {
    std::process::Stdio::from(io::stderr())
}
