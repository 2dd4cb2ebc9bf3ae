//! hoist's own TOML inventory, read into the same model as Ansible's:
//!
//! ```toml
//! [hosts.xivo-1]
//! address = "192.0.2.10"
//! user = "root"
//! roles = ["master"]
//! vars = { slave_ip = "192.0.2.11" }
//!
//! [groups.kvm]          # a group is a role given to several hosts
//! hosts = ["kvm-1", "kvm-2"]
//! vars = { zone = "a" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::model::{Model, Origin, Var};
use crate::output::diag::Problem;

/// A table's entries in file order (the plan's host order).
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

fn json(v: toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Reads the TOML text of file `file` into `model`.
pub fn parse(model: &mut Model, file: usize, text: &str, problems: &mut Vec<Problem>) {
    let raw: RawToml = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            problems.push(
                Problem::error(
                    "inventory-syntax",
                    e.span().unwrap_or(0..0),
                    format!("inventory: {}", e.message().trim()),
                )
                .label("here")
                .help("hosts are [hosts.NAME] tables with address, user, port, roles, vars; groups are [groups.NAME] with hosts, vars, children"),
            );
            return;
        }
    };
    let at = |span: std::ops::Range<usize>| Origin { file, span };
    let mut roles = Vec::new();
    for (name, host) in raw.hosts.0 {
        let span = host.span();
        let host = host.into_inner();
        let Ok(h) = model.add_host(&name, None, None, &at(span.clone())) else {
            problems.push(Problem::error(
                "inventory-syntax",
                span,
                "an empty host name",
            ));
            continue;
        };
        let mut vars: Vec<(String, serde_json::Value)> =
            host.vars.into_iter().map(|(k, v)| (k, json(v))).collect();
        if let Some(a) = host.address {
            vars.push(("ansible_host".into(), a.into()));
        }
        if let Some(u) = host.user {
            vars.push(("ansible_user".into(), u.into()));
        }
        if let Some(p) = host.port {
            vars.push(("ansible_port".into(), p.into()));
        }
        for (k, value) in vars {
            let var = Var {
                value,
                origin: at(span.clone()),
            };
            model.hosts[h].vars.insert(k, var);
        }
        for role in host.roles {
            roles.push((role, h));
        }
    }
    for (role, h) in roles {
        let g = model.add_group(&role);
        let name = model.hosts[h].name.clone();
        let origin = model.hosts[h].origin.clone();
        let _ = model.add_host(&name, Some(g), None, &origin);
    }
    let groups: Vec<(String, std::ops::Range<usize>, RawGroup)> = raw
        .groups
        .0
        .into_iter()
        .map(|(n, g)| {
            let span = g.span();
            (n, span, g.into_inner())
        })
        .collect();
    for (name, _, _) in &groups {
        model.add_group(name);
    }
    for (name, span, group) in groups {
        let g = model.add_group(&name);
        for (k, v) in group.vars {
            let var = Var {
                value: json(v),
                origin: at(span.clone()),
            };
            if let Err(r) = model.set_group_var(g, &k, var) {
                problems.push(r.1);
            }
        }
        for h in &group.hosts {
            match model.host_index(h.get_ref()) {
                Some(hi) => {
                    let origin = model.hosts[hi].origin.clone();
                    let _ = model.add_host(h.get_ref(), Some(g), None, &origin);
                }
                None => problems.push(
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
                        model.hosts.iter().map(|h| h.name.as_str()),
                    )),
                ),
            }
        }
        for c in &group.children {
            match model.group_index(c.get_ref()) {
                Some(ci) => {
                    if let Err(r) = model.add_child(g, ci, &at(c.span())) {
                        problems.push(r.1);
                    }
                }
                None => problems.push(
                    Problem::error(
                        "unknown-group",
                        c.span(),
                        format!(
                            "group `{name}` names child group `{}`, which is not defined",
                            c.get_ref()
                        ),
                    )
                    .label("a child group must be defined in this inventory"),
                ),
            }
        }
    }
}
