//! Checks across the whole recipe: ids, references between sections, undo
//! kinds, what may run in `prepare`, facts named in conditions, the service
//! order and the path graph.

use std::collections::{HashMap, HashSet};
use std::ops::Range as Span;

use super::{Phase, Recipe};
use crate::actions::Action;
use crate::output::diag::{Problem, suggest};
use crate::recipe::facts::BUILTIN;

pub fn validate(r: &mut Recipe, problems: &mut Vec<Problem>) {
    super::route::lint(&r.paths, problems);
    unique_ids(r, problems);
    facts(r, problems);
    conditions(r, problems);
    templates(r, problems);
    steps(r, problems);
    services(r, problems);
    held_restarts(r, problems);
    keys_first(r, problems);
    roles(r, problems);
    if let Some(f) = &r.fleet {
        super::fleet::validate(f, &r.product.roles, &r.source, problems);
    }
}

/// `role_probes` name roles the recipe knows; `role_required` needs some.
fn roles(r: &Recipe, problems: &mut Vec<Problem>) {
    let p = &r.product;
    let at = r
        .source
        .text
        .find("[product]")
        .map_or(0..0, |i| i..i + "[product]".len());
    for role in p.role_probes.keys().filter(|k| !p.roles.contains(k)) {
        problems.push(
            Problem::error(
                "unknown-role",
                at.clone(),
                format!(
                    "`role_probes` tells role `{role}`, which is not in `roles` ({})",
                    p.roles.join(", ")
                ),
            )
            .label("in this table")
            .help_opt(crate::output::diag::suggest(
                role,
                p.roles.iter().map(String::as_str),
            )),
        );
    }
    if p.role_required && p.roles.is_empty() {
        problems.push(
            Problem::error(
                "unknown-role",
                at,
                "`role_required = true` but the recipe names no `roles`",
            )
            .label("in this table"),
        );
    }
}

fn unique_ids(r: &Recipe, problems: &mut Vec<Problem>) {
    let mut seen = HashMap::new();
    for s in &r.steps {
        if let Some(first) = seen.insert(s.id.as_str(), s.span.clone()) {
            let (line, _) = r.source.line_col(first.start);
            problems.push(
                Problem::error(
                    "duplicate-id",
                    s.span.clone(),
                    format!("step id `{}` is used twice", s.id),
                )
                .label(format!("first used on line {line}"))
                .help("step ids are how the journal and `once` remember a step: make them unique"),
            );
        }
    }
    let mut seen = HashSet::new();
    for c in &r.checks {
        if !seen.insert(c.id.as_str()) {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    c.span.clone(),
                    format!("check id `{}` is used twice", c.id),
                )
                .label("second use"),
            );
        }
    }
}

fn facts(r: &Recipe, problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for f in &r.facts {
        let span = r
            .source
            .text
            .find(&format!("\"{}\"", f.name))
            .map_or(0..0, |i| i..i + f.name.len() + 2);
        if BUILTIN.iter().any(|b| b.0 == f.name) || f.name.starts_with("package.") {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    span.clone(),
                    format!("fact `{}` is built in", f.name),
                )
                .label("choose another name"),
            );
        }
        if !seen.insert(f.name.as_str()) {
            problems.push(
                Problem::error(
                    "duplicate-id",
                    span,
                    format!("fact `{}` is defined twice", f.name),
                )
                .label("second definition"),
            );
        }
    }
}

/// Every `{{ fact }}` in a step's action, undo and probe names a fact.
fn templates(r: &Recipe, problems: &mut Vec<Problem>) {
    for s in &r.steps {
        let mut texts = super::template::strings(&s.action);
        if let Some(u) = &s.undo {
            texts.extend(super::template::strings(u));
        }
        if let Some(p) = &s.probe {
            texts.extend(super::template::strings(p));
        }
        texts.extend(
            s.title
                .iter()
                .chain(&s.point_of_no_return)
                .chain(&s.no_undo)
                .cloned(),
        );
        for text in texts {
            for (name, _) in super::template::placeholders(&text) {
                if crate::recipe::facts::is_secret(&name) {
                    // What a step says is planned, journaled and shown: a
                    // secret filled in there reaches argv, the journal, the
                    // run log and `--json`.
                    problems.push(
                        Problem::error(
                            "secret-in-text",
                            placeholder_span(r, s, &name),
                            format!(
                                "`{{{{ {name} }}}}` would write a secret into the step: its command line, the journal, the run log and --json"
                            ),
                        )
                        .label("a secret's name")
                        .help("let the command read it where it is kept (a credentials file, as `db` steps' `credentials` do)"),
                    );
                    continue;
                }
                if r.catalogue.lookup(&name).is_some() {
                    continue;
                }
                problems.push(
                    Problem::error(
                        "unknown-fact",
                        placeholder_span(r, s, &name),
                        format!("`{{{{ {name} }}}}` names the unknown fact `{name}`"),
                    )
                    .label("not a built-in fact nor one defined in [[facts]]")
                    .help_opt(suggest(&name, r.catalogue.names())),
                );
            }
        }
    }
}

/// Where `{{ name }}` stands in the step's own text: from its header to the
/// next table.
fn placeholder_span(r: &Recipe, s: &super::Step, name: &str) -> Span<usize> {
    let from = s.span.end.min(r.source.text.len());
    let body = &r.source.text[from..];
    let body = &body[..body.find("\n[").unwrap_or(body.len())];
    body.find(name)
        .map_or(s.span.clone(), |i| from + i..from + i + name.len())
}

fn conditions(r: &mut Recipe, problems: &mut Vec<Problem>) {
    let cat = r.catalogue.clone();
    for s in &mut r.steps {
        if let Some(w) = &mut s.when {
            w.resolve(&cat, problems);
        }
    }
    for c in &mut r.checks {
        for cond in [&mut c.when, &mut c.require].into_iter().flatten() {
            cond.resolve(&cat, problems);
        }
    }
}

fn steps(r: &Recipe, problems: &mut Vec<Problem>) {
    let path_ids: Vec<&str> = r
        .paths
        .iter()
        .filter(|p| p.unsupported.is_none())
        .map(|p| p.id.as_str())
        .collect();
    for s in &r.steps {
        for h in &s.hops {
            if !path_ids.contains(&h.as_str()) {
                problems.push(
                    Problem::error(
                        "unknown-path",
                        s.span.clone(),
                        format!(
                            "step `{}` is limited to hop `{h}`, which is no supported path",
                            s.id
                        ),
                    )
                    .label(format!("paths: {}", path_ids.join(", ")))
                    .help_opt(suggest(h, path_ids.iter().copied())),
                );
            }
        }
        if let Some(undo) = &s.undo {
            undo_kind(
                &format!("step `{}`", s.id),
                &s.action,
                undo,
                &s.undo_span,
                problems,
            );
        }
        for (what, action) in
            std::iter::once(("", &s.action)).chain(s.undo.iter().map(|u| ("its undo: ", u)))
        {
            if let Some(why) = action.cannot_with(&r.services) {
                problems.push(
                    Problem::error(
                        "backend-cannot",
                        s.span.clone(),
                        format!("step `{}`: {what}{why}", s.id),
                    )
                    .label("this step")
                    .help("use `restart`, or declare the service with `backend = \"systemd\"` or `\"sysv\"`"),
                );
            }
        }
        if s.phase == Phase::Prepare && s.action.disruptive() {
            problems.push(
                Problem::error(
                    "disruptive-in-prepare",
                    s.span.clone(),
                    format!(
                        "step `{}` ({}) changes the host, but `prepare` must change nothing",
                        s.id,
                        s.action.kind()
                    ),
                )
                .label("move it to `pre` or a later phase")
                .help(format!(
                    "prepare only downloads and verifies, so `-d` and a failed prepare disrupt nothing{}",
                    if s.action.may_declare_read_only() {
                        "; a command that changes nothing but files of its own in the download cache or hoist's state says `read_only = true`"
                    } else {
                        ""
                    }
                )),
            );
        }
        if let Some(why) = &s.point_of_no_return {
            if why.trim().is_empty() {
                problems.push(
                    Problem::error(
                        "point-of-no-return",
                        s.span.clone(),
                        format!("step `{}`: `point_of_no_return` must say why", s.id),
                    )
                    .label("e.g. \"Debian has no downgrade\""),
                );
            }
            if s.undo.is_some() || s.no_undo.is_some() {
                problems.push(
                    Problem::error(
                        "point-of-no-return",
                        s.undo_span.clone(),
                        format!(
                            "step `{}` is a point of no return: the run never goes back past it, so its undo would never run",
                            s.id
                        ),
                    )
                    .label("remove this `undo`, or the point of no return"),
                );
            }
        }
        no_undo(
            UndoSaid {
                subject: format!("step `{}`", s.id),
                action: &s.action,
                undo_given: s.undo.is_some() || !s.undo_span.is_empty(),
                undo_span: &s.undo_span,
                none: s.no_undo.is_some(),
                builtin_counts: true,
                exempt: s.phase == Phase::Prepare || s.point_of_no_return.is_some(),
                span: &s.span,
            },
            problems,
        );
        if s.once && s.undo.is_some() {
            problems.push(
                Problem::warning(
                    "once-with-undo",
                    s.span.clone(),
                    format!("step `{}` runs once per host but has an undo: after a rollback it will not run again", s.id),
                )
                .label("check that this is meant"),
            );
        }
    }
}

/// What a step (or a run-once fleet step) says of its undo, for
/// [`no_undo`].
pub(super) struct UndoSaid<'a> {
    pub subject: String,
    pub action: &'a Action,
    /// An `undo` action, or a malformed one (an error of its own already).
    pub undo_given: bool,
    pub undo_span: &'a Span<usize>,
    /// `undo = "none"` with its reason.
    pub none: bool,
    /// The rollback that goes over it uses the action's built-in undo
    /// (a host's does; the fleet's runs only the recipe's `undo`).
    pub builtin_counts: bool,
    /// Never undone by design (`prepare`, a point of no return, a gate).
    pub exempt: bool,
    pub span: &'a Span<usize>,
}

/// Every step that changes the host is undone at rollback, or says why it
/// cannot be (`undo = "none"`), so the rollback's account of what it left
/// is the maintainer's, not a silence. `prepare` changes nothing; the point
/// of no return is never undone.
pub(super) fn no_undo(s: UndoSaid<'_>, problems: &mut Vec<Problem>) {
    let subject = s.subject;
    let builtin = s.builtin_counts && s.action.builtin_undo();
    if s.none {
        if s.action.undo_kinds().is_empty() {
            problems.push(
                Problem::error(
                    "undo-kind",
                    s.undo_span.clone(),
                    format!(
                        "{subject} is a `{}`, which changes nothing: there is nothing to undo",
                        s.action.kind()
                    ),
                )
                .label("remove `undo = \"none\"` and `undo_reason`"),
            );
        } else if builtin {
            problems.push(
                Problem::error(
                    "builtin-undo",
                    s.undo_span.clone(),
                    format!(
                        "{subject} is a `{}` that undoes itself: its built-in undo runs at rollback",
                        s.action.kind()
                    ),
                )
                .label("remove `undo = \"none\"` and `undo_reason`"),
            );
        }
        return;
    }
    if s.exempt || s.undo_given || builtin || !s.action.changes_host() {
        return;
    }
    let kinds: Vec<String> = s
        .action
        .undo_kinds()
        .iter()
        .map(|k| format!("`{k}`"))
        .collect();
    problems.push(
        Problem::warning(
            "no-undo",
            s.span.clone(),
            format!(
                "{subject} ({}) changes the host, and nothing undoes it nor says why not",
                s.action.kind()
            ),
        )
        .label("no `undo`")
        .help(format!(
            "add `undo = {{ <kind> = {{ ... }} }}` that puts it back (kinds: {}), or `undo = \"none\"` with `undo_reason = \"...\"` saying why nothing can",
            kinds.join(", ")
        )),
    );
}

/// An `undo` must be an action that can put back what `action` changed
/// (`Kind::undo_kinds`); an action that changes nothing has none. For a
/// step's `undo` and a run-once step's alike; `subject` names which.
pub(super) fn undo_kind(
    subject: &str,
    action: &crate::actions::Action,
    undo: &crate::actions::Action,
    span: &std::ops::Range<usize>,
    problems: &mut Vec<Problem>,
) {
    let allowed = action.undo_kinds();
    if allowed.is_empty() {
        problems.push(
            Problem::error(
                "undo-kind",
                span.clone(),
                format!(
                    "{subject} is a `{}`, which changes nothing: there is nothing to undo",
                    action.kind()
                ),
            )
            .label("remove this `undo`"),
        );
    } else if !allowed.contains(&undo.kind()) {
        problems.push(
            Problem::error(
                "undo-kind",
                span.clone(),
                format!(
                    "a `{}` step cannot be undone by a `{}` action",
                    action.kind(),
                    undo.kind()
                ),
            )
            .label(format!("expected one of: {}", allowed.join(", "))),
        );
    }
}

/// `after` relations must name declared services and must not loop.
fn services(r: &Recipe, problems: &mut Vec<Problem>) {
    let names: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    let svc_span = |name: &str| {
        r.source
            .text
            .find(&format!("name = \"{name}\""))
            .map_or(0..0, |i| i..i + name.len() + 9)
    };
    for s in &r.services {
        for a in &s.after {
            if !names.contains(&a.as_str()) {
                problems.push(
                    Problem::error(
                        "unknown-service",
                        svc_span(&s.name),
                        format!(
                            "service `{}` starts after `{a}`, which is not in [[services]]",
                            s.name
                        ),
                    )
                    .label("unknown service")
                    .help_opt(suggest(a, names.iter().copied())),
                );
            }
        }
    }
    for s in &r.services {
        let has = [&s.start, &s.stop, &s.status]
            .iter()
            .filter(|c| c.is_some())
            .count();
        let command = s.backend == super::Backend::Command;
        if command && has != 3 || !command && has != 0 {
            problems.push(
                Problem::error(
                    "one-of",
                    svc_span(&s.name),
                    format!("service `{}`: `start`, `stop` and `status` go together, with `backend = \"command\"` only", s.name),
                )
                .label("here"),
            );
        }
    }
    if let Err(cycle) = super::order::service_order(&r.services) {
        problems.push(
            Problem::error(
                "service-cycle",
                svc_span(&cycle[0]),
                format!(
                    "services start after each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            )
            .label("part of the cycle")
            .help("remove one `after` so that an order exists"),
        );
    }
}

/// A unit whose restarts a package step holds keeps running the old code
/// until a later `service` step starts or restarts it: without one, the
/// upgrade would end with the old daemons still serving.
fn held_restarts(r: &Recipe, problems: &mut Vec<Problem>) {
    let at = |i: usize| (r.steps[i].phase, i);
    for (i, s) in r.steps.iter().enumerate() {
        for unit in s.action.held_restarts() {
            let restarted = r
                .steps
                .iter()
                .enumerate()
                .any(|(j, later)| at(j) > at(i) && later.action.starts(unit));
            if !restarted {
                problems.push(
                    Problem::warning(
                        "held-never-restarted",
                        s.span.clone(),
                        format!("step `{}` holds the restarts of `{unit}`, but no later step starts or restarts it", s.id),
                    )
                    .label("it would keep running the old code")
                    .help("add a `service` step with `op = \"restart\"` naming it, in the `start` phase"),
                );
            }
        }
    }
}

/// An archive key is trusted before apt reads the archive (seed 000: the
/// new key "before upgrading from XiVO 1.2.3 or earlier"): on an archive
/// signed with the new key only, an `apt-get update` before it fails, or
/// shows no new release. The plan's own refresh (`candidate = { refresh =
/// true }`) reads it through the keys of `prepare` only.
fn keys_first(r: &Recipe, problems: &mut Vec<Problem>) {
    use crate::actions::repo::Op;
    let at = |i: usize| (r.steps[i].phase, i);
    let refresh = r.product.candidate.as_ref().is_some_and(|c| c.refresh);
    for (i, s) in r.steps.iter().enumerate() {
        if !matches!(&s.action, Action::Repo(repo) if repo.op == Op::Key) {
            continue;
        }
        let before = r
            .steps
            .iter()
            .enumerate()
            .find(|(j, p)| at(*j) < at(i) && matches!(p.action, Action::Packages(_)))
            .map(|(_, p)| format!("step `{}` reads the archive before it", p.id));
        let why = before.or_else(|| {
            (refresh && s.phase != Phase::Prepare).then(|| {
                "the plan reads the candidate (`refresh = true`) without it: only `prepare`'s keys are used for that".to_string()
            })
        });
        if let Some(why) = why {
            problems.push(
                Problem::warning(
                    "key-after-refresh",
                    s.span.clone(),
                    format!("step `{}` trusts an archive key too late: {why}", s.id),
                )
                .label("on an archive signed with this key only, apt would see no new release")
                .help("put it in `prepare`, before every `packages` step"),
            );
        }
    }
}
