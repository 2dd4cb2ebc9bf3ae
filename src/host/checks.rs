//! Preflight checks: read-only tests run before anything changes (Leapp's
//! inhibitors, foreman-maintain's checks). An inhibitor that fails stops the
//! upgrade; a warning is reported. An admin may skip a check only when the
//! recipe says it is `skippable`, and the skip is part of the report.

use std::time::Duration;

use serde::Serialize;

use crate::recipe::facts::Facts;
use crate::recipe::{Check, CheckSeverity, Recipe, Test};
use crate::sys::process;

const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
    /// A test that must run on the host, not run: the facts came from a
    /// file (`--facts`), and this machine is not that host.
    #[serde(rename = "NOT-EVALUATED")]
    NotEvaluated,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: String,
    pub status: Status,
    pub severity: CheckSeverity,
    /// What holds when it passes (the recipe's `title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub message: String,
    pub remedy: Option<String>,
    /// Why it was skipped, or what the test saw when it failed.
    pub detail: Option<String>,
    pub skipped_by_admin: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Outcome>,
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Tests that need the host, with facts from a file.
    pub not_evaluated: usize,
}

impl Report {
    /// Ready when no inhibitor failed.
    pub fn ready(&self) -> bool {
        self.failed == 0
    }

    pub fn summary(&self) -> String {
        let verdict = match (self.ready(), self.not_evaluated) {
            (false, _) => "upgrade inhibited".to_string(),
            (true, 0) => "ready to upgrade".to_string(),
            (true, n) => format!(
                "no inhibitor failed of those evaluated; {n} need the host (run `hoist check` there)"
            ),
        };
        format!(
            "{} passed, {} warnings, {} failed, {} skipped{}: {verdict}",
            self.passed,
            self.warnings,
            self.failed,
            self.skipped,
            if self.not_evaluated > 0 {
                format!(", {} not evaluated", self.not_evaluated)
            } else {
                String::new()
            }
        )
    }

    /// The text of a check's row: what holds when it passed, what is wrong
    /// otherwise.
    pub fn row(c: &Outcome) -> String {
        let status = match c.status {
            Status::NotEvaluated => "NOT EVALUATED".to_string(),
            s => format!("{s:?}").to_uppercase(),
        };
        let said = match c.status {
            Status::Pass => c.title.as_deref().unwrap_or(""),
            Status::NotEvaluated | Status::Skip => c.title.as_deref().unwrap_or(&c.message),
            Status::Fail | Status::Warn => &c.message,
        };
        format!("{status:<4}  {}  {said}", c.id)
            .trim_end()
            .to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SkipError {
    #[error("no check `{0}` in the recipe")]
    Unknown(String),
    #[error("check `{0}` may not be skipped (the recipe does not mark it skippable)")]
    NotSkippable(String),
}

/// Refuses skips of unknown or non-skippable checks before anything runs.
pub fn validate_skips(recipe: &Recipe, skip: &[String]) -> Result<(), SkipError> {
    for s in skip {
        match recipe.checks.iter().find(|c| &c.id == s) {
            None => return Err(SkipError::Unknown(s.clone())),
            Some(c) if !c.skippable => return Err(SkipError::NotSkippable(s.clone())),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every check of the recipe, its tests run on this host.
pub fn run(recipe: &Recipe, facts: &Facts, skip: &[String]) -> Report {
    report(recipe, facts, skip, true)
}

/// Every check of the recipe for a host whose facts come from a file
/// (`--facts`): conditions over facts are evaluated, tests that look at
/// the host are not (this machine is not that host).
pub fn run_from_facts(recipe: &Recipe, facts: &Facts, skip: &[String]) -> Report {
    report(recipe, facts, skip, false)
}

fn report(recipe: &Recipe, facts: &Facts, skip: &[String], on_host: bool) -> Report {
    let checks: Vec<Outcome> = recipe
        .checks
        .iter()
        .map(|c| one(c, facts, skip, on_host))
        .collect();
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    Report {
        passed: count(Status::Pass),
        warnings: count(Status::Warn),
        failed: count(Status::Fail),
        skipped: count(Status::Skip),
        not_evaluated: count(Status::NotEvaluated),
        checks,
    }
}

fn one(c: &Check, facts: &Facts, skip: &[String], on_host: bool) -> Outcome {
    let outcome = |status, detail: Option<String>| Outcome {
        id: c.id.clone(),
        status,
        severity: c.severity,
        title: c.title.clone(),
        message: c.message.clone(),
        remedy: c.remedy.clone(),
        detail,
        skipped_by_admin: false,
    };
    if skip.contains(&c.id) {
        return Outcome {
            skipped_by_admin: true,
            ..outcome(Status::Skip, Some("skipped by the admin".into()))
        };
    }
    if let Some(w) = &c.when {
        match w.eval(facts) {
            Ok(false) => {
                return outcome(
                    Status::Skip,
                    Some(format!("not relevant here: {}", w.explain_false(facts))),
                );
            }
            Err(fact) => return failed(c, outcome, format!("fact `{fact}` has no value here")),
            Ok(true) => {}
        }
    }
    let result = match (&c.test, &c.require) {
        (Some(_), _) if !on_host => {
            return outcome(
                Status::NotEvaluated,
                Some("needs the host: not run, the facts come from a file".into()),
            );
        }
        (Some(t), _) => test(t),
        (None, Some(r)) => match r.eval(facts) {
            Ok(true) => Ok(()),
            Ok(false) => Err(r.explain_false(facts)),
            Err(fact) => Err(format!("fact `{fact}` has no value here")),
        },
        (None, None) => Err("the check tests nothing".into()),
    };
    match result {
        Ok(()) => outcome(Status::Pass, None),
        Err(why) => failed(c, outcome, why),
    }
}

fn failed(c: &Check, outcome: impl Fn(Status, Option<String>) -> Outcome, why: String) -> Outcome {
    let status = match c.severity {
        CheckSeverity::Inhibitor => Status::Fail,
        CheckSeverity::Warning => Status::Warn,
    };
    outcome(status, Some(why))
}

/// Runs a read-only test: `Ok` when it holds, else what was seen.
/// Whether the file system of `f.path` (or of its nearest existing
/// parent: the directory may be made by the upgrade) has `f.at_least` free.
fn free_space(f: &crate::recipe::FreeSpace) -> Result<(), String> {
    let want = f
        .at_least
        .parse::<bytesize::ByteSize>()
        .map_err(|e| format!("{}: {e}", f.at_least))?;
    let mut at = std::path::Path::new(&f.path);
    while !at.exists() {
        at = at.parent().unwrap_or(std::path::Path::new("/"));
    }
    let free = crate::sys::fsutil::free(at)
        .ok_or_else(|| format!("{}: cannot read its free space", at.display()))?;
    if free >= want.as_u64() {
        Ok(())
    } else {
        Err(format!(
            "{} has {} free, {} needed",
            at.display(),
            bytesize::ByteSize(free).display().iec(),
            want.display().iec()
        ))
    }
}

pub fn test(t: &Test) -> Result<(), String> {
    let from_output = |o: std::io::Result<process::Output>| match o {
        Err(e) => Err(format!("could not run: {e}")),
        Ok(o) if o.success() => Ok(()),
        Ok(o) if o.timed_out() => Err(format!(
            "no answer within {}",
            humantime::format_duration(CHECK_TIMEOUT)
        )),
        Ok(o) => {
            let said = o
                .stderr
                .trim()
                .lines()
                .chain(o.stdout.trim().lines())
                .next()
                .unwrap_or("")
                .to_string();
            let code = o
                .status
                .and_then(|s| s.code())
                .map_or("a signal".to_string(), |c| format!("status {c}"));
            Err(if said.is_empty() {
                format!("exited with {code}")
            } else {
                format!("exited with {code}: {said}")
            })
        }
    };
    if let Some(argv) = &t.command {
        from_output(process::run(&mut process::argv(argv), CHECK_TIMEOUT))
    } else if let Some(sh) = &t.shell {
        from_output(process::run(&mut process::shell(sh), CHECK_TIMEOUT))
    } else if let Some(p) = &t.file_exists {
        if std::path::Path::new(p).exists() {
            Ok(())
        } else {
            Err(format!("{p} does not exist"))
        }
    } else if let Some(f) = &t.free_space {
        free_space(f)
    } else if let Some(p) = &t.file_absent {
        if std::path::Path::new(p).exists() {
            Err(format!("{p} exists"))
        } else {
            Ok(())
        }
    } else {
        Err("the test names nothing to look at".into())
    }
}
