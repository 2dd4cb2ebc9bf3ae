//! `when` conditions over facts.
//!
//! A condition is a TOML table, not an expression language: each key names a
//! fact and each value says what it must match; all keys must hold.
//!
//! ```toml
//! when = { hypervisor = "kvm", os.id = ["ubuntu", "debian"], from = ">= 2.2.0, < 2.2.14" }
//! when = { any = [{ hypervisor = "vmware" }, { roles = "management" }] }
//! when = { not = { package.docker-engine = "*" } }
//! ```
//!
//! How a value matches depends on the fact's type (see `recipe::facts`): a string fact
//! equals the value (or one of a list); a version fact lies in the range (or one
//! of a list of ranges); a list fact (`roles`) contains the value (or one of
//! them); a bool fact equals the bool. Dotted keys (`os.id`) name dotted facts.

use std::fmt;
use std::ops::Range as Span;

use serde::Serialize;
use toml::Spanned;
use toml::de::DeValue;

use crate::output::diag::{Problem, suggest};
use crate::recipe::facts::{FactType, Facts, Value};
use crate::version::Range;

/// A condition before it is checked against the fact catalogue.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Match(FactMatch),
}

#[derive(Clone, Debug, PartialEq)]
pub struct FactMatch {
    pub fact: String,
    pub fact_span: Span<usize>,
    pub expected: Vec<Expected>,
}

/// One accepted value, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub span: Span<usize>,
    pub literal: Literal,
    /// Filled in by `resolve` for version facts.
    pub range: Option<Range>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Literal {
    Str(String),
    Bool(bool),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "{s:?}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

const COMBINATORS: [&str; 3] = ["any", "all", "not"];

impl Condition {
    /// Reads a condition table; problems are pushed, never panicked on.
    pub fn parse(value: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<Condition> {
        let mut out = Vec::new();
        let ok = parse_into(value, "", &mut out, problems);
        ok.then_some(Condition::All(out))
    }

    /// Every fact this condition reads, with where it is named.
    pub fn facts(&self) -> Vec<&FactMatch> {
        let mut out = Vec::new();
        self.walk(&mut |m| out.push(m));
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a FactMatch)) {
        match self {
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| c.walk(f)),
            Condition::Not(c) => c.walk(f),
            Condition::Match(m) => f(m),
        }
    }

    fn walk_mut(&mut self, f: &mut impl FnMut(&mut FactMatch)) {
        match self {
            Condition::All(v) | Condition::Any(v) => v.iter_mut().for_each(|c| c.walk_mut(f)),
            Condition::Not(c) => c.walk_mut(f),
            Condition::Match(m) => f(m),
        }
    }

    /// Checks every fact name and value against the catalogue: unknown facts,
    /// values of the wrong type, version ranges that do not parse, values a
    /// fact can never take.
    pub fn resolve(
        &mut self,
        catalogue: &crate::recipe::facts::Catalogue,
        problems: &mut Vec<Problem>,
    ) {
        self.walk_mut(&mut |m| resolve_match(m, catalogue, problems));
    }

    /// Evaluates the condition. `Err` names a fact that has no value here.
    pub fn eval(&self, facts: &Facts) -> Result<bool, String> {
        Ok(match self {
            Condition::All(v) => {
                for c in v {
                    if !c.eval(facts)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Any(v) => {
                for c in v {
                    if c.eval(facts)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(c) => !c.eval(facts)?,
            Condition::Match(m) => m.eval(facts)?,
        })
    }

    /// The clauses that made this condition false, with the facts' actual
    /// values: the plan's "why not".
    pub fn explain_false(&self, facts: &Facts) -> String {
        match self {
            Condition::All(v) => v
                .iter()
                .filter(|c| !c.eval(facts).unwrap_or(false))
                .map(|c| c.explain_false(facts))
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Any(v) => format!(
                "none of [{}]",
                v.iter()
                    .map(|c| c.explain_false(facts))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Condition::Not(c) => format!("not ({c}) is false"),
            Condition::Match(m) => {
                let actual = facts
                    .get(&m.fact)
                    .map_or_else(|| "unset".to_string(), |v| v.to_string());
                format!("{} is {actual}, wanted {}", m.fact, m.wanted())
            }
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::All(v) => {
                let parts: Vec<String> = v.iter().map(|c| c.to_string()).collect();
                f.write_str(&parts.join(" and "))
            }
            Condition::Any(v) => {
                let parts: Vec<String> = v.iter().map(|c| c.to_string()).collect();
                write!(f, "any of [{}]", parts.join("; "))
            }
            Condition::Not(c) => write!(f, "not ({c})"),
            Condition::Match(m) => write!(f, "{} = {}", m.fact, m.wanted()),
        }
    }
}

impl FactMatch {
    fn wanted(&self) -> String {
        let parts: Vec<String> = self
            .expected
            .iter()
            .map(|e| e.literal.to_string())
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("one of [{}]", parts.join(", "))
        }
    }

    fn eval(&self, facts: &Facts) -> Result<bool, String> {
        let Some(actual) = facts.get(&self.fact) else {
            // An absent package is a fact too: it is not installed, so no
            // version range matches it.
            if self.fact.starts_with("package.") {
                return Ok(false);
            }
            return Err(self.fact.clone());
        };
        Ok(self.expected.iter().any(|e| matches(actual, e)))
    }
}

fn matches(actual: &Value, e: &Expected) -> bool {
    match (actual, &e.literal) {
        (Value::Version(v), _) => e.range.as_ref().is_some_and(|r| r.contains(v)),
        (Value::Str(s), Literal::Str(w)) => s == w,
        (Value::List(items), Literal::Str(w)) => items.iter().any(|i| i == w),
        (Value::Bool(b), Literal::Bool(w)) => b == w,
        _ => false,
    }
}

fn parse_into(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    out: &mut Vec<Condition>,
    problems: &mut Vec<Problem>,
) -> bool {
    let DeValue::Table(table) = value.get_ref() else {
        problems.push(
            Problem::error(
                "wrong-type",
                value.span(),
                format!(
                    "a condition is a table of facts, found a {}",
                    value.get_ref().type_str()
                ),
            )
            .label("expected a table")
            .help("write e.g. `when = { hypervisor = \"kvm\" }`"),
        );
        return false;
    };
    let mut ok = true;
    for (key, val) in table {
        let name = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if prefix.is_empty() && COMBINATORS.contains(&name.as_str()) {
            ok &= parse_combinator(&name, val, out, problems);
            continue;
        }
        match val.get_ref() {
            DeValue::Table(_) => ok &= parse_into(val, &name, out, problems),
            _ => match parse_expected(val, problems) {
                Some(expected) => out.push(Condition::Match(FactMatch {
                    fact: name,
                    fact_span: key.span(),
                    expected,
                })),
                None => ok = false,
            },
        }
    }
    ok
}

fn parse_combinator(
    name: &str,
    val: &Spanned<DeValue<'_>>,
    out: &mut Vec<Condition>,
    problems: &mut Vec<Problem>,
) -> bool {
    if name == "not" {
        let mut inner = Vec::new();
        let ok = parse_into(val, "", &mut inner, problems);
        out.push(Condition::Not(Box::new(Condition::All(inner))));
        return ok;
    }
    let DeValue::Array(items) = val.get_ref() else {
        problems.push(
            Problem::error(
                "wrong-type",
                val.span(),
                format!("`{name}` takes a list of conditions"),
            )
            .label("expected an array of tables")
            .help(format!(
                "write e.g. `{name} = [{{ a = \"x\" }}, {{ b = \"y\" }}]`"
            )),
        );
        return false;
    };
    let mut ok = true;
    let mut subs = Vec::new();
    for item in items.iter() {
        let mut inner = Vec::new();
        ok &= parse_into(item, "", &mut inner, problems);
        subs.push(Condition::All(inner));
    }
    out.push(if name == "any" {
        Condition::Any(subs)
    } else {
        Condition::All(subs)
    });
    ok
}

fn parse_expected(
    val: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<Expected>> {
    let one = |v: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>| -> Option<Expected> {
        let literal = match v.get_ref() {
            DeValue::String(s) => Literal::Str(s.to_string()),
            DeValue::Boolean(b) => Literal::Bool(*b),
            other => {
                problems.push(
                    Problem::error(
                        "wrong-type",
                        v.span(),
                        format!(
                            "a fact is matched against a string or a bool, found a {}",
                            other.type_str()
                        ),
                    )
                    .label("expected a string, a bool or a list of them"),
                );
                return None;
            }
        };
        Some(Expected {
            span: v.span(),
            literal,
            range: None,
        })
    };
    match val.get_ref() {
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                out.push(one(item, problems)?);
            }
            if out.is_empty() {
                problems.push(
                    Problem::error("empty-list", val.span(), "an empty list matches nothing")
                        .label("no accepted value"),
                );
                return None;
            }
            Some(out)
        }
        _ => Some(vec![one(val, problems)?]),
    }
}

fn resolve_match(
    m: &mut FactMatch,
    catalogue: &crate::recipe::facts::Catalogue,
    problems: &mut Vec<Problem>,
) {
    let Some(def) = catalogue.lookup(&m.fact) else {
        problems.push(
            Problem::error(
                "unknown-fact",
                m.fact_span.clone(),
                format!("`when` names the unknown fact `{}`", m.fact),
            )
            .label("not a built-in fact nor one defined in [[facts]]")
            .help_opt(suggest(&m.fact, catalogue.names()).or_else(|| {
                Some(format!(
                    "known facts: {}; define your own with [[facts]]",
                    catalogue.names().collect::<Vec<_>>().join(", ")
                ))
            })),
        );
        return;
    };
    for e in &mut m.expected {
        match (&def.ty, &e.literal) {
            (FactType::Version, Literal::Str(s)) => match Range::parse(s) {
                Ok(r) => e.range = Some(r),
                Err(err) => problems.push(
                    Problem::error(
                        "bad-version",
                        e.span.start + 1 + err.offset.start..e.span.start + 1 + err.offset.end,
                        format!("`{}` is a version fact: {}", m.fact, err.message),
                    )
                    .label("expected a version range")
                    .help("write e.g. `\"2.2.14\"`, `\"4.2.*\"` or `\">= 2.2.0, < 2.2.14\"`"),
                ),
            },
            (FactType::Str | FactType::List, Literal::Str(s)) => {
                if let Some(allowed) = &def.values
                    && !allowed.iter().any(|a| a == s)
                {
                    problems.push(
                        Problem::error(
                            "unknown-value",
                            e.span.clone(),
                            format!("`{}` can never be {s:?}", m.fact),
                        )
                        .label(format!("one of: {}", allowed.join(", ")))
                        .help_opt(suggest(s, allowed.iter().map(String::as_str))),
                    );
                }
            }
            (FactType::Bool, Literal::Bool(_)) => {}
            (ty, lit) => problems.push(
                Problem::error(
                    "wrong-type",
                    e.span.clone(),
                    format!("`{}` is a {ty} fact, it cannot match {lit}", m.fact),
                )
                .label(format!("expected a {}", ty.literal_name())),
            ),
        }
    }
}
