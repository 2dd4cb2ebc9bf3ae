//! Reading what a host's hoist says: the JSON Lines events of `hoist
//! upgrade --json` into [`HostEvent`]s and a [`HostResult`], and `hoist
//! status --json` into a [`RemoteStatus`] for this rollout.
//!
//! Pure functions over text, so the mapping is tested without a host.

use serde_json::Value;

use super::transport::{HostEvent, HostResult, HostRollback, RemoteStatus};
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
    /// Lines read (to read the rest from the file after a cut stream).
    pub lines: usize,
}

impl Upgrade {
    /// Reads one line; the event to show, if any. A line that is not an
    /// event (a stray message) is passed over.
    pub fn line(&mut self, line: &str) -> Option<HostEvent> {
        self.lines += 1;
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match v.get("event").and_then(Value::as_str)? {
            "run-started" => {
                self.run = v.get("run").and_then(Value::as_i64);
                Some(HostEvent::Started)
            }
            "step-started" => Some(HostEvent::Step {
                id: s("step"),
                state: "running".into(),
            }),
            "step-finished" => Some(HostEvent::Step {
                id: s("step"),
                state: s("state"),
            }),
            "undo-finished" => Some(HostEvent::Step {
                id: s("step"),
                state: format!("undo {}", s("state")),
            }),
            "step-progress" => Some(HostEvent::Note {
                text: format!("{}: {}", s("step"), s("line")),
            }),
            "refused" => {
                self.refusals.push(s("message"));
                Some(HostEvent::Note { text: s("message") })
            }
            "up-to-date" => {
                self.up_to_date = true;
                Some(HostEvent::Note {
                    text: format!("already at {}: nothing to do", s("current")),
                })
            }
            "run-finished" => {
                self.finished = Some((s("state"), s("message")));
                self.awaits = v.get("awaits_person").and_then(|a| {
                    let gate = a.get("gate")?.as_str()?.to_string();
                    let message = a.get("message")?.as_str()?.to_string();
                    Some((gate, message))
                });
                None
            }
            _ => None,
        }
    }

    /// How the upgrade ended, once its process exited with `code`;
    /// `stderr` is its error output (a crash says why there).
    pub fn result(&self, code: Option<i32>, stderr: &str) -> HostResult {
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
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("`hoist status --json` said something else than JSON: {e}"))?;
    let live = v.get("running_now").is_some_and(|x| !x.is_null());
    let ours = v
        .get("events")
        .and_then(Value::as_array)
        .is_some_and(|evs| {
            evs.iter().any(|e| {
                e.get("kind").and_then(Value::as_str) == Some(ROLLOUT_EVENT)
                    && e.get("detail").and_then(Value::as_str) == Some(tag)
            })
        });
    if !ours {
        return Ok(if live && launched {
            RemoteStatus::Running
        } else {
            RemoteStatus::NotStarted
        });
    }
    let run = v.get("run").ok_or("`hoist status --json` names no run")?;
    let state = run.get("state").and_then(Value::as_str).unwrap_or("");
    let error = run.get("error").and_then(Value::as_str).unwrap_or("");
    let next = v.get("next").and_then(Value::as_str).unwrap_or("");
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
    let said = stdout.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l.trim()).ok()?;
        let event = v.get("event").and_then(Value::as_str)?;
        matches!(event, "run-finished" | "nothing-to-roll-back" | "refused").then_some(v)
    });
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match said {
        Some(v) => match (s(&v, "event").as_str(), s(&v, "state").as_str()) {
            ("run-finished", "rolled-back") => Ok(HostRollback::RolledBack),
            ("run-finished", "partly-rolled-back") => Ok(HostRollback::Partly(s(&v, "message"))),
            ("nothing-to-roll-back", _) if s(&v, "reason") == "partly-rolled-back" => {
                Ok(HostRollback::Partly(s(&v, "message")))
            }
            ("nothing-to-roll-back", _) => Ok(HostRollback::NothingToDo(s(&v, "message"))),
            ("run-finished", state) => Err(format!("{state}: {}", s(&v, "message"))),
            _ => Err(s(&v, "message")),
        },
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
