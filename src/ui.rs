//! What the admin sees: plain lines, a progress bar on a terminal, or JSON
//! Lines events with a versioned schema (`--json`). NO_COLOR is respected.

use std::io::{BufRead, IsTerminal, Write};

/// Bumped when an event's fields change incompatibly.
pub const EVENT_SCHEMA: u32 = 1;

/// Asks a question on the terminal; `None` when no answer can be read, or
/// when the admin asks the run to stop while it waits for the answer (a
/// signal must pause a gate at once, not after someone types).
pub fn ask(question: &str) -> Option<String> {
    ask_within(question, None)
}

/// [`ask`], giving up after `within` (a gate's bound).
pub fn ask_within(question: &str, within: Option<std::time::Duration>) -> Option<String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let stdin = std::io::stdin();
    let until = within.map(|w| std::time::Instant::now() + w);
    loop {
        if crate::process::stop::requested()
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

pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Reports a run as it goes.
pub struct Reporter {
    json: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    pub fn new(json: bool, total: usize) -> Reporter {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let colour = crate::diag::colour_wanted();
            let template = if colour {
                "{spinner:.cyan} [{pos}/{len}] {wide_msg} {elapsed:.dim}"
            } else {
                "{spinner} [{pos}/{len}] {wide_msg} {elapsed}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Reporter { json, bar }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// A JSON Lines event (only with `--json`).
    pub fn event(&self, event: &str, fields: serde_json::Value) {
        if !self.json {
            return;
        }
        let mut obj = serde_json::json!({ "schema": EVENT_SCHEMA, "event": event, "at": crate::journal::now() });
        if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{obj}");
        let _ = out.flush();
    }

    /// A line for a person (not in `--json` mode).
    pub fn line(&self, text: &str) {
        if self.json {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    pub fn step_started(&self, n: usize, total: usize, key: &str, summary: &str) {
        self.event(
            "step-started",
            serde_json::json!({ "step": key, "n": n, "total": total, "summary": summary }),
        );
        if let Some(bar) = &self.bar {
            bar.set_position(n.saturating_sub(1) as u64);
            bar.set_message(format!("{key}: {summary}"));
        }
    }

    pub fn step_finished(
        &self,
        n: usize,
        total: usize,
        key: &str,
        state: &str,
        secs: f64,
        error: Option<&str>,
    ) {
        self.event(
            "step-finished",
            serde_json::json!({ "step": key, "n": n, "state": state, "seconds": secs, "error": error }),
        );
        let tail = error.map(|e| format!(": {e}")).unwrap_or_default();
        self.line(&format!("[{n}/{total}] {key}: {state} ({secs:.1} s){tail}"));
        if let Some(bar) = &self.bar {
            bar.set_position(n as u64);
        }
    }

    /// A line from a running step (a followed log, a long wait).
    pub fn progress(&self, key: &str, line: &str) {
        self.event(
            "step-progress",
            serde_json::json!({ "step": key, "line": line }),
        );
        self.line(&format!("      {key}: {line}"));
    }

    pub fn undo_finished(&self, key: &str, state: &str, secs: f64, error: Option<&str>) {
        self.event(
            "undo-finished",
            serde_json::json!({ "step": key, "state": state, "seconds": secs, "error": error }),
        );
        let tail = error.map(|e| format!(": {e}")).unwrap_or_default();
        self.line(&format!("[undo] {key}: {state} ({secs:.1} s){tail}"));
    }

    /// Runs `f` with the progress display out of the way (a question).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
