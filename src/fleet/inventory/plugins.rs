//! Ansible's `yaml` inventory plugin (YAML and JSON files of groups with
//! `hosts`, `vars`, `children`) and the JSON that `ansible-inventory
//! --list` and inventory scripts print (`_meta.hostvars`), read into the
//! model as ansible-core's `yaml.py` and `script.py` do.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::address;
use super::model::{Model, Origin, Refusal, Var, refuse};
use super::yaml::{Kind, Node};

/// A node's value as a variable's; `var` names it in a refusal.
pub fn value(node: &Node, var: &str, file: usize) -> Result<Value, Refusal> {
    let origin = Origin {
        file,
        span: node.span.clone(),
    };
    Ok(match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => match Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(refuse(
                    &origin,
                    format!("`{var}`: not a finite number"),
                    "a number",
                ));
            }
        },
        Kind::Str(s) | Kind::Unsafe(s) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(
            items
                .iter()
                .map(|n| value(n, var, file))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                let Some(k) = text(k) else {
                    return Err(refuse(
                        &Origin {
                            file,
                            span: k.span.clone(),
                        },
                        format!("`{var}` has a key that is {}, not text", k.type_name()),
                        "hoist reads text keys only: quote it",
                    ));
                };
                m.insert(k.to_string(), value(v, var, file)?);
            }
            Value::Object(m)
        }
        Kind::Vault => {
            return Err(refuse(
                &origin,
                format!("variable `{var}` is vault-encrypted: hoist does not decrypt vault values"),
                "give it in clear text, or leave it out of the inventory hoist reads",
            ));
        }
        Kind::Merge => {
            return Err(refuse(
                &origin,
                format!("`{var}`: `<<` is not a value"),
                "quote it",
            ));
        }
    })
}

/// A mapping's pairs, borrowed from the tree or made up.
type Pairs<'a> = Cow<'a, [(Node, Node)]>;

/// The text of a key (`None` if it is not text).
pub fn text(node: &Node) -> Option<&str> {
    match &node.kind {
        Kind::Str(s) | Kind::Unsafe(s) => Some(s),
        _ => None,
    }
}

fn origin(file: usize, node: &Node) -> Origin {
    Origin {
        file,
        span: node.span.clone(),
    }
}

fn get<'a>(pairs: &'a [(Node, Node)], key: &str) -> Option<&'a Node> {
    pairs
        .iter()
        .find(|(k, _)| text(k) == Some(key))
        .map(|(_, v)| v)
}

/// The `yaml` plugin over a loaded file.
pub fn yaml_inventory(model: &mut Model, file: usize, root: Option<Node>) -> Result<(), Refusal> {
    let whole = Origin { file, span: 0..0 };
    let Some(root) = root.filter(|r| !r.is_falsy()) else {
        return Err(refuse(
            &whole,
            "parsed empty YAML file",
            "expected groups such as `all:`",
        ));
    };
    let Kind::Map(groups) = &root.kind else {
        return Err(refuse(
            &origin(file, &root),
            format!(
                "YAML inventory has invalid structure: it should be a mapping, not {}",
                root.type_name()
            ),
            "expected groups such as `all:` with `hosts:` and `children:`",
        ));
    };
    if get(groups, "plugin").is_some_and(|p| !p.is_falsy()) {
        return Err(refuse(
            &origin(file, &root),
            "an inventory plugin's configuration, not an inventory: hoist does not run inventory plugins",
            "expected groups such as `all:`",
        ));
    }
    for (name, data) in groups {
        group(model, file, name, data)?;
    }
    Ok(())
}

fn group<'a>(
    model: &mut Model,
    file: usize,
    name: &Node,
    data: &'a Node,
) -> Result<String, Refusal> {
    let at = origin(file, name);
    let Some(gname) = text(name).filter(|n| !n.is_empty()) else {
        return Err(refuse(
            &at,
            format!("a group name that is {}", name.type_name()),
            "expected a group name: quote it",
        ));
    };
    let pairs: &[(Node, Node)] = match &data.kind {
        Kind::Map(p) => p,
        Kind::Null => &[],
        _ => {
            model.warn(
                &at,
                format!("skipping `{gname}`: it is not a valid group definition"),
            );
            return Ok(gname.to_string());
        }
    };
    let g = model.add_group(gname);
    // A section given as a string is a mapping of that one name.
    let section = |node: &'a Node| -> Result<Option<Pairs<'a>>, Refusal> {
        match &node.kind {
            Kind::Str(_) | Kind::Unsafe(_) => Ok(Some(Cow::Owned(vec![(
                node.clone(),
                Node {
                    kind: Kind::Null,
                    span: node.span.clone(),
                },
            )]))),
            Kind::Map(p) => Ok(Some(Cow::Borrowed(p.as_slice()))),
            Kind::Null => Ok(None),
            _ => Err(refuse(
                &origin(file, node),
                format!(
                    "invalid entry for group `{gname}`: requires a mapping, found {}",
                    node.type_name()
                ),
                "expected a mapping of names",
            )),
        }
    };
    let mut sections = Vec::new();
    for (key, val) in pairs {
        let k = text(key).unwrap_or("");
        if matches!(k, "vars" | "children" | "hosts") {
            sections.push((key, section(val)?));
        } else {
            sections.push((key, None));
        }
    }
    for ((key, val), (_, sect)) in pairs.iter().zip(sections) {
        let k = text(key).unwrap_or("");
        let entries = match (k, sect, &val.kind) {
            (_, _, Kind::Null) => continue,
            ("vars" | "children" | "hosts", Some(e), _) => e,
            (_, _, Kind::Map(_)) => {
                model.warn(
                    &origin(file, key),
                    format!("skipping unexpected key `{k}` in group `{gname}`: only vars, children and hosts are valid"),
                );
                continue;
            }
            _ => {
                model.warn(
                    &origin(file, key),
                    format!("skipping key `{k}` in group `{gname}`: it is not a mapping"),
                );
                continue;
            }
        };
        match k {
            "vars" => {
                for (name, var) in vars_of(&entries[..], file)? {
                    model.set_group_var(g, &name, var)?;
                }
            }
            "children" => {
                for (ck, cv) in entries.iter() {
                    let child = group(model, file, ck, cv)?;
                    let at = origin(file, ck);
                    match model.group_index(&child) {
                        Some(c) => model.add_child(g, c, &at)?,
                        None => match model.host_index(&child) {
                            Some(_) => {
                                model.add_host(&child, Some(g), None, &at)?;
                            }
                            None => {
                                return Err(refuse(
                                    &at,
                                    format!("`{child}` is not a known host nor group"),
                                    "a child is a group (a mapping or nothing)",
                                ));
                            }
                        },
                    }
                }
            }
            _ => {
                for (hk, hv) in entries.iter() {
                    let at = origin(file, hk);
                    let Some(pattern) = text(hk) else {
                        return Err(refuse(
                            &at,
                            format!("host pattern that is {}", hk.type_name()),
                            "a host pattern is text: quote numbers",
                        ));
                    };
                    let (names, port) = address::expand_hostpattern(pattern).map_err(|e| {
                        refuse(&at, e, "expected a host name, name:port or a range")
                    })?;
                    let vars: &[(Node, Node)] = match &hv.kind {
                        Kind::Map(p) => p.as_slice(),
                        _ if hv.is_falsy() => &[],
                        _ => {
                            return Err(refuse(
                                &origin(file, hv),
                                format!(
                                    "the variables of host `{pattern}` are {}, not a mapping",
                                    hv.type_name()
                                ),
                                "expected `name: value` pairs",
                            ));
                        }
                    };
                    let parsed = vars_of(vars, file)?;
                    model.populate(names, Some(g), port, &at, parsed)?;
                }
            }
        }
    }
    Ok(gname.to_string())
}

/// `name: value` pairs as variables (text names only).
pub fn vars_of(pairs: &[(Node, Node)], file: usize) -> Result<Vec<(String, Var)>, Refusal> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = var_name(k, file)?;
        let var = Var {
            value: value(v, name, file)?,
            origin: origin(file, v),
        };
        out.push((name.to_string(), var));
    }
    Ok(out)
}

fn var_name(node: &Node, file: usize) -> Result<&str, Refusal> {
    text(node).ok_or_else(|| {
        refuse(
            &origin(file, node),
            format!("a variable name that is {}", node.type_name()),
            "hoist reads text variable names only: quote it",
        )
    })
}

/// The JSON of `ansible-inventory --list` (or of an inventory script):
/// groups as lists of hosts or `{hosts, vars, children}`, variables of
/// hosts under `_meta.hostvars`.
pub fn list_inventory(model: &mut Model, file: usize, root: &Node) -> Result<(), Refusal> {
    let Kind::Map(groups) = &root.kind else {
        return Err(refuse(
            &origin(file, root),
            "the --list JSON is not an object",
            "expected {\"_meta\": ..., \"all\": ...}",
        ));
    };
    let mut hostvars: Option<&[(Node, Node)]> = None;
    let mut listed: Vec<(String, Origin)> = Vec::new();
    for (name, data) in groups {
        let at = origin(file, name);
        let gname = text(name).unwrap_or("");
        if gname == "_meta" {
            match &data.kind {
                Kind::Map(m) => match get(m, "hostvars") {
                    Some(Node {
                        kind: Kind::Map(hv),
                        ..
                    }) => hostvars = Some(hv),
                    Some(other) => {
                        return Err(refuse(
                            &origin(file, other),
                            "_meta.hostvars is not an object",
                            "expected {HOST: {VAR: VALUE}}",
                        ));
                    }
                    None => {}
                },
                _ => {
                    return Err(refuse(
                        &at,
                        "_meta is not an object",
                        "expected {\"hostvars\": ...}",
                    ));
                }
            }
            continue;
        }
        if gname.is_empty() {
            return Err(refuse(&at, "an empty group name", "expected a group name"));
        }
        let g = model.add_group(gname);
        let (hosts, vars, children): (Option<&Node>, Option<&Node>, Option<&Node>) =
            match &data.kind {
                Kind::Map(m)
                    if ["hosts", "vars", "children"]
                        .iter()
                        .any(|k| get(m, k).is_some()) =>
                {
                    (get(m, "hosts"), get(m, "vars"), get(m, "children"))
                }
                Kind::Map(_) => {
                    return Err(refuse(
                        &at,
                        format!("group `{gname}` has neither hosts, vars nor children"),
                        "expected {\"hosts\": [...], \"vars\": {...}, \"children\": [...]}",
                    ));
                }
                _ => (Some(data), None, None),
            };
        if let Some(h) = hosts {
            let Kind::Seq(items) = &h.kind else {
                return Err(refuse(
                    &origin(file, h),
                    format!("group `{gname}`: bad data for the host list"),
                    "expected a list of host names",
                ));
            };
            for item in items {
                let Some(host) = text(item) else {
                    return Err(refuse(
                        &origin(file, item),
                        "a host name that is not text",
                        "expected a host name",
                    ));
                };
                model.add_host(host, Some(g), None, &origin(file, item))?;
                listed.push((host.to_string(), origin(file, item)));
            }
        }
        if let Some(v) = vars {
            let Kind::Map(pairs) = &v.kind else {
                return Err(refuse(
                    &origin(file, v),
                    format!("group `{gname}`: bad data for variables"),
                    "expected an object",
                ));
            };
            for (name, var) in vars_of(pairs, file)? {
                model.set_group_var(g, &name, var)?;
            }
        }
        if let Some(c) = children {
            let Kind::Seq(items) = &c.kind else {
                return Err(refuse(
                    &origin(file, c),
                    format!("group `{gname}`: children is not a list"),
                    "expected a list of group names",
                ));
            };
            for item in items {
                let Some(child) = text(item).filter(|c| !c.is_empty()) else {
                    return Err(refuse(
                        &origin(file, item),
                        "a child group name that is not text",
                        "expected a group name",
                    ));
                };
                let c = model.add_group(child);
                model.add_child(g, c, &origin(file, item))?;
            }
        }
    }
    for (host, at) in listed {
        let Some(pairs) = hostvars.and_then(|hv| get(hv, &host)) else {
            continue;
        };
        let h = model.add_host(&host, None, None, &at)?;
        let Kind::Map(pairs) = &pairs.kind else {
            return Err(refuse(
                &origin(file, pairs),
                format!("the variables of `{host}` are not an object"),
                "expected an object",
            ));
        };
        for (name, var) in vars_of(pairs, file)? {
            model.set_host_var(h, name, var)?;
        }
    }
    Ok(())
}
