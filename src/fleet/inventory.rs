//! The inventory: which hosts a fleet has, how to reach them, their roles
//! and variables.
//!
//! hoist's own format is TOML; Ansible inventories (INI and YAML, see
//! `ansible`) are read too, so an admin reuses the one they have. Every
//! format is first read into a [`Tree`] of groups and hosts (Ansible's own
//! model: a group gives its name as a role and its variables to its hosts
//! and to its children's hosts), then resolved into [`Host`]s in file order.
//! A mistake is a [`Located`] problem: file, line, column, what was
//! expected; never a panic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range as Span;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::output::diag::{Located, Problem, Source};

/// One host of the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its inventory name: how the plan, the journal and the admin call it.
    pub name: String,
    /// Where to connect (`ansible_host`); its name when not given.
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Its roles: its own and the names of every group it is in (directly
    /// or through children), `all` and `ungrouped` aside.
    pub roles: Vec<String>,
    /// Its variables, group variables merged (host's win). Secrets are
    /// kept but never shown: see [`Host::shown_vars`].
    pub vars: BTreeMap<String, String>,
}

impl Host {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The variables as the plan and logs show them: a secret's value is
    /// never printed (passwords in Ansible inventories are common).
    pub fn shown_vars(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|(k, v)| {
                let v = if is_secret(k) {
                    "(secret)".into()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Serialised with secrets hidden, so a plan's JSON never carries them.
impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "name": self.name, "address": self.address, "user": self.user,
            "port": self.port, "roles": self.roles, "vars": self.shown_vars(),
        })
        .serialize(s)
    }
}

/// Variable names whose values are secrets (`ansible_password`,
/// `ansible_become_pass`, `db_secret`, `api_token` ...).
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "secret", "token", "private_key", "credential"]
        .iter()
        .any(|w| n.contains(w))
}

#[derive(Clone, Debug)]
pub struct Inventory {
    pub path: PathBuf,
    /// In the order the file gives them: the plan's order.
    pub hosts: Vec<Host>,
}

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Hosts with a role, in inventory order.
    pub fn with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Host> + 'a {
        self.hosts.iter().filter(move |h| h.has_role(role))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.display().to_string(),
            "hosts": self.hosts,
        })
    }
}

/// Why an inventory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a valid inventory: {}", .0.first().map(|p| p.file.path.display().to_string()).unwrap_or_default(), .0.first().map(Located::short).unwrap_or_default())]
    Invalid(Vec<Located>),
}

/// A variable's value and where it was written (to point at a bad port).
pub type Vars = Vec<(String, String, Span<usize>)>;

/// Groups and hosts as written, before resolution. `ansible` fills it from
/// INI and YAML, [`parse_toml`] from hoist's TOML.
#[derive(Default, Debug)]
pub struct Tree {
    /// Hosts in the order first seen, with their own variables.
    pub hosts: Vec<(String, Vars, Span<usize>)>,
    pub groups: Vec<Group>,
}

#[derive(Debug, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub vars: Vars,
    pub children: Vec<(String, Span<usize>)>,
    pub span: Span<usize>,
}

impl Tree {
    /// Adds a host (once; later mentions add variables) and returns its name.
    pub fn host(&mut self, name: &str, vars: Vars, span: Span<usize>) {
        match self.hosts.iter_mut().find(|h| h.0 == name) {
            Some(h) => h.1.extend(vars),
            None => self.hosts.push((name.to_string(), vars, span)),
        }
    }

    /// The group of that name, created empty on first mention.
    pub fn group(&mut self, name: &str, span: Span<usize>) -> &mut Group {
        let i = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_string(),
                    span,
                    ..Group::default()
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }
}

/// Reads an inventory: `.toml` is hoist's format, `.yml`/`.yaml` Ansible's
/// YAML, anything else Ansible's INI (`hosts`, `inventory.ini`).
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|error| InventoryError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    load_str(path, &text)
}

pub fn load_str(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let source = Source::new(path, text);
    let mut problems = Vec::new();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tree = match ext {
        "toml" => parse_toml(text, &mut problems),
        "yml" | "yaml" => super::ansible::parse_yaml(text, &mut problems),
        _ => super::ansible::parse_ini(text, &mut problems),
    };
    let hosts = if problems.is_empty() {
        resolve(&tree, &mut problems)
    } else {
        Vec::new()
    };
    if !problems.is_empty() {
        return Err(InventoryError::Invalid(
            problems
                .into_iter()
                .map(|problem| Located {
                    problem,
                    file: source.clone(),
                })
                .collect(),
        ));
    }
    Ok(Inventory {
        path: path.to_path_buf(),
        hosts,
    })
}

/// A table's entries in file order (the plan's host order), each value
/// deserialised with serde so errors keep their place.
struct Ordered<T>(Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of named tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToml {
    #[serde(default)]
    hosts: Ordered<Spanned<RawHost>>,
    #[serde(default)]
    groups: Ordered<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    vars: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    children: Vec<Spanned<String>>,
}

/// hoist's TOML inventory:
///
/// ```toml
/// [hosts.xivo-1]
/// address = "192.0.2.10"
/// user = "root"
/// roles = ["master"]
/// vars = { slave_ip = "192.0.2.11" }
///
/// [groups.kvm]          # a group is a role given to several hosts
/// hosts = ["kvm-1", "kvm-2"]
/// vars = { zone = "a" }
/// ```
pub fn parse_toml(text: &str, problems: &mut Vec<Problem>) -> Tree {
    let mut tree = Tree::default();
    let toml_problem = |e: toml::de::Error| {
        Problem::error(
            "inventory-syntax",
            e.span().unwrap_or(0..0),
            format!("inventory: {}", e.message().trim()),
        )
        .label("here")
        .help("hosts are [hosts.NAME] tables with address, user, port, roles, vars; groups are [groups.NAME] with hosts, vars, children")
    };
    // One pass with serde: a misspelt key is reported at the key itself.
    let raw: RawToml = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            problems.push(toml_problem(e));
            return tree;
        }
    };
    let vars_of = |vars: BTreeMap<String, toml::Value>, span: &Span<usize>| -> Vars {
        vars.into_iter()
            .map(|(k, v)| (k, crate::host::facts::value_text(&v), span.clone()))
            .collect()
    };
    for (name, host) in raw.hosts.0 {
        let span = host.span();
        let host = host.into_inner();
        let mut vars = vars_of(host.vars, &span);
        for (k, v) in [
            ("ansible_host", host.address),
            ("ansible_user", host.user),
            ("ansible_port", host.port.map(|p| p.to_string())),
        ] {
            if let Some(v) = v {
                vars.push((k.to_string(), v, span.clone()));
            }
        }
        tree.host(&name, vars, span.clone());
        for role in host.roles {
            tree.group(&role, span.clone()).hosts.push(name.clone());
        }
    }
    for (name, group) in raw.groups.0 {
        let span = group.span();
        let group = group.into_inner();
        let vars = vars_of(group.vars, &span);
        let g = tree.group(&name, span.clone());
        g.vars.extend(vars);
        g.children.extend(
            group
                .children
                .into_iter()
                .map(|c| (c.get_ref().clone(), span.clone())),
        );
        let members: Vec<String> = group.hosts.iter().map(|h| h.get_ref().clone()).collect();
        g.hosts.extend(members);
        for h in &group.hosts {
            if !tree.hosts.iter().any(|(n, _, _)| n == h.get_ref()) {
                problems.push(
                    Problem::error(
                        "unknown-host",
                        h.span(),
                        format!(
                            "group `{name}` names host `{}`, which has no [hosts.{}]",
                            h.get_ref(),
                            h.get_ref()
                        ),
                    )
                    .label("every host is declared under [hosts]")
                    .help_opt(crate::output::diag::suggest(
                        h.get_ref(),
                        tree.hosts.iter().map(|(n, _, _)| n.as_str()),
                    )),
                );
            }
        }
    }
    tree
}

/// Resolves groups into each host's roles and variables, Ansible's way:
/// group variables from the shallowest group to the deepest (`all` first,
/// a child's over its parent's, names breaking ties), the host's own last.
pub fn resolve(tree: &Tree, problems: &mut Vec<Problem>) -> Vec<Host> {
    let index: HashMap<&str, usize> = tree
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), i))
        .collect();
    // Parents of each group, and a check that children exist and loop not.
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); tree.groups.len()];
    for (i, g) in tree.groups.iter().enumerate() {
        for (c, span) in &g.children {
            match index.get(c.as_str()) {
                Some(&ci) => parents[ci].push(i),
                None => problems.push(
                    Problem::error(
                        "unknown-group",
                        span.clone(),
                        format!(
                            "group `{}` names child group `{c}`, which is not defined",
                            g.name
                        ),
                    )
                    .label("a child group must be defined in this inventory"),
                ),
            }
        }
    }
    let depth = |start: usize| -> Option<usize> {
        // Longest path up to a root; a loop is an error.
        fn walk(g: usize, parents: &[Vec<usize>], on_path: &mut Vec<usize>) -> Option<usize> {
            if on_path.contains(&g) {
                return None;
            }
            on_path.push(g);
            let mut d = 0;
            for &p in &parents[g] {
                d = d.max(walk(p, parents, on_path)? + 1);
            }
            on_path.pop();
            Some(d)
        }
        walk(start, &parents, &mut Vec::new())
    };
    let mut depths = Vec::with_capacity(tree.groups.len());
    for (i, g) in tree.groups.iter().enumerate() {
        match depth(i) {
            Some(d) => depths.push(d + usize::from(g.name != "all")),
            None => {
                problems.push(
                    Problem::error(
                        "group-cycle",
                        g.span.clone(),
                        format!("group `{}` is its own ancestor through `children`", g.name),
                    )
                    .label("children groups must not loop"),
                );
                return Vec::new();
            }
        }
    }
    let mut hosts = Vec::new();
    for (name, own, span) in &tree.hosts {
        // Every group of the host, directly or as an ancestor.
        let mut groups: HashSet<usize> = HashSet::new();
        let mut todo: Vec<usize> = tree
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.hosts.iter().any(|h| h == name))
            .map(|(i, _)| i)
            .collect();
        while let Some(g) = todo.pop() {
            if groups.insert(g) {
                todo.extend(&parents[g]);
            }
        }
        if let Some(&all) = index.get("all") {
            groups.insert(all);
        }
        let mut ordered: Vec<usize> = groups.into_iter().collect();
        ordered.sort_by(|a, b| {
            (depths[*a], &tree.groups[*a].name).cmp(&(depths[*b], &tree.groups[*b].name))
        });
        let mut vars: BTreeMap<String, (String, Span<usize>)> = BTreeMap::new();
        for &g in &ordered {
            for (k, v, s) in &tree.groups[g].vars {
                vars.insert(k.clone(), (v.clone(), s.clone()));
            }
        }
        for (k, v, s) in own {
            vars.insert(k.clone(), (v.clone(), s.clone()));
        }
        // The connection variables, with Ansible's older `ansible_ssh_*`
        // spellings; the newer one wins.
        let mut take = |names: [&str; 2]| {
            let newer = vars.remove(names[0]);
            let older = vars.remove(names[1]);
            newer.or(older)
        };
        let address = take(["ansible_host", "ansible_ssh_host"]);
        let user = take(["ansible_user", "ansible_ssh_user"]);
        let port = match take(["ansible_port", "ansible_ssh_port"]) {
            None => None,
            Some((p, s)) => match p.trim().parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    problems.push(
                        Problem::error(
                            "bad-port",
                            s,
                            format!("host `{name}`: port `{p}` is not a TCP port"),
                        )
                        .label("expected 1 to 65535"),
                    );
                    None
                }
            },
        };
        let mut roles: Vec<String> = ordered
            .iter()
            .map(|&g| tree.groups[g].name.clone())
            .filter(|n| n != "all" && n != "ungrouped")
            .collect();
        roles.sort();
        let _ = span;
        hosts.push(Host {
            name: name.clone(),
            address: address.map_or_else(|| name.clone(), |a| a.0),
            user: user.map(|u| u.0),
            port,
            roles,
            vars: vars.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        });
    }
    hosts
}
