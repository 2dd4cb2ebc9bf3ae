//! The inventory: which hosts a fleet has, how to reach them, their roles
//! and variables.
//!
//! hoist's own format is TOML (`toml`); Ansible inventories are read as
//! `ansible-inventory --list` reads them, so an admin reuses the one they
//! have: INI (`ini`), YAML and JSON (`yaml`, `json`, `plugins`),
//! directories of them and `group_vars/`/`host_vars/` (`sources`). Every
//! format is read into Ansible's own model (`model`: a group gives its
//! name as a role and its variables to its hosts and to its children's
//! hosts), then resolved into [`Host`]s in file order. What hoist cannot
//! read exactly as Ansible does is refused, never read differently. A
//! mistake is a [`Located`] problem: file, line, column, what was
//! expected; never a panic.

pub mod address;
pub mod ini;
pub mod json;
pub mod limit;
pub mod model;
pub mod plugins;
pub mod python;
pub mod sources;
pub mod toml;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value;

use crate::output::diag::{Located, Source};
use model::{Model, Origin, Var, VarMap, refuse_as};

/// One host of the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its inventory name: how the plan, the journal and the admin call it.
    pub name: String,
    /// Where to connect (`ansible_host`); its name when not given.
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The SSH private key (`ansible_ssh_private_key_file`).
    pub key: Option<String>,
    /// Its roles: its own and the names of every group it is in (directly
    /// or through children), `all` and `ungrouped` aside.
    pub roles: Vec<String>,
    /// Its variables as text (what a recipe receives as facts), group
    /// variables merged (host's win), the connection variables above left
    /// out. Secrets are kept but never shown: see [`Host::shown_vars`].
    pub vars: BTreeMap<String, String>,
    /// Every variable as Ansible resolves it (`ansible-inventory --list`),
    /// structured, connection variables included.
    pub values: BTreeMap<String, Value>,
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
                let v = if crate::recipe::facts::is_secret(k) {
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
            "port": self.port, "key": self.key, "roles": self.roles,
            "vars": self.shown_vars(),
        })
        .serialize(s)
    }
}

#[derive(Clone, Debug)]
pub struct Inventory {
    pub path: PathBuf,
    /// In the order the file gives them: the plan's order.
    pub hosts: Vec<Host>,
    /// Each host's place in `hosts`, by name.
    index: HashMap<String, usize>,
    /// What Ansible warns about (an unknown key in a YAML group, a host
    /// and a group of the same name), one line each (`file:line:col: ...`).
    pub warnings: Vec<String>,
    /// Every group in the order Ansible keeps them (`all`, `ungrouped`,
    /// then as read) with its hosts (places in `hosts`) in the order of
    /// Ansible's `Group.get_hosts`: what a `--limit` pattern matches.
    pub groups: Vec<(String, Vec<usize>)>,
}

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.index.get(name).map(|&i| &self.hosts[i])
    }

    /// Hosts with a role, in inventory order.
    pub fn with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Host> + 'a {
        self.hosts.iter().filter(move |h| h.has_role(role))
    }

    /// Only the hosts at these places (of `hosts`), in inventory order:
    /// what `--limit` leaves of the inventory.
    pub fn only(&self, keep: &std::collections::HashSet<usize>) -> Inventory {
        let mut new_place = HashMap::new();
        let mut hosts = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if keep.contains(&i) {
                new_place.insert(i, hosts.len());
                hosts.push(h.clone());
            }
        }
        let groups = self
            .groups
            .iter()
            .map(|(n, hs)| {
                let hs = hs.iter().filter_map(|h| new_place.get(h).copied());
                (n.clone(), hs.collect())
            })
            .collect();
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        Inventory {
            path: self.path.clone(),
            hosts,
            index,
            warnings: self.warnings.clone(),
            groups,
        }
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

/// Reads an inventory: a `.toml` file is hoist's format; anything else is
/// Ansible's (a file or a directory), with `group_vars/` and `host_vars/`.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    if is_toml(path) {
        let text = std::fs::read_to_string(path).map_err(|error| InventoryError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        return load_str(path, &text);
    }
    let model = sources::read(path)?;
    finish(path, model)
}

fn is_toml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml") && !path.is_dir()
}

/// Reads an inventory's text (no variable directories: the text need not
/// be on disk).
pub fn load_str(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let model = if is_toml(path) {
        let mut model = Model::new();
        let file = model.add_file(Source::new(path, text));
        let mut problems = Vec::new();
        toml::parse(&mut model, file, text, &mut problems);
        if !problems.is_empty() {
            let source = model.files[file].clone();
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
        if let Err(r) = model.reconcile() {
            return Err(sources::located(&model, &r));
        }
        model
    } else {
        sources::read_text(path, text)?
    };
    finish(path, model)
}

/// Ansible's connection variables hoist uses, older spellings second.
const ADDRESS: [&str; 2] = ["ansible_host", "ansible_ssh_host"];
const USER: [&str; 2] = ["ansible_user", "ansible_ssh_user"];
const PORT: [&str; 2] = ["ansible_port", "ansible_ssh_port"];
const KEY: [&str; 2] = ["ansible_ssh_private_key_file", "ansible_private_key_file"];

/// A set of groups' layers, their variables merged, and their names as
/// roles (`all` and `ungrouped` aside).
type Merged<'m> = (Vec<&'m VarMap>, BTreeMap<String, Value>, Vec<String>);

fn finish(path: &Path, model: Model) -> Result<Inventory, InventoryError> {
    let resolved = model.resolve();
    let mut problems = Vec::new();
    let mut hosts = Vec::with_capacity(model.hosts.len());
    // The group layers merged once for each set of groups.
    let mut merged: HashMap<*const Vec<usize>, Merged> = HashMap::new();
    for (entry, groups) in model.hosts.iter().zip(&resolved) {
        let (layers, base, roles) = merged.entry(Rc::as_ptr(groups)).or_insert_with(|| {
            let layers = model.group_layers(groups);
            let mut base = BTreeMap::new();
            for l in &layers {
                base.extend(l.iter().map(|(k, v)| (k.clone(), v.value.clone())));
            }
            let mut roles: Vec<String> = groups
                .iter()
                .map(|&g| model.groups[g].name.clone())
                .filter(|n| n != "all" && n != "ungrouped")
                .collect();
            roles.sort();
            roles.dedup();
            (layers, base, roles)
        });
        let mut layers = layers.clone();
        layers.push(&entry.vars);
        layers.push(&entry.file_vars);
        let mut values = base.clone();
        for l in &layers[layers.len() - 2..] {
            values.extend(l.iter().map(|(k, v)| (k.clone(), v.value.clone())));
        }
        for v in model::INTERNAL_VARS {
            values.remove(v);
        }
        match host(entry, roles, &layers, values) {
            Ok(h) => hosts.push(h),
            Err(r) => {
                let (origin, problem) = *r;
                problems.push(Located {
                    problem,
                    file: model.file(&origin),
                });
            }
        }
        if problems.len() >= 20 {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(InventoryError::Invalid(problems));
    }
    let index = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.name.clone(), i))
        .collect();
    let groups = (0..model.groups.len())
        .map(|g| (model.groups[g].name.clone(), model.group_hosts(g)))
        .collect();
    Ok(Inventory {
        path: path.to_path_buf(),
        hosts,
        index,
        warnings: model.warnings.iter().map(Located::short).collect(),
        groups,
    })
}

/// A connection variable's text: one spelling, or both agreeing; never
/// a template (hoist would use it as a literal).
fn connection(
    host: &str,
    layers: &[&VarMap],
    names: [&str; 2],
) -> Result<Option<(String, Origin)>, model::Refusal> {
    let mut found: Option<(&str, &Var)> = None;
    for n in names {
        let Some(var) = layers.iter().rev().find_map(|l| l.get(n)) else {
            continue;
        };
        let text = match &var.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(refuse_as(
                    "bad-connection",
                    &var.origin,
                    format!("host `{host}`: `{n}` is not text"),
                    "expected text",
                ));
            }
        };
        if ["{{", "{%", "{#"].iter().any(|j| text.contains(j)) {
            return Err(refuse_as(
                "jinja",
                &var.origin,
                format!(
                    "host `{host}`: `{n}` is a Jinja template ({text}); hoist does not evaluate templates and will not use it as written"
                ),
                "give the value itself",
            ));
        }
        if let Some((other, first)) = found
            && first.value != var.value
        {
            return Err(refuse_as(
                "bad-connection",
                &var.origin,
                format!(
                    "host `{host}`: `{other}` and `{n}` differ; Ansible's versions disagree on which wins"
                ),
                "keep one of them",
            ));
        }
        found.get_or_insert((n, var));
    }
    Ok(found.map(|(_, v)| {
        let text = match &v.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        (text, v.origin.clone())
    }))
}

/// A variable's text as a recipe's fact.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn host(
    entry: &model::HostEntry,
    roles: &[String],
    layers: &[&VarMap],
    values: BTreeMap<String, Value>,
) -> Result<Host, model::Refusal> {
    let name = &entry.name;
    let address = connection(name, layers, ADDRESS)?;
    let user = connection(name, layers, USER)?;
    let key = connection(name, layers, KEY)?;
    let port = match connection(name, layers, PORT)? {
        None => None,
        Some((p, origin)) => match p.trim().parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                return Err(refuse_as(
                    "bad-port",
                    &origin,
                    format!("host `{name}`: port `{p}` is not a TCP port"),
                    "expected 1 to 65535",
                ));
            }
        },
    };
    if address.as_ref().is_some_and(|(a, _)| a.is_empty()) {
        let origin = address.map(|a| a.1).unwrap_or_default();
        return Err(refuse_as(
            "bad-connection",
            &origin,
            format!("host `{name}`: an empty address"),
            "expected an address or a name",
        ));
    }
    let roles = roles.to_vec();
    let text = values
        .iter()
        .filter(|(k, _)| {
            ![ADDRESS, USER, PORT, KEY]
                .iter()
                .any(|c| c.contains(&k.as_str()))
        })
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    Ok(Host {
        name: name.clone(),
        address: address.map_or_else(|| name.clone(), |a| a.0),
        user: user.map(|u| u.0),
        port,
        key: key.map(|k| k.0),
        roles,
        vars: text,
        values,
    })
}
