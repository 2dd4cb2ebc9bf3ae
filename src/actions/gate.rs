//! `gate`: the run goes on only when a person confirms, or when a check turns
//! true (seed 003: the system VM template must be registered in the web UI
//! and READY before the management server is upgraded). Neither `--yes` nor
//! a script opens a person's gate: a person at the terminal does, or the
//! admin's `--confirm ID` for that gate; with neither, the run pauses there.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kind;
use super::wait::Until;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
use crate::recipe::duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// What the person must do, in their words.
    pub message: String,
    /// When set, the gate opens when this turns true, not on a keypress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    #[serde(
        with = "duration::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

/// How long a gate waits for a person when the recipe says nothing.
const PERSON: Duration = Duration::from_secs(24 * 3600);

impl Kind for Gate {
    const NAME: &'static str = "gate";

    fn summary(&self) -> String {
        match &self.until {
            Some(u) => format!("gate: {} (opens when {})", self.message, u.describe()),
            None => format!(
                "gate: {} (a person confirms, at a terminal or with --confirm; not --yes)",
                self.message
            ),
        }
    }

    fn needs_person(&self) -> bool {
        self.until.is_none()
    }

    /// A person may take a night to answer; a check has its own bound.
    fn default_timeout(&self) -> Duration {
        self.timeout.unwrap_or(PERSON)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    fn is_wait(&self) -> bool {
        true
    }

    fn disruptive(&self) -> bool {
        false
    }

    fn executable(&self) -> bool {
        self.until.as_ref().is_none_or(Until::executable)
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        if let Some(u) = &self.until {
            // A check decides; --yes cannot open it.
            ctx.note(&format!(
                "gate: {} (waiting until {})",
                self.message,
                u.describe()
            ));
            (ctx.progress)(&self.message);
            let timeout = self.timeout.unwrap_or(crate::actions::ctx::DEFAULT_TIMEOUT);
            return u.wait(ctx, timeout, Duration::from_secs(5));
        }
        // A person's gate is opened by a person: at the terminal, or by
        // `--confirm ID` given for it. `--yes` answers the upgrade prompt
        // only (the fleet runs every host with it).
        if let Some(how) = &ctx.confirmed {
            ctx.note(&format!("gate: {} ({how})", self.message));
            return Ok(());
        }
        if !ctx.interactive {
            ctx.awaits_person = true;
            return Err(format!("waits for a person: {}", self.message));
        }
        let answer = (ctx.ask)(&format!(
            "{}\nType yes when it is done, anything else to stop: ",
            self.message
        ));
        match answer.as_deref().map(str::trim) {
            Some("yes") => {
                ctx.note(&format!(
                    "gate: {} (confirmed at the terminal)",
                    self.message
                ));
                Ok(())
            }
            _ => Err(format!("gate: {}: not confirmed", self.message)),
        }
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if let Some(u) = &self.until {
            u.validate("gate.until", span, problems);
            if self.timeout.is_none() {
                problems.push(
                    Problem::error(
                        "unbounded-wait",
                        span.clone(),
                        "a gate with a check needs a `timeout`: every wait is bounded",
                    )
                    .label("add e.g. `timeout = \"4h\"`"),
                );
            }
        }
    }
}
