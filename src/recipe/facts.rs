//! Facts: what hoist knows about a host when it plans. The vocabulary
//! belongs to the recipe (its conditions and templates are typed by the
//! catalogue); `host::probe` fills it in from a live host.
//!
//! Built-in facts are probed by hoist itself (OS, architecture, installed
//! packages, the product's version) or given by the admin (roles, options).
//! A recipe adds its own in `[[facts]]` (e.g. which hypervisor is in use).
//! For tests and for maintainers, a fixture file can stand in for a host:
//! `hoist plan --facts FILE` probes nothing and uses only the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::version::Version;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactType {
    #[serde(rename = "string")]
    Str,
    Version,
    Bool,
    List,
}

impl FactType {
    pub fn literal_name(self) -> &'static str {
        match self {
            FactType::Str => "string",
            FactType::Version => "version range string",
            FactType::Bool => "bool",
            FactType::List => "string",
        }
    }
}

impl fmt::Display for FactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FactType::Str => "string",
            FactType::Version => "version",
            FactType::Bool => "bool",
            FactType::List => "list",
        })
    }
}

/// A fact's value on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    Version(Version),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// The value as text: what `set_text` reads back, and what a `{{ fact }}`
    /// in an action becomes.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::List(l) => l.join(","),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Version(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(l) => write!(f, "[{}]", l.join(", ")),
        }
    }
}

/// What a fact is: its type and, when the set is closed, its values.
#[derive(Clone, Debug)]
pub struct FactDef {
    pub name: String,
    pub ty: FactType,
    pub values: Option<Vec<String>>,
    pub about: &'static str,
}

/// Built-in facts. `package.<name>` is open-ended and handled in `lookup`.
pub const BUILTIN: &[(&str, FactType, &str)] = &[
    (
        "os.id",
        FactType::Str,
        "ID from /etc/os-release (debian, ubuntu, rhel, centos)",
    ),
    (
        "os.version_id",
        FactType::Version,
        "VERSION_ID from /etc/os-release",
    ),
    (
        "os.codename",
        FactType::Str,
        "VERSION_CODENAME from /etc/os-release",
    ),
    (
        "os.family",
        FactType::Str,
        "debian or rhel, from ID and ID_LIKE",
    ),
    (
        "arch",
        FactType::Str,
        "the package architecture (amd64, arm64, ...)",
    ),
    ("hostname", FactType::Str, "the host's name"),
    (
        "roles",
        FactType::List,
        "roles given on the command line or by the inventory",
    ),
    (
        "current",
        FactType::Version,
        "the installed version of the product",
    ),
    (
        "candidate",
        FactType::Version,
        "the newest version available, from [product].candidate",
    ),
    (
        "target",
        FactType::Version,
        "the version the whole upgrade ends at",
    ),
    (
        "from",
        FactType::Version,
        "the version the current hop starts from",
    ),
    (
        "to",
        FactType::Version,
        "the version the current hop ends at",
    ),
];

/// The facts a recipe may name: built-ins, the recipe's roles, its own facts.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    defs: BTreeMap<String, FactDef>,
}

impl Catalogue {
    pub fn builtin(roles: Option<Vec<String>>) -> Self {
        let mut defs = BTreeMap::new();
        for (name, ty, about) in BUILTIN {
            let values = (*name == "roles").then(|| roles.clone()).flatten();
            defs.insert(
                name.to_string(),
                FactDef {
                    name: name.to_string(),
                    ty: *ty,
                    values,
                    about,
                },
            );
        }
        Catalogue { defs }
    }

    pub fn add(&mut self, def: FactDef) {
        self.defs.insert(def.name.clone(), def);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    pub fn lookup(&self, name: &str) -> Option<FactDef> {
        if let Some(pkg) = name.strip_prefix("package.")
            && !pkg.is_empty()
        {
            return Some(FactDef {
                name: name.to_string(),
                ty: FactType::Version,
                values: None,
                about: "installed version of a package (unset when not installed)",
            });
        }
        self.defs.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs
            .keys()
            .map(String::as_str)
            .chain(["package.<name>"])
    }

    pub fn defs(&self) -> impl Iterator<Item = &FactDef> {
        self.defs.values()
    }
}

/// The facts of one host (or of a fixture).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Facts {
    values: BTreeMap<String, Value>,
    /// Ids of `once` steps already done on this host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub once_done: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read facts file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("facts file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Facts {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn set(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }

    pub fn remove(&mut self, name: &str) {
        self.values.remove(name);
    }

    pub fn version(&self, name: &str) -> Option<&Version> {
        match self.values.get(name) {
            Some(Value::Version(v)) => Some(v),
            _ => None,
        }
    }

    /// A list fact's items (`roles`); `None` when unset or not a list.
    pub fn list(&self, name: &str) -> Option<&[String]> {
        match self.values.get(name) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    /// The facts as text, for the journal (`from_text_map` reads them back).
    pub fn to_text_map(&self) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        if !self.once_done.is_empty() {
            m.insert("once_done".into(), self.once_done.join(","));
        }
        m
    }

    pub fn from_text_map(
        catalogue: &Catalogue,
        map: &BTreeMap<String, String>,
    ) -> Result<Facts, String> {
        let mut f = Facts::default();
        for (k, v) in map {
            if k == "once_done" {
                f.once_done = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            } else if catalogue.lookup(k).is_some() {
                f.set_text(catalogue, k, v)?;
            }
        }
        Ok(f)
    }

    /// Sets a fact from text given by an admin (`--fact k=v`) or a fixture,
    /// typed by the catalogue.
    pub fn set_text(
        &mut self,
        catalogue: &Catalogue,
        name: &str,
        text: &str,
    ) -> Result<(), String> {
        let def = catalogue
            .lookup(name)
            .ok_or_else(|| format!("unknown fact `{name}`"))?;
        let value = match def.ty {
            FactType::Str => Value::Str(text.to_string()),
            FactType::Version => {
                Value::Version(Version::parse(text).map_err(|e| format!("{name}: {e}"))?)
            }
            FactType::Bool => Value::Bool(match text {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(format!("{name}: `{text}` is not true or false")),
            }),
            FactType::List => Value::List(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            ),
        };
        self.set(name, value);
        Ok(())
    }

    /// Reads a fixture: a TOML table of facts (dotted keys allowed, e.g.
    /// `os.id = "ubuntu"`, `package.cloud-client = "2.2.5"`), plus
    /// `once_done = [...]`.
    pub fn from_fixture(path: &Path, catalogue: &Catalogue) -> Result<Facts, FixtureError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: p.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| FixtureError::Invalid {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let mut facts = Facts::default();
        let invalid = |message: String| FixtureError::Invalid {
            path: p.clone(),
            message,
        };
        let mut flat = Vec::new();
        flatten("", &table, &mut flat);
        for (name, value) in flat {
            if name == "once_done" {
                let toml::Value::Array(items) = value else {
                    return Err(invalid("once_done must be a list of step ids".into()));
                };
                facts.once_done = items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect();
                continue;
            }
            if let Some(def) = catalogue.lookup(&name) {
                written_as(def.ty, &name, value).map_err(invalid)?;
            }
            facts
                .set_text(catalogue, &name, &value_text(value))
                .map_err(invalid)?;
        }
        Ok(facts)
    }
}

/// A facts file says what type each value is: one of another type than the
/// fact's is refused, never coerced (`current = 5`, `roles = "web"`).
fn written_as(ty: FactType, name: &str, value: &toml::Value) -> Result<(), String> {
    let (ok, want) = match ty {
        FactType::Str => (value.is_str(), "a string"),
        FactType::Version => (
            value.is_str(),
            "a version written as a string, e.g. \"2.0\"",
        ),
        FactType::Bool => (value.is_bool(), "true or false"),
        FactType::List => (
            value
                .as_array()
                .is_some_and(|items| items.iter().all(toml::Value::is_str)),
            "a list of strings, e.g. [\"web\"]",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be {want}, not {} `{value}`",
            value.type_str()
        ))
    }
}

/// Variable and fact names whose values are secrets (`ansible_password`,
/// `ansible_become_pass`, `db_secret`, `api_token` ...): never on a command
/// line, in the journal or in a log.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "secret", "token", "private_key", "credential"]
        .iter()
        .any(|w| n.contains(w))
}

/// A TOML value as the text `set_text` reads: a list joined by commas.
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn flatten<'a>(prefix: &str, table: &'a toml::Table, out: &mut Vec<(String, &'a toml::Value)>) {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&name, t, out),
            _ => out.push((name, v)),
        }
    }
}
