//! Compensation: undo the steps of a failed or interrupted run, newest
//! first, then start the services that ran before the run.

use super::{Ending, Engine, RunError, testhook};
use crate::plan::PlannedStep;
use crate::recipe::Phase;
use crate::run::journal::StepUpdate;
use crate::run::state::{RunState, StepState};

/// What a step that ran and has no undo means for the rollback.
enum NotUndone {
    /// It changed nothing to put back: a `prepare` step (downloads and
    /// checks only, which lint holds it to), or a kind that changes nothing
    /// (a wait, a gate).
    Nothing,
    /// The recipe says it needs no undo (`undo = "none"`), and why: listed,
    /// and the host still counts as put back.
    ByDesign(String),
    /// Its change stays: the host is not as it was.
    Left(String),
}

fn not_undone(step: &PlannedStep, state: StepState) -> NotUndone {
    if step.phase == Phase::Prepare || !step.action.changes_host() {
        return NotUndone::Nothing;
    }
    if let Some(reason) = &step.no_undo {
        return NotUndone::ByDesign(reason.clone());
    }
    NotUndone::Left(
        match state {
            StepState::Done => "it ran and has no undo in the recipe",
            StepState::Failed => "it failed part way and has no undo in the recipe",
            _ => "it was interrupted and has no undo in the recipe",
        }
        .into(),
    )
}

/// What a pass of undos did not put back.
struct Undone {
    /// Undos that failed: `step: error`.
    errors: Vec<String>,
    /// Steps whose change stays, with why.
    left: Vec<String>,
    /// Steps the recipe says need no undo, with why.
    kept: Vec<String>,
}

impl Engine {
    /// Undoes every step that did (or may have done) something, newest
    /// first: with the recipe's undo, else the action's own. A step that
    /// ran and has neither, or whose undo the admin skips (`skip_undo`),
    /// is listed with why, and the run then ends `partly-rolled-back`:
    /// "as it was" is said only when every change was undone.
    pub fn rollback(&mut self, failed: Option<(String, String)>) -> Result<Ending, RunError> {
        self.set_state(RunState::RollingBack, None)?;
        self.reload()?;
        self.ui.line("rolling back");
        let Undone {
            mut errors,
            left,
            kept,
        } = self.undo_from(0)?;
        self.restore_services(&mut errors);
        self.say_kept(&kept)?;
        if !errors.is_empty() {
            let error = errors.join("; ");
            self.set_state(RunState::RollbackFailed, Some(&error))?;
            return Ok(Ending::RollbackFailed { error });
        }
        if !left.is_empty() {
            let list = format!("not undone: {}", left.join("; "));
            self.journal.event(self.run, "not-undone", &list)?;
            self.ui.line(&list);
            self.set_state(RunState::PartlyRolledBack, Some(&list))?;
            return Ok(Ending::PartlyRolledBack { failed, left });
        }
        self.set_state(RunState::RolledBack, None)?;
        Ok(Ending::RolledBack { failed })
    }

    /// A step of hop `hop` failed (or the admin asks to finish going back
    /// after one did): the hops before it reached their stop and are kept
    /// (`run::kept_hops`), so only the steps of `hop` and after are undone,
    /// newest first; the run stays failed at the stop, for `hoist resume`
    /// (forward) or `hoist rollback --all` (back to the start).
    pub fn roll_back_to_stop(
        &mut self,
        hop: usize,
        failed: Option<(String, String)>,
    ) -> Result<Ending, RunError> {
        self.reload()?;
        let stop = self.record.plan.hops[hop - 1].to.clone();
        self.ui.line(&format!(
            "rolling back to {stop}: the hops up to it are kept"
        ));
        let Undone {
            mut errors,
            left,
            kept,
        } = self.undo_from(hop)?;
        self.restore_services(&mut errors);
        self.say_kept(&kept)?;
        self.journal.event(
            self.run,
            "kept-hops",
            &format!(
                "{stop}: the hops up to it are kept; undone back to it{}{}",
                if left.is_empty() {
                    String::new()
                } else {
                    format!("; not undone: {}", left.join("; "))
                },
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("; undo failed: {}", errors.join("; "))
                }
            ),
        )?;
        Ok(Ending::FailedAtStop {
            failed,
            stop: stop.to_string(),
            left,
            errors,
        })
    }

    fn say_kept(&mut self, kept: &[String]) -> Result<(), RunError> {
        if !kept.is_empty() {
            let list = format!(
                "left as they are (the recipe says they need no undo): {}",
                kept.join("; ")
            );
            self.journal.event(self.run, "kept", &list)?;
            self.ui.line(&list);
        }
        Ok(())
    }

    /// Undoes, newest first, every step of hop `from` and after that did
    /// (or may have done) something.
    fn undo_from(&mut self, from: usize) -> Result<Undone, RunError> {
        let mut undo_errors = Vec::new();
        let mut left = Vec::new();
        let mut kept = Vec::new();
        let steps: Vec<(String, StepState)> = self
            .record
            .steps
            .iter()
            .rev()
            .map(|s| (s.key.clone(), s.state))
            .collect();
        for (key, state) in &steps {
            let Some(step) = self.step(key).cloned() else {
                continue;
            };
            if step.hop < from {
                continue;
            }
            if *state == StepState::UndoSkipped {
                left.push(format!("{key} (its undo skipped by the admin)"));
                continue;
            }
            if !matches!(
                state,
                StepState::Done
                    | StepState::Failed
                    | StepState::Running
                    | StepState::Undoing
                    | StepState::UndoFailed
            ) {
                continue;
            }
            if self.skip_undo.iter().any(|k| k == key) {
                let reason = self.skip_reason.clone();
                self.journal.set_step_state(
                    self.run,
                    key,
                    StepState::UndoSkipped,
                    StepUpdate {
                        error: Some(&format!("undo skipped by the admin: {reason}")),
                        ..Default::default()
                    },
                )?;
                self.journal
                    .event(self.run, "undo-skipped", &format!("{key}: {reason}"))?;
                self.ui.undo_finished(key, "SKIPPED", 0.0, Some(&reason));
                left.push(format!("{key} (its undo skipped by the admin: {reason})"));
                continue;
            }
            // The recipe's undo, else the action's own (it put back what it
            // saved before acting).
            let summary = match (&step.undo, step.action.builtin_undo()) {
                (Some(undo), _) => undo.summary(),
                (None, true) => format!("put back what `{}` changed", step.action.kind()),
                (None, false) => {
                    match not_undone(&step, *state) {
                        NotUndone::Nothing => {}
                        NotUndone::ByDesign(why) => kept.push(format!("{key} ({why})")),
                        NotUndone::Left(why) => left.push(format!("{key} ({why})")),
                    }
                    continue;
                }
            };
            if let Err(e) = self.undo_step(&step, &summary)? {
                undo_errors.push(format!("{key}: {e}"));
            }
        }
        Ok(Undone {
            errors: undo_errors,
            left,
            kept,
        })
    }

    /// Undoes one step (its recipe undo, else its action's own), journaled
    /// undoing then undone or undo-failed. The outer `Err` is the journal's.
    fn undo_step(
        &mut self,
        step: &PlannedStep,
        summary: &str,
    ) -> Result<Result<(), String>, RunError> {
        let key = step.key.as_str();
        self.journal
            .set_step_state(self.run, key, StepState::Undoing, StepUpdate::default())?;
        self.note(&format!("undo {key}: {summary}"));
        self.ui.event(crate::output::wire::Event::UndoStarted {
            step: key.to_string(),
            summary: summary.to_string(),
        });
        testhook::crash_at(key, "undo");
        let started = std::time::Instant::now();
        let result = match &step.undo {
            Some(undo) => self.apply_undo(undo, step),
            None => self.compensate(step),
        };
        match &result {
            Ok(()) => {
                self.journal.set_step_state(
                    self.run,
                    key,
                    StepState::Undone,
                    StepUpdate::default(),
                )?;
                if step.once {
                    let product = self.record.product.clone();
                    self.journal.unmark_once(&product, &step.id)?;
                }
                self.ui
                    .undo_finished(key, "undone", started.elapsed().as_secs_f64(), None);
            }
            Err(e) => {
                self.journal.set_step_state(
                    self.run,
                    key,
                    StepState::UndoFailed,
                    StepUpdate {
                        error: Some(e),
                        ..Default::default()
                    },
                )?;
                self.ui
                    .undo_finished(key, "UNDO FAILED", started.elapsed().as_secs_f64(), Some(e));
            }
        }
        Ok(result)
    }

    /// A step failed after the run's point of no return (`point`): going
    /// back past it is impossible (a Debian major upgrade has no
    /// downgrade), so only the failed step's own changes are undone, when
    /// it has an undo and is not the point itself, and the run stays
    /// failed: the admin fixes the cause and resumes, forward.
    pub fn stop_past_point(
        &mut self,
        step: &PlannedStep,
        error: String,
        point: String,
        why: String,
    ) -> Result<Ending, RunError> {
        let undoable = step.undo.is_some() || step.action.builtin_undo();
        let undo = if step.key != point && undoable {
            self.ui.line(&format!(
                "past the point of no return ({point}): undoing {} alone",
                step.key
            ));
            let summary = match &step.undo {
                Some(u) => u.summary(),
                None => format!("put back what `{}` changed", step.action.kind()),
            };
            Some(self.undo_step(step, &summary)?)
        } else {
            None
        };
        self.journal.event(
            self.run,
            "past-point-of-no-return",
            &format!(
                "{} failed after {point}: not rolled back{}",
                step.key,
                match &undo {
                    Some(Ok(())) => "; its own changes undone",
                    Some(Err(_)) => "; undoing its own changes failed",
                    None => "",
                }
            ),
        )?;
        Ok(Ending::FailedPastPoint {
            step: step.key.clone(),
            error,
            point,
            why,
            undo,
        })
    }

    /// Starts, in order, the services that ran before the run and do not
    /// now ("restarts the services as they were").
    fn restore_services(&mut self, errors: &mut Vec<String>) {
        let services = self.stored.services.clone();
        let before = self.record.services_before.clone();
        let order = crate::recipe::order::sort_units(&services, &before, false);
        for name in order {
            let spec = services.iter().find(|s| s.name == name);
            if crate::actions::service::is_running(spec, &name) {
                continue;
            }
            let result =
                crate::actions::service::command(spec, &name, crate::actions::service::Op::Start)
                    .and_then(|cmd| {
                        self.note(&format!("start {name}: it ran before the upgrade"));
                        let out = crate::sys::process::run_logged(
                            &mut { cmd },
                            crate::actions::ctx::DEFAULT_TIMEOUT,
                            &self.log,
                        )
                        .map_err(|e| e.to_string())?;
                        if out.success() {
                            Ok(())
                        } else {
                            Err(format!("start {name} failed"))
                        }
                    });
            if let Err(e) = result {
                errors.push(e);
            }
        }
    }
}
