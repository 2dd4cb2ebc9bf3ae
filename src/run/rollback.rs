//! Compensation: undo the steps of a failed or interrupted run, newest
//! first, then start the services that ran before the run.

use super::{Ending, Engine, RunError, testhook};
use crate::journal::StepUpdate;
use crate::plan::PlannedStep;
use crate::state::{RunState, StepState};

impl Engine {
    /// Undoes every step that did (or may have done) something and has an
    /// undo, in reverse order. `failed` is the step that failed, if any.
    pub fn rollback(&mut self, failed: Option<(String, String)>) -> Result<Ending, RunError> {
        self.set_state(RunState::RollingBack, None)?;
        self.reload()?;
        self.ui.line("rolling back");
        let mut undo_errors = Vec::new();
        let mut not_undone = Vec::new();
        let steps: Vec<(String, StepState)> = self
            .record
            .steps
            .iter()
            .rev()
            .map(|s| (s.key.clone(), s.state))
            .collect();
        for (key, state) in &steps {
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
            let Some(step) = self.step(key).cloned() else {
                continue;
            };
            // The recipe's undo, else the action's own (it put back what it
            // saved before acting).
            let summary = match (&step.undo, step.action.builtin_undo()) {
                (Some(undo), _) => undo.summary(),
                (None, true) => format!("put back what `{}` changed", step.action.kind()),
                (None, false) => {
                    if *state == StepState::Done && step.action.disruptive() {
                        not_undone.push(key.clone());
                    }
                    continue;
                }
            };
            if let Err(e) = self.undo_step(&step, &summary)? {
                undo_errors.push(format!("{key}: {e}"));
            }
        }
        self.restore_services(&mut undo_errors);
        if !not_undone.is_empty() {
            let list = not_undone.join(", ");
            self.journal.event(self.run, "not-undone", &list)?;
            self.ui
                .line(&format!("not undone (no undo in the recipe): {list}"));
        }
        if undo_errors.is_empty() {
            self.set_state(RunState::RolledBack, None)?;
            Ok(Ending::RolledBack { failed })
        } else {
            let error = undo_errors.join("; ");
            self.set_state(RunState::RollbackFailed, Some(&error))?;
            Ok(Ending::RollbackFailed { error })
        }
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
        self.ui.event(
            "undo-started",
            serde_json::json!({ "step": key, "summary": summary }),
        );
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
        let order = crate::order::sort_units(&services, &before, false);
        for name in order {
            let spec = services.iter().find(|s| s.name == name);
            if crate::actions::service::is_running(spec, &name) {
                continue;
            }
            let result =
                crate::actions::service::command(spec, &name, crate::actions::service::Op::Start)
                    .and_then(|cmd| {
                        self.note(&format!("start {name}: it ran before the upgrade"));
                        let out = crate::process::run_logged(
                            &mut { cmd },
                            crate::context::DEFAULT_TIMEOUT,
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
