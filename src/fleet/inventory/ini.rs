//! Ansible's INI inventory (`/etc/ansible/hosts`), read as ansible-core's
//! `ini` plugin reads it (`lib/ansible/plugins/inventory/ini.py`):
//!
//! - lines are Python's `splitlines()`, stripped; `#` and `;` start a
//!   comment line;
//! - `[group]`, `[group:hosts]`, `[group:vars]`, `[group:children]`, a
//!   trailing `# comment` allowed; hosts before any section are in
//!   `ungrouped`;
//! - a host line is split as `shlex.split(line, comments=True)`: the first
//!   word is a host pattern (`host:port`, `[v6]:port`, ranges), the others
//!   `key=value`;
//! - every value, on a host line or under `[group:vars]` (one `key = value`
//!   a line, split at the first `=`), is `ast.literal_eval`'d: `8080` is a
//!   number, `'a b'` the text `a b`, `True` a boolean, and what is not a
//!   Python literal stays as written (a trailing `# comment` included);
//! - `[g:vars]` for a group no section declares, and `[g:children]`
//!   naming an undeclared group, are errors.

use super::address;
use super::model::{Model, Origin, Refusal, Var, refuse, refuse_as};
use super::python::{literal_eval, shlex_split};

/// Python's `str.isspace()`.
pub fn py_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// Python's `str.splitlines()`: each line and its byte offset.
pub fn py_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        ) {
            out.push((start, &text[start..i]));
            let mut next = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|(_, n)| *n == '\n') {
                chars.next();
                next += 1;
            }
            start = next;
        }
    }
    if start < text.len() {
        out.push((start, &text[start..]));
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

struct Pending {
    origin: Origin,
    state: State,
    parents: Vec<usize>,
}

/// `[name]`, `[name:kind]`, then blanks and a `# comment`: the name and
/// kind, `None` when the line is not a section header.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let name_end = rest
        .find(|c: char| c == ':' || c == ']' || py_space(c))
        .unwrap_or(rest.len());
    let (name, mut rest) = rest.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let mut kind = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        if end == 0 {
            return None;
        }
        kind = Some(&r[..end]);
        rest = &r[end..];
    }
    let rest = rest.strip_prefix(']')?.trim_start_matches(py_space);
    (rest.is_empty() || rest.starts_with('#')).then_some((name, kind))
}

/// A child group's line: a name, then blanks and a `# comment`.
fn group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || py_space(c))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start_matches(py_space);
    (!name.is_empty() && (rest.is_empty() || rest.starts_with('#'))).then_some(name)
}

/// Reads one INI file into the model.
pub fn parse(model: &mut Model, file: usize, text: &str) -> Result<(), Refusal> {
    // Groups named before a section declares them, by name, in order.
    let mut pending: Vec<(String, Pending)> = Vec::new();
    let mut group = model.add_group("ungrouped");
    let mut state = State::Hosts;
    for (offset, raw) in py_lines(text) {
        let lead = raw.len() - raw.trim_start_matches(py_space).len();
        let line = raw.trim_matches(py_space);
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let origin = Origin {
            file,
            span: offset + lead..offset + lead + line.len(),
        };
        if let Some((name, kind)) = section(line) {
            let kind = match kind {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(refuse(
                        &origin,
                        format!("section [{name}:{other}] has unknown type: {other}"),
                        "expected [group], [group:vars] or [group:children]",
                    ));
                }
            };
            let known = model.group_index(name).is_some();
            let is_pending = |p: &[(String, Pending)]| p.iter().position(|(n, _)| n == name);
            if !known && kind == State::Vars && is_pending(&pending).is_none() {
                pending.push((
                    name.to_string(),
                    Pending {
                        origin: origin.clone(),
                        state: kind,
                        parents: Vec::new(),
                    },
                ));
            }
            group = model.add_group(name);
            state = kind;
            if kind != State::Vars
                && let Some(i) = is_pending(&pending)
            {
                if pending[i].1.state == State::Children {
                    add_pending_children(model, name, &mut pending)?;
                } else {
                    pending.remove(i);
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(refuse(
                &origin,
                format!("invalid section entry: `{line}`"),
                "expected [group] or [group:vars|children|hosts], no spaces in the brackets",
            ));
        }
        match state {
            State::Hosts => host_line(model, group, line, &origin)?,
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(refuse(
                        &origin,
                        format!("expected key=value, got: {line}"),
                        "a [group:vars] line is `key = value`",
                    ));
                };
                let (k, v) = (k.trim_matches(py_space), v.trim_matches(py_space));
                let value = value(k, v, &origin)?;
                model.set_group_var(group, k, value)?;
            }
            State::Children => {
                let Some(child) = group_name(line) else {
                    return Err(refuse(
                        &origin,
                        format!("expected group name, got: {line}"),
                        "one child group a line",
                    ));
                };
                match model.group_index(child) {
                    Some(c) => model.add_child(group, c, &origin)?,
                    None => match pending.iter_mut().find(|(n, _)| n == child) {
                        Some((_, p)) => p.parents.push(group),
                        None => pending.push((
                            child.to_string(),
                            Pending {
                                origin: origin.clone(),
                                state: State::Children,
                                parents: vec![group],
                            },
                        )),
                    },
                }
            }
        }
    }
    if let Some((name, p)) = pending.first() {
        return Err(match p.state {
            State::Vars => refuse(
                &p.origin,
                format!("section [{name}:vars] not valid for undefined group: {name}"),
                "declare the group with [NAME] or [NAME:children] too",
            ),
            _ => {
                let parent = p
                    .parents
                    .last()
                    .map_or(String::new(), |&x| model.groups[x].name.clone());
                refuse_as(
                    "unknown-group",
                    &p.origin,
                    format!("section [{parent}:children] includes undefined group: {name}"),
                    "declare the group with [NAME] or [NAME:children] too",
                )
            }
        });
    }
    Ok(())
}

fn add_pending_children(
    model: &mut Model,
    name: &str,
    pending: &mut Vec<(String, Pending)>,
) -> Result<(), Refusal> {
    let Some(i) = pending.iter().position(|(n, _)| n == name) else {
        return Ok(());
    };
    let (_, p) = pending.remove(i);
    let group = model.add_group(name);
    for parent in p.parents {
        model.add_child(parent, group, &p.origin)?;
        let pname = model.groups[parent].name.clone();
        if pending
            .iter()
            .any(|(n, q)| *n == pname && q.state == State::Children)
        {
            add_pending_children(model, &pname, pending)?;
        }
    }
    Ok(())
}

fn value(key: &str, text: &str, origin: &Origin) -> Result<Var, Refusal> {
    match literal_eval(text) {
        Ok(value) => Ok(Var {
            value,
            origin: origin.clone(),
        }),
        Err(why) => Err(refuse(
            origin,
            format!("the value of `{key}` ({text}): {why}"),
            "expected text, a number, a boolean, a list or a dictionary",
        )),
    }
}

fn host_line(model: &mut Model, group: usize, line: &str, origin: &Origin) -> Result<(), Refusal> {
    let tokens = shlex_split(line).map_err(|e| {
        refuse(
            origin,
            format!("error parsing host definition `{line}`: {e}"),
            "expected a host, then key=value pairs",
        )
    })?;
    let Some(pattern) = tokens.first() else {
        return Err(refuse(
            origin,
            "no host on this line",
            "expected a host name",
        ));
    };
    let (names, port) = address::expand_hostpattern(pattern).map_err(|e| {
        refuse(
            origin,
            e,
            "expected a host name, name:port, [IPv6]:port, or a range such as web[01:10]",
        )
    })?;
    if pattern.trim_matches(py_space).ends_with(':') && port.is_none() {
        return Err(refuse(
            origin,
            format!("invalid host pattern `{pattern}`: ending in `:` is not allowed"),
            "`:` introduces a port",
        ));
    }
    if names.iter().any(|n| n.trim_matches(py_space) == "---") {
        return Err(refuse(
            origin,
            format!("invalid host pattern `{pattern}`: `---` is a sign this is a YAML file"),
            "name YAML inventories .yml or .yaml",
        ));
    }
    let mut vars: Vec<(String, Var)> = Vec::new();
    for t in &tokens[1..] {
        let Some((k, v)) = t.split_once('=') else {
            let at = line.find(t.as_str()).unwrap_or(0);
            return Err(refuse(
                &Origin {
                    file: origin.file,
                    span: origin.span.start + at..origin.span.start + at + 1,
                },
                format!("expected key=value host variable assignment, got: {t}"),
                "expected key=value",
            ));
        };
        if k.is_empty() {
            return Err(refuse(
                origin,
                format!("`{t}` has no variable name"),
                "expected key=value",
            ));
        }
        // shlex keeps no positions: point at where `k=` is written.
        let at = line.find(&format!("{k}=")).unwrap_or(0);
        let here = Origin {
            file: origin.file,
            span: origin.span.start + at..origin.span.start + at + t.len().min(line.len() - at),
        };
        let var = value(k, v, &here)?;
        match vars.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = var,
            None => vars.push((k.to_string(), var)),
        }
    }
    model.populate(names, Some(group), port, origin, vars)
}
