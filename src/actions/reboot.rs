//! `reboot`: restart the host and carry on after boot (seed 004: "Now, we
//! must reboot the server. Note: this is mandatory").

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;
use crate::recipe::duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// Why, shown in the plan and to logged-in users.
    pub reason: String,
    /// How long the host may take to come back before the run is failed.
    #[serde(with = "duration", default = "default_back_within")]
    pub back_within: Duration,
}

fn default_back_within() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Kind for Reboot {
    const NAME: &'static str = "reboot";

    fn summary(&self) -> String {
        format!("reboot the host: {}", self.reason)
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, _span: &Range<usize>, _problems: &mut Vec<Problem>) {}
}
