//! `hoist status` (where the last run stands and what to do next) and
//! `hoist history`.

use std::path::Path;

use crate::output::wire::{History, HistoryRun, SCHEMA, Status, print_doc};
use crate::run::journal::{Journal, RunRecord};
use crate::run::state::{RunState, StepState};
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED};

/// Why an unfinished run nobody drives stopped, when the disk filled: the
/// journal said so (`disk-full`, since the last resume), or the state
/// directory's disk is full now.
fn disk_full(r: &RunRecord, events: &[crate::run::journal::Event], dir: &Path) -> Option<String> {
    use crate::statedir::space;
    if r.state.is_final() || matches!(r.state, RunState::Paused | RunState::Failed) {
        return None;
    }
    let said = events
        .iter()
        .rev()
        .take_while(|e| e.kind != "resume")
        .any(|e| e.kind == "disk-full");
    (said || space::nearly_full(dir))
        .then(|| format!("{} free in {}", space::free_text(dir), dir.display()))
}

/// How an unfinished run nobody drives came to stop.
fn interrupted(full: Option<&str>) -> String {
    match full {
        Some(f) => format!("disk full ({f}): the journal could not be written; stopped"),
        None => "interrupted (hoist was killed or the host went down)".into(),
    }
}

fn count(r: &RunRecord, s: StepState) -> usize {
    r.steps.iter().filter(|x| x.state == s).count()
}

/// The step the run stands at: the failed one, else the one running, else
/// (a failed run past its point of no return) the one undone alone, else
/// the first pending.
fn at(r: &RunRecord) -> Option<&crate::run::journal::StepRecord> {
    r.steps
        .iter()
        .find(|s| matches!(s.state, StepState::Failed | StepState::UndoFailed))
        .or_else(|| {
            r.steps
                .iter()
                .find(|s| matches!(s.state, StepState::Running | StepState::Undoing))
        })
        .or_else(|| {
            (r.state == RunState::Failed)
                .then(|| r.steps.iter().find(|s| s.state == StepState::Undone))
                .flatten()
        })
        .or_else(|| r.steps.iter().find(|s| s.state == StepState::Pending))
}

/// A run paused at a person's gate (`Ending::AwaitsPerson`): the gate's
/// step and what the person must do.
fn awaits_person(r: &RunRecord) -> Option<(&str, &str)> {
    if r.state != RunState::Paused {
        return None;
    }
    r.error.as_deref()?.split_once(" waits for a person: ")
}

/// What the admin should do next, in words.
pub fn next_action(r: &RunRecord, live: Option<&str>, full: Option<&str>) -> String {
    let step = at(r).map(|s| s.key.as_str()).unwrap_or("-");
    if let Some(h) = live {
        return format!("a hoist is working on it now ({h}); wait for it");
    }
    if r.state == RunState::Failed
        && let Some(hop) = crate::run::kept_hops(r)
        && r.steps.iter().any(|s| {
            matches!(
                s.state,
                StepState::Undone | StepState::Undoing | StepState::UndoFailed
            )
        })
    {
        let stop = &r.plan.hops[hop - 1].to;
        let back = r
            .steps
            .iter()
            .any(|s| matches!(s.state, StepState::Undoing | StepState::UndoFailed));
        return format!(
            "{} failed in the hop to {}; {}: fix the cause, then `hoist resume` goes on from {stop}, or `hoist rollback --all` goes back to {}",
            r.error.as_deref().unwrap_or("a step"),
            r.plan.hops[hop].to,
            if back {
                format!(
                    "going back to {stop} did not finish (`hoist rollback` finishes it), the hops up to it are kept"
                )
            } else {
                format!("rolled back to {stop}, where the hops up to it are kept")
            },
            r.from
        );
    }
    if let Some((key, what)) = awaits_person(r) {
        return format!(
            "gate {key} waits for a person: {what}. When it is done: `hoist resume --confirm {}`{}",
            key.split('@').next().unwrap_or(key),
            if crate::run::point_passed(r).is_some() {
                String::new()
            } else {
                format!(", or `hoist rollback` to go back to {}", r.from)
            }
        );
    }
    if let Some((point, why)) = crate::run::point_passed(r) {
        let past = format!(
            "the upgrade is past its point of no return ({point}: {why}), so it cannot be rolled back"
        );
        match r.state {
            RunState::Failed => {
                let undone = at(r).is_some_and(|s| s.state == StepState::Undone);
                return format!(
                    "step {step} failed{}; {past}. Read the error and the log, fix the cause, then `hoist resume` to go on from {step}",
                    if undone {
                        " and what it changed was undone"
                    } else {
                        ""
                    }
                );
            }
            RunState::Paused => {
                return format!("stopped before {step}; {past}: `hoist resume` to go on");
            }
            RunState::Preparing | RunState::Applying | RunState::Verifying => {
                return format!(
                    "{} at {step}; {past}: {}`hoist resume` to go on",
                    interrupted(full),
                    if full.is_some() {
                        "free some space, then "
                    } else {
                        ""
                    }
                );
            }
            _ => {}
        }
    }
    match r.state {
        RunState::Committed => "nothing: the upgrade is done".into(),
        RunState::Prepared => "everything is downloaded: run `hoist upgrade` to install".into(),
        RunState::RolledBack => format!(
            "nothing is left half-done: the host is back at {}. Read the log, fix the cause, then upgrade again",
            r.from
        ),
        RunState::PartlyRolledBack => format!(
            "the rollback is over but the host is NOT as it was at {}: {}. Put those back by hand (the log says what they did), then upgrade again",
            r.from,
            r.error.as_deref().unwrap_or("some steps were not undone")
        ),
        RunState::Paused => format!(
            "stopped before {step}: `hoist resume` to go on, or `hoist rollback` to go back to {}",
            r.from
        ),
        RunState::Failed => format!(
            "step {step} failed and was not rolled back: fix the cause and `hoist resume`, or `hoist rollback` to go back to {}",
            r.from
        ),
        RunState::RollbackFailed => format!(
            "the rollback stopped at {step}: the host is between {} and {}. Fix the cause, then `hoist rollback` again",
            r.from, r.to
        ),
        RunState::RollingBack => format!(
            "{} while rolling back, at {step}: {}`hoist rollback` to finish",
            interrupted(full),
            if full.is_some() {
                "free some space, then "
            } else {
                ""
            }
        ),
        RunState::Planned | RunState::Preparing | RunState::Applying | RunState::Verifying => {
            format!(
                "{} at {step}: {}`hoist resume` to go on, or `hoist rollback` to go back to {}",
                interrupted(full),
                if full.is_some() {
                    "free some space, then "
                } else {
                    ""
                },
                r.from
            )
        }
    }
}

/// `hoist status --json` when the journal holds no run.
fn no_run() {
    let answer: Status<RunRecord, crate::run::journal::Event> = Status::no_run();
    outln!(
        "{}",
        serde_json::to_string_pretty(&answer).unwrap_or_default()
    );
}

/// A state directory or journal hoist cannot trust or read: exit 1, said
/// on stderr even with `--json` (the fleet controller reads it there).
fn refused(e: &dyn std::fmt::Display) -> u8 {
    crate::output::wire::refuse(false, EXIT_REFUSED, "journal", &e.to_string())
}

pub fn status(state_dir: &Path, json: bool) -> u8 {
    let journal = match Journal::open_existing(state_dir) {
        Ok(Some(j)) => j,
        Ok(None) => {
            if json {
                no_run();
            } else {
                outln!(
                    "no upgrade has run on this host (state directory {})",
                    state_dir.display()
                );
            }
            return EXIT_OK;
        }
        Err(e) => return refused(&e),
    };
    let record = match journal.latest_run() {
        Ok(Some(r)) => r,
        Ok(None) => {
            // A journal with no run yet (a fleet run-once step opened it).
            if json {
                no_run();
            } else {
                outln!("no upgrade has run on this host");
            }
            return EXIT_OK;
        }
        Err(e) => return refused(&e),
    };
    let live = match crate::run::lock::holder(state_dir) {
        Ok(h) => h,
        Err(e) => return refused(&e),
    };
    let events = journal.events(record.id).unwrap_or_default();
    let full = live
        .is_none()
        .then(|| disk_full(&record, &events, journal.dir()))
        .flatten();
    let next = next_action(&record, live.as_deref(), full.as_deref());
    let log = journal.log_path(record.id);
    if json {
        let answer = Status {
            schema: SCHEMA,
            runs: journal.run_ids().map_or(1, |ids| ids.len()),
            at: at(&record).map(|s| s.key.clone()),
            run: Some(record),
            running_now: live,
            disk_full: full,
            next,
            log: Some(log.display().to_string()),
            events,
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return EXIT_OK;
    }
    let r = &record;
    outln!(
        "run {}: {} {} -> {}: {}",
        r.id,
        r.product,
        r.from,
        r.to,
        r.state
    );
    outln!("  started {}, last change {}", r.started_at, r.updated_at);
    outln!(
        "  steps: {} done, {} failed, {} pending, {} undone, {} not taken",
        count(r, StepState::Done),
        count(r, StepState::Failed) + count(r, StepState::UndoFailed),
        count(r, StepState::Pending) + count(r, StepState::Running),
        count(r, StepState::Undone),
        count(r, StepState::Skipped)
    );
    if let Some(s) = at(r).filter(|s| s.state != StepState::Pending) {
        outln!("  at {} ({}): {}", s.key, s.phase, s.state);
        if let Some(e) = &s.error {
            outln!("  error: {e}");
        }
        let tail: Vec<&str> = s.output_tail.lines().rev().take(8).collect();
        if !tail.is_empty() {
            outln!("  last output:");
            for l in tail.iter().rev() {
                outln!("    {l}");
            }
        }
    }
    if let Some(e) = &r.error
        && r.state != RunState::Committed
    {
        outln!("  why: {e}");
    }
    outln!("  log: {}", log.display());
    outln!("next: {next}");
    EXIT_OK
}

pub fn history(state_dir: &Path, json: bool) -> u8 {
    let journal = match Journal::open_existing(state_dir) {
        Ok(Some(j)) => j,
        Ok(None) => {
            if json {
                print_doc(History { runs: Vec::new() });
            } else {
                outln!("no upgrade has run on this host");
            }
            return EXIT_OK;
        }
        Err(e) => return refused(&e),
    };
    let runs = journal.run_ids().and_then(|ids| {
        ids.into_iter()
            .map(|id| journal.load_run(id))
            .collect::<Result<Vec<_>, _>>()
    });
    let runs = match runs {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    if json {
        let runs = runs
            .iter()
            .map(|r| HistoryRun {
                run: r.id,
                product: r.product.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                state: r.state.as_str().to_string(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                plan_hash: r.plan_hash.clone(),
                error: r.error.clone(),
            })
            .collect();
        print_doc(History { runs });
        return EXIT_OK;
    }
    for r in &runs {
        outln!(
            "{:>4}  {}  {} {} -> {}  {}{}",
            r.id,
            r.started_at,
            r.product,
            r.from,
            r.to,
            r.state,
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    EXIT_OK
}
