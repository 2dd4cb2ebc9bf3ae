//! `service`: stop, start or restart services. Order comes from the
//! recipe's `[[services]]` `after` relations (seed 001: "all XiVO services are
//! restarted in the right order"): stop in reverse order, start in order.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Kind, non_empty};
use crate::diag::Problem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Stop,
    Start,
    Restart,
    Reload,
    Enable,
    Disable,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub op: Op,
    pub units: Vec<String>,
}

impl Kind for Service {
    const NAME: &'static str = "service";

    fn summary(&self) -> String {
        let verb = serde_json::to_value(self.op)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        format!("{verb} {}", self.units.join(", "))
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["service", "exec"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        non_empty("units", &self.units, span, problems);
    }
}
