//! Ansible's inventory model (`InventoryData`, `Group`, `Host` of
//! ansible-core), which every Ansible source is read into, and the
//! resolution of a host's variables as `ansible-inventory --list` shows
//! them.
//!
//! Precedence, lowest first (ansible-core's `VariableManager.get_vars`
//! with the default `VARIABLE_PRECEDENCE`): the inventory's `all` vars;
//! the inventory vars of the host's other groups sorted by depth (longest
//! path from `all`), `ansible_group_priority`, then name; `group_vars/all`;
//! `group_vars/GROUP` in that same order; the host's inventory vars;
//! `host_vars/HOST`. Each layer replaces whole top-level variables.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::rc::Rc;

use serde_json::Value;

use crate::output::diag::{Located, Problem, Source};

/// Where something was written: a file of [`Model::files`] and a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    pub span: Range<usize>,
}

/// A variable's value and where it was set.
#[derive(Clone, Debug)]
pub struct Var {
    pub value: Value,
    pub origin: Origin,
}

pub type VarMap = BTreeMap<String, Var>;

#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub vars: VarMap,
    pub priority: i64,
    pub children: Vec<usize>,
    pub parents: Vec<usize>,
    pub hosts: Vec<usize>,
    /// `group_vars/NAME` beside the inventory.
    pub file_vars: VarMap,
}

#[derive(Debug)]
pub struct HostEntry {
    pub name: String,
    pub vars: VarMap,
    /// The groups naming the host itself, in the order they did.
    pub groups: Vec<usize>,
    pub origin: Origin,
    /// `host_vars/NAME` beside the inventory.
    pub file_vars: VarMap,
}

/// Every group and host of the inventory's sources, and the files read.
#[derive(Debug)]
pub struct Model {
    pub files: Vec<Source>,
    pub groups: Vec<Group>,
    group_ix: HashMap<String, usize>,
    pub hosts: Vec<HostEntry>,
    host_ix: HashMap<String, usize>,
    pub warnings: Vec<Located>,
}

pub const ALL: usize = 0;
pub const UNGROUPED: usize = 1;

/// Variables `ansible-inventory --list` leaves out of a host's variables
/// (ansible-core's `INTERNAL_VARS`).
pub const INTERNAL_VARS: [&str; 19] = [
    "ansible_diff_mode",
    "ansible_config_file",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_playbook_python",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "omit",
    "playbook_dir",
];

/// A refusal: where, and what is wrong.
pub type Refusal = Box<(Origin, Problem)>;

pub fn refuse(origin: &Origin, message: impl Into<String>, expected: impl Into<String>) -> Refusal {
    refuse_as("inventory-syntax", origin, message, expected)
}

pub fn refuse_as(
    code: &'static str,
    origin: &Origin,
    message: impl Into<String>,
    expected: impl Into<String>,
) -> Refusal {
    Box::new((
        origin.clone(),
        Problem::error(code, origin.span.clone(), message).label(expected),
    ))
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    pub fn new() -> Model {
        let mut m = Model {
            files: Vec::new(),
            groups: Vec::new(),
            group_ix: HashMap::new(),
            hosts: Vec::new(),
            host_ix: HashMap::new(),
            warnings: Vec::new(),
        };
        m.add_group("all");
        m.add_group("ungrouped");
        m.groups[ALL].children.push(UNGROUPED);
        m.groups[UNGROUPED].parents.push(ALL);
        m
    }

    pub fn add_file(&mut self, source: Source) -> usize {
        self.files.push(source);
        self.files.len() - 1
    }

    pub fn warn(&mut self, origin: &Origin, message: impl Into<String>) {
        let problem = Problem::warning("inventory-warning", origin.span.clone(), message);
        self.warnings.push(Located {
            problem,
            file: self.file(origin),
        });
    }

    /// The file of an origin (an empty one if there is none).
    pub fn file(&self, origin: &Origin) -> Source {
        self.files
            .get(origin.file)
            .cloned()
            .unwrap_or_else(|| Source::new(std::path::Path::new("inventory"), ""))
    }

    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.group_ix.get(name).copied()
    }

    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.host_ix.get(name).copied()
    }

    pub fn add_group(&mut self, name: &str) -> usize {
        if let Some(&g) = self.group_ix.get(name) {
            return g;
        }
        self.groups.push(Group {
            name: name.to_string(),
            vars: VarMap::new(),
            priority: 1,
            children: Vec::new(),
            parents: Vec::new(),
            hosts: Vec::new(),
            file_vars: VarMap::new(),
        });
        let g = self.groups.len() - 1;
        self.group_ix.insert(name.to_string(), g);
        g
    }

    /// Adds a host (once) to a group; a new host's `port` becomes its
    /// `ansible_port`, as Ansible does only when it first sees the host.
    pub fn add_host(
        &mut self,
        name: &str,
        group: Option<usize>,
        port: Option<u16>,
        origin: &Origin,
    ) -> Result<usize, Refusal> {
        if name.is_empty() {
            return Err(refuse(origin, "an empty host name", "expected a host name"));
        }
        let h = match self.host_ix.get(name) {
            Some(&h) => h,
            None => {
                let mut vars = VarMap::new();
                if let Some(p) = port {
                    let var = Var {
                        value: Value::from(p),
                        origin: origin.clone(),
                    };
                    vars.insert("ansible_port".into(), var);
                }
                self.hosts.push(HostEntry {
                    name: name.to_string(),
                    vars,
                    groups: Vec::new(),
                    origin: origin.clone(),
                    file_vars: VarMap::new(),
                });
                self.host_ix.insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        if let Some(g) = group
            && !self.hosts[h].groups.contains(&g)
        {
            self.hosts[h].groups.push(g);
            self.groups[g].hosts.push(h);
        }
        Ok(h)
    }

    /// Makes `child` a child group of `parent`, refusing a loop as Ansible
    /// does.
    pub fn add_child(
        &mut self,
        parent: usize,
        child: usize,
        origin: &Origin,
    ) -> Result<(), Refusal> {
        if parent == child || self.ancestors(parent).contains(&child) {
            return Err(refuse_as(
                "group-cycle",
                origin,
                format!(
                    "adding group `{}` as a child of `{}` makes a loop",
                    self.groups[child].name, self.groups[parent].name
                ),
                "groups must not be their own ancestors",
            ));
        }
        if !self.groups[parent].children.contains(&child) {
            self.groups[parent].children.push(child);
        }
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
        Ok(())
    }

    /// Every ancestor of a group.
    pub fn ancestors(&self, g: usize) -> Vec<usize> {
        let mut seen = std::collections::HashSet::new();
        let mut todo = self.groups[g].parents.clone();
        let mut out = Vec::new();
        while let Some(p) = todo.pop() {
            if seen.insert(p) {
                out.push(p);
                todo.extend(&self.groups[p].parents);
            }
        }
        out
    }

    /// `set_variable` on a group: `ansible_group_priority` sets its
    /// priority instead of a variable.
    pub fn set_group_var(&mut self, g: usize, key: &str, var: Var) -> Result<(), Refusal> {
        if key == "ansible_group_priority" {
            let p = match &var.value {
                Value::Number(n) if n.is_i64() => n.as_i64(),
                Value::Number(n) => n
                    .as_f64()
                    .filter(|f| f.abs() < 1e15)
                    .map(|f| f.trunc() as i64),
                Value::Bool(b) => Some(i64::from(*b)),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            return match p {
                Some(p) => {
                    self.groups[g].priority = p;
                    Ok(())
                }
                None => Err(refuse(
                    &var.origin,
                    format!(
                        "ansible_group_priority of group `{}` is not a number",
                        self.groups[g].name
                    ),
                    "expected an integer",
                )),
            };
        }
        self.groups[g].vars.insert(key.to_string(), var);
        Ok(())
    }

    /// `set_variable(NAME, ...)`: Ansible looks NAME up among the groups
    /// first, so a host named as a group gives its variables to the group.
    pub fn set_host_var(&mut self, h: usize, key: String, var: Var) -> Result<(), Refusal> {
        if let Some(g) = self.group_index(&self.hosts[h].name) {
            return self.set_group_var(g, &key, var);
        }
        self.hosts[h].vars.insert(key, var);
        Ok(())
    }

    /// `_populate_host_vars`: each host of a pattern added to the group,
    /// then given the variables.
    pub fn populate(
        &mut self,
        names: Vec<String>,
        group: Option<usize>,
        port: Option<u16>,
        origin: &Origin,
        vars: Vec<(String, Var)>,
    ) -> Result<(), Refusal> {
        let last = names.len().saturating_sub(1);
        let mut vars = Some(vars);
        for (i, name) in names.iter().enumerate() {
            let h = self.add_host(name, group, port, origin)?;
            let these = if i == last {
                vars.take().unwrap_or_default()
            } else {
                vars.clone().unwrap_or_default()
            };
            for (k, v) in these {
                self.set_host_var(h, k, v)?;
            }
        }
        Ok(())
    }

    /// `reconcile_inventory`: parentless groups become children of `all`;
    /// a host in no group but `all` is in `ungrouped`, and a host in
    /// another group is not.
    pub fn reconcile(&mut self) -> Result<(), Refusal> {
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                // `all` made a child of a group loops here, as in Ansible.
                self.add_child(ALL, g, &Origin::default())?;
            }
        }
        let closures = self.group_closures();
        for h in 0..self.hosts.len() {
            let others = self.hosts[h]
                .groups
                .iter()
                .flat_map(|&g| closures[g].iter())
                .any(|&g| g != ALL && g != UNGROUPED);
            let direct = &mut self.hosts[h].groups;
            if direct.contains(&UNGROUPED) {
                if others {
                    direct.retain(|&g| g != UNGROUPED);
                    self.groups[UNGROUPED].hosts.retain(|&x| x != h);
                }
            } else if !others {
                direct.push(UNGROUPED);
                self.groups[UNGROUPED].hosts.push(h);
            }
        }
        let names: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| self.group_ix.contains_key(&h.name))
            .map(|h| h.name.as_str())
            .collect();
        let clashes: Vec<(String, Origin)> = names
            .iter()
            .map(|n| (n.to_string(), self.hosts[self.host_ix[*n]].origin.clone()))
            .collect();
        for (n, o) in clashes {
            self.warn(&o, format!("found both group and host with same name: {n}"));
        }
        Ok(())
    }

    /// Each group with its ancestors (itself first).
    pub fn group_closures(&self) -> Vec<Vec<usize>> {
        (0..self.groups.len())
            .map(|g| {
                let mut v = vec![g];
                v.extend(self.ancestors(g));
                v
            })
            .collect()
    }

    /// Each group's depth: the longest path from `all`.
    pub fn depths(&self) -> Vec<usize> {
        fn depth(g: usize, groups: &[Group], memo: &mut [Option<usize>]) -> usize {
            if let Some(d) = memo[g] {
                return d;
            }
            let d = groups[g]
                .parents
                .iter()
                .map(|&p| depth(p, groups, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[g] = Some(d);
            d
        }
        let mut memo = vec![None; self.groups.len()];
        (0..self.groups.len())
            .map(|g| depth(g, &self.groups, &mut memo))
            .collect()
    }

    /// Every host's groups (with ancestors, `all` left out) in precedence
    /// order; hosts in the same groups share one list.
    pub fn resolve(&self) -> Vec<Rc<Vec<usize>>> {
        let closures = self.group_closures();
        let depths = self.depths();
        let key = |g: &usize| (depths[*g], self.groups[*g].priority, &self.groups[*g].name);
        // Hosts mostly share their set of groups: sort each set once.
        let mut sorted: HashMap<Vec<usize>, Rc<Vec<usize>>> = HashMap::new();
        self.hosts
            .iter()
            .map(|h| {
                let groups = sorted.entry(h.groups.clone()).or_insert_with(|| {
                    let mut gs: Vec<usize> = h
                        .groups
                        .iter()
                        .flat_map(|&g| closures[g].iter().copied())
                        .filter(|&g| g != ALL)
                        .collect();
                    gs.sort_by(|a, b| key(a).cmp(&key(b)));
                    gs.dedup();
                    Rc::new(gs)
                });
                Rc::clone(groups)
            })
            .collect()
    }

    /// A group's hosts as Ansible's `Group.get_hosts` orders them: its
    /// own, then its descendants' level by level (each level's groups in
    /// the order they were reached, their children in order), each host
    /// once. Ansible walks a level from a `set`, so below the children
    /// its order is that of memory addresses; hoist takes the order found.
    pub fn group_hosts(&self, g: usize) -> Vec<usize> {
        let mut ordered = vec![g];
        let mut seen: std::collections::HashSet<usize> = ordered.iter().copied().collect();
        let mut level = vec![g];
        while !level.is_empty() {
            let mut next = Vec::new();
            for &p in &level {
                for &c in &self.groups[p].children {
                    if seen.insert(c) {
                        ordered.push(c);
                        next.push(c);
                    }
                }
            }
            level = next;
        }
        let mut hosts = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for k in ordered {
            for &h in &self.groups[k].hosts {
                if taken.insert(h) {
                    hosts.push(h);
                }
            }
        }
        hosts
    }

    /// The group layers of a host in those groups, lowest first: the
    /// inventory's `all` vars, its groups' vars, `group_vars/all`, its
    /// groups' `group_vars`. The host's own vars and `host_vars` follow.
    pub fn group_layers(&self, groups: &[usize]) -> Vec<&VarMap> {
        let mut layers = vec![&self.groups[ALL].vars];
        layers.extend(groups.iter().map(|&g| &self.groups[g].vars));
        layers.push(&self.groups[ALL].file_vars);
        layers.extend(groups.iter().map(|&g| &self.groups[g].file_vars));
        layers
    }
}
