//! Reading what a host's hoist says: the JSON Lines events of `hoist
//! upgrade --json` into [`HostEvent`]s and a [`HostResult`], and `hoist
//! status --json` into a [`RemoteStatus`] for this rollout.
//!
//! Pure functions over text, so the mapping is tested without a host.

use super::transport::{HostEvent, HostResult, HostRollback, RemoteStatus};
use crate::output::wire::{self, Event, JournalEvent, RunBrief, Unread};
use crate::run::journal::ROLLOUT_EVENT;

/// What the lines of one upgrade said so far.
#[derive(Debug, Default)]
pub struct Upgrade {
    /// The host's run id (`run-started`).
    pub run: Option<i64>,
    /// `run-finished`: its state and message.
    pub finished: Option<(String, String)>,
    /// `run-finished` at a person's gate: the gate and what to do.
    pub awaits: Option<(String, String)>,
    /// `up-to-date`: nothing to do there.
    pub up_to_date: bool,
    /// `refused` messages, in order (a refusal changes nothing).
    pub refusals: Vec<String>,
    /// A line this controller cannot read (a newer schema): why.
    pub unreadable: Option<String>,
    /// Lines read (to read the rest from the file after a cut stream).
    pub lines: usize,
}

impl Upgrade {
    /// Reads one line; the event to show, if any. A line that is not an
    /// event (a stray message) is passed over; one of a newer schema is
    /// said, and the host's ending is then not taken from its lines.
    pub fn line(&mut self, line: &str) -> Option<HostEvent> {
        self.lines += 1;
        let event = match wire::read::<Event>(line) {
            Ok(l) => l.event,
            Err(Unread::NotAnEvent) => return None,
            Err(e @ Unread::Newer(_)) => {
                let why = e.to_string();
                self.unreadable = Some(why.clone());
                return Some(HostEvent::Note { text: why });
            }
        };
        match event {
            Event::RunStarted { run, .. } => {
                self.run = Some(run);
                Some(HostEvent::Started)
            }
            Event::StepStarted { step, .. } => Some(HostEvent::Step {
                id: step,
                state: "running".into(),
            }),
            Event::StepFinished { step, state, .. } => Some(HostEvent::Step { id: step, state }),
            Event::UndoFinished { step, state, .. } => Some(HostEvent::Step {
                id: step,
                state: format!("undo {state}"),
            }),
            Event::StepProgress { step, line } => Some(HostEvent::Note {
                text: format!("{step}: {line}"),
            }),
            Event::Refused { message, .. } => {
                self.refusals.push(message.clone());
                Some(HostEvent::Note { text: message })
            }
            Event::UpToDate { current, .. } => {
                self.up_to_date = true;
                Some(HostEvent::Note {
                    text: format!("already at {current}: nothing to do"),
                })
            }
            Event::RunFinished {
                state,
                message,
                awaits_person,
                ..
            } => {
                self.finished = Some((state, message));
                self.awaits = awaits_person.map(|a| (a.gate, a.message));
                None
            }
            _ => None,
        }
    }

    /// How the upgrade ended, once its process exited with `code`;
    /// `stderr` is its error output (a crash says why there).
    pub fn result(&self, code: Option<i32>, stderr: &str) -> HostResult {
        if let Some(why) = &self.unreadable {
            return HostResult::Failed(why.clone());
        }
        if let Some((gate, message)) = &self.awaits {
            return HostResult::Waiting {
                gate: gate.clone(),
                message: message
                    .trim_start_matches("waits for a person: ")
                    .to_string(),
            };
        }
        if let Some((state, message)) = &self.finished {
            return ended(state, message);
        }
        if self.up_to_date && code == Some(0) {
            return HostResult::Committed;
        }
        if let Some(last) = self.refusals.last() {
            return HostResult::Failed(format!("refused, nothing changed: {last}"));
        }
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        match code {
            Some(c) => HostResult::Failed(format!("hoist exited with status {c}: {why}")),
            None => HostResult::Lost(format!("hoist ended with no status: {why}")),
        }
    }
}

/// A host run's final state, as `run-finished` or the journal says it.
fn ended(state: &str, message: &str) -> HostResult {
    let message = if message.is_empty() {
        state.to_string()
    } else {
        message.to_string()
    };
    match state {
        "committed" => HostResult::Committed,
        "rolled-back" => HostResult::RolledBack(message),
        _ => HostResult::Failed(message),
    }
}

/// `hoist status --json` on the host, read for the rollout tagged `tag`.
/// `launched`: this rollout's upgrade was started there (its output file
/// exists), so a hoist holding the lock with no run of ours yet is ours
/// in its preflight.
pub fn status(text: &str, tag: &str, launched: bool) -> Result<RemoteStatus, String> {
    let answer: wire::Status<RunBrief, JournalEvent> = serde_json::from_str(text.trim())
        .map_err(|e| format!("`hoist status --json` said something else than its answer: {e}"))?;
    if answer.schema > wire::SCHEMA {
        return Err(Unread::Newer(answer.schema).to_string());
    }
    let live = answer.running_now.is_some();
    let ours = answer
        .events
        .iter()
        .any(|e| e.kind == ROLLOUT_EVENT && e.detail == tag);
    if !ours {
        return Ok(if live && launched {
            RemoteStatus::Running
        } else {
            RemoteStatus::NotStarted
        });
    }
    let run = answer.run.ok_or("`hoist status --json` names no run")?;
    let state = run.state.as_str();
    let error = run.error.as_deref().unwrap_or("");
    let next = answer.next.as_str();
    Ok(match state {
        "committed" | "rolled-back" => RemoteStatus::Ended(ended(state, error)),
        _ if live => RemoteStatus::Running,
        // Paused at a person's gate (its step and message in the run's
        // error, as `hoist status` reads them).
        "paused" if error.contains(" waits for a person: ") => {
            let (step, message) = error
                .split_once(" waits for a person: ")
                .unwrap_or_default();
            RemoteStatus::Ended(HostResult::Waiting {
                gate: step.split('@').next().unwrap_or(step).to_string(),
                message: message.to_string(),
            })
        }
        // Stopped for the admin: it will not go on by itself.
        "paused" | "failed" | "rollback-failed" | "partly-rolled-back" | "prepared" => {
            RemoteStatus::Ended(HostResult::Failed(format!("{state}: {error} ({next})")))
        }
        // Interrupted (killed, power cut): a boot-time resume may be on
        // its way; followed, bounded.
        _ => RemoteStatus::Running,
    })
}

/// The output of `hoist --json rollback --rollout TAG` on a host: its last
/// answer (`run-finished`, `nothing-to-roll-back`, `refused`) read from
/// the end; `stderr` and the exit code when it said none (it died).
pub fn rollback(stdout: &str, stderr: &str, code: Option<i32>) -> Result<HostRollback, String> {
    let said = stdout
        .lines()
        .rev()
        .find_map(|l| match wire::read::<Event>(l) {
            Ok(l) => match l.event {
                e @ (Event::RunFinished { .. }
                | Event::NothingToRollBack { .. }
                | Event::Refused { .. }) => Some(Ok(e)),
                _ => None,
            },
            Err(Unread::NotAnEvent) => None,
            Err(e) => Some(Err(e.to_string())),
        });
    match said {
        Some(Ok(Event::RunFinished { state, message, .. })) => match state.as_str() {
            "rolled-back" => Ok(HostRollback::RolledBack),
            "partly-rolled-back" => Ok(HostRollback::Partly(message)),
            _ => Err(format!("{state}: {message}")),
        },
        Some(Ok(Event::NothingToRollBack {
            reason, message, ..
        })) => Ok(if reason == "partly-rolled-back" {
            HostRollback::Partly(message)
        } else {
            HostRollback::NothingToDo(message)
        }),
        Some(Ok(Event::Refused { message, .. })) => Err(message),
        Some(Ok(_)) => Err("an answer this hoist does not know".to_string()),
        Some(Err(why)) => Err(why),
        None => Err(format!(
            "hoist rollback ended ({}) without an answer: {}",
            code.map_or("killed".to_string(), |c| format!("exit {c}")),
            stderr.lines().last().unwrap_or("no output")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_run_paused_at_a_persons_gate_is_read_as_waiting() {
        let mut u = Upgrade::default();
        let line = r#"{"schema":1,"event":"run-finished","run":1,"state":"paused","message":"paused: gate waits for a person: Tell the users. When it is done: `hoist resume --confirm gate`","awaits_person":{"gate":"gate","step":"gate@2.0","message":"waits for a person: Tell the users"}}"#;
        assert_eq!(u.line(line), None);
        assert_eq!(
            u.result(Some(3), ""),
            HostResult::Waiting {
                gate: "gate".into(),
                message: "Tell the users".into()
            }
        );
        // Another pause (a signal) is not a person's gate.
        let mut u = Upgrade::default();
        u.line(r#"{"event":"run-finished","state":"paused","message":"stopped by a signal"}"#);
        assert!(matches!(u.result(Some(3), ""), HostResult::Failed(_)));
        // Read back from the host's journal after a controller crash.
        let st = r#"{"run":{"state":"paused","error":"gate@2.0 waits for a person: Tell the users"},"events":[{"kind":"fleet-rollout","detail":"t"}],"next":""}"#;
        assert_eq!(
            status(st, "t", true),
            Ok(RemoteStatus::Ended(HostResult::Waiting {
                gate: "gate".into(),
                message: "Tell the users".into()
            }))
        );
    }

    #[test]
    fn a_hosts_rollback_answer_is_read() {
        let done = r#"{"schema":1,"event":"undo-finished","step":"x","state":"undone"}
{"schema":1,"event":"run-finished","run":2,"state":"rolled-back","message":"rolled back on request"}"#;
        assert_eq!(rollback(done, "", Some(0)), Ok(HostRollback::RolledBack));
        let again = r#"{"schema":1,"event":"nothing-to-roll-back","run":2,"reason":"rolled-back","message":"nothing to roll back: run 2 is rolled back already"}"#;
        assert_eq!(
            rollback(again, "", Some(0)),
            Ok(HostRollback::NothingToDo(
                "nothing to roll back: run 2 is rolled back already".into()
            ))
        );
        let refused = r#"{"schema":1,"event":"refused","error":"past-point-of-no-return","message":"run 2 is past its point of no return"}"#;
        assert_eq!(
            rollback(refused, "", Some(1)),
            Err("run 2 is past its point of no return".into())
        );
        let failed = r#"{"schema":1,"event":"run-finished","run":2,"state":"rollback-failed","message":"the rollback did not finish: x"}"#;
        assert_eq!(
            rollback(failed, "", Some(1)),
            Err("rollback-failed: the rollback did not finish: x".into())
        );
        assert!(
            rollback("", "Segmentation fault", None)
                .unwrap_err()
                .contains("killed")
        );
    }

    #[test]
    fn events_and_ending_are_read() {
        let mut u = Upgrade::default();
        let lines = [
            r#"{"schema":1,"event":"run-started","run":4,"product":"x"}"#,
            "not json",
            r#"{"schema":1,"event":"step-started","step":"install","n":1}"#,
            r#"{"schema":1,"event":"step-finished","step":"install","state":"failed","error":"e"}"#,
            r#"{"schema":1,"event":"undo-finished","step":"install","state":"undone"}"#,
            r#"{"schema":1,"event":"run-finished","run":4,"state":"rolled-back","message":"step health failed"}"#,
        ];
        let evs: Vec<_> = lines.iter().filter_map(|l| u.line(l)).collect();
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0], HostEvent::Started);
        assert_eq!(u.run, Some(4));
        assert_eq!(u.lines, 6);
        assert_eq!(
            u.result(Some(1), ""),
            HostResult::RolledBack("step health failed".into())
        );
    }

    #[test]
    fn refusal_up_to_date_and_crash() {
        let mut u = Upgrade::default();
        u.line(r#"{"event":"refused","error":"locked","message":"another hoist"}"#);
        assert!(
            matches!(u.result(Some(1), ""), HostResult::Failed(m) if m.contains("another hoist"))
        );
        let mut u = Upgrade::default();
        u.line(r#"{"event":"up-to-date","current":"1.2.4","target":"1.2.4"}"#);
        assert_eq!(u.result(Some(0), ""), HostResult::Committed);
        let u = Upgrade::default();
        assert!(
            matches!(u.result(Some(101), "panicked\n"), HostResult::Failed(m) if m.contains("panicked"))
        );
        assert!(matches!(u.result(None, ""), HostResult::Lost(_)));
    }

    #[test]
    fn status_is_read_for_this_rollout_only() {
        let st = |state: &str, tag: &str, live: bool| {
            serde_json::json!({
                "run": { "state": state, "error": "boom" },
                "running_now": if live { Value::from("pid 1") } else { Value::Null },
                "next": "do",
                "events": [{ "kind": ROLLOUT_EVENT, "detail": tag }],
            })
            .to_string()
        };
        assert_eq!(
            status(&st("committed", "1-ab", false), "1-ab", true).unwrap(),
            RemoteStatus::Ended(HostResult::Committed)
        );
        assert_eq!(
            status(&st("committed", "1-zz", false), "1-ab", false).unwrap(),
            RemoteStatus::NotStarted
        );
        assert_eq!(
            status(&st("committed", "1-zz", true), "1-ab", true).unwrap(),
            RemoteStatus::Running
        );
        assert_eq!(
            status(&st("applying", "1-ab", true), "1-ab", true).unwrap(),
            RemoteStatus::Running
        );
        assert_eq!(
            status(&st("rolled-back", "1-ab", false), "1-ab", true).unwrap(),
            RemoteStatus::Ended(HostResult::RolledBack("boom".into()))
        );
        assert!(matches!(
            status(&st("failed", "1-ab", false), "1-ab", true).unwrap(),
            RemoteStatus::Ended(HostResult::Failed(_))
        ));
        assert_eq!(
            status(r#"{"runs":0}"#, "1-ab", false).unwrap(),
            RemoteStatus::NotStarted
        );
        assert!(status("garbage", "1-ab", false).is_err());
    }
}
