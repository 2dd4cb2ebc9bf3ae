//! `firewall`: a temporary packet-filter rule (iptables or nftables).
//!
//! Seed 000: an aborted xivo-upgrade left its `DROP udp dpt:5060` rule
//! behind, and no SIP phone could register until an admin found it with
//! `iptables -nvL` and deleted it "Untill no more unwanted rules are left
//! behind". Here the rule cannot outlive the run:
//!
//! * an `add` step carries its removal: the recipe's `undo`, else the
//!   built-in one (remove every copy). Either is in the journal with the
//!   plan before the run starts, so it exists before the rule does;
//! * a failure rolls the step back; a crash right after the rule went in
//!   leaves the step `running`, which `rollback` undoes and `resume` finds
//!   applied (by asking the filter) before going on to the cleanup step;
//! * `remove` deletes every copy, from every place the rule can live on the
//!   host (see `backend`), so a leftover of an earlier abort goes too;
//! * `hoist firewall leftovers` finds what a run abandoned for good (never
//!   resumed nor rolled back, or `--no-rollback`) and removes it.

mod backend;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::actions::ctx::Ctx;
use crate::output::diag::Problem;
pub use backend::{Found, Sh};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Insert the rule (once: an identical rule is not added twice).
    Add,
    /// Delete every copy of the rule ("until no more unwanted rules are left").
    Remove,
}

/// Which packet filter takes an added rule. A removal looks everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The one the host uses (see `backend::choose`).
    #[default]
    Auto,
    Iptables,
    Nftables,
}

impl Backend {
    fn is_auto(&self) -> bool {
        *self == Backend::Auto
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    pub op: Op,
    /// Left out of the plan when `auto`, so plans made before the key
    /// existed hash the same.
    #[serde(default, skip_serializing_if = "Backend::is_auto")]
    pub backend: Backend,
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

    /// The rule as the admin reads it: `INPUT -p udp --dport 5060 -j DROP`.
    pub fn rule_text(&self) -> String {
        format!("{} {}", self.chain, self.rule_args().join(" "))
    }

    /// The rule as `iptables -S` prints it, to count copies.
    pub fn save_line(&self) -> String {
        let src = self.source.as_ref().map(|s| {
            let full = if s.contains('/') {
                s.clone()
            } else if self.ipv6() {
                format!("{s}/128")
            } else {
                format!("{s}/32")
            };
            format!(" -s {full}")
        });
        format!(
            "-A {}{} -p {p} -m {p} --dport {} -j {}",
            self.chain,
            src.unwrap_or_default(),
            self.dport,
            self.target,
            p = self.proto
        )
    }

    fn ipv6(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.contains(':'))
    }

    /// nftables has no INPUT chain of its own: hoist's table gets a base
    /// chain on the hook of the same name.
    fn nft_chain(&self) -> Result<&'static str, String> {
        match self.chain.as_str() {
            "INPUT" => Ok("input"),
            "FORWARD" => Ok("forward"),
            "OUTPUT" => Ok("output"),
            c => Err(format!(
                "chain `{c}`: with nftables only INPUT, FORWARD and OUTPUT can be used"
            )),
        }
    }

    /// The rule in nft's words, after the chain.
    fn nft_expr(&self) -> Vec<String> {
        let mut e = Vec::new();
        if let Some(s) = &self.source {
            let fam = if self.ipv6() { "ip6" } else { "ip" };
            e.extend([fam.to_string(), "saddr".into(), s.clone()]);
        }
        e.extend([
            self.proto.clone(),
            "dport".into(),
            self.dport.to_string(),
            self.target.to_lowercase(),
        ]);
        e
    }

    /// The comment hoist puts on its nft rules: the rule itself, so a copy
    /// is told from any other rule of the table exactly.
    fn nft_tag(&self) -> String {
        format!("hoist {}", self.rule_text())
    }

    fn sh<'a>(&self, ctx: &'a Ctx<'_>) -> Sh<'a> {
        Sh {
            log: Some(ctx.log),
            env: &ctx.env,
        }
    }

    /// Every copy of the rule, wherever it is (for `remove`, the built-in
    /// undo and the leftovers check).
    pub fn remove_everywhere(&self, sh: &Sh<'_>) -> Result<Vec<Found>, String> {
        let removed = backend::remove_everywhere(sh, self)?;
        let left = backend::find_everywhere(sh, self)?;
        if let Some(f) = left.first() {
            return Err(format!(
                "{}: {} copies still in {} after removal",
                self.rule_text(),
                f.copies,
                f.place
            ));
        }
        Ok(removed)
    }

    pub fn find_everywhere(&self, sh: &Sh<'_>) -> Result<Vec<Found>, String> {
        backend::find_everywhere(sh, self)
    }

    fn remove_noted(&self, ctx: &Ctx<'_>) -> Result<(), String> {
        let removed = self.remove_everywhere(&self.sh(ctx))?;
        if removed.is_empty() {
            ctx.note(&format!("{}: not present anywhere", self.rule_text()));
        }
        for f in removed {
            ctx.note(&format!(
                "{}: removed {} cop{} from {}",
                self.rule_text(),
                f.copies,
                if f.copies == 1 { "y" } else { "ies" },
                f.place
            ));
        }
        Ok(())
    }
}

impl Kind for Firewall {
    const NAME: &'static str = "firewall";
    const UNDOES_EXEC: bool = true;

    fn summary(&self) -> String {
        let verb = match self.op {
            Op::Add => "add",
            Op::Remove => "remove every copy of",
        };
        let filter = match self.backend {
            Backend::Auto => "firewall rule",
            Backend::Iptables => "iptables rule",
            Backend::Nftables => "nftables rule",
        };
        format!("{verb} {filter} {}", self.rule_text())
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
        // The words go to iptables and nft as they are: nothing that nft
        // could read as more syntax.
        let chain_ok = !self.chain.is_empty()
            && self.chain.len() <= 28
            && self
                .chain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !chain_ok {
            problems.push(
                Problem::error(
                    "bad-value",
                    span.clone(),
                    format!("`chain` is `{}`", self.chain),
                )
                .label("a chain name: letters, digits, `_` and `-`, at most 28"),
            );
        }
        if self.backend == Backend::Nftables
            && let Err(e) = self.nft_chain()
        {
            problems.push(Problem::error("bad-value", span.clone(), e).label("here"));
        }
        if let Some(s) = &self.source {
            let (addr, len) = s.split_once('/').unwrap_or((s, "0"));
            let ok = addr.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok();
            if !ok {
                problems.push(
                    Problem::error("bad-value", span.clone(), format!("`source` is `{s}`"))
                        .label("an IP address or network: 127.0.0.1, 10.0.0.0/8, fd00::/8"),
                );
            }
        }
        if self.dport == 0 {
            problems.push(
                Problem::error("bad-value", span.clone(), "`dport` is 0".to_string())
                    .label("a port from 1 to 65535"),
            );
        }
    }

    fn executable(&self) -> bool {
        true
    }

    /// Refuses, before anything changes, a rule nothing on the host can add
    /// (a removal needs nothing: with no filter installed, no rule exists).
    fn preflight(&self, _ctx: &Ctx<'_>) -> Result<(), String> {
        if self.op == Op::Remove {
            return Ok(());
        }
        let sh = Sh {
            log: None,
            env: &[],
        };
        match backend::choose(&sh, self)? {
            backend::Chosen::Nft(_) => self.nft_chain().map(|_| ()),
            backend::Chosen::Xt(_) => Ok(()),
        }
    }

    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.op {
            Op::Remove => self.remove_noted(ctx),
            Op::Add => {
                let sh = self.sh(ctx);
                let chosen = backend::choose(&sh, self)?;
                ctx.note(&format!("{}: using {}", self.rule_text(), chosen.label()));
                if self.target == "ACCEPT" && matches!(chosen, backend::Chosen::Nft(_)) {
                    // nftables drops what any base chain drops: hoist's
                    // table cannot open what the host's own tables close.
                    ctx.note("an ACCEPT in hoist's table does not override a drop in the host's own tables");
                }
                if chosen.present(&sh, self)? {
                    // Likely a leftover of an earlier abort (seed 000): it
                    // is removed with this one, by the undo or the cleanup.
                    ctx.note(&format!(
                        "{}: already there before this step; not added again",
                        self.rule_text()
                    ));
                    return Ok(());
                }
                chosen.insert(&sh, self)?;
                if chosen.present(&sh, self)? {
                    Ok(())
                } else {
                    Err(format!(
                        "{} was added to {} but is not found there",
                        self.rule_text(),
                        chosen.label()
                    ))
                }
            }
        }
    }

    /// `add` undoes itself: every copy goes, so the compensation exists even
    /// when the recipe gives no `undo`.
    fn builtin_undo(&self) -> bool {
        self.op == Op::Add
    }

    fn compensate(&self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        match self.op {
            Op::Add => self.remove_noted(ctx),
            Op::Remove => Err("`firewall` remove has no built-in undo".into()),
        }
    }

    fn applied(&self, ctx: &Ctx<'_>) -> Option<bool> {
        let sh = self.sh(ctx);
        match self.op {
            Op::Add => backend::choose(&sh, self)
                .and_then(|c| c.present(&sh, self))
                .ok(),
            Op::Remove => backend::find_everywhere(&sh, self)
                .map(|f| f.is_empty())
                .ok(),
        }
    }
}
