//! A run's events in the systemd journal, beside the JSON Lines ones: the
//! same `wire::Event` values the reporter is given, each one journal entry
//! with structured fields, so `journalctl -t hoist HOIST_RUN=7` shows run 7
//! and `-o json` gives its fields:
//!
//! | field | value |
//! |---|---|
//! | `SYSLOG_IDENTIFIER` | `hoist` |
//! | `PRIORITY` | 3 a failure, 4 a rollback or a pause, 5 a run's start and end, 6 the rest |
//! | `MESSAGE` | the line an admin reads |
//! | `HOIST_RUN` | the journal's run id |
//! | `HOIST_EVENT` | the event's name (docs/WIRE.md) |
//! | `HOIST_STEP`, `HOIST_PHASE` | a step's key and phase, on step events |
//! | `HOIST_STATE` | the run's or the step's state, when the event has one |
//! | `HOIST_SECONDS`, `HOIST_ERROR` | a step's or an undo's time and error |
//!
//! Only what an event already carries goes there: no secret an event
//! line would not show. Written only when journald is there (its socket
//! answers); silently not otherwise (a container, a host without systemd).

use log::Level;
use systemd_journal_logger::JournalLog;

use crate::output::wire::Event;

/// One journal entry, before it is sent.
#[derive(Debug, PartialEq)]
pub struct Entry {
    pub priority: Level,
    pub message: String,
    pub fields: Vec<(&'static str, String)>,
}

/// The sink: the run it reports and each step's phase.
pub struct Journald {
    log: JournalLog,
    run: i64,
    /// Step key, phase name.
    phases: Vec<(String, String)>,
}

impl Journald {
    /// The journal of this host, or `None` when journald does not answer.
    pub fn open(run: i64, phases: Vec<(String, String)>) -> Option<Journald> {
        let log = JournalLog::empty()
            .ok()?
            .with_syslog_identifier("hoist".to_string());
        Some(Journald { log, run, phases })
    }

    /// Sends `event`; a failure is ignored (the run log and the journal
    /// database keep everything).
    pub fn send(&self, event: &Event) {
        let Some(entry) = entry(self.run, &self.phases, event) else {
            return;
        };
        let kvs: Vec<(&str, &str)> = entry.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let kvs: &[(&str, &str)] = &kvs;
        let _ = self.log.journal_send(
            &log::Record::builder()
                .level(entry.priority)
                .target("hoist")
                .args(format_args!("{}", entry.message))
                .key_values(&kvs)
                .build(),
        );
    }
}

/// `Level` as journald's priority: `Error` 3, `Warn` 4, `Info` 5 (notice),
/// `Debug` 6 (info), as the crate maps them.
const NOTICE: Level = Level::Info;
const INFO: Level = Level::Debug;

fn failed(state: &str) -> bool {
    let s = state.to_ascii_lowercase();
    s.contains("fail") || s == "rollback-failed" || s == "partly-rolled-back"
}

/// What `event` of run `run` becomes in the journal; `None` for what is
/// not a run's (a fleet-action's answer, an unknown event).
pub fn entry(run: i64, phases: &[(String, String)], event: &Event) -> Option<Entry> {
    let phase = |step: &str| {
        phases
            .iter()
            .find(|(k, _)| k == step)
            .map(|(_, p)| p.clone())
    };
    let mut fields: Vec<(&'static str, String)> = vec![("HOIST_RUN", run.to_string())];
    let step_fields = |fields: &mut Vec<(&'static str, String)>, step: &str| {
        fields.push(("HOIST_STEP", step.to_string()));
        if let Some(p) = phase(step) {
            fields.push(("HOIST_PHASE", p));
        }
    };
    let timed = |fields: &mut Vec<(&'static str, String)>,
                 state: &str,
                 seconds: f64,
                 error: &Option<String>| {
        fields.push(("HOIST_STATE", state.to_string()));
        fields.push(("HOIST_SECONDS", format!("{seconds:.3}")));
        if let Some(e) = error {
            fields.push(("HOIST_ERROR", e.clone()));
        }
    };
    let (name, priority, message) = match event {
        Event::RunStarted {
            product,
            from,
            to,
            plan_hash,
            steps,
            ..
        } => {
            fields.push(("HOIST_PRODUCT", product.clone()));
            fields.push(("HOIST_FROM", from.clone()));
            fields.push(("HOIST_TO", to.clone()));
            fields.push(("HOIST_PLAN_HASH", plan_hash.clone()));
            (
                "run-started",
                NOTICE,
                format!("run {run} started: {product} {from} -> {to}, {steps} steps"),
            )
        }
        Event::RunResumed { state, .. } => {
            fields.push(("HOIST_STATE", state.clone()));
            (
                "run-resumed",
                NOTICE,
                format!("run {run} resumed (it was {state})"),
            )
        }
        Event::RunState { state, .. } => {
            fields.push(("HOIST_STATE", state.clone()));
            ("run-state", INFO, format!("run {run} is {state}"))
        }
        Event::StepStarted {
            step,
            n,
            total,
            summary,
        } => {
            step_fields(&mut fields, step);
            (
                "step-started",
                INFO,
                format!("[{n}/{total}] {step}: {summary}"),
            )
        }
        Event::StepFinished {
            step,
            n,
            state,
            seconds,
            error,
        } => {
            step_fields(&mut fields, step);
            timed(&mut fields, state, *seconds, error);
            let tail = tail(error);
            (
                "step-finished",
                if failed(state) { Level::Error } else { INFO },
                format!("[{n}] {step}: {state} ({seconds:.1} s){tail}"),
            )
        }
        Event::StepProgress { step, line } => {
            step_fields(&mut fields, step);
            ("step-progress", INFO, format!("{step}: {line}"))
        }
        Event::UndoStarted { step, summary } => {
            step_fields(&mut fields, step);
            (
                "undo-started",
                Level::Warn,
                format!("undo {step}: {summary}"),
            )
        }
        Event::UndoFinished {
            step,
            state,
            seconds,
            error,
        } => {
            step_fields(&mut fields, step);
            timed(&mut fields, state, *seconds, error);
            let tail = tail(error);
            (
                "undo-finished",
                if failed(state) {
                    Level::Error
                } else {
                    Level::Warn
                },
                format!("[undo] {step}: {state} ({seconds:.1} s){tail}"),
            )
        }
        Event::RunFinished {
            state,
            message,
            log,
            ..
        } => {
            fields.push(("HOIST_STATE", state.clone()));
            if let Some(l) = log {
                fields.push(("HOIST_LOG", l.clone()));
            }
            let priority = match state.as_str() {
                "committed" | "prepared" => NOTICE,
                s if failed(s) => Level::Error,
                _ => Level::Warn,
            };
            ("run-finished", priority, format!("run {run}: {message}"))
        }
        Event::Notice { about, message } => {
            fields.push(("HOIST_ABOUT", about.clone()));
            ("notice", NOTICE, message.clone())
        }
        Event::Refused { error, message } => {
            fields.push(("HOIST_ERROR", error.clone()));
            ("refused", Level::Error, message.clone())
        }
        Event::UpToDate { .. }
        | Event::NothingToRollBack { .. }
        | Event::ActionFinished { .. }
        | Event::Unknown => return None,
    };
    fields.insert(1, ("HOIST_EVENT", name.to_string()));
    Some(Entry {
        priority,
        message,
        fields,
    })
}

/// `: ERROR` after a line, or nothing.
fn tail(error: &Option<String>) -> String {
    error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(e: &'a Entry, k: &str) -> Option<&'a str> {
        e.fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_step_event_carries_run_step_phase_and_its_priority() {
        let phases = vec![("stop-app@2.0".to_string(), "stop".to_string())];
        let e = entry(
            7,
            &phases,
            &Event::StepFinished {
                step: "stop-app@2.0".into(),
                n: 3,
                state: "FAILED".into(),
                seconds: 1.25,
                error: Some("exit 1".into()),
            },
        )
        .unwrap();
        assert_eq!(field(&e, "HOIST_RUN"), Some("7"));
        assert_eq!(field(&e, "HOIST_EVENT"), Some("step-finished"));
        assert_eq!(field(&e, "HOIST_STEP"), Some("stop-app@2.0"));
        assert_eq!(field(&e, "HOIST_PHASE"), Some("stop"));
        assert_eq!(field(&e, "HOIST_STATE"), Some("FAILED"));
        assert_eq!(field(&e, "HOIST_ERROR"), Some("exit 1"));
        assert_eq!(e.priority, Level::Error);
        assert_eq!(e.message, "[3] stop-app@2.0: FAILED (1.2 s): exit 1");
    }

    #[test]
    fn a_run_end_is_a_notice_when_committed_and_an_error_when_failed() {
        let end = |state: &str| {
            entry(
                1,
                &[],
                &Event::RunFinished {
                    run: 1,
                    state: state.into(),
                    message: "m".into(),
                    log: Some("/var/lib/hoist/runs/1.log".into()),
                    awaits_person: None,
                },
            )
            .unwrap()
        };
        assert_eq!(end("committed").priority, NOTICE);
        assert_eq!(end("rolled-back").priority, Level::Warn);
        assert_eq!(end("partly-rolled-back").priority, Level::Error);
        assert_eq!(end("failed").priority, Level::Error);
        assert_eq!(
            field(&end("failed"), "HOIST_LOG"),
            Some("/var/lib/hoist/runs/1.log")
        );
        assert!(field(&end("failed"), "HOIST_STEP").is_none());
    }

    #[test]
    fn what_is_not_a_run_event_is_not_sent() {
        assert!(entry(1, &[], &Event::Unknown).is_none());
    }
}
