//! Inventory + the recipe's `[fleet]` + target -> the fleet plan: every
//! stage, batch, host, run-once step and gate, in the order they will run.
//!
//! Deterministic: hosts keep inventory order, run-once steps at the same
//! place keep recipe order, so the same inputs give the same plan (and the
//! same hash, which the controller's journal keeps to tell a changed plan
//! on resume). As for one host, the plan *is* the run: the executor walks
//! exactly these items.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inventory::{Host, Inventory};
use crate::actions::Action;
use crate::recipe::Recipe;
use crate::recipe::fleet::{Anchor, FleetSpec, FleetStep};

/// A host as the plan (and the controller's journal) keeps it: how to reach
/// it and its roles. Variables stay in the inventory (they may hold secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRef {
    pub name: String,
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The SSH private key the inventory names for it (a path, not the
    /// key). Left out of the JSON when none, so plans hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub roles: Vec<String>,
}

impl From<&Host> for HostRef {
    fn from(h: &Host) -> Self {
        HostRef {
            name: h.name.clone(),
            address: h.address.clone(),
            user: h.user.clone(),
            port: h.port,
            key: h.key.clone(),
            roles: h.roles.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StagePlan {
    pub id: String,
    pub role: String,
    /// The hosts this stage upgrades, in batches.
    pub batches: Vec<Vec<String>>,
    /// Hosts with the role that an earlier stage upgrades (a host with two
    /// roles is upgraded once, in its first stage), with that stage.
    pub earlier: Vec<(String, String)>,
    /// The stage's own thresholds, in force for its batches instead of the
    /// fleet-wide ones; none: the fleet-wide ones. Left out of the JSON
    /// (and so of the hash) when none, so plans journaled before stages
    /// had thresholds still read and hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
}

/// A pair of failure thresholds as the executor applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Stop once more than this many hosts (of the scope) have failed.
    pub max_fail: Option<u32>,
    /// Stop once a batch's failed hosts are more than this % of it.
    pub max_fail_percentage: Option<u8>,
}

/// One thing the rollout does, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Item {
    /// One action on one host (a gate when `gate`: it waits, changes nothing).
    RunOnce {
        id: String,
        title: Option<String>,
        host: String,
        gate: bool,
        summary: String,
        action: Box<Action>,
        /// The recipe's `undo`, run by `hoist fleet rollback`. Left out of
        /// the JSON (and so of the hash) when none, so plans journaled
        /// before run-once steps had undos read and hash the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undo: Option<Box<Action>>,
        /// `undo = "none"`: why the rollback does not need it (left out
        /// when none, as `undo`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_undo: Option<String>,
        /// The host step it takes (`step = ID`): run only where the host's
        /// plan of the rollout took that step. Left out when none, as `undo`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    /// One action on every host of a role (`on = { every = ROLE }`), at
    /// most `parallel` at once, each host journaled on its own: a resume
    /// runs it again only where it is not done.
    RunOnEach {
        id: String,
        title: Option<String>,
        role: String,
        hosts: Vec<String>,
        gate: bool,
        summary: String,
        action: Box<Action>,
        /// The recipe's `undo`, run by `hoist fleet rollback`. Left out of
        /// the JSON (and so of the hash) when none, so plans journaled
        /// before run-once steps had undos read and hash the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undo: Option<Box<Action>>,
        /// `undo = "none"`: why the rollback does not need it (left out
        /// when none, as `undo`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_undo: Option<String>,
        /// The host step it takes (`step = ID`): run only where the host's
        /// plan of the rollout took that step. Left out when none, as `undo`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    /// A run-once step that has no host to run on.
    Skipped { id: String, reason: String },
    /// Hosts upgraded together (in parallel, bounded).
    Batch {
        stage: String,
        number: usize,
        of: usize,
        hosts: Vec<String>,
    },
    /// The rollout stops here until `hoist fleet resume`.
    Pause { after: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetPlan {
    pub product: String,
    /// `--to`; none: each host's own candidate.
    pub target: Option<String>,
    pub inventory: String,
    pub hosts: Vec<HostRef>,
    pub stages: Vec<StagePlan>,
    pub items: Vec<Item>,
    /// Hosts of the inventory no stage upgrades.
    pub not_in_rollout: Vec<String>,
    pub max_fail: Option<u32>,
    pub max_fail_percentage: Option<u8>,
    pub parallel: u32,
    /// The recipe's host steps that only a person can let a run past
    /// (`Kind::needs_person`), met by each host whose own plan takes them:
    /// the admin knows before launch who must be there. Left out of the
    /// JSON (and so of the hash) when none, so plans journaled before
    /// read and hash the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub person_gates: Vec<String>,
    /// `--limit`: the pattern as given, which chose `hosts` among the
    /// inventory's; `resume` and `rollback` plan again with it. Left out
    /// of the JSON when none, so plans journaled before read and hash
    /// the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// SHA-256 of everything above.
    pub hash: String,
}

/// At most this many hosts upgrade at once when `[fleet]` does not say.
pub const DEFAULT_PARALLEL: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum FleetPlanError {
    #[error("{recipe} has no [fleet] section: it does not say how to roll out across hosts")]
    NoFleet { recipe: String },
    #[error("run-once step `{step}` runs on host `{host}`, which is not in the inventory")]
    UnknownHost { step: String, host: String },
    #[error("the inventory has no host")]
    Empty,
    #[error(transparent)]
    Limit(#[from] super::inventory::limit::LimitError),
    #[error(
        "run-once step `{step}` {runs}, which --limit `{limit}` leaves out: add {add} to --limit"
    )]
    OutsideLimit {
        step: String,
        runs: String,
        limit: String,
        add: String,
    },
}

impl FleetPlan {
    pub fn host(&self, name: &str) -> Option<&HostRef> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn stage(&self, id: &str) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// Every host the rollout upgrades, in order.
    pub fn upgraded(&self) -> impl Iterator<Item = &str> {
        self.stages
            .iter()
            .flat_map(|s| s.batches.iter().flatten())
            .map(String::as_str)
    }
}

pub fn plan(
    recipe: &Recipe,
    inventory: &Inventory,
    target: Option<&str>,
) -> Result<FleetPlan, FleetPlanError> {
    plan_in(recipe, inventory, inventory, target, None)
}

/// The plan of the hosts `limit` selects (Ansible's host patterns,
/// `inventory::limit`): stages keep their order and only selected hosts
/// are upgraded. A run-once step on a role runs on the role's first
/// selected host; one that would have to run on a host left out (its
/// named host, every host of a role, or a role none of whose hosts is
/// selected) is refused: the recipe says it must run around the upgrade,
/// and a limit never reaches past its hosts.
pub fn plan_limited(
    recipe: &Recipe,
    inventory: &Inventory,
    target: Option<&str>,
    limit: Option<&str>,
) -> Result<FleetPlan, FleetPlanError> {
    let Some(limit) = limit else {
        return plan(recipe, inventory, target);
    };
    let keep = super::inventory::limit::select(inventory, limit)?;
    let selected = inventory.only(&keep.into_iter().collect());
    plan_in(recipe, &selected, inventory, target, Some(limit))
}

/// `inventory`: the hosts planned; `full`: the whole inventory, which
/// tells a run-once step's host left out by `limit` from one missing.
fn plan_in(
    recipe: &Recipe,
    inventory: &Inventory,
    full: &Inventory,
    target: Option<&str>,
    limit: Option<&str>,
) -> Result<FleetPlan, FleetPlanError> {
    let spec: &FleetSpec = recipe
        .fleet
        .as_ref()
        .ok_or_else(|| FleetPlanError::NoFleet {
            recipe: recipe.source.path.display().to_string(),
        })?;
    if inventory.hosts.is_empty() {
        return Err(FleetPlanError::Empty);
    }
    // Each host belongs to the first stage (in order) with one of its roles.
    let mut stage_of: std::collections::HashMap<&str, &str> = Default::default();
    let mut stages = Vec::new();
    for s in &spec.stages {
        let mut mine = Vec::new();
        let mut earlier = Vec::new();
        for h in inventory.with_role(&s.role) {
            match stage_of.get(h.name.as_str()) {
                Some(first) => earlier.push((h.name.clone(), (*first).to_string())),
                None => {
                    stage_of.insert(&h.name, &s.id);
                    mine.push(h.name.clone());
                }
            }
        }
        stages.push(StagePlan {
            id: s.id.clone(),
            role: s.role.clone(),
            batches: batches(&mine, &s.batch),
            earlier,
            thresholds: s
                .own_thresholds()
                .map(|(max_fail, max_fail_percentage)| Thresholds {
                    max_fail,
                    max_fail_percentage,
                }),
        });
    }
    let at = |anchor: &Anchor| -> Vec<&FleetStep> {
        spec.run_once.iter().filter(|r| &r.at == anchor).collect()
    };
    let mut items = Vec::new();
    for (s, sp) in spec.stages.iter().zip(&stages) {
        for r in at(&Anchor::Before(s.id.clone())) {
            items.push(run_once(r, inventory, full, limit)?);
        }
        for (i, hosts) in sp.batches.iter().enumerate() {
            items.push(Item::Batch {
                stage: s.id.clone(),
                number: i + 1,
                of: sp.batches.len(),
                hosts: hosts.clone(),
            });
            for r in at(&Anchor::AfterBatch(s.id.clone(), i as u32 + 1)) {
                items.push(run_once(r, inventory, full, limit)?);
            }
        }
        // `after_batch` past the stage's last batch: said, not silently lost.
        for r in spec.run_once.iter().filter(|r| {
            matches!(&r.at, Anchor::AfterBatch(st, n) if st == &s.id && *n as usize > sp.batches.len())
        }) {
            items.push(Item::Skipped {
                id: r.id.clone(),
                reason: format!(
                    "stage `{}` has {} batch(es) on this inventory",
                    s.id,
                    sp.batches.len()
                ),
            });
        }
        for r in at(&Anchor::After(s.id.clone())) {
            items.push(run_once(r, inventory, full, limit)?);
        }
        if s.pause_after {
            items.push(Item::Pause {
                after: s.id.clone(),
            });
        }
    }
    let not_in_rollout = inventory
        .hosts
        .iter()
        .filter(|h| !stage_of.contains_key(h.name.as_str()))
        .map(|h| h.name.clone())
        .collect();
    let mut plan = FleetPlan {
        product: recipe.product.name.clone(),
        target: target.map(str::to_string),
        inventory: inventory.path.display().to_string(),
        hosts: inventory.hosts.iter().map(HostRef::from).collect(),
        stages,
        items,
        not_in_rollout,
        max_fail: spec.max_fail_effective(),
        max_fail_percentage: spec.max_fail_percentage,
        parallel: spec.parallel.unwrap_or(DEFAULT_PARALLEL),
        person_gates: recipe
            .steps
            .iter()
            .filter(|s| s.action.needs_person())
            .map(|s| s.id.clone())
            .fold(Vec::new(), |mut ids, id| {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                ids
            }),
        limit: limit.map(str::to_string),
        hash: String::new(),
    };
    plan.hash = hash(&plan);
    Ok(plan)
}

/// Cuts a stage's hosts into batches: each size in turn, the last one
/// repeating, percentages of the stage's host count.
pub fn batches(hosts: &[String], sizes: &[crate::recipe::fleet::BatchSize]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i.min(sizes.len() - 1)]
            .of(hosts.len())
            .clamp(1, rest.len());
        let (now, later) = rest.split_at(size);
        out.push(now.to_vec());
        rest = later;
        i += 1;
    }
    out
}

fn run_once(
    r: &FleetStep,
    inventory: &Inventory,
    full: &Inventory,
    limit: Option<&str>,
) -> Result<Item, FleetPlanError> {
    if let Some(limit) = limit {
        outside_limit(r, inventory, full, limit)?;
    }
    if r.on.host.is_none()
        && let Some(role) = &r.on.every
    {
        let hosts: Vec<String> = inventory.with_role(role).map(|h| h.name.clone()).collect();
        if hosts.is_empty() {
            return Ok(Item::Skipped {
                id: r.id.clone(),
                reason: format!("no host of the inventory has role `{role}`"),
            });
        }
        return Ok(Item::RunOnEach {
            id: r.id.clone(),
            title: r.title.clone(),
            role: role.clone(),
            hosts,
            gate: r.is_gate(),
            summary: r.action.summary(),
            action: Box::new(r.action.clone()),
            undo: r.undo.clone().map(Box::new),
            no_undo: r.no_undo.clone(),
            step: r.step.clone(),
        });
    }
    let host = match (&r.on.host, &r.on.role) {
        (Some(h), _) => match inventory.host(h) {
            Some(h) => h,
            None => {
                return Err(FleetPlanError::UnknownHost {
                    step: r.id.clone(),
                    host: h.clone(),
                });
            }
        },
        (None, Some(role)) => match inventory.with_role(role).next() {
            Some(h) => h,
            None => {
                return Ok(Item::Skipped {
                    id: r.id.clone(),
                    reason: format!("no host of the inventory has role `{role}`"),
                });
            }
        },
        // Lint refuses it; a recipe that got here unlinted gets no panic.
        (None, None) => {
            return Ok(Item::Skipped {
                id: r.id.clone(),
                reason: "`on` names no host, role nor `every`".into(),
            });
        }
    };
    Ok(Item::RunOnce {
        id: r.id.clone(),
        title: r.title.clone(),
        host: host.name.clone(),
        gate: r.is_gate(),
        summary: r.action.summary(),
        action: Box::new(r.action.clone()),
        undo: r.undo.clone().map(Box::new),
        no_undo: r.no_undo.clone(),
        step: r.step.clone(),
    })
}

/// A run-once step that would run on a host `limit` left out.
fn outside_limit(
    r: &FleetStep,
    inventory: &Inventory,
    full: &Inventory,
    limit: &str,
) -> Result<(), FleetPlanError> {
    let names = |role: &str, inv: &Inventory| -> Vec<String> {
        inv.with_role(role).map(|h| h.name.clone()).collect()
    };
    let refuse = |runs: String, add: String| FleetPlanError::OutsideLimit {
        step: r.id.clone(),
        runs,
        limit: limit.to_string(),
        add,
    };
    match (&r.on.host, &r.on.every, &r.on.role) {
        (Some(h), _, _) if inventory.host(h).is_none() && full.host(h).is_some() => {
            Err(refuse(format!("runs on host `{h}`"), format!("`{h}`")))
        }
        (None, Some(role), _) => {
            let all = names(role, full);
            let chosen = names(role, inventory);
            if chosen.len() == all.len() {
                return Ok(());
            }
            let left: Vec<String> = all.into_iter().filter(|h| !chosen.contains(h)).collect();
            Err(refuse(
                format!("runs on every host of role `{role}`"),
                format!("{} (or `{role}`)", left.join(", ")),
            ))
        }
        (None, None, Some(role)) if names(role, inventory).is_empty() => {
            let all = names(role, full);
            if all.is_empty() {
                return Ok(());
            }
            Err(refuse(
                format!("runs on a host of role `{role}`"),
                format!("one of {}", all.join(", ")),
            ))
        }
        _ => Ok(()),
    }
}

fn hash(plan: &FleetPlan) -> String {
    let json = serde_json::to_vec(plan).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl FleetPlan {
    /// The plan as an admin reads it.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let upgraded = self.upgraded().count();
        let _ = writeln!(
            out,
            "Rolling out {} to {} across {upgraded} of {} host(s) ({}), {} stage(s)",
            self.product,
            self.target
                .as_deref()
                .unwrap_or("each host's candidate version"),
            self.hosts.len(),
            self.inventory,
            self.stages.len()
        );
        let _ = writeln!(out, "Stops when: {}", self.thresholds());
        let _ = writeln!(out, "At most {} host(s) at once.", self.parallel);
        if let Some(l) = &self.limit {
            let _ = writeln!(out, "Only the hosts --limit `{l}` selects.");
        }
        for (i, item) in self.items.iter().enumerate() {
            let n = i + 1;
            let _ = match item {
                Item::RunOnce {
                    id,
                    title,
                    host,
                    gate,
                    summary,
                    undo,
                    no_undo,
                    action,
                    step,
                } => writeln!(
                    out,
                    "{n:>3}. {} on {host}: {id}{}{}\n       {summary}{}",
                    if *gate { "gate" } else { "run once" },
                    title
                        .as_deref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default(),
                    taken(step.as_deref()),
                    undo_line(*gate, action, undo.as_deref(), no_undo.as_deref())
                ),
                Item::RunOnEach {
                    id,
                    title,
                    role,
                    hosts,
                    gate,
                    summary,
                    undo,
                    no_undo,
                    action,
                    step,
                } => writeln!(
                    out,
                    "{n:>3}. {} on every {role} ({} host(s): {}): {id}{}{}\n       {summary}{}",
                    if *gate { "gate" } else { "run once" },
                    hosts.len(),
                    hosts.join(", "),
                    title
                        .as_deref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default(),
                    taken(step.as_deref()),
                    undo_line(*gate, action, undo.as_deref(), no_undo.as_deref())
                ),
                Item::Skipped { id, reason } => {
                    writeln!(out, "{n:>3}. skip {id}: {reason}")
                }
                Item::Batch {
                    stage,
                    number,
                    of,
                    hosts,
                } => writeln!(
                    out,
                    "{n:>3}. stage {stage}, batch {number}/{of} ({} host(s)): {}",
                    hosts.len(),
                    hosts.join(", ")
                ),
                Item::Pause { after } => writeln!(
                    out,
                    "{n:>3}. pause after stage {after}: `hoist fleet resume` goes on"
                ),
            };
        }
        for s in &self.stages {
            if let Some(t) = &s.thresholds {
                let _ = writeln!(
                    out,
                    "Stage {} has thresholds of its own, counting its hosts only: stops when {}",
                    s.id,
                    describe(t)
                );
            }
            if s.batches.is_empty() && s.earlier.is_empty() {
                let _ = writeln!(out, "Stage {}: no host has role `{}`.", s.id, s.role);
            }
            for (h, first) in &s.earlier {
                let _ = writeln!(
                    out,
                    "Stage {}: {h} is upgraded once, in stage {first}.",
                    s.id
                );
            }
        }
        if !self.not_in_rollout.is_empty() {
            let _ = writeln!(
                out,
                "Not upgraded (no stage has their roles): {}",
                self.not_in_rollout.join(", ")
            );
        }
        let run_once: Vec<String> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::RunOnce {
                    id, host, action, ..
                } if action.needs_person() => Some(format!("{id}@{host}")),
                Item::RunOnEach {
                    id, hosts, action, ..
                } if action.needs_person() => {
                    Some(format!("{id} (on each of {})", hosts.join(", ")))
                }
                _ => None,
            })
            .collect();
        if !run_once.is_empty() || !self.person_gates.is_empty() {
            let _ = writeln!(
                out,
                "A person must confirm (--yes does not; `--confirm GATE` for every host, `GATE@HOST` for one, or the rollout stops there):"
            );
            if !run_once.is_empty() {
                let _ = writeln!(out, "  between batches: {}", run_once.join(", "));
            }
            if !self.person_gates.is_empty() {
                let _ = writeln!(
                    out,
                    "  on each host whose own plan takes it (`hoist plan` there): {}",
                    self.person_gates.join(", ")
                );
            }
        }
        out
    }

    /// The fleet-wide failure thresholds, in words.
    pub fn thresholds(&self) -> String {
        let text = describe(&self.fleet_thresholds());
        if self.stages.iter().any(|s| s.thresholds.is_some()) {
            format!("{text} (stages without thresholds of their own)")
        } else {
            text
        }
    }

    pub fn fleet_thresholds(&self) -> Thresholds {
        Thresholds {
            max_fail: self.max_fail,
            max_fail_percentage: self.max_fail_percentage,
        }
    }
}

/// A run-once step's undo as the plan shows it, under its action: what
/// `hoist fleet rollback` will do about it, said before anything runs.
fn undo_line(gate: bool, action: &Action, undo: Option<&Action>, none: Option<&str>) -> String {
    let what = match (undo, none) {
        (Some(u), _) => u.summary(),
        (None, Some(why)) => format!("none needed: {why}"),
        (None, None) if !gate && action.changes_host() => {
            "none: a fleet rollback would leave it as it is".to_string()
        }
        (None, None) => return String::new(),
    };
    format!("\n       undo (fleet rollback): {what}")
}

/// What the plan says of a run-once step that takes a host step.
fn taken(step: Option<&str>) -> String {
    step.map(|s| format!(" [host step {s}, where this host's plan of the rollout took it]"))
        .unwrap_or_default()
}

/// A pair of thresholds in words.
fn describe(t: &Thresholds) -> String {
    let mut parts = Vec::new();
    if let Some(n) = t.max_fail {
        parts.push(if n == 0 {
            "a host fails".to_string()
        } else {
            format!("more than {n} host(s) have failed")
        });
    }
    if let Some(p) = t.max_fail_percentage {
        parts.push(format!("a batch's failed hosts are more than {p}% of it"));
    }
    if parts.is_empty() {
        return "never (no threshold)".into();
    }
    parts.join(", or ")
}
