//! What the admin sees: plain lines, a progress bar on a terminal, or JSON
//! Lines events (`--json`, typed in `wire`), and the same events in the
//! systemd journal (`journald`). NO_COLOR is respected.

use crate::output::wire::Event;

pub use crate::output::out::{ask, ask_within, interactive};

/// Reports a run as it goes.
pub struct Reporter {
    json: bool,
    bar: Option<crate::output::out::Bar>,
    /// The same events in the systemd journal, when it is there.
    journald: Option<crate::output::journald::Journald>,
}

impl Reporter {
    pub fn new(json: bool, total: usize) -> Reporter {
        let bar = if json {
            None
        } else {
            crate::output::out::Bar::on_terminal(total as u64)
        };
        Reporter {
            json,
            bar,
            journald: None,
        }
    }

    /// Sends every event to the systemd journal too (`journald`).
    pub fn with_journald(mut self, sink: Option<crate::output::journald::Journald>) -> Reporter {
        self.journald = sink;
        self
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// An event: to the systemd journal when it is there, and as a JSON
    /// Lines event with `--json`.
    pub fn event(&self, event: Event) {
        if let Some(sink) = &self.journald {
            sink.send(&event);
        }
        if self.json {
            crate::output::wire::emit(event);
        }
    }

    /// A line for a person (not in `--json` mode).
    pub fn line(&self, text: &str) {
        if self.json {
            return;
        }
        match &self.bar {
            Some(bar) => bar.line(text),
            None => outln!("{text}"),
        }
    }

    pub fn step_started(&self, n: usize, total: usize, key: &str, summary: &str) {
        self.event(Event::StepStarted {
            step: key.to_string(),
            n,
            total,
            summary: summary.to_string(),
        });
        // The live line numbers the step it runs (`[2/9] stop`), as the
        // line its end prints (`[2/9] stop: done`).
        if let Some(bar) = &self.bar {
            bar.set_position(n as u64);
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
        self.event(Event::StepFinished {
            step: key.to_string(),
            n,
            state: state.to_string(),
            seconds: secs,
            error: error.map(str::to_string),
        });
        let tail = error.map(|e| format!(": {e}")).unwrap_or_default();
        self.line(&format!("[{n}/{total}] {key}: {state} ({secs:.1} s){tail}"));
        if let Some(bar) = &self.bar {
            bar.set_position(n as u64);
        }
    }

    /// A line from a running step (a followed log, a long wait).
    pub fn progress(&self, key: &str, line: &str) {
        self.event(Event::StepProgress {
            step: key.to_string(),
            line: line.to_string(),
        });
        self.line(&format!("      {key}: {line}"));
    }

    pub fn undo_finished(&self, key: &str, state: &str, secs: f64, error: Option<&str>) {
        self.event(Event::UndoFinished {
            step: key.to_string(),
            state: state.to_string(),
            seconds: secs,
            error: error.map(str::to_string),
        });
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
            bar.finish();
        }
    }
}
