//! YAML read as Ansible reads it: PyYAML's YAML 1.1, not YAML 1.2.
//!
//! The events come from `saphyr-parser` (pure Rust, positions on every
//! event; `serde_yaml` is archived, `serde_yml` has soundness advisories).
//! saphyr's own loader resolves plain scalars by YAML 1.2's core schema,
//! where Ansible (PyYAML) uses YAML 1.1's: `yes`/`on`/`off` are booleans,
//! `0755` is octal, `1:30` is sexagesimal, `1e3` (no dot) is text, and
//! `<<` merges mappings. So hoist builds its own tree from the events and
//! resolves plain scalars with PyYAML's own regular expressions
//! (`yaml/resolver.py`) and constructors (`yaml/constructor.py`). Like
//! Ansible: one document only, a duplicate key keeps the last value,
//! `!unsafe` is text, `!vault` is kept (and refused where it is used).
//! What else hoist cannot read the same way (timestamps, other tags,
//! non-text keys, integers beyond 64 bits, `.inf`, `.nan`) is refused at
//! its line and column.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// A YAML (or JSON) value with its place in the text (bytes).
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub span: Range<usize>,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in first-seen order, each with its last value.
    Map(Vec<(Node, Node)>),
    /// `!vault`: ciphertext, never read as text.
    Vault,
    /// `!unsafe`: text Ansible never templates.
    Unsafe(String),
    /// The `<<` merge key.
    Merge,
}

impl Node {
    pub fn is_falsy(&self) -> bool {
        match &self.kind {
            Kind::Null => true,
            Kind::Bool(b) => !b,
            Kind::Int(i) => *i == 0,
            Kind::Float(f) => *f == 0.0,
            Kind::Str(s) | Kind::Unsafe(s) => s.is_empty(),
            Kind::Seq(v) => v.is_empty(),
            Kind::Map(m) => m.is_empty(),
            Kind::Vault | Kind::Merge => false,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) | Kind::Unsafe(_) | Kind::Vault => "text",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Merge => "`<<`",
        }
    }
}

/// A YAML problem: where, and what.
pub type YamlError = (Range<usize>, String);

/// Byte offsets of saphyr's character positions.
struct Positions {
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

    fn span(&self, s: &Span) -> Range<usize> {
        let start = self.byte(s.start.index());
        start..self.byte(s.end.index()).max(start)
    }
}

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize, usize),
}

/// Deeper than any inventory: refused before it exhausts the stack.
const MAX_DEPTH: usize = 200;

/// Aliases may not blow up the tree ("billion laughs").
const ALIAS_BUDGET: usize = 1_000_000;

/// The one document of `text`; `None` for an empty stream.
pub fn load(text: &str) -> Result<Option<Node>, YamlError> {
    let pos = Positions::new(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut budget = ALIAS_BUDGET;
    let mut docs = 0;
    let mut root: Option<Node> = None;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            let at = pos.byte(e.marker().index());
            (at..at + 1, format!("YAML: {}", e.info()))
        })?;
        let bytes = pos.span(&span);
        let node = match ev {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err((
                        bytes,
                        "a second YAML document: an inventory is a single document".into(),
                    ));
                }
                continue;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::Alias(id) => {
                let Some(n) = anchors.get(&id) else {
                    return Err((bytes, "an alias to an unknown anchor".into()));
                };
                let size = count(n);
                if size > budget {
                    return Err((bytes, "aliases expand to too large a document".into()));
                }
                budget -= size;
                let mut n = n.clone();
                n.span = bytes;
                n
            }
            Event::Scalar(v, style, anchor, tag) => {
                let node = Node {
                    kind: scalar(&v, style, tag.as_deref()).map_err(|e| (bytes.clone(), e))?,
                    span: bytes,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err((bytes, "YAML nested too deeply".into()));
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "seq").map_err(|e| (bytes.clone(), e))?;
                stack.push(Frame::Seq(Vec::new(), anchor, bytes.start));
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "map").map_err(|e| (bytes.clone(), e))?;
                stack.push(Frame::Map(Vec::new(), None, anchor, bytes.start));
                continue;
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq(items, anchor, start)) = stack.pop() else {
                    return Err((bytes, "YAML: unbalanced sequence".into()));
                };
                let node = Node {
                    kind: Kind::Seq(items),
                    span: start..bytes.end.max(start + 1),
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::MappingEnd => {
                let Some(Frame::Map(pairs, _, anchor, start)) = stack.pop() else {
                    return Err((bytes, "YAML: unbalanced mapping".into()));
                };
                let span = start..bytes.end.max(start + 1);
                let node = Node {
                    kind: Kind::Map(flatten(pairs, &span)?),
                    span,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(pairs, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
    Ok(root)
}

fn count(n: &Node) -> usize {
    match &n.kind {
        Kind::Seq(v) => 1 + v.iter().map(count).sum::<usize>(),
        Kind::Map(m) => 1 + m.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
        _ => 1,
    }
}

fn collection_tag(tag: Option<&Tag>, core: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == core => Ok(()),
        Some(t) => Err(format!(
            "the tag `{}{}` is not read by hoist",
            t.handle, t.suffix
        )),
    }
}

/// PyYAML's `flatten_mapping` (merge keys: explicit keys win, then the
/// first mapping of a `<<: [a, b]` list) and `construct_mapping` (a key
/// seen twice keeps its first place and its last value).
fn flatten(pairs: Vec<(Node, Node)>, span: &Range<usize>) -> Result<Vec<(Node, Node)>, YamlError> {
    if !pairs.iter().any(|(k, _)| matches!(k.kind, Kind::Merge))
        && pairs.len() <= 16
        && pairs
            .iter()
            .enumerate()
            .all(|(i, (k, _))| !pairs[..i].iter().any(|(o, _)| same_key(o, k)))
    {
        // No merge key and no key twice: the mapping as written.
        return Ok(pairs);
    }
    let mut merged: Vec<(Node, Node)> = Vec::new();
    let mut own = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !matches!(k.kind, Kind::Merge) {
            own.push((k, v));
            continue;
        }
        match v.kind {
            Kind::Map(m) => merged.extend(m),
            Kind::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    match item.kind {
                        Kind::Map(m) => maps.push(m),
                        _ => {
                            return Err((
                                item.span,
                                "`<<` merges mappings: this item of its list is not one".into(),
                            ));
                        }
                    }
                }
                for m in maps.into_iter().rev() {
                    merged.extend(m);
                }
            }
            _ => {
                return Err((v.span, "`<<` merges a mapping or a list of mappings".into()));
            }
        }
    }
    merged.extend(own);
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(merged.len());
    // Small mappings are searched; large ones indexed by their text keys.
    let large = merged.len() > 16;
    let mut index: HashMap<String, usize> = HashMap::new();
    for (k, v) in merged {
        let text_key = match &k.kind {
            Kind::Str(s) if large => Some(s.clone()),
            _ => None,
        };
        let found = match &text_key {
            Some(s) => index.get(s).copied(),
            None => out.iter().position(|(o, _)| same_key(o, &k)),
        };
        match found {
            Some(i) => out[i].1 = v,
            None => {
                if let Some(s) = text_key {
                    index.insert(s, out.len());
                }
                out.push((k, v));
            }
        }
    }
    let _ = span;
    Ok(out)
}

/// Python's `==` on keys that are not text (`1 == 1.0 == True`).
fn same_key(a: &Node, b: &Node) -> bool {
    let num = |n: &Node| match n.kind {
        Kind::Int(i) => Some(i as f64),
        Kind::Float(f) => Some(f),
        Kind::Bool(b) => Some(f64::from(u8::from(b))),
        _ => None,
    };
    match (&a.kind, &b.kind) {
        (Kind::Null, Kind::Null) => true,
        (Kind::Str(x), Kind::Str(y)) => x == y,
        _ => matches!((num(a), num(b)), (Some(x), Some(y)) if x == y),
    }
}

static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    re("^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
});
static NULL: LazyLock<Regex> = LazyLock::new(|| re("^(?:~|null|Null|NULL|)$"));
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
});

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a fixed regular expression")
}

fn scalar(v: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Kind, String> {
    if let Some(t) = tag {
        return match (t.handle.as_str(), t.suffix.as_str()) {
            ("tag:yaml.org,2002:", "str") | ("!", "") => Ok(Kind::Str(v.to_string())),
            ("!", "unsafe") => Ok(Kind::Unsafe(v.to_string())),
            ("!", "vault" | "vault-encrypted") => Ok(Kind::Vault),
            (h, s) => Err(format!("the tag `{h}{s}` is not read by hoist")),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Kind::Str(v.to_string()));
    }
    resolve_plain(v)
}

/// A plain scalar by YAML 1.1 (PyYAML's resolvers, in their order).
pub fn resolve_plain(v: &str) -> Result<Kind, String> {
    // PyYAML tries a resolver only for the first characters it lists.
    if !v.starts_with(|c: char| "yYnNtTfFoO-+0123456789.<~=".contains(c)) && !v.is_empty() {
        return Ok(Kind::Str(v.to_string()));
    }
    // Cheap necessary conditions first: most keys and values are text.
    let only = |set: &str| v.chars().all(|c| set.contains(c));
    if v.len() <= 5 && BOOL.is_match(v) {
        return Ok(Kind::Bool(matches!(
            v.to_ascii_lowercase().as_str(),
            "yes" | "true" | "on"
        )));
    }
    if only("0123456789_.:+-eEinfINFaA") && FLOAT.is_match(v) {
        return float(v);
    }
    if only("0123456789abcdefABCDEF_:+-xXbB") && INT.is_match(v) {
        return int(v);
    }
    if v == "<<" {
        return Ok(Kind::Merge);
    }
    if v.len() <= 4 && NULL.is_match(v) {
        return Ok(Kind::Null);
    }
    if v.len() >= 8 && v.as_bytes()[..4].iter().all(u8::is_ascii_digit) && TIMESTAMP.is_match(v) {
        return Err(format!(
            "`{v}` is a YAML timestamp; hoist does not read dates: quote it to keep it as text"
        ));
    }
    if v == "=" {
        return Err("`=` is YAML's value key, which Ansible cannot read: quote it".into());
    }
    Ok(Kind::Str(v.to_string()))
}

/// PyYAML's `construct_yaml_int`.
fn int(v: &str) -> Result<Kind, String> {
    let s = v.replace('_', "");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s.as_str()),
    };
    let parsed = if body == "0" {
        Ok(0)
    } else if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(b, 2)
    } else if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if body.starts_with('0') {
        i64::from_str_radix(body, 8)
    } else if body.contains(':') {
        let mut total: i64 = 0;
        for part in body.split(':') {
            let d: i64 = part.parse().map_err(|_| format!("`{v}` is not a number"))?;
            total = total
                .checked_mul(60)
                .and_then(|t| t.checked_add(d))
                .ok_or_else(|| format!("`{v}` is beyond 64-bit integers"))?;
        }
        Ok(total)
    } else {
        body.parse::<i64>()
    };
    match parsed {
        Ok(n) => Ok(Kind::Int(if neg { -n } else { n })),
        Err(_) => Err(format!(
            "`{v}` is not an integer hoist reads (too large, or malformed): quote it to keep it as text"
        )),
    }
}

/// PyYAML's `construct_yaml_float`.
fn float(v: &str) -> Result<Kind, String> {
    let s = v.replace('_', "").to_ascii_lowercase();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s.as_str()),
    };
    let f = if body.contains(':') {
        let mut total = 0.0;
        for part in body.split(':') {
            let d: f64 = part.parse().map_err(|_| format!("`{v}` is not a number"))?;
            total = total * 60.0 + d;
        }
        total
    } else {
        let body = if body.ends_with('.') {
            format!("{body}0")
        } else {
            body.to_string()
        };
        body.parse::<f64>()
            .map_err(|_| format!("`{v}` is not a number hoist reads"))?
    };
    if !f.is_finite() {
        return Err(format!(
            "`{v}` is not a finite number: quote it to keep it as text"
        ));
    }
    Ok(Kind::Float(if neg { -f } else { f }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Kind {
        let n = load(text).unwrap().unwrap();
        let Kind::Map(m) = n.kind else { panic!() };
        m.into_iter().next().unwrap().1.kind
    }

    #[test]
    fn yaml_1_1_scalars() {
        assert!(matches!(one("a: yes"), Kind::Bool(true)));
        assert!(matches!(one("a: Off"), Kind::Bool(false)));
        assert!(matches!(one("a: 0755"), Kind::Int(493)));
        assert!(matches!(one("a: 1:30"), Kind::Int(90)));
        assert!(matches!(one("a: 0x1F"), Kind::Int(31)));
        assert!(matches!(one("a: 1_000"), Kind::Int(1000)));
        assert!(matches!(one("a: 1e3"), Kind::Str(s) if s == "1e3"));
        assert!(matches!(one("a: 1.5e+3"), Kind::Float(f) if f == 1500.0));
        assert!(matches!(one("a: '0755'"), Kind::Str(s) if s == "0755"));
        assert!(matches!(one("a: ~"), Kind::Null));
        assert!(matches!(one("a: 0o17"), Kind::Str(_)));
        assert!(load("a: 2001-12-14").is_err());
        assert!(load("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let text = "base: &b {x: 1, y: 2}\nh:\n  <<: *b\n  y: 3\n  z: 1\n  z: 4\n";
        let n = load(text).unwrap().unwrap();
        let Kind::Map(m) = n.kind else { panic!() };
        let Kind::Map(h) = &m[1].1.kind else { panic!() };
        let got: Vec<(String, i64)> = h
            .iter()
            .map(|(k, v)| match (&k.kind, &v.kind) {
                (Kind::Str(k), Kind::Int(v)) => (k.clone(), *v),
                _ => panic!(),
            })
            .collect();
        assert_eq!(got, [("x".into(), 1), ("y".into(), 3), ("z".into(), 4)]);
    }
}
