//! `hooks`: run every script of a directory, run-parts style (seed 001's
//! `pre-upgrade.d` / `post-upgrade.d`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// The directory; scripts run in lexical order. A relative path is
    /// relative to the recipe's own directory (hooks ship with the recipe).
    pub dir: String,
    /// Each script runs once per host, ever (remembered by name).
    #[serde(default)]
    pub each_once: bool,
}

impl Kind for Hooks {
    const NAME: &'static str = "hooks";

    fn summary(&self) -> String {
        let once = if self.each_once {
            " (each script once per host)"
        } else {
            ""
        };
        format!("run the scripts in {}{once}", self.dir)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["exec", "hooks"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if self.dir.trim().is_empty() {
            problems.push(Problem::error("empty-value", span.clone(), "`dir` is empty").label("here"));
        }
    }
}
