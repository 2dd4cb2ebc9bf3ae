//! A run's report (`output::report::Report`) made from the journal: the run,
//! its plan, its steps and its events, so the report of any run the journal
//! holds can be made again. Written at each of the run's ends
//! (`<state>/reports/N.json`), crash-safely: a reader finds the previous
//! report or the new one, never a part.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::output::report::{Check, Left, PhaseTime, Report, SCHEMA, Step, Undo};
use crate::run::journal::{Journal, JournalError, RAN_EVENT, ROLLOUT_EVENT, RunRecord, StepRecord};
use crate::run::state::StepState;

/// The journal event that keeps the preflight checks' verdicts (a JSON
/// list of `output::report::Check`), journaled when the run is created.
pub const PREFLIGHT_EVENT: &str = "preflight";

/// `<state>/reports/<run>.json`.
pub fn path(state_dir: &Path, run: i64) -> PathBuf {
    state_dir.join("reports").join(format!("{run}.json"))
}

/// How a step ended going forward, kept when its undo started
/// (`run::journal::RAN_EVENT`).
#[derive(Deserialize)]
struct Ran {
    key: String,
    state: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    error: Option<String>,
}

fn seconds(ms: Option<i64>) -> Option<f64> {
    ms.map(|ms| ms as f64 / 1000.0)
}

/// A step of the report: its forward run from the journal's row, or, once
/// an undo replaced that, from the event that kept it.
fn step(s: &StepRecord, summary: String, ran: Option<&Ran>) -> Step {
    let undoing = matches!(
        s.state,
        StepState::Undoing | StepState::Undone | StepState::UndoFailed
    );
    let mut step = Step {
        key: s.key.clone(),
        id: s.step_id.clone(),
        phase: s.phase.clone(),
        summary,
        state: s.state.as_str().to_string(),
        outcome: (!matches!(s.state, StepState::Pending | StepState::Skipped))
            .then(|| s.state.as_str().to_string()),
        attempts: s.attempts,
        started_at: s.started_at.clone(),
        finished_at: s.finished_at.clone(),
        seconds: seconds(s.duration_ms),
        error: s.error.clone(),
        skip_reason: s.skip_reason.clone(),
        has_undo: s.has_undo,
        undo: None,
    };
    if let (true, Some(r)) = (undoing, ran) {
        step.undo = Some(Undo {
            state: step.state.clone(),
            started_at: step.started_at.take(),
            finished_at: step.finished_at.take(),
            seconds: step.seconds.take(),
            error: step.error.take(),
        });
        step.outcome = Some(r.state.clone());
        step.started_at = r.started_at.clone();
        step.finished_at = r.finished_at.clone();
        step.seconds = seconds(r.duration_ms);
        step.error = r.error.clone();
    }
    step
}

fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = humantime::parse_rfc3339(from).ok()?;
    let b = humantime::parse_rfc3339(to).ok()?;
    b.duration_since(a).ok().map(|d| d.as_secs_f64())
}

/// The report of run `run` as the journal has it now.
pub fn build(journal: &Journal, run: i64) -> Result<Report, JournalError> {
    let record = journal.load_run(run)?;
    let events = journal.events(run)?;
    Ok(from_record(
        &record,
        events,
        journal.log_path(run).display().to_string(),
    ))
}

/// The report of `r` with its journal events.
pub fn from_record(
    r: &RunRecord,
    events: Vec<crate::output::wire::JournalEvent>,
    log: String,
) -> Report {
    let of_kind = |kind: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail.clone())
            .collect()
    };
    let summary = |key: &str| {
        r.plan
            .steps
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.summary.clone())
            .unwrap_or_default()
    };
    let ran: Vec<Ran> = events
        .iter()
        .filter(|e| e.kind == RAN_EVENT)
        .filter_map(|e| serde_json::from_str(&e.detail).ok())
        .collect();
    let steps: Vec<Step> = r
        .steps
        .iter()
        .map(|s| {
            let last = ran.iter().rev().find(|x| x.key == s.key);
            step(s, summary(&s.key), last)
        })
        .collect();
    let mut phases: Vec<PhaseTime> = Vec::new();
    for s in steps.iter().filter(|s| s.seconds.is_some()) {
        let secs = s.seconds.unwrap_or_default();
        match phases.iter_mut().find(|p| p.phase == s.phase) {
            Some(p) => {
                p.seconds += secs;
                p.steps += 1;
            }
            None => phases.push(PhaseTime {
                phase: s.phase.clone(),
                seconds: secs,
                steps: 1,
            }),
        }
    }
    let in_place = if r.state.is_final() {
        Vec::new()
    } else {
        r.steps
            .iter()
            .filter(|s| {
                s.has_undo
                    && matches!(
                        s.state,
                        StepState::Done
                            | StepState::Running
                            | StepState::Failed
                            | StepState::UndoFailed
                    )
            })
            .map(|s| format!("{}: {}", s.key, summary(&s.key)))
            .collect()
    };
    let preflight = events
        .iter()
        .find(|e| e.kind == PREFLIGHT_EVENT)
        .and_then(|e| serde_json::from_str::<Vec<Check>>(&e.detail).ok());
    let end = r.finished_at.as_deref().unwrap_or(&r.updated_at);
    Report {
        schema: SCHEMA,
        run: r.id,
        product: r.product.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        plan_hash: r.plan_hash.clone(),
        state: r.state.as_str().to_string(),
        error: r.error.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        updated_at: r.updated_at.clone(),
        seconds: seconds_between(&r.started_at, end),
        written_at: crate::sys::clock::now(),
        recipe: r.recipe_path.clone(),
        recipe_sha256: r.recipe_sha256.clone(),
        rollout: of_kind(ROLLOUT_EVENT).pop(),
        preflight,
        steps,
        phases,
        left: Left {
            not_undone: of_kind("not-undone"),
            kept: of_kind("kept"),
            undo_skipped: of_kind("undo-skipped"),
            conffiles: of_kind("conffiles"),
            stale_services: of_kind("stale-services"),
            in_place,
        },
        events,
        log,
    }
}

/// Writes `report` to `<state>/reports/<run>.json`: a temporary file
/// fsynced, renamed over the old report, the directory fsynced
/// (`sys::fsutil::write_atomic`). The directory is the owner's only, as
/// every directory of the state directory.
pub fn write(state_dir: &Path, report: &Report) -> Result<PathBuf, String> {
    let path = path(state_dir, report.run);
    let dir = path.parent().unwrap_or(state_dir);
    crate::sys::fsutil::private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut text = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    text.push(b'\n');
    crate::sys::fsutil::write_atomic(&path, &text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(run: i64, state: &str) -> Report {
        Report {
            schema: SCHEMA,
            run,
            state: state.into(),
            ..Report::default()
        }
    }

    fn read(p: &Path) -> Report {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// A crash while a report is written leaves the temporary file beside
    /// it, never a part of the report: the reader finds the old one whole,
    /// and the next write replaces both.
    #[test]
    fn a_crash_mid_write_leaves_the_previous_report_whole() {
        let dir = std::env::temp_dir().join(format!("hoist-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = write(&dir, &report(3, "paused")).unwrap();
        assert_eq!(first, dir.join("reports/3.json"));
        // What a crash between the temporary file's write and its rename
        // leaves: a torn copy under the temporary name.
        let tmp = dir.join("reports/.3.json.hoist-tmp");
        std::fs::write(&tmp, b"{\"schema\":1,\"run\":3,\"sta").unwrap();
        assert_eq!(read(&first).state, "paused");
        write(&dir, &report(3, "committed")).unwrap();
        assert_eq!(read(&first).state, "committed");
        assert!(
            !tmp.exists(),
            "the temporary file is renamed over the report"
        );
        let names: Vec<String> = std::fs::read_dir(dir.join("reports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["3.json"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("reports"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations_come_from_the_journal_times() {
        assert_eq!(
            seconds_between("2025-01-01T10:00:00.000Z", "2025-01-01T10:01:30.500Z"),
            Some(90.5)
        );
        assert_eq!(seconds_between("x", "2025-01-01T10:00:00Z"), None);
    }
}
