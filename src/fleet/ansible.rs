//! Ansible inventories, INI and YAML, read into the inventory's [`Tree`]
//! so admins reuse the inventory they have.
//!
//! What is read (Ansible's "How to build your inventory"): groups (their
//! names become roles), `[group:vars]` / `vars:`, `[group:children]` /
//! `children:`, host variables on a host's line or under it, host ranges
//! (`web[01:03]`, `db-[a:c]`), and the connection variables `ansible_host`,
//! `ansible_user`, `ansible_port` (and the older `ansible_ssh_*`). Dynamic
//! inventory scripts and `host_vars/` directories are not read.
//!
//! YAML is parsed with `saphyr` (pure Rust, no `unsafe` C port, YAML 1.2,
//! every node marked with its position): `serde_yaml` is deprecated and
//! archived, `serde_yml` is archived with soundness advisories
//! (RUSTSEC-2025-0068), and `serde_norway` still wraps a mechanical port of
//! libyaml in `unsafe`. The positions are what let a mistake be reported at
//! its line and column.

use std::ops::Range as Span;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::inventory::{Tree, Vars};
use crate::output::diag::Problem;

const HELP_INI: &str = "INI inventories have [group], [group:vars] and [group:children] sections; a host line is `name key=value ...`";

/// The INI form (`/etc/ansible/hosts`).
pub fn parse_ini(text: &str, problems: &mut Vec<Problem>) -> Tree {
    enum Section {
        Hosts(String),
        Vars(String),
        Children(String),
    }
    let mut tree = Tree::default();
    let mut section = Section::Hosts("ungrouped".into());
    let mut offset = 0;
    for raw_line in text.split_inclusive('\n') {
        let start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = start + indent;
        let span = at..at + line.len();
        if let Some(header) = line.strip_prefix('[') {
            let Some(header) = header.strip_suffix(']') else {
                problems.push(
                    Problem::error("inventory-syntax", span, "a section header lacks its `]`")
                        .label("expected [group], [group:vars] or [group:children]"),
                );
                continue;
            };
            let (name, kind) = header.split_once(':').unwrap_or((header, ""));
            if name.is_empty() || name.contains(char::is_whitespace) {
                problems.push(
                    Problem::error(
                        "inventory-syntax",
                        span,
                        format!("`{name}` is not a group name"),
                    )
                    .label("expected a name without spaces"),
                );
                continue;
            }
            tree.group(name, span.clone());
            section = match kind {
                "" => Section::Hosts(name.into()),
                "vars" => Section::Vars(name.into()),
                "children" => Section::Children(name.into()),
                other => {
                    problems.push(
                        Problem::error(
                            "inventory-syntax",
                            span,
                            format!("unknown section kind `:{other}`"),
                        )
                        .label("expected :vars or :children")
                        .help_opt(crate::output::diag::suggest(other, ["vars", "children"])),
                    );
                    continue;
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let tokens = match split(line, at) {
                    Ok(t) => t,
                    Err(p) => {
                        problems.push(p);
                        continue;
                    }
                };
                let Some((pattern, pspan)) = tokens.first().cloned() else {
                    continue;
                };
                let mut vars = Vars::new();
                for (tok, tspan) in &tokens[1..] {
                    match tok.split_once('=') {
                        Some((k, v)) if !k.is_empty() => {
                            vars.push((k.to_string(), unquote(v), tspan.clone()));
                        }
                        _ => problems.push(
                            Problem::error(
                                "inventory-syntax",
                                tspan.clone(),
                                format!("`{tok}` is not a host variable"),
                            )
                            .label("expected key=value")
                            .help(HELP_INI),
                        ),
                    }
                }
                let names = match expand(&pattern) {
                    Ok(n) => n,
                    Err(e) => {
                        problems.push(
                            Problem::error("inventory-syntax", pspan, e)
                                .label("expected a range such as web[01:10] or db-[a:c]"),
                        );
                        continue;
                    }
                };
                for name in names {
                    tree.host(&name, vars.clone(), pspan.clone());
                    tree.group(group, span.clone()).hosts.push(name);
                }
            }
            Section::Vars(group) => match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    let var = (k.trim().to_string(), unquote(v.trim()), span.clone());
                    tree.group(group, span.clone()).vars.push(var);
                }
                _ => problems.push(
                    Problem::error(
                        "inventory-syntax",
                        span,
                        format!("`{line}` is not a group variable"),
                    )
                    .label(format!("expected key=value under [{group}:vars]")),
                ),
            },
            Section::Children(group) => {
                if line.contains(char::is_whitespace) {
                    problems.push(
                        Problem::error(
                            "inventory-syntax",
                            span,
                            format!("`{line}` is not a group name"),
                        )
                        .label(format!(
                            "expected one child group per line under [{group}:children]"
                        )),
                    );
                    continue;
                }
                tree.group(group, span.clone())
                    .children
                    .push((line.to_string(), span));
            }
        }
    }
    tree
}

/// Splits a host line on blanks, keeping quoted values whole.
fn split(line: &str, at: usize) -> Result<Vec<(String, Span<usize>)>, Problem> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((std::mem::take(&mut cur), at + s..at + i));
                }
            }
            (None, '#') if start.is_none() => break,
            (None, c) => {
                start.get_or_insert(i);
                cur.push(c);
            }
        }
    }
    if let Some(q) = quote {
        return Err(Problem::error(
            "inventory-syntax",
            at..at + line.len(),
            format!("a value opened with {q} is not closed"),
        )
        .label(format!("expected a closing {q}")));
    }
    if let Some(s) = start {
        out.push((cur, at + s..at + line.len()));
    }
    Ok(out)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// `web[01:03].example.com` -> web01, web02, web03 (leading zeros kept);
/// `db-[a:c]` -> db-a, db-b, db-c; `[1:9:2]` steps by 2.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("`{pattern}`: a range lacks its `]`"))?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = range.split(':').collect();
    let (from, to, step) = match parts.as_slice() {
        [a, b] => (*a, *b, 1),
        [a, b, s] => (
            *a,
            *b,
            s.parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("`{s}` is not a step"))?,
        ),
        _ => return Err(format!("`[{range}]` is not a range")),
    };
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (from.parse::<usize>(), to.parse::<usize>()) {
        if a > b {
            return Err(format!("`[{range}]` goes backwards"));
        }
        let width = if from.starts_with('0') && from.len() > 1 {
            from.len()
        } else {
            0
        };
        items.extend((a..=b).step_by(step).map(|n| format!("{n:0width$}")));
    } else if let ([a], [b]) = (from.as_bytes(), to.as_bytes())
        && a.is_ascii_alphabetic()
        && b.is_ascii_alphabetic()
        && a <= b
    {
        items.extend((*a..=*b).step_by(step).map(|c| (c as char).to_string()));
    } else {
        return Err(format!("`[{range}]` is not a numeric or alphabetic range"));
    }
    let mut out = Vec::new();
    for item in items {
        for rest in expand(tail)? {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}

/// The YAML form: top-level groups (usually `all`), each with `hosts`,
/// `vars` and `children`.
pub fn parse_yaml(text: &str, problems: &mut Vec<Problem>) -> Tree {
    let mut tree = Tree::default();
    let pos = Positions::new(text);
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let at = pos.byte(e.marker().index());
            problems.push(
                Problem::error(
                    "inventory-syntax",
                    at..at + 1,
                    format!("YAML: {}", e.info()),
                )
                .label("here"),
            );
            return tree;
        }
    };
    let Some(root) = docs.first() else {
        return tree;
    };
    match &root.data {
        YamlData::Mapping(m) => {
            for (k, v) in m {
                if let Some(name) = key(k, &pos, problems) {
                    group(&mut tree, &name, v, &pos, problems);
                }
            }
        }
        YamlData::Value(Scalar::Null) => {}
        _ => problems.push(
            Problem::error(
                "inventory-syntax",
                pos.span(root),
                "an inventory is a mapping of groups",
            )
            .label("expected e.g. `all:` with `hosts:` and `children:`"),
        ),
    }
    tree
}

fn group(
    tree: &mut Tree,
    name: &str,
    node: &MarkedYaml<'_>,
    pos: &Positions,
    problems: &mut Vec<Problem>,
) {
    let span = pos.span(node);
    tree.group(name, span.clone());
    let map = match &node.data {
        YamlData::Mapping(m) => m,
        YamlData::Value(Scalar::Null) => return,
        _ => {
            problems.push(
                Problem::error(
                    "inventory-syntax",
                    span,
                    format!("group `{name}` is not a mapping"),
                )
                .label("expected hosts, vars or children"),
            );
            return;
        }
    };
    for (k, v) in map {
        let Some(section) = key(k, pos, problems) else {
            continue;
        };
        match section.as_str() {
            "hosts" => {
                for (hk, hv) in entries(v, "hosts", pos, problems) {
                    let Some(host) = key(hk, pos, problems) else {
                        continue;
                    };
                    let vars = vars(hv, pos, problems);
                    let names = match expand(&host) {
                        Ok(n) => n,
                        Err(e) => {
                            problems.push(
                                Problem::error("inventory-syntax", pos.span(hk), e)
                                    .label("expected a range such as web[01:10] or db-[a:c]"),
                            );
                            continue;
                        }
                    };
                    for host in names {
                        tree.host(&host, vars.clone(), pos.span(hk));
                        tree.group(name, span.clone()).hosts.push(host);
                    }
                }
            }
            "vars" => {
                let vars = vars(v, pos, problems);
                tree.group(name, span.clone()).vars.extend(vars);
            }
            "children" => {
                for (ck, cv) in entries(v, "children", pos, problems) {
                    let Some(child) = key(ck, pos, problems) else {
                        continue;
                    };
                    group(tree, &child, cv, pos, problems);
                    tree.group(name, span.clone())
                        .children
                        .push((child, pos.span(ck)));
                }
            }
            other => problems.push(
                Problem::error(
                    "inventory-syntax",
                    pos.span(k),
                    format!("unknown key `{other}` in group `{name}`"),
                )
                .label("expected hosts, vars or children")
                .help_opt(crate::output::diag::suggest(
                    other,
                    ["hosts", "vars", "children"],
                )),
            ),
        }
    }
}

fn entries<'a, 'i>(
    node: &'a MarkedYaml<'i>,
    what: &str,
    pos: &Positions,
    problems: &mut Vec<Problem>,
) -> Vec<(&'a MarkedYaml<'i>, &'a MarkedYaml<'i>)> {
    match &node.data {
        YamlData::Mapping(m) => m.iter().collect(),
        YamlData::Value(Scalar::Null) => Vec::new(),
        _ => {
            problems.push(
                Problem::error(
                    "inventory-syntax",
                    pos.span(node),
                    format!("`{what}` is not a mapping"),
                )
                .label(format!("expected `{what}:` followed by indented names")),
            );
            Vec::new()
        }
    }
}

fn vars(node: &MarkedYaml<'_>, pos: &Positions, problems: &mut Vec<Problem>) -> Vars {
    let mut out = Vars::new();
    for (k, v) in entries(node, "vars", pos, problems) {
        if let Some(name) = key(k, pos, problems) {
            out.push((name, text(v), pos.span(v)));
        }
    }
    out
}

fn key(node: &MarkedYaml<'_>, pos: &Positions, problems: &mut Vec<Problem>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        _ => {
            problems.push(
                Problem::error(
                    "inventory-syntax",
                    pos.span(node),
                    "a name must be a plain string",
                )
                .label("expected a group, host or variable name"),
            );
            None
        }
    }
}

/// A variable's value as text (what hoist passes on as a fact).
fn text(node: &MarkedYaml<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::Null) => String::new(),
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
        YamlData::Sequence(s) => s.iter().map(text).collect::<Vec<_>>().join(","),
        YamlData::Representation(s, _, _) => s.to_string(),
        YamlData::Tagged(_, inner) => text(inner),
        _ => String::new(),
    }
}

/// saphyr counts characters; problems are spans of bytes.
struct Positions {
    /// Byte offset of each character, when the text is not ASCII.
    offsets: Option<Vec<usize>>,
    len: usize,
}

impl Positions {
    fn new(text: &str) -> Self {
        Positions {
            offsets: (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect()),
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.offsets {
            None => char_index.min(self.len),
            Some(o) => o.get(char_index).copied().unwrap_or(self.len),
        }
    }

    fn span(&self, node: &MarkedYaml<'_>) -> Span<usize> {
        let start = self.byte(node.span.start.index());
        let end = self.byte(node.span.end.index()).max(start + 1);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_expand_as_ansible_does() {
        assert_eq!(expand("web[01:03]").unwrap(), ["web01", "web02", "web03"]);
        assert_eq!(
            expand("db-[a:c].lan").unwrap(),
            ["db-a.lan", "db-b.lan", "db-c.lan"]
        );
        assert_eq!(expand("h[1:5:2]").unwrap(), ["h1", "h3", "h5"]);
        assert!(expand("h[5:1]").is_err());
        assert!(expand("h[1:").is_err());
    }
}
