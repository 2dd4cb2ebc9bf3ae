//! `firewall`: add or remove one iptables rule. A rule added with an `undo`
//! is journaled before it is added, so a crash can never leave it behind
//! (seed 000: the DROP rule on udp/5060 left by an aborted xivo-upgrade).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::diag::Problem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Insert the rule (once: an identical rule is not added twice).
    Add,
    /// Delete every copy of the rule ("until no more unwanted rules are left").
    Remove,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    pub op: Op,
    #[serde(default = "default_chain")]
    pub chain: String,
    pub proto: String,
    pub dport: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
}

fn default_chain() -> String {
    "INPUT".into()
}

impl Firewall {
    /// The rule as iptables arguments after `-A/-D CHAIN`.
    pub fn rule_args(&self) -> Vec<String> {
        let mut a = vec!["-p".into(), self.proto.clone()];
        if let Some(s) = &self.source {
            a.extend(["-s".into(), s.clone()]);
        }
        a.extend([
            "--dport".into(),
            self.dport.to_string(),
            "-j".into(),
            self.target.clone(),
        ]);
        a
    }
}

impl Kind for Firewall {
    const NAME: &'static str = "firewall";

    fn summary(&self) -> String {
        let verb = match self.op {
            Op::Add => "add",
            Op::Remove => "remove every",
        };
        format!(
            "{verb} iptables rule {} {}",
            self.chain,
            self.rule_args().join(" ")
        )
    }

    fn undo_kinds(&self) -> &'static [&'static str] {
        &["firewall"]
    }

    fn disruptive(&self) -> bool {
        true
    }

    fn validate(&self, span: &Range<usize>, problems: &mut Vec<Problem>) {
        if !["tcp", "udp"].contains(&self.proto.as_str()) {
            problems.push(
                Problem::error(
                    "unknown-value",
                    span.clone(),
                    format!("`proto` is `{}`: a port rule needs tcp or udp", self.proto),
                )
                .label("expected \"tcp\" or \"udp\""),
            );
        }
        if !["ACCEPT", "DROP", "REJECT"].contains(&self.target.as_str()) {
            problems.push(
                Problem::error(
                    "unknown-value",
                    span.clone(),
                    format!("`target` is `{}`", self.target),
                )
                .label("expected ACCEPT, DROP or REJECT"),
            );
        }
    }
}
