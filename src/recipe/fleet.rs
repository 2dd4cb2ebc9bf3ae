//! `[fleet]`: how a product is rolled out across the hosts of an inventory.
//!
//! Seed 000's "Cluster Upgrade" (XiVO's HA pair: replication cron off on the
//! master, the slave first, then the master, replication run by hand, cron
//! back on) and seed 003 (CloudStack: every management and usage server
//! stopped, the first management server alone until the database is
//! upgraded, the others one at a time, then usage servers, then every KVM
//! host, then all hosts Up) are what this section must say.
//!
//! A rollout is **stages** (one role each, in order, each cut into batches,
//! each with the fleet-wide failure thresholds or its own) and **run-once
//! steps** (one action from the action registry, on one chosen host or on
//! every host of a role, before or after a stage or after one of its
//! batches). A gate is a run-once step whose action is `wait` (or `gate`):
//! the rollout goes on only once it holds, reusing `wait`'s `until`
//! conditions. A run-once step may instead take a host step (`step = ID`):
//! the hosts' own plans of a rollout leave that step out, and the rollout
//! runs it once, at its own place, where the chosen host's plan took it
//! (seed 003: the system VMs are restarted once, on one management server,
//! after every KVM host is upgraded and every host is Up, L3403-3436).

use std::ops::Range as Span;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use crate::actions::{Action, KINDS};
use crate::output::diag::{Problem, suggest};

/// The rollout of a product across a fleet.
#[derive(Clone, Debug, Serialize)]
pub struct FleetSpec {
    pub stages: Vec<Stage>,
    pub run_once: Vec<FleetStep>,
    /// The rollout stops once more than this many hosts have failed in
    /// total. Default 0 when neither threshold is given: the first failed
    /// host stops it (seed 003: "If the hosts do not come to the Up state,
    /// contact support").
    pub max_fail: Option<u32>,
    /// The rollout stops once the failed hosts of one batch are more than
    /// this percentage of that batch (strictly more, as Ansible's
    /// `max_fail_percentage`: 20 with a batch of 5 tolerates 1, stops at 2).
    pub max_fail_percentage: Option<u8>,
    /// At most this many hosts upgrade at once within a batch.
    pub parallel: Option<u32>,
    #[serde(skip)]
    pub span: Span<usize>,
}

impl FleetSpec {
    /// The absolute threshold in force: `max_fail`, or 0 when no threshold
    /// is given at all, or none when only a percentage is given.
    pub fn max_fail_effective(&self) -> Option<u32> {
        match (self.max_fail, self.max_fail_percentage) {
            (Some(n), _) => Some(n),
            (None, None) => Some(0),
            (None, Some(_)) => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    pub id: String,
    /// Hosts with this role (inventory order) are this stage's.
    pub role: String,
    /// Batch sizes; the last one repeats for the rest (`[1, 5, "20%"]`).
    pub batch: Vec<BatchSize>,
    /// Stop after this stage until `hoist fleet resume`.
    pub pause_after: bool,
    /// This stage's own thresholds. Either one given replaces the
    /// fleet-wide pair for this stage's batches (seed 003: a failed KVM
    /// host may be tolerated where a failed management server may not);
    /// `max_fail` then counts this stage's failed hosts only.
    pub max_fail: Option<u32>,
    pub max_fail_percentage: Option<u8>,
    #[serde(skip)]
    pub span: Span<usize>,
}

impl Stage {
    /// `(max_fail, max_fail_percentage)` in force for this stage's batches
    /// when it has thresholds of its own; none: the fleet-wide ones apply.
    /// Only a percentage given: no absolute limit in this stage.
    pub fn own_thresholds(&self) -> Option<(Option<u32>, Option<u8>)> {
        (self.max_fail.is_some() || self.max_fail_percentage.is_some())
            .then_some((self.max_fail, self.max_fail_percentage))
    }
}

/// A batch: a number of hosts, or a percentage of the stage's hosts,
/// rounded down with a minimum of 1 (as Ansible's `serial`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSize {
    Count(u32),
    Percent(u8),
}

impl BatchSize {
    /// The number of hosts out of a stage of `total`.
    pub fn of(self, total: usize) -> usize {
        match self {
            BatchSize::Count(n) => n as usize,
            BatchSize::Percent(p) => (total * p as usize / 100).max(1),
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Count(n) => write!(f, "{n}"),
            BatchSize::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Where a run-once step runs in the rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Before(String),
    After(String),
    /// After the given batch (1-based) of a stage, before its next one.
    AfterBatch(String, u32),
}

impl Anchor {
    pub fn stage(&self) -> &str {
        match self {
            Anchor::Before(s) | Anchor::After(s) | Anchor::AfterBatch(s, _) => s,
        }
    }
}

/// The host (or hosts) a run-once step runs on: exactly one of the three.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub struct Target {
    /// The first host (inventory order) with this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// This host, by its inventory name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Every host (inventory order) with this role: seed 003's "Stop your
    /// management server or servers. Run this on all management server
    /// hosts" (L178-192), before the first of them is upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.role, &self.host, &self.every) {
            (_, Some(h), _) => write!(f, "host {h}"),
            (_, None, Some(r)) => write!(f, "every {r}"),
            (Some(r), None, None) => write!(f, "the first {r}"),
            (None, None, None) => f.write_str("no host"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetStep {
    pub id: String,
    pub title: Option<String>,
    pub at: Anchor,
    pub on: Target,
    pub action: Action,
    /// The host step this run-once step takes out of the hosts' own plans
    /// of a rollout (`step = ID`): its action, undo and title are that
    /// step's, and it runs on a host only when that host's plan of the
    /// rollout took the step (its hops and `when` held there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What puts back what `action` did, for `hoist fleet rollback`: the
    /// same shape and the same rules as a step's `undo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Action>,
    /// `undo = "none"`: why the fleet rollback does not need to put back
    /// what the step did (`undo_reason`); the rollback says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_undo: Option<String>,
    #[serde(skip)]
    pub undo_span: Span<usize>,
    #[serde(skip)]
    pub span: Span<usize>,
}

impl FleetStep {
    /// A gate holds the rollout until a condition is true; it changes
    /// nothing on the host.
    pub fn is_gate(&self) -> bool {
        self.action.is_wait()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    max_fail: Option<u32>,
    #[serde(default)]
    max_fail_percentage: Option<Spanned<i64>>,
    #[serde(default)]
    parallel: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    id: String,
    role: Spanned<String>,
    #[serde(default)]
    batch: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pause_after: bool,
    #[serde(default)]
    max_fail: Option<Spanned<i64>>,
    #[serde(default)]
    max_fail_percentage: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    after_batch: Option<u32>,
    on: Spanned<Target>,
    #[serde(default)]
    step: Option<Spanned<String>>,
}

/// Reads `[fleet]`; `steps` are the recipe's host steps, which a run-once
/// step may take (`step = ID`). Other checks against the rest of the
/// recipe are in [`validate`].
pub fn parse(
    value: Spanned<DeValue<'_>>,
    steps: &[crate::recipe::Step],
    problems: &mut Vec<Problem>,
) -> Option<FleetSpec> {
    let span = value.span();
    if !value.get_ref().is_table() {
        problems.push(
            Problem::error("wrong-type", span, "`fleet` is a table").label("write it as [fleet]"),
        );
        return None;
    }
    let (rest, taken) = super::parse::take(value, |k| k == "stages" || k == "run_once");
    let mut stages = Vec::new();
    let mut run_once = Vec::new();
    let has_stages = taken.iter().any(|(k, _, _)| k == "stages");
    for (k, _, v) in taken {
        let list = items(&k, v, problems);
        if k == "stages" {
            stages = list
                .into_iter()
                .filter_map(|i| stage(i, problems))
                .collect();
        } else {
            run_once = list
                .into_iter()
                .filter_map(|i| step(i, steps, problems))
                .collect();
        }
    }
    let raw: RawFleet = super::parse::de(rest, problems)?;
    let max_fail_percentage = percentage(raw.max_fail_percentage.as_ref(), problems);
    if let Some(p) = &raw.parallel
        && *p.get_ref() == 0
    {
        problems.push(
            Problem::error("bad-batch", p.span(), "`parallel` must be at least 1")
                .label("hosts upgraded at once"),
        );
    }
    if !has_stages {
        problems.push(
            Problem::error("missing-key", span.clone(), "`[fleet]` has no stage")
                .label("add [[fleet.stages]] with `id` and `role`"),
        );
    }
    Some(FleetSpec {
        stages,
        run_once,
        max_fail: raw.max_fail,
        max_fail_percentage,
        parallel: raw.parallel.map(Spanned::into_inner),
        span,
    })
}

fn items<'i>(
    name: &str,
    value: Spanned<DeValue<'i>>,
    problems: &mut Vec<Problem>,
) -> Vec<Spanned<DeValue<'i>>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(a) => a.into_iter().collect(),
        other => {
            problems.push(
                Problem::error(
                    "wrong-type",
                    span,
                    format!(
                        "`fleet.{name}` is a list of tables, found a {}",
                        other.type_str()
                    ),
                )
                .label(format!("write each item as [[fleet.{name}]]")),
            );
            Vec::new()
        }
    }
}

fn stage(item: Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<Stage> {
    let span = item.span();
    let raw: RawStage = super::parse::de(item, problems)?;
    let batch = match &raw.batch {
        None => vec![BatchSize::Count(1)],
        Some(b) => batch(b, problems)?,
    };
    let max_fail = count(raw.max_fail.as_ref(), problems);
    let max_fail_percentage = percentage(raw.max_fail_percentage.as_ref(), problems);
    Some(Stage {
        id: raw.id,
        role: raw.role.into_inner(),
        batch,
        pause_after: raw.pause_after,
        max_fail,
        max_fail_percentage,
        span,
    })
}

/// `max_fail_percentage`: 0 to 100, or a `bad-threshold` at the value.
fn percentage(value: Option<&Spanned<i64>>, problems: &mut Vec<Problem>) -> Option<u8> {
    let p = value?;
    match u8::try_from(*p.get_ref()) {
        Ok(n) if n <= 100 => Some(n),
        _ => {
            problems.push(
                Problem::error(
                    "bad-threshold",
                    p.span(),
                    format!("`max_fail_percentage` is {}, not a percentage", p.get_ref()),
                )
                .label("expected 0 to 100"),
            );
            None
        }
    }
}

/// A stage's `max_fail`: a count of hosts from 0, or a `bad-threshold`.
fn count(value: Option<&Spanned<i64>>, problems: &mut Vec<Problem>) -> Option<u32> {
    let n = value?;
    match u32::try_from(*n.get_ref()) {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(
                Problem::error(
                    "bad-threshold",
                    n.span(),
                    format!("`max_fail` is {}, not a number of hosts", n.get_ref()),
                )
                .label("expected 0 or more")
                .help("0 stops at the first failed host of the stage"),
            );
            None
        }
    }
}

/// `1`, `"20%"` or `[1, 5, "20%"]`.
fn batch(value: &Spanned<toml::Value>, problems: &mut Vec<Problem>) -> Option<Vec<BatchSize>> {
    let bad = |problems: &mut Vec<Problem>, what: String| {
        problems.push(
            Problem::error("bad-batch", value.span(), what)
                .label("expected a count, a percentage or a list of them")
                .help("write e.g. 1, \"20%\" or [1, 5, \"20%\"]"),
        );
    };
    let one = |v: &toml::Value| -> Result<BatchSize, String> {
        match v {
            toml::Value::Integer(n) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                Ok(BatchSize::Count(*n as u32))
            }
            toml::Value::Integer(n) => Err(format!("a batch of {n} hosts")),
            toml::Value::String(s) => s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u8>().ok())
                .filter(|p| (1..=100).contains(p))
                .map(BatchSize::Percent)
                .ok_or_else(|| format!("`{s}` is not a percentage from 1% to 100%")),
            other => Err(format!("a batch size cannot be a {}", other.type_str())),
        }
    };
    let sizes = match value.get_ref() {
        toml::Value::Array(a) if a.is_empty() => Err("the list of batch sizes is empty".into()),
        toml::Value::Array(a) => a.iter().map(one).collect(),
        v => one(v).map(|b| vec![b]),
    };
    sizes.map_err(|e| bad(problems, e)).ok()
}

fn step(
    item: Spanned<DeValue<'_>>,
    steps: &[crate::recipe::Step],
    problems: &mut Vec<Problem>,
) -> Option<FleetStep> {
    let span = item.span();
    let (rest, taken) = super::parse::take(item, |k| {
        k == "undo" || k == "undo_reason" || KINDS.contains(&k)
    });
    let raw: Option<RawStep> = super::parse::de(rest, problems);
    let actions: Vec<_> = taken
        .iter()
        .filter(|(k, _, _)| KINDS.contains(&k.as_str()))
        .collect();
    let subject = format!(
        "run-once step{}",
        raw.as_ref()
            .map(|r| format!(" `{}`", r.id))
            .unwrap_or_default()
    );
    let undo = super::parse::step_undo(
        taken.iter().find(|(k, _, _)| k == "undo"),
        taken.iter().find(|(k, _, _)| k == "undo_reason"),
        &subject,
        problems,
    );
    let taken_step = raw.as_ref().and_then(|r| r.step.as_ref());
    let host_step = match taken_step {
        Some(id) => {
            if let Some((k, kspan, _)) = taken
                .iter()
                .find(|(k, _, _)| k == "undo" || KINDS.contains(&k.as_str()))
            {
                problems.push(
                    Problem::error(
                        "one-of",
                        kspan.clone(),
                        format!("`{k}` beside `step`: the host step's own is used"),
                    )
                    .label(
                        "a run-once step that takes a host step has no action or undo of its own",
                    )
                    .help("drop this key, or drop `step`"),
                );
                return None;
            }
            match steps.iter().find(|s| &s.id == id.get_ref()) {
                Some(s) => Some(s),
                None => {
                    problems.push(
                        Problem::error(
                            "unknown-step",
                            id.span(),
                            format!("no step `{}` in the recipe", id.get_ref()),
                        )
                        .label("`step` names one of the recipe's [[steps]]")
                        .help_opt(suggest(id.get_ref(), steps.iter().map(|s| s.id.as_str()))),
                    );
                    return None;
                }
            }
        }
        None => None,
    };
    let action = match host_step {
        Some(s) => Some(s.action.clone()),
        None => super::parse::one_action(
            &actions,
            &span,
            "a run-once step",
            "split it into two run-once steps",
            problems,
        ),
    };
    let raw = raw?;
    let at = match (raw.before, raw.after, raw.after_batch) {
        (Some(s), None, None) => Anchor::Before(s),
        (None, Some(s), None) => Anchor::After(s),
        (None, Some(s), Some(n)) if n >= 1 => Anchor::AfterBatch(s, n),
        (None, Some(_), Some(_)) => {
            problems.push(
                Problem::error("bad-batch", span, "`after_batch` counts from 1")
                    .label("the batch after which this step runs"),
            );
            return None;
        }
        (Some(_), None, Some(_)) => {
            problems.push(
                Problem::error(
                    "one-of",
                    span,
                    "`after_batch` goes with `after`, not `before`",
                )
                .label("before a stage, no batch of it has run"),
            );
            return None;
        }
        _ => {
            problems.push(
                Problem::error(
                    "one-of",
                    span,
                    format!(
                        "run-once step `{}` needs exactly one of `before` and `after`",
                        raw.id
                    ),
                )
                .label("when in the rollout does it run?")
                .help("name a stage: before = \"slave\" or after = \"master\""),
            );
            return None;
        }
    };
    let on_span = raw.on.span();
    let on = raw.on.into_inner();
    crate::actions::exactly_one(
        "on",
        &on_span,
        &[
            ("role", on.role.is_some()),
            ("host", on.host.is_some()),
            ("every", on.every.is_some()),
        ],
        problems,
    );
    if let (Some(id), Anchor::Before(stage)) = (&raw.step, &at) {
        problems.push(
            Problem::error(
                "step-before-stage",
                id.span(),
                format!(
                    "run-once step `{}` takes host step `{}` before stage `{stage}`",
                    raw.id,
                    id.get_ref()
                ),
            )
            .label(
                "it runs where a host's plan of the rollout took the step: no host has planned yet",
            )
            .help("anchor it with `after`"),
        );
    }
    let (undo_action, no_undo, undo_span) = match host_step {
        Some(s) => (s.undo.clone(), s.no_undo.clone(), s.undo_span.clone()),
        None => (undo.action, undo.reason, undo.span),
    };
    Some(FleetStep {
        id: raw.id,
        title: raw
            .title
            .or_else(|| host_step.and_then(|s| s.title.clone())),
        at,
        on,
        action: action?,
        step: raw.step.map(Spanned::into_inner),
        undo: undo_action,
        no_undo,
        undo_span,
        span,
    })
}

/// Checks across the recipe: unique ids, stages named by run-once steps,
/// roles the product declares.
pub fn validate(
    spec: &FleetSpec,
    roles: &[String],
    source: &crate::output::diag::Source,
    problems: &mut Vec<Problem>,
) {
    let find = |needle: &str, within: &Span<usize>| -> Span<usize> {
        // Point at the value inside the item when it can be found. A table
        // of an array may be spanned by its header only: look on to the
        // next header.
        let text = source.text.get(within.start..).unwrap_or("");
        let body = text.find("\n[").map_or(text, |e| &text[..e + 1]);
        body.find(&format!("\"{needle}\""))
            .map_or(within.clone(), |i| {
                within.start + i..within.start + i + needle.len() + 2
            })
    };
    let mut seen = std::collections::HashSet::new();
    for s in &spec.stages {
        if !seen.insert(s.id.as_str()) {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    s.span.clone(),
                    format!("stage id `{}` is used twice", s.id),
                )
                .label("second use"),
            );
        }
        if !roles.is_empty() && !roles.contains(&s.role) {
            problems.push(unknown_role(&s.role, roles, find(&s.role, &s.span)));
        }
    }
    let stage_ids: Vec<&str> = spec.stages.iter().map(|s| s.id.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    for r in &spec.run_once {
        if !seen.insert(r.id.as_str()) {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    r.span.clone(),
                    format!("run-once step id `{}` is used twice", r.id),
                )
                .label("second use"),
            );
        }
        let stage = r.at.stage();
        if !stage_ids.contains(&stage) {
            problems.push(
                Problem::error(
                    "unknown-stage",
                    find(stage, &r.span),
                    format!("no stage `{stage}` in [fleet]"),
                )
                .label(format!("expected one of: {}", stage_ids.join(", ")))
                .help_opt(suggest(stage, stage_ids.iter().copied())),
            );
        }
        for role in [&r.on.role, &r.on.every].into_iter().flatten() {
            if !roles.is_empty() && !roles.contains(role) {
                problems.push(unknown_role(role, roles, find(role, &r.span)));
            }
        }
        if let Some(undo) = &r.undo {
            super::validate::undo_kind(
                &format!("run-once step `{}`", r.id),
                &r.action,
                undo,
                &r.undo_span,
                problems,
            );
            if undo.reboots() {
                problems.push(reboot_in_fleet_step(r.undo_span.clone()));
            }
        }
        if r.action.reboots() {
            problems.push(reboot_in_fleet_step(r.span.clone()));
        }
        super::validate::no_undo(
            super::validate::UndoSaid {
                subject: format!("run-once step `{}`", r.id),
                action: &r.action,
                undo_given: r.undo.is_some() || !r.undo_span.is_empty(),
                undo_span: &r.undo_span,
                none: r.no_undo.is_some(),
                builtin_counts: false,
                exempt: r.is_gate(),
                span: &r.span,
            },
            problems,
        );
    }
}

fn reboot_in_fleet_step(span: Span<usize>) -> Problem {
    Problem::error(
        "reboot-in-fleet-step",
        span,
        "a run-once step cannot reboot its host",
    )
    .label("the controller would lose the host mid-step")
    .help("reboot inside the host's own upgrade, as a step")
}

fn unknown_role(role: &str, roles: &[String], span: Span<usize>) -> Problem {
    Problem::error(
        "unknown-role",
        span,
        format!("`{role}` is not a role of this product"),
    )
    .label(format!("[product].roles: {}", roles.join(", ")))
    .help_opt(suggest(role, roles.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recipe with one host step `restart` and `fleet` after it.
    fn load(fleet: &str) -> crate::recipe::Loaded {
        let text = format!(
            "[product]\nname = \"demo\"\nversion = {{ package = \"demo\" }}\nroles = [\"web\", \"db\"]\n\n\
             [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n\
             [[steps]]\nid = \"restart\"\nphase = \"post\"\ntitle = \"Restart the VMs\"\n\
             exec = {{ argv = [\"true\"] }}\nundo = \"none\"\nundo_reason = \"cannot be undone\"\n\n\
             [fleet]\n[[fleet.stages]]\nid = \"db\"\nrole = \"db\"\n[[fleet.stages]]\nid = \"web\"\nrole = \"web\"\n\n{fleet}"
        );
        crate::recipe::load_str(std::path::Path::new("fleet.toml"), &text)
    }

    fn codes(l: &crate::recipe::Loaded) -> Vec<&'static str> {
        l.problems.iter().map(|p| p.problem.code).collect()
    }

    #[test]
    fn a_run_once_step_takes_a_host_steps_action_undo_and_title() {
        let l = load(
            "[[fleet.run_once]]\nid = \"once\"\nafter = \"web\"\non = { role = \"db\" }\nstep = \"restart\"\n",
        );
        assert_eq!(codes(&l), Vec::<&str>::new());
        let r = l.recipe.unwrap();
        let f = &r.fleet.as_ref().unwrap().run_once[0];
        assert_eq!(f.step.as_deref(), Some("restart"));
        assert_eq!(f.title.as_deref(), Some("Restart the VMs"));
        assert_eq!(f.action.summary(), r.steps[0].action.summary());
        assert_eq!(f.no_undo.as_deref(), Some("cannot be undone"));
        assert_eq!(f.at, Anchor::After("web".into()));
    }

    #[test]
    fn a_taken_step_must_exist_have_no_action_of_its_own_and_come_after_a_stage() {
        let l = load(
            "[[fleet.run_once]]\nid = \"once\"\nafter = \"web\"\non = { role = \"db\" }\nstep = \"restrat\"\n",
        );
        assert_eq!(codes(&l), ["unknown-step"]);
        assert!(l.problems[0].problem.message.contains("restrat"));
        let l = load(
            "[[fleet.run_once]]\nid = \"once\"\nafter = \"web\"\non = { role = \"db\" }\nstep = \"restart\"\nexec = { argv = [\"true\"] }\n",
        );
        assert_eq!(codes(&l), ["one-of"]);
        let l = load(
            "[[fleet.run_once]]\nid = \"once\"\nbefore = \"web\"\non = { role = \"db\" }\nstep = \"restart\"\n",
        );
        assert_eq!(codes(&l), ["step-before-stage"]);
    }

    #[test]
    fn percentages_round_down_with_a_minimum_of_one() {
        assert_eq!(BatchSize::Percent(50).of(5), 2);
        assert_eq!(BatchSize::Percent(10).of(1000), 100);
        assert_eq!(BatchSize::Percent(10).of(5), 1);
        assert_eq!(BatchSize::Percent(100).of(3), 3);
        assert_eq!(BatchSize::Count(3).of(2), 3);
    }
}
