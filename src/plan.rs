//! The plan: every concrete step of an upgrade, in order, with the reason
//! each other step is not taken. `hoist upgrade` executes exactly this value
//! (DESIGN: "the plan *is* the run"); its hash names it in the journal.
//!
//! Order: the `prepare` steps of every hop first (so everything is
//! downloaded and verified before anything is disrupted, and `-d` fetches
//! all hops), then hop by hop the phases `pre` to `cleanup`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::actions::Action;
use crate::recipe::facts::{Facts, Value};
use crate::recipe::route::{Hop, Route, RouteError};
use crate::recipe::{Phase, Recipe, Test, duration};
use crate::version::Version;

/// Bumped when the plan's JSON changes incompatibly.
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Unique in the plan: the step id, plus `@to` when there are several hops.
    pub key: String,
    pub id: String,
    /// Index into `Plan::hops`.
    pub hop: usize,
    pub phase: Phase,
    pub title: Option<String>,
    pub summary: String,
    pub action: Action,
    pub undo: Option<Action>,
    pub probe: Option<Test>,
    #[serde(with = "duration::option", default)]
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub once: bool,
    #[serde(default)]
    pub self_update: bool,
    /// Once this step has started the run never goes back past it: why.
    /// Left out of the JSON when unset, so plans without one hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_of_no_return: Option<String>,
    /// `undo = "none"`: why nothing puts back what the step changes. Left
    /// out of the JSON when unset, so plans without one hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_undo: Option<String>,
    /// What the step will change, shown in advance (a unified diff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl PlannedStep {
    /// The step's time bound: the recipe's, else its kind's default.
    pub fn bound(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| self.action.default_timeout())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum SkipReason {
    /// Its `when` is false here; `detail` says which clause and why.
    When { detail: String },
    /// A `once` step already done on this host.
    OnceDone,
    /// Limited to other hops.
    OtherHop { only: Vec<String> },
    /// Taken by the rollout's run-once step `by` (`step = ID` in
    /// `[[fleet.run_once]]`), which runs it at its own place of the
    /// rollout, on one host, with this host's action when this was that
    /// host (seed 003: the system VMs restarted once, after every KVM host,
    /// L3403-3436).
    Deferred { by: String },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::When { detail } => write!(f, "when is false: {detail}"),
            SkipReason::OnceDone => f.write_str("once, and already done on this host"),
            SkipReason::OtherHop { only } => write!(f, "only on hop {}", only.join(", ")),
            SkipReason::Deferred { by } => {
                write!(f, "left to the rollout's run-once step {by}")
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkippedStep {
    pub key: String,
    pub id: String,
    pub hop: usize,
    pub phase: Phase,
    #[serde(flatten)]
    pub reason: SkipReason,
    /// A step left to the rollout ([`SkipReason::Deferred`]): its action
    /// as this host's plan resolved it, which the run-once step runs.
    /// Left out of the JSON when none, so plans hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Box<Action>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub schema: u32,
    pub product: String,
    pub recipe: String,
    /// SHA-256 of the recipe's text: a changed recipe is a changed plan.
    pub recipe_sha256: String,
    pub current: Version,
    pub target: Version,
    pub hops: Vec<Hop>,
    pub steps: Vec<PlannedStep>,
    pub skipped: Vec<SkippedStep>,
    /// SHA-256 of everything above, in its JSON form.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the installed version of {product} is unknown: {why}")]
    NoCurrent { product: String, why: String },
    #[error("no target version: give one with --to")]
    NoTarget,
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(
        "step `{step}` depends on fact `{fact}`, which has no value on this host (give it with --fact {fact}=...)"
    )]
    MissingFact { step: String, fact: String },
    #[error(
        "this host has none of {product}'s roles ({}): without one its plan would skip the product's own steps. Say which with --role ROLE (or in the inventory)",
        roles.join(", ")
    )]
    NoRole { product: String, roles: Vec<String> },
}

/// What planning found.
#[derive(Debug)]
pub enum Outcome {
    UpToDate { current: Version, target: Version },
    Plan(Box<Plan>),
}

/// The target: `--to` (a series such as `4.3` is narrowed to the candidate
/// when the candidate is in it), else the candidate, else the newest version
/// the paths reach.
pub fn choose_target(recipe: &Recipe, facts: &Facts, to: Option<&Version>) -> Option<Version> {
    let candidate = facts.version("candidate");
    match (to, candidate) {
        (Some(t), Some(c)) if c.in_series(t) => Some(c.clone()),
        (Some(t), _) => Some(t.clone()),
        (None, Some(c)) => Some(c.clone()),
        (None, None) => crate::recipe::route::default_target(&recipe.paths),
    }
}

/// Resolves the recipe against the facts of one host. `facts` must hold
/// `current`; `target` is set here.
pub fn resolve(recipe: &Recipe, facts: &Facts, to: Option<&Version>) -> Result<Outcome, PlanError> {
    let current = facts
        .version("current")
        .cloned()
        .ok_or_else(|| PlanError::NoCurrent {
            product: recipe.product.name.clone(),
            why: "the version probe found nothing (is it installed?)".into(),
        })?;
    if recipe.product.role_required {
        let roles = facts.list("roles").unwrap_or_default();
        let roles: Vec<String> = roles.to_vec();
        if !recipe.product.roles.iter().any(|r| roles.contains(r)) {
            return Err(PlanError::NoRole {
                product: recipe.product.name.clone(),
                roles: recipe.product.roles.clone(),
            });
        }
    }
    let target = choose_target(recipe, facts, to).ok_or(PlanError::NoTarget)?;
    let hops = match crate::recipe::route::route(&recipe.paths, &current, &target)? {
        Route::UpToDate => return Ok(Outcome::UpToDate { current, target }),
        Route::Hops(h) => h,
    };
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    let multi = hops.len() > 1;
    let mut order: Vec<(usize, Phase)> = (0..hops.len()).map(|h| (h, Phase::Prepare)).collect();
    for h in 0..hops.len() {
        order.extend(Phase::ALL.iter().skip(1).map(|p| (h, *p)));
    }
    for (h, phase) in order {
        let hop = &hops[h];
        let mut hop_facts = facts.clone();
        hop_facts.set("target", Value::Version(target.clone()));
        hop_facts.set("from", Value::Version(hop.from.clone()));
        hop_facts.set("to", Value::Version(hop.to.clone()));
        for s in recipe.steps.iter().filter(|s| s.phase == phase) {
            let key = if multi {
                format!("{}@{}", s.id, hop.to)
            } else {
                s.id.clone()
            };
            let skip = |reason| SkippedStep {
                key: key.clone(),
                id: s.id.clone(),
                hop: h,
                phase,
                reason,
                action: None,
            };
            if !s.hops.is_empty() && !s.hops.contains(&hop.path) {
                skipped.push(skip(SkipReason::OtherHop {
                    only: s.hops.clone(),
                }));
                continue;
            }
            if s.once && facts.once_done.contains(&s.id) {
                skipped.push(skip(SkipReason::OnceDone));
                continue;
            }
            if let Some(w) = &s.when {
                let holds = w.eval(&hop_facts).map_err(|fact| PlanError::MissingFact {
                    step: s.id.clone(),
                    fact,
                })?;
                if !holds {
                    skipped.push(skip(SkipReason::When {
                        detail: w.explain_false(&hop_facts),
                    }));
                    continue;
                }
            }
            // `{{ fact }}` in the step's strings, from this hop's facts.
            let lookup = |name: &str| hop_facts.get(name).map(crate::recipe::facts::Value::text);
            let missing = |fact| PlanError::MissingFact {
                step: s.id.clone(),
                fact,
            };
            let action = crate::recipe::template::resolve(&s.action, &lookup).map_err(missing)?;
            let undo = s
                .undo
                .as_ref()
                .map(|u| crate::recipe::template::resolve(u, &lookup))
                .transpose()
                .map_err(missing)?;
            let probe = s
                .probe
                .as_ref()
                .map(|p| crate::recipe::template::resolve(p, &lookup))
                .transpose()
                .map_err(missing)?;
            let text = |t: &Option<String>| {
                t.as_deref()
                    .map(|t| crate::recipe::template::render(t, &lookup))
                    .transpose()
                    .map_err(missing)
            };
            let title = text(&s.title)?;
            let point_of_no_return = text(&s.point_of_no_return)?;
            let no_undo = text(&s.no_undo)?;
            steps.push(PlannedStep {
                key,
                id: s.id.clone(),
                hop: h,
                phase,
                title,
                summary: action.summary(),
                preview: action.preview(&recipe.dir()),
                action,
                undo,
                probe,
                timeout: s.timeout,
                retries: s.retries,
                once: s.once,
                self_update: s.self_update,
                point_of_no_return,
                no_undo,
            });
        }
    }
    let mut plan = Plan {
        schema: SCHEMA,
        product: recipe.product.name.clone(),
        recipe: recipe.source.path.display().to_string(),
        recipe_sha256: hex::encode(Sha256::digest(recipe.source.text.as_bytes())),
        current,
        target,
        hops,
        steps,
        skipped,
        hash: String::new(),
    };
    plan.hash = plan.compute_hash();
    Ok(Outcome::Plan(Box::new(plan)))
}

impl Plan {
    /// The plan of a host in a fleet rollout: each step a run-once step of
    /// `[fleet]` takes (`step = ID`) is left to the rollout, which runs it
    /// at its own place, where this plan took it. The hash is made again.
    pub fn defer_to_rollout(&mut self, recipe: &Recipe) {
        let Some(fleet) = &recipe.fleet else {
            return;
        };
        let taken: Vec<(&str, &str)> = fleet
            .run_once
            .iter()
            .filter_map(|r| r.step.as_deref().map(|s| (s, r.id.as_str())))
            .collect();
        if taken.is_empty() {
            return;
        }
        let mut kept = Vec::new();
        for s in std::mem::take(&mut self.steps) {
            match taken.iter().find(|(id, _)| *id == s.id) {
                Some((_, by)) => self.skipped.push(SkippedStep {
                    key: s.key,
                    id: s.id,
                    hop: s.hop,
                    phase: s.phase,
                    reason: SkipReason::Deferred {
                        by: (*by).to_string(),
                    },
                    action: Some(Box::new(s.action)),
                }),
                None => kept.push(s),
            }
        }
        self.steps = kept;
        self.hash = self.compute_hash();
    }

    /// The action this plan left to the rollout's run-once step for host
    /// step `id` ([`Plan::defer_to_rollout`]), if it took the step.
    pub fn deferred(&self, id: &str) -> Option<&Action> {
        self.skipped
            .iter()
            .rev()
            .filter(|s| s.id == id && matches!(s.reason, SkipReason::Deferred { .. }))
            .find_map(|s| s.action.as_deref())
    }

    /// A plan of nothing, as a placeholder while a record is read.
    pub fn empty() -> Plan {
        let zero = Version::parse("0").unwrap_or_else(|_| unreachable!("`0` is a version"));
        Plan {
            schema: SCHEMA,
            product: String::new(),
            recipe: String::new(),
            recipe_sha256: String::new(),
            current: zero.clone(),
            target: zero,
            hops: Vec::new(),
            steps: Vec::new(),
            skipped: Vec::new(),
            hash: String::new(),
        }
    }

    /// Hash of the plan's content. The recipe's path and text hash are left
    /// out: the same steps from a recipe installed elsewhere, or with only a
    /// comment changed, are the same plan.
    pub fn compute_hash(&self) -> String {
        /// What the hash covers: everything but the hash, the recipe's path
        /// and the recipe's text hash.
        #[derive(Serialize)]
        struct Content<'a> {
            schema: u32,
            product: &'a str,
            current: &'a Version,
            target: &'a Version,
            hops: &'a [Hop],
            steps: &'a [PlannedStep],
            skipped: &'a [SkippedStep],
        }
        let content = Content {
            schema: self.schema,
            product: &self.product,
            current: &self.current,
            target: &self.target,
            hops: &self.hops,
            steps: &self.steps,
            skipped: &self.skipped,
        };
        // Streamed into the hasher: no JSON text is built.
        struct Hashing(Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut hasher = Hashing(Sha256::new());
        if serde_json::to_writer(&mut hasher, &content).is_err() {
            return String::new();
        }
        hex::encode(hasher.0.finalize())
    }

    /// The human form: route, then steps by hop and phase, then what is not
    /// taken and why.
    /// The ids of the steps only a person can let the run past, in order.
    pub fn person_gates(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for s in self.steps.iter().filter(|s| s.action.needs_person()) {
            if !ids.contains(&s.id) {
                ids.push(s.id.clone());
            }
        }
        ids
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "{}: {} -> {}", self.product, self.current, self.target);
        if self.hops.len() > 1 {
            let route: Vec<String> = std::iter::once(self.current.to_string())
                .chain(self.hops.iter().map(|h| h.to.to_string()))
                .collect();
            let _ = writeln!(
                out,
                "route: {} ({} hops)",
                route.join(" -> "),
                self.hops.len()
            );
        }
        let _ = writeln!(
            out,
            "plan {} ({} steps, {} not taken)",
            &self.hash[..12],
            self.steps.len(),
            self.skipped.len()
        );
        let width = self.steps.iter().map(|s| s.key.len()).max().unwrap_or(0);
        let mut last: Option<(usize, Phase)> = None;
        let mut hop_shown: Option<usize> = None;
        for (n, s) in self.steps.iter().enumerate() {
            // Prepare steps of every hop come first; each hop's other phases
            // follow under a header naming the hop.
            if self.hops.len() > 1 && s.phase != Phase::Prepare && hop_shown != Some(s.hop) {
                let h = &self.hops[s.hop];
                let _ = writeln!(
                    out,
                    "\nhop {}: {} -> {} (path {}{})",
                    s.hop + 1,
                    h.from,
                    h.to,
                    h.path,
                    if h.atomic_with_next {
                        "; not kept: a failure in the next hop undoes it too"
                    } else {
                        ""
                    }
                );
                hop_shown = Some(s.hop);
            }
            if last != Some((s.hop, s.phase)) {
                let _ = writeln!(out, "  {}", s.phase.name());
            }
            last = Some((s.hop, s.phase));
            let mut extra = Vec::new();
            if s.point_of_no_return.is_some() {
                extra.push("point of no return".to_string());
            } else if s.undo.is_some() {
                extra.push("undo".to_string());
            } else if s.action.builtin_undo() {
                extra.push("undo built in".to_string());
            } else if s.no_undo.is_some() {
                extra.push("no undo".to_string());
            }
            if s.once {
                extra.push("once".to_string());
            }
            if s.action.needs_person() {
                extra.push("needs a person".to_string());
            }
            extra.push(format!("timeout {}", humantime::format_duration(s.bound())));
            if s.retries > 0 {
                extra.push(format!("retries {}", s.retries));
            }
            if !s.action.executable() || s.undo.as_ref().is_some_and(|u| !u.executable()) {
                extra.push("not yet supported".to_string());
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!("  [{}]", extra.join(", "))
            };
            let _ = writeln!(
                out,
                "    {:>3}  {:<width$}  {}{extra}",
                n + 1,
                s.key,
                s.summary
            );
            if let Some(why) = &s.point_of_no_return {
                let _ = writeln!(
                    out,
                    "           point of no return: {why}; a failure after it is fixed forward, never rolled back"
                );
            }
            if let Some(why) = &s.no_undo {
                let _ = writeln!(out, "           undo: none ({why})");
            }
            if let Some(preview) = &s.preview {
                for line in preview.lines() {
                    let _ = writeln!(out, "           {line}");
                }
            }
        }
        let people = self.person_gates();
        if !people.is_empty() {
            let _ = writeln!(
                out,
                "\na person must confirm {} (at a terminal, or in advance with --confirm ID; --yes does not): {}",
                if people.len() == 1 {
                    "this gate"
                } else {
                    "these gates"
                },
                people.join(", ")
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "\nnot taken:");
            let width = self.skipped.iter().map(|s| s.key.len()).max().unwrap_or(0);
            for s in &self.skipped {
                let _ = writeln!(
                    out,
                    "    {:<width$}  {:<9}  {}",
                    s.key,
                    s.phase.name(),
                    s.reason
                );
            }
        }
        out
    }
}
