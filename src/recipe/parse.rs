//! From TOML text to the typed recipe, collecting every problem on the way.
//!
//! The TOML tree is read once with spans (`toml::de::DeTable`). Each item of
//! each section is then deserialised on its own, so one bad step does not hide
//! the problems of the next: `hoist lint` reports them all at once.

use std::ops::Range as Span;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::condition::Condition;
use super::{Check, CheckSeverity, FactSpec, PathEdge, Phase, Probe, Product, Recipe, Step, Test};
use crate::actions::{Action, KINDS};
use crate::output::diag::{Problem, Source, suggest};
use crate::recipe::facts::{Catalogue, FactDef, FactType};
use crate::version::{Range, Version};

const SECTIONS: [&str; 7] = [
    "product", "paths", "facts", "services", "checks", "steps", "fleet",
];

/// Deserialises one value into `T`; a mismatch becomes a problem.
pub fn de<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(serde_problem(&e, span));
            None
        }
    }
}

/// Turns serde's message into a problem with a code and, for a misspelt key
/// or value, a suggestion.
fn serde_problem(e: &toml::de::Error, fallback: Span<usize>) -> Problem {
    let span = e.span().unwrap_or(fallback);
    let msg = e.message().trim().to_string();
    let ticked: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    let first = ticked.first().copied().unwrap_or("");
    let rest = ticked.iter().skip(1).copied();
    if msg.starts_with("unknown field") {
        let expected: Vec<&str> = rest.collect();
        Problem::error("unknown-key", span, format!("unknown key `{first}`"))
            .label(format!("expected one of: {}", expected.join(", ")))
            .help_opt(suggest(first, expected.iter().copied()))
    } else if msg.starts_with("unknown variant") {
        let expected: Vec<&str> = rest.collect();
        Problem::error("unknown-value", span, format!("unknown value `{first}`"))
            .label(format!("expected one of: {}", expected.join(", ")))
            .help_opt(suggest(first, expected.iter().copied()))
    } else if msg.starts_with("missing field") {
        Problem::error("missing-key", span, format!("missing key `{first}`"))
            .label(format!("this table needs `{first}`"))
    } else if msg.starts_with("invalid type") {
        let expected = msg.split("expected ").nth(1).unwrap_or("another type");
        Problem::error("wrong-type", span, msg.clone()).label(format!("expected {expected}"))
    } else {
        Problem::error("invalid-value", span, msg).label("here")
    }
}

/// Splits `keys` out of a table: they are read by hand (conditions,
/// actions), the rest goes through serde.
pub(super) type Taken<'i> = Vec<Entry<'i>>;

/// A key taken out of a table: its name, its span and its value.
pub(super) type Entry<'i> = (String, Span<usize>, Spanned<DeValue<'i>>);

pub(super) fn take<'i>(
    value: Spanned<DeValue<'i>>,
    wanted: impl Fn(&str) -> bool,
) -> (Spanned<DeValue<'i>>, Taken<'i>) {
    let span = value.span();
    let table = match value.into_inner() {
        DeValue::Table(t) => t,
        other => return (Spanned::new(span, other), Vec::new()),
    };
    let mut rest = DeTable::new();
    let mut taken = Vec::new();
    for (k, v) in table {
        if wanted(k.get_ref()) {
            taken.push((k.get_ref().to_string(), k.span(), v));
        } else {
            rest.insert(k, v);
        }
    }
    (Spanned::new(span, DeValue::Table(rest)), taken)
}

fn items<'i>(
    name: &str,
    value: Option<Spanned<DeValue<'i>>>,
    problems: &mut Vec<Problem>,
) -> Vec<Spanned<DeValue<'i>>> {
    let Some(value) = value else {
        return Vec::new();
    };
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(a) => a.into_iter().collect(),
        other => {
            problems.push(
                Problem::error(
                    "wrong-type",
                    span,
                    format!("`{name}` is a list of tables, found a {}", other.type_str()),
                )
                .label(format!("write each item as [[{name}]]")),
            );
            Vec::new()
        }
    }
}

pub fn parse(source: &Source, problems: &mut Vec<Problem>) -> Option<Recipe> {
    let (root, syntax) = DeTable::parse_recoverable(&source.text);
    for e in &syntax {
        problems.push(
            Problem::error(
                "syntax",
                e.span().unwrap_or(0..0),
                format!("TOML syntax: {}", e.message().trim()),
            )
            .label("here"),
        );
    }
    if !syntax.is_empty() {
        return None;
    }
    let mut sections: [Option<Spanned<DeValue<'_>>>; 7] = Default::default();
    for (k, v) in root.into_inner() {
        match SECTIONS.iter().position(|s| *s == k.get_ref()) {
            Some(i) => sections[i] = Some(v),
            None => problems.push(
                Problem::error(
                    "unknown-key",
                    k.span(),
                    format!("unknown section `{}`", k.get_ref()),
                )
                .label(format!("expected one of: {}", SECTIONS.join(", ")))
                .help_opt(suggest(k.get_ref(), SECTIONS)),
            ),
        }
    }
    let [product_value, paths, facts, services, checks, steps, fleet] = sections;
    let Some(product_value) = product_value else {
        problems.push(
            Problem::error("missing-key", 0..0, "the recipe has no [product] section")
                .label("add [product] with `name` and `version`"),
        );
        return None;
    };
    let product_span = product_value.span();
    let product: Option<Product> = de(product_value, problems);
    if let Some(p) = &product {
        check_probe(&p.version, false, &product_span, problems);
        if let Some(c) = &p.candidate {
            check_probe(c, false, &product_span, problems);
        }
        let misplaced = p.version.refresh
            || p.candidate
                .as_ref()
                .is_some_and(|c| c.refresh && c.package.is_none());
        if misplaced {
            problems.push(
                Problem::error(
                    "bad-refresh",
                    product_span.clone(),
                    "`refresh` refreshes the package lists before reading a package's candidate version",
                )
                .label("use it in `candidate = { package = \"...\", refresh = true }` only"),
            );
        }
    }
    let paths = items("paths", paths, problems)
        .into_iter()
        .filter_map(|i| parse_path(i, problems))
        .collect();
    let facts: Vec<FactSpec> = items("facts", facts, problems)
        .into_iter()
        .filter_map(|i| parse_fact(i, problems))
        .collect();
    let services = items("services", services, problems)
        .into_iter()
        .filter_map(|i| de(i, problems))
        .collect();
    let checks = items("checks", checks, problems)
        .into_iter()
        .filter_map(|i| parse_check(i, problems))
        .collect();
    let steps: Vec<Step> = items("steps", steps, problems)
        .into_iter()
        .filter_map(|i| parse_step(i, problems))
        .collect();
    let fleet = fleet.and_then(|f| super::fleet::parse(f, &steps, problems));

    let product = product?;
    let mut catalogue = Catalogue::builtin(Some(product.roles.clone()));
    for f in &facts {
        catalogue.add(FactDef {
            name: f.name.clone(),
            ty: f.ty,
            values: f.values.clone(),
            about: "defined by the recipe",
        });
    }
    Some(Recipe {
        source: source.clone(),
        product,
        paths,
        facts,
        services,
        checks,
        steps,
        fleet,
        catalogue,
    })
}

/// A probe has exactly one source; `exists` only makes sense for a bool fact.
fn check_probe(p: &Probe, bool_ok: bool, span: &Span<usize>, problems: &mut Vec<Problem>) {
    let mut options = vec![
        ("package", p.package.is_some()),
        ("command", p.command.is_some()),
        ("shell", p.shell.is_some()),
        ("file", p.file.is_some()),
    ];
    if bool_ok || p.exists.is_some() {
        options.push(("exists", p.exists.is_some()));
    }
    crate::actions::exactly_one("probe", span, &options, problems);
    if p.exists.is_some() && !bool_ok {
        problems.push(
            Problem::error(
                "wrong-type",
                span.clone(),
                "`exists` gives a bool, which cannot be a version",
            )
            .label("use `package`, `command`, `shell` or `file`"),
        );
    }
    if let Some(r) = &p.regex
        && let Err(e) = regex::Regex::new(r)
    {
        problems.push(
            Problem::error(
                "bad-regex",
                span.clone(),
                format!("`regex` is not a regex: {e}"),
            )
            .label("here"),
        );
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    id: String,
    from: Spanned<String>,
    #[serde(default)]
    to: Option<Spanned<String>>,
    #[serde(default)]
    stop: bool,
    #[serde(default)]
    atomic_with_next: bool,
    #[serde(default)]
    unsupported: Option<String>,
}

/// A version-range problem points inside the string (past its opening quote).
fn inner_span(s: &Spanned<String>, offset: &Span<usize>) -> Span<usize> {
    let base = s.span().start + 1;
    base + offset.start..base + offset.end
}

fn parse_path(item: Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<PathEdge> {
    let item_span = item.span();
    let raw: RawPath = de(item, problems)?;
    let from = match Range::parse(raw.from.get_ref()) {
        Ok(r) => r,
        Err(e) => {
            problems.push(
                Problem::error("bad-version", inner_span(&raw.from, &e.offset), e.message)
                    .label("expected a version range")
                    .help("write e.g. \"2.2.14\", \"4.2.*\" or \">= 2.2.0, < 2.2.14\""),
            );
            return None;
        }
    };
    let to = match &raw.to {
        None => None,
        Some(t) => match Version::parse(t.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(
                    Problem::error("bad-version", t.span(), e.message)
                        .label("expected a version or a release series, e.g. \"4.3\""),
                );
                return None;
            }
        },
    };
    if to.is_none() && raw.unsupported.is_none() {
        problems.push(
            Problem::error(
                "missing-key",
                item_span.clone(),
                format!("path `{}` has no `to`", raw.id),
            )
            .label("where does this path lead?")
            .help("add `to = \"X.Y\"`, or `unsupported = \"why\"` to refuse this source"),
        );
        return None;
    }
    Some(PathEdge {
        id: raw.id,
        from_span: raw.from.span(),
        from,
        to,
        stop: raw.stop,
        atomic_with_next: raw.atomic_with_next,
        unsupported: raw.unsupported,
        span: item_span.clone(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFact {
    name: String,
    #[serde(rename = "type", default = "string_type")]
    ty: FactType,
    #[serde(default)]
    values: Option<Vec<String>>,
    #[serde(default)]
    probe: Option<Probe>,
    #[serde(default)]
    default: Option<toml::Value>,
    #[serde(default)]
    description: Option<String>,
}

fn string_type() -> FactType {
    FactType::Str
}

fn parse_fact(item: Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<FactSpec> {
    let item_span = item.span();
    let raw: RawFact = de(item, problems)?;
    if let Some(p) = &raw.probe {
        check_probe(p, raw.ty == FactType::Bool, &item_span.clone(), problems);
    }
    let default = raw.default.as_ref().map(crate::recipe::facts::value_text);
    if let (Some(values), Some(d)) = (&raw.values, &default)
        && raw.ty == FactType::Str
        && !values.contains(d)
    {
        problems.push(
            Problem::error(
                "unknown-value",
                item_span.clone(),
                format!("fact `{}`: default {d:?} is not among its values", raw.name),
            )
            .label(format!("one of: {}", values.join(", "))),
        );
    }
    Some(FactSpec {
        name: raw.name,
        ty: raw.ty,
        values: raw.values,
        probe: raw.probe,
        default,
        description: raw.description,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    id: String,
    severity: CheckSeverity,
    /// What holds when it passes ("PostgreSQL answers").
    #[serde(default)]
    title: Option<String>,
    message: String,
    #[serde(default)]
    remedy: Option<String>,
    #[serde(default)]
    skippable: bool,
    #[serde(default)]
    test: Option<Test>,
}

fn condition(taken: &Taken<'_>, key: &str, problems: &mut Vec<Problem>) -> Option<Condition> {
    taken
        .iter()
        .find(|(k, _, _)| k == key)
        .and_then(|(_, _, v)| Condition::parse(v, problems))
}

fn parse_check(item: Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<Check> {
    let span = item.span();
    let (rest, taken) = take(item, |k| k == "when" || k == "require");
    let when = condition(&taken, "when", problems);
    let require = condition(&taken, "require", problems);
    let raw: RawCheck = de(rest, problems)?;
    if raw.test.is_some() == require.is_some() {
        problems.push(
            Problem::error(
                "one-of",
                span.clone(),
                format!(
                    "check `{}` needs exactly one of `test` and `require`",
                    raw.id
                ),
            )
            .label("what does this check look at?"),
        );
    }
    if let Some(t) = &raw.test {
        check_test(t, &span, problems);
    }
    Some(Check {
        id: raw.id,
        severity: raw.severity,
        title: raw.title,
        message: raw.message,
        remedy: raw.remedy,
        skippable: raw.skippable,
        when,
        test: raw.test,
        require,
        span,
    })
}

fn check_test(t: &Test, span: &Span<usize>, problems: &mut Vec<Problem>) {
    crate::actions::exactly_one(
        "test",
        span,
        &[
            ("command", t.command.is_some()),
            ("shell", t.shell.is_some()),
            ("file_exists", t.file_exists.is_some()),
            ("file_absent", t.file_absent.is_some()),
            ("free_space", t.free_space.is_some()),
        ],
        problems,
    );
    if let Some(f) = &t.free_space
        && let Err(e) = f.at_least.parse::<bytesize::ByteSize>()
    {
        problems.push(
            Problem::error(
                "wrong-value",
                span.clone(),
                format!("free_space.at_least `{}` is not a size: {e}", f.at_least),
            )
            .label("a size such as \"500 MiB\" or \"2 GiB\""),
        );
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    phase: Phase,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    hops: Vec<String>,
    #[serde(default, with = "super::duration::option")]
    timeout: Option<std::time::Duration>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    once: bool,
    #[serde(default)]
    self_update: bool,
    #[serde(default)]
    point_of_no_return: Option<String>,
    #[serde(default)]
    probe: Option<Test>,
}

/// Step keys other than the action and `when`/`undo`, for suggestions.
const STEP_KEYS: [&str; 13] = [
    "id",
    "phase",
    "title",
    "hops",
    "timeout",
    "retries",
    "once",
    "self_update",
    "point_of_no_return",
    "probe",
    "when",
    "undo",
    "undo_reason",
];

fn parse_step(item: Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> Option<Step> {
    let span = item.span();
    let (rest, taken) = take(item, |k| {
        k == "when" || k == "undo" || k == "undo_reason" || KINDS.contains(&k)
    });
    // A key that is neither a step key nor an action kind: say which it was
    // probably meant to be, out of both lists.
    let mut misspelt_action = false;
    if let DeValue::Table(t) = rest.get_ref() {
        for (k, v) in t {
            if !STEP_KEYS.contains(&k.get_ref().as_ref()) {
                let known = STEP_KEYS.iter().chain(KINDS.iter()).copied();
                // A table under an unknown key is almost always a misspelt
                // action (`exce = { ... }`).
                let (code, what) = if v.get_ref().is_table() {
                    misspelt_action = true;
                    ("unknown-action", "action kind")
                } else {
                    ("unknown-key", "key")
                };
                problems.push(
                    Problem::error(code, k.span(), format!("unknown {what} `{}`", k.get_ref()))
                        .label("neither a step key nor an action kind")
                        .help_opt(
                            suggest(k.get_ref(), known)
                                .or_else(|| Some(format!("action kinds: {}", KINDS.join(", ")))),
                        ),
                );
            }
        }
    }
    let (rest, _) = take(rest, |k| !STEP_KEYS.contains(&k));
    let when = condition(&taken, "when", problems);
    let actions: Vec<_> = taken
        .iter()
        .filter(|(k, _, _)| KINDS.contains(&k.as_str()))
        .collect();
    let undo = taken.iter().find(|(k, _, _)| k == "undo");
    let undo_reason = taken.iter().find(|(k, _, _)| k == "undo_reason");
    let raw: Option<RawStep> = de(rest, problems);
    let subject = format!(
        "step{}",
        raw.as_ref()
            .map(|r| format!(" `{}`", r.id))
            .unwrap_or_default()
    );
    let action = match actions.as_slice() {
        [] if misspelt_action => None,
        a => one_action(a, &span, &subject, "split it into two steps", problems),
    };
    let undo = step_undo(undo, undo_reason, &subject, problems);
    let raw = raw?;
    if let Some(p) = &raw.probe {
        check_test(p, &span, problems);
    }
    Some(Step {
        id: raw.id,
        phase: raw.phase,
        title: raw.title,
        when,
        hops: raw.hops,
        action: action?,
        undo: undo.action,
        no_undo: undo.reason,
        undo_span: undo.span,
        probe: raw.probe,
        timeout: raw.timeout,
        retries: raw.retries,
        once: raw.once,
        self_update: raw.self_update,
        point_of_no_return: raw.point_of_no_return,
        span,
    })
}

/// The one action of a step's table (`actions`: the action-kind keys it
/// holds): none and more than one are errors, said about `subject`.
pub(super) fn one_action(
    actions: &[&(String, Span<usize>, Spanned<DeValue<'_>>)],
    span: &Span<usize>,
    subject: &str,
    split: &str,
    problems: &mut Vec<Problem>,
) -> Option<Action> {
    match actions {
        [] => {
            problems.push(
                Problem::error(
                    "missing-action",
                    span.clone(),
                    format!("{subject} names no action"),
                )
                .label("what does this step do?")
                .help(format!("add one of: {}", KINDS.join(", "))),
            );
            None
        }
        [(name, _, value)] => Action::parse(name, value.clone(), problems),
        [_, (name, kspan, _), ..] => {
            problems.push(
                Problem::error(
                    "several-actions",
                    kspan.clone(),
                    format!("a step does one thing: `{name}` is a second action"),
                )
                .label("second action")
                .help(split),
            );
            None
        }
    }
}

/// A step's `undo`: a table naming one action, or `"none"` with
/// `undo_reason` saying why nothing can put the step's change back.
/// A run-once fleet step reads its `undo` the same way.
#[derive(Default)]
pub(super) struct StepUndo {
    pub(super) action: Option<Action>,
    pub(super) reason: Option<String>,
    /// Where the action is named, or `"none"` is said; the whole value when
    /// it is neither. Empty when the step has no `undo`.
    pub(super) span: Span<usize>,
}

pub(super) fn step_undo(
    undo: Option<&Entry<'_>>,
    reason: Option<&Entry<'_>>,
    subject: &str,
    problems: &mut Vec<Problem>,
) -> StepUndo {
    let reason_help = "say why nothing can put it back: `undo_reason = \"...\"`";
    let given = StepUndo {
        span: undo.map_or(0..0, |(_, _, v)| v.span()),
        ..StepUndo::default()
    };
    let none = match undo.map(|(_, _, v)| (v.get_ref().as_str(), v.span())) {
        Some((Some("none"), span)) => span,
        Some((Some(other), span)) => {
            problems.push(
                Problem::error(
                    "unknown-value",
                    span,
                    format!("unknown value `{other}` for `undo`"),
                )
                .label("expected a table naming one action, or \"none\"")
                .help("write e.g. `undo = { exec = { argv = [...] } }`, or `undo = \"none\"` with `undo_reason`"),
            );
            return given;
        }
        _ => {
            if let Some((_, key, _)) = reason {
                problems.push(
                    Problem::error(
                        "undo-reason",
                        key.clone(),
                        format!("{subject}: `undo_reason` explains `undo = \"none\"`, which this step does not say"),
                    )
                    .label("a reason for an undo that is not \"none\"")
                    .help("add `undo = \"none\"`, or remove `undo_reason`"),
                );
            }
            return match undo.and_then(|(_, _, v)| parse_undo(v, problems)) {
                Some((action, span)) => StepUndo {
                    action: Some(action),
                    reason: None,
                    span,
                },
                None => given,
            };
        }
    };
    let Some((_, key, value)) = reason else {
        problems.push(
            Problem::error(
                "undo-reason",
                none,
                format!("{subject}: `undo = \"none\"` needs `undo_reason`"),
            )
            .label("why can this step not be undone?")
            .help(reason_help),
        );
        return given;
    };
    match value.get_ref().as_str() {
        Some(why) if !why.trim().is_empty() => StepUndo {
            action: None,
            reason: Some(why.to_string()),
            span: none,
        },
        Some(_) => {
            problems.push(
                Problem::error(
                    "undo-reason",
                    value.span(),
                    format!("{subject}: `undo_reason` is empty"),
                )
                .label("why can this step not be undone?")
                .help(reason_help),
            );
            given
        }
        None => {
            problems.push(
                Problem::error(
                    "wrong-type",
                    key.clone(),
                    format!(
                        "`undo_reason` is a string, found a {}",
                        value.get_ref().type_str()
                    ),
                )
                .label("expected a string")
                .help(reason_help),
            );
            given
        }
    }
}

/// `undo = { <kind> = { ... } }`: exactly one action.
pub(super) fn parse_undo(
    v: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<(Action, Span<usize>)> {
    let DeValue::Table(t) = v.get_ref() else {
        problems.push(
            Problem::error(
                "wrong-type",
                v.span(),
                "`undo` is a table naming one action",
            )
            .label("expected e.g. { exec = { argv = [...] } }"),
        );
        return None;
    };
    let entries: Vec<_> = t.iter().collect();
    match entries.as_slice() {
        [(k, val)] => {
            if !KINDS.contains(&k.get_ref().as_ref()) {
                problems.push(
                    Problem::error(
                        "unknown-action",
                        k.span(),
                        format!("`{}` is not an action kind", k.get_ref()),
                    )
                    .label(format!("expected one of: {}", KINDS.join(", ")))
                    .help_opt(suggest(k.get_ref(), KINDS.iter().copied())),
                );
                return None;
            }
            Action::parse(k.get_ref(), (*val).clone(), problems).map(|a| (a, k.span()))
        }
        _ => {
            problems.push(
                Problem::error("one-of", v.span(), "`undo` names exactly one action")
                    .label(format!("{} keys here", entries.len())),
            );
            None
        }
    }
}
