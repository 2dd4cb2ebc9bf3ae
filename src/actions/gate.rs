//! `gate`: the run goes on only when a person confirms, or when a check turns
//! true (seed 003: the system VM template must be registered in the web UI
//! and READY before the management server is upgraded). `--yes` answers a
//! person's question, never a check that is false.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kind;
use super::wait::Until;
use crate::diag::Problem;
use crate::recipe::duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// What the person must do, in their words.
    pub message: String,
    /// When set, the gate opens when this turns true, not on a keypress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    #[serde(with = "duration::option", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

impl Kind for Gate {
    const NAME: &'static str = "gate";

    fn summary(&self) -> String {
        match &self.until {
            Some(u) => format!("gate: {} (opens when {})", self.message, u.describe()),
            None => format!("gate: {} (a person confirms)", self.message),
        }
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    fn disruptive(&self) -> bool {
        false
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
