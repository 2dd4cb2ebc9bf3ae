//! A run's report: one JSON document per run (`<state>/reports/N.json`,
//! docs/DURABILITY.md), written at each of the run's ends and printed by
//! `hoist report [RUN] [--json]`. What an admin or an auditor asks after
//! the fact: what was planned, what the preflight checks said, how each
//! step ended and how long it took, and what the run left for the admin.
//! Made from the journal (`run::report`), so an old run's can be made again.
//! Its fields are listed in docs/WIRE.md; a test keeps the list true.

use serde::{Deserialize, Serialize};

use crate::output::wire::JournalEvent;

/// Bumped when a field is removed or changes meaning; a new field keeps it.
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub run: i64,
    pub product: String,
    pub from: String,
    pub to: String,
    pub plan_hash: String,
    /// The run's state when the report was made (`committed`, `paused`...).
    pub state: String,
    /// Why the run is not committed, as the journal has it.
    #[serde(default)]
    pub error: Option<String>,
    pub started_at: String,
    /// When the run reached a final state; null while it may go on.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The journal's last change of the run.
    pub updated_at: String,
    /// From its start to its last change.
    #[serde(default)]
    pub seconds: Option<f64>,
    pub written_at: String,
    pub recipe: String,
    pub recipe_sha256: String,
    /// The fleet rollout the run belongs to (its tag), if any.
    #[serde(default)]
    pub rollout: Option<String>,
    /// The recipe's preflight checks before the run began; null for a run
    /// of a hoist that did not journal them.
    #[serde(default)]
    pub preflight: Option<Vec<Check>>,
    /// The plan's steps in order, each with how it ended.
    pub steps: Vec<Step>,
    /// Time spent per phase, in the plan's order of phases.
    pub phases: Vec<PhaseTime>,
    pub left: Left,
    /// The run's journal events (`hoist status --json`'s).
    pub events: Vec<JournalEvent>,
    /// The run's full output.
    pub log: String,
}

/// A preflight check's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    /// PASS, WARN, FAIL, SKIP, NOT-EVALUATED.
    pub status: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub key: String,
    pub id: String,
    pub phase: String,
    pub summary: String,
    /// Where it stands now: pending, done, failed, skipped, undone,
    /// undo-failed...
    pub state: String,
    /// How it ended going forward (done, failed, running when hoist was
    /// stopped in it); null when it never ran.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub attempts: i64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
    /// Why the plan left it out (`skipped`).
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// Whether a rollback undoes it.
    #[serde(default)]
    pub has_undo: bool,
    /// Its undo, when one ran.
    #[serde(default)]
    pub undo: Option<Undo>,
}

/// How a step's undo ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    /// undone, undo-failed, undoing (stopped in it).
    pub state: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    pub phase: String,
    pub seconds: f64,
    /// Steps of the phase that ran (done or failed).
    pub steps: usize,
}

/// What the run left for the admin, each a sentence from the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// Steps that ran and a rollback did not undo (`not-undone`).
    #[serde(default)]
    pub not_undone: Vec<String>,
    /// Steps left as they are on purpose (`kept`: no undo needed).
    #[serde(default)]
    pub kept: Vec<String>,
    /// Undos the admin skipped, with why (`undo-skipped`).
    #[serde(default)]
    pub undo_skipped: Vec<String>,
    /// Configuration files the packages' new versions sit beside.
    #[serde(default)]
    pub conffiles: Vec<String>,
    /// Services still running replaced files.
    #[serde(default)]
    pub stale_services: Vec<String>,
    /// A run not finished: the steps whose changes are in place and which
    /// `hoist rollback` would undo (temporary changes among them).
    #[serde(default)]
    pub in_place: Vec<String>,
}

impl Left {
    pub fn is_empty(&self) -> bool {
        self.not_undone.is_empty()
            && self.kept.is_empty()
            && self.undo_skipped.is_empty()
            && self.conffiles.is_empty()
            && self.stale_services.is_empty()
            && self.in_place.is_empty()
    }
}

fn secs(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "-".into())
}

impl Report {
    /// The report as an admin reads it.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "run {}: {} {} -> {}: {}",
            self.run, self.product, self.from, self.to, self.state
        );
        let _ = writeln!(
            o,
            "  started {}, {} {}{}",
            self.started_at,
            if self.finished_at.is_some() {
                "finished"
            } else {
                "last change"
            },
            self.finished_at.as_deref().unwrap_or(&self.updated_at),
            self.seconds
                .map(|s| format!(" ({s:.1} s)"))
                .unwrap_or_default()
        );
        if let Some(e) = &self.error {
            let _ = writeln!(o, "  why: {e}");
        }
        if let Some(r) = &self.rollout {
            let _ = writeln!(o, "  fleet rollout: {r}");
        }
        let _ = writeln!(o, "  plan {} from {}", self.plan_hash, self.recipe);
        match &self.preflight {
            None => {}
            Some(checks) if checks.is_empty() => {
                let _ = writeln!(o, "preflight: no check");
            }
            Some(checks) => {
                let _ = writeln!(o, "preflight:");
                for c in checks {
                    let _ = writeln!(o, "  {:<13} {}: {}", c.status, c.id, c.message);
                }
            }
        }
        let _ = writeln!(o, "steps:");
        for (n, s) in self.steps.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {:>3}. {:<10} {:<12} {:>8}  {}: {}",
                n + 1,
                s.phase,
                s.state,
                secs(s.seconds),
                s.key,
                s.summary
            );
            if let Some(e) = &s.error {
                let _ = writeln!(o, "       error: {e}");
            }
            if let Some(u) = &s.undo {
                let _ = writeln!(
                    o,
                    "       ran: {}; undo: {} ({}){}",
                    s.outcome.as_deref().unwrap_or("-"),
                    u.state,
                    secs(u.seconds),
                    u.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
            if let Some(r) = &s.skip_reason {
                let _ = writeln!(o, "       not taken: {r}");
            }
        }
        if !self.phases.is_empty() {
            let times: Vec<String> = self
                .phases
                .iter()
                .map(|p| format!("{} {:.1} s", p.phase, p.seconds))
                .collect();
            let _ = writeln!(o, "time per phase: {}", times.join(", "));
        }
        if self.left.is_empty() {
            let _ = writeln!(o, "left: nothing");
        } else {
            let _ = writeln!(o, "left:");
            let l = &self.left;
            for (what, list) in [
                ("not undone", &l.not_undone),
                ("kept", &l.kept),
                ("undo skipped", &l.undo_skipped),
                ("configuration files to merge", &l.conffiles),
                ("services running replaced files", &l.stale_services),
                ("in place until resume or rollback", &l.in_place),
            ] {
                for item in list {
                    let _ = writeln!(o, "  {what}: {item}");
                }
            }
        }
        let _ = writeln!(o, "log: {}", self.log);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of `v` and of the objects in it, with where it is.
    fn keys(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.push(format!("{at}{k}"));
                    keys(x, &format!("{at}{k}."), out);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    keys(x, at, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn docs_wire_md_names_every_field_of_the_report() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WIRE.md"))
            .expect("docs/WIRE.md");
        let part = doc
            .split_once("## A run's report")
            .expect("a `## A run's report` part")
            .1;
        let full = Report {
            preflight: Some(vec![Check::default()]),
            steps: vec![Step {
                undo: Some(Undo::default()),
                ..Step::default()
            }],
            phases: vec![PhaseTime::default()],
            events: vec![JournalEvent::default()],
            ..Report::default()
        };
        let mut all = Vec::new();
        keys(&serde_json::to_value(&full).unwrap(), "", &mut all);
        let missing: Vec<&String> = all
            .iter()
            .filter(|k| {
                let last = k.rsplit('.').next().unwrap_or(k);
                // The journal events' own fields are `hoist status --json`'s.
                !k.starts_with("events.") && !part.contains(&format!("`{last}`"))
            })
            .collect();
        assert!(missing.is_empty(), "docs/WIRE.md lacks: {missing:?}");
        assert!(part.contains(&format!("number, {SCHEMA} now")));
    }
}
