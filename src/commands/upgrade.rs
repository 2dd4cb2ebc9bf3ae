//! `hoist upgrade`, `resume` and `rollback`: everything around the engine:
//! the lock, refusing what cannot work before anything changes, asking the
//! admin, and reporting how the run ended.

use std::path::Path;

use crate::output::wire::{self, Event};
use crate::plan::{Outcome, Plan};
use crate::recipe::Recipe;
use crate::recipe::facts::Facts;
use crate::run::journal::{Journal, RunRecord};
use crate::run::state::RunState;
use crate::run::{Ending, Engine, Options, RunError, Stored};
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::version::Version;

pub struct Request<'a> {
    pub recipe: &'a Recipe,
    pub facts: Facts,
    /// The facts were read off this host (not `--facts FILE`): the
    /// product's version can be read again after the run to check it.
    pub probed: bool,
    pub to: Option<Version>,
    pub options: Options,
    pub skip: Vec<String>,
    pub state_dir: &'a Path,
    /// `--rollout`: the fleet rollout this run belongs to.
    pub rollout: Option<String>,
}

/// A line the admin should read that refuses nothing (with `--json`, a
/// `notice` event naming what it is about).
fn notice(json: bool, about: &str, message: &str) {
    if json {
        wire::emit(Event::Notice {
            about: about.to_string(),
            message: message.to_string(),
        });
    } else {
        errln!("hoist: {message}");
    }
}

/// Before acting: what a previous hoist's steps left running is waited
/// for, then ended (`run::leftover`), said, and journaled on the latest
/// run. `Err` is the refusal's exit code when some could not be ended.
pub(crate) fn settle_leftovers(
    state_dir: &Path,
    json: bool,
    journal: &mut Journal,
) -> Result<(), u8> {
    let show = |line: &str| notice(json, "leftover-processes", line);
    let lines = crate::run::leftover::settle(state_dir, &show);
    if lines.is_empty() {
        return Ok(());
    }
    if let Ok(Some(run)) = journal.latest_run() {
        let _ = journal.event(run.id, "leftover-processes", &lines.join("; "));
    }
    if crate::run::leftover::any_left(state_dir) {
        return Err(refuse(
            json,
            EXIT_REFUSED,
            "leftover-processes",
            "processes a previous hoist started are still running and could not be ended; nothing was changed (see above)",
        ));
    }
    Ok(())
}

pub(crate) use crate::output::wire::refuse;

/// What `resume` and `rollback` start from: the host's lock, the journal
/// with a dead hoist's leftovers settled, and the unfinished run; `Err`
/// is the exit code when there is none to `what` (said) or it is refused.
fn take_unfinished(
    state_dir: &Path,
    json: bool,
    what: &str,
) -> Result<Result<(crate::run::lock::Lock, Journal, RunRecord), u8>, RunError> {
    let holder = if what == "resume" {
        "resume"
    } else {
        "rollback"
    };
    let lock = match crate::run::lock::acquire(state_dir, holder) {
        Ok(l) => l,
        Err(e) => return Ok(Err(refuse(json, EXIT_REFUSED, e.code(), &e.to_string()))),
    };
    let mut journal = Journal::open(state_dir)?;
    if let Err(code) = settle_leftovers(state_dir, json, &mut journal) {
        return Ok(Err(code));
    }
    match unfinished(&journal)? {
        Some(run) => Ok(Ok((lock, journal, run))),
        None => {
            if !json {
                outln!("nothing to {what}: the last run is finished (see `hoist status`)");
            }
            Ok(Err(EXIT_OK))
        }
    }
}

fn unfinished(journal: &Journal) -> Result<Option<RunRecord>, RunError> {
    Ok(journal.latest_run()?.filter(|r| !r.state.is_final()))
}

pub fn upgrade(mut req: Request<'_>) -> u8 {
    let json = req.options.json;
    match upgrade_inner(&mut req) {
        Ok(code) => code,
        Err(e) => refuse(json, EXIT_REFUSED, "error", &e.to_string()),
    }
}

fn upgrade_inner(req: &mut Request<'_>) -> Result<u8, RunError> {
    let json = req.options.json;
    let lock = match crate::run::lock::acquire(req.state_dir, "upgrade") {
        Ok(l) => l,
        Err(e) => return Ok(refuse(json, EXIT_REFUSED, e.code(), &e.to_string())),
    };
    // From here on a signal never kills hoist: a run may be created any
    // moment, and one killed between its creation and its first step is
    // left `planned` (`process::stop`).
    crate::sys::process::stop::install();
    let mut journal = Journal::open(req.state_dir)?;
    if let Err(code) = settle_leftovers(req.state_dir, json, &mut journal) {
        return Ok(code);
    }
    if let Some(r) = unfinished(&journal)? {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "unfinished",
            &format!(
                "run {} ({} {} -> {}) is {}: finish it first with `hoist resume` or `hoist rollback` (see `hoist status`)",
                r.id, r.product, r.from, r.to, r.state
            ),
        ));
    }
    req.facts.once_done = journal.once_done(&req.recipe.product.name)?;
    let plan = match crate::plan::resolve(req.recipe, &req.facts, req.to.as_ref()) {
        Ok(Outcome::Plan(mut p)) => {
            if req.rollout.is_some() {
                p.defer_to_rollout(req.recipe);
            }
            *p
        }
        Ok(Outcome::UpToDate { current, target }) => {
            say_up_to_date(json, &req.recipe.product.name, &current, &target);
            return Ok(EXIT_OK);
        }
        Err(e) => {
            return Ok(refuse(
                json,
                EXIT_REFUSED,
                "cannot-plan",
                &format!("refused: {e}"),
            ));
        }
    };
    let unsupported: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| !s.action.executable() || s.undo.as_ref().is_some_and(|u| !u.executable()))
        .map(|s| format!("{} ({})", s.key, s.action.kind()))
        .collect();
    if !unsupported.is_empty() {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "not-yet-supported",
            &format!(
                "this hoist cannot yet run every step of the plan; nothing was changed. Not yet supported: {}",
                unsupported.join(", ")
            ),
        ));
    }
    // Preflight: the recipe's checks, then each action's own (unsafe hooks).
    let mut check_facts = req.facts.clone();
    check_facts.set(
        "target",
        crate::recipe::facts::Value::Version(plan.target.clone()),
    );
    if let Err(e) = crate::host::checks::validate_skips(req.recipe, &req.skip) {
        return Ok(refuse(json, EXIT_USAGE, "bad-skip", &e.to_string()));
    }
    let report = crate::host::checks::run(req.recipe, &check_facts, &req.skip);
    for c in &report.checks {
        if matches!(
            c.status,
            crate::host::checks::Status::Fail | crate::host::checks::Status::Warn
        ) {
            let remedy = c
                .remedy
                .as_deref()
                .map(|r| format!(" Remedy: {r}"))
                .unwrap_or_default();
            let word = if c.status == crate::host::checks::Status::Fail {
                "FAIL"
            } else {
                "WARN"
            };
            // Said as a refusal line, which it is part of; the exit code
            // comes with the summary below.
            refuse(
                json,
                EXIT_REFUSED,
                &c.id,
                &format!("{word} {}: {}.{remedy}", c.id, c.message),
            );
        }
    }
    if !report.ready() {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "inhibited",
            &format!(
                "refused by preflight checks: {}; nothing was changed",
                report.summary()
            ),
        ));
    }
    if let Err(e) = preflight_actions(req, &plan, &mut journal) {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "preflight",
            &format!("refused before anything ran: {e}"),
        ));
    }
    if let Err(e) = crate::statedir::space::check_free(journal.dir()) {
        return Ok(refuse(json, EXIT_REFUSED, "disk-space", &e));
    }
    if !json {
        if req.options.branded {
            // Seed 001: "showing the current and new version when upgrading".
            outln!("current version: {}", plan.current);
            outln!("new version: {}", plan.target);
        } else {
            outln!("{}: {} -> {}", plan.product, plan.current, plan.target);
        }
        if req.options.download_only {
            outln!("download only: the prepare phase runs, nothing is installed or stopped");
        }
    }
    if !req.options.yes && !req.options.download_only {
        if !crate::output::ui::interactive() {
            return Ok(refuse(
                json,
                EXIT_USAGE,
                "no-terminal",
                "no terminal to ask for confirmation: add --yes (-f) to upgrade without asking",
            ));
        }
        out!("{}", plan.render());
        let answer = crate::output::ui::ask(&format!(
            "Upgrade {} from {} to {}? [y/N] ",
            plan.product, plan.current, plan.target
        ));
        // As apt: a prompt answered no is an abort, not a success.
        if !matches!(answer.as_deref().map(str::trim), Some("y" | "Y" | "yes")) {
            outln!("Abort: nothing was changed");
            return Ok(EXIT_REFUSED);
        }
    }
    let services_before: Vec<String> = req
        .recipe
        .services
        .iter()
        .filter(|s| crate::actions::service::is_running(Some(s), &s.name))
        .map(|s| s.name.clone())
        .collect();
    let stored = Stored {
        options: req.options.clone(),
        recipe_dir: req.recipe.dir(),
        services: req.recipe.services.clone(),
        version: req.probed.then(|| req.recipe.product.version.clone()),
    };
    let facts_json = serde_json::to_string(&req.facts.to_text_map()).unwrap_or_default();
    let stored_json = serde_json::to_value(&stored).unwrap_or_default();
    if crate::sys::process::stop::requested() {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "stopped",
            "stopped by a signal before the run began; nothing was changed",
        ));
    }
    let run = journal.create_run(&plan, &facts_json, &stored_json, &services_before)?;
    crate::run::testhook::crash_at("run", "created");
    if let Some(r) = &req.rollout {
        journal.event(run, crate::run::journal::ROLLOUT_EVENT, r)?;
    }
    journal.event(
        run,
        crate::run::report::PREFLIGHT_EVENT,
        &crate::commands::report::preflight_json(&report),
    )?;
    for s in &req.skip {
        journal.event(
            run,
            "check-skipped",
            &format!("preflight check {s} skipped by the admin"),
        )?;
    }
    if let Some(prev) = &lock.stale_from {
        journal.event(
            run,
            "stale-lock",
            &format!("the previous holder is gone: {prev}"),
        )?;
    }
    let mut engine = Engine::open(journal, run, json)?;
    engine.ui.event(Event::RunStarted {
        run,
        product: plan.product.clone(),
        from: plan.current.to_string(),
        to: plan.target.to_string(),
        plan_hash: plan.hash.clone(),
        steps: plan.steps.len(),
    });
    let ending = engine.drive()?;
    Ok(report_ending(&engine, &ending))
}

fn preflight_actions(req: &Request<'_>, plan: &Plan, journal: &mut Journal) -> Result<(), String> {
    let log = tempfile_log()?;
    let recipe_dir = req.recipe.dir();
    let ctx = crate::actions::ctx::Ctx::new(
        &plan.product,
        &recipe_dir,
        &req.recipe.services,
        &log,
        journal,
    );
    for s in &plan.steps {
        s.action
            .preflight(&ctx)
            .map_err(|e| format!("{}: {e}", s.key))?;
    }
    Ok(())
}

/// Preflight output has no run yet: it goes nowhere.
fn tempfile_log() -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))
}

fn say_up_to_date(json: bool, product: &str, current: &Version, target: &Version) {
    if json {
        wire::emit(Event::UpToDate {
            current: current.to_string(),
            target: target.to_string(),
        });
    } else {
        outln!("{product}: {current} is up to date (target {target}); nothing to do");
    }
}

pub(crate) fn report_ending(engine: &Engine, ending: &Ending) -> u8 {
    engine.ui.finish();
    // The run is over for now: no banner says an upgrade is in progress.
    crate::actions::reboot::clear_banner();
    let log = engine.journal.log_path(engine.run);
    let r = &engine.record;
    let (state, text) = match ending {
        Ending::Committed => (
            "committed",
            format!("{} upgraded from {} to {}", r.product, r.from, r.to),
        ),
        Ending::Prepared => (
            "prepared",
            format!(
                "{} {}: everything downloaded and verified; nothing installed",
                r.product, r.to
            ),
        ),
        Ending::Paused => (
            "paused",
            "stopped by a signal; `hoist resume` goes on, `hoist rollback` goes back".to_string(),
        ),
        Ending::AwaitsPerson { step, message } => (
            "paused",
            format!(
                "paused: {step} {message}. When it is done: `hoist resume --confirm {}`; `hoist rollback` goes back",
                step.split('@').next().unwrap_or(step)
            ),
        ),
        Ending::Failed { step, error } => (
            "failed",
            format!(
                "step {step} failed: {error}. Not rolled back (--no-rollback): fix the cause, then `hoist resume`, or `hoist rollback`"
            ),
        ),
        Ending::RolledBack {
            failed: Some((step, error)),
        } => (
            "rolled-back",
            format!(
                "step {step} failed: {error}. Rolled back: {} is as it was at {}",
                r.product, r.from
            ),
        ),
        Ending::RolledBack { failed: None } => (
            "rolled-back",
            format!(
                "rolled back on request: {} is as it was at {}",
                r.product, r.from
            ),
        ),
        Ending::PartlyRolledBack { failed, left } => (
            "partly-rolled-back",
            format!(
                "{}Partly rolled back: {} is NOT as it was at {}; these steps ran and were not undone: {}. See `hoist status`",
                failed
                    .as_ref()
                    .map(|(step, error)| format!("step {step} failed: {error}. "))
                    .unwrap_or_default(),
                r.product,
                r.from,
                left.join("; ")
            ),
        ),
        Ending::FailedPastPoint {
            step,
            error,
            point,
            why,
            undo,
        } => (
            "failed",
            format!(
                "step {step} failed: {error}. Not rolled back: the upgrade is past its point of no return ({point}: {why}). {}Fix the cause, then `hoist resume` to go on (see `hoist status`)",
                match undo {
                    Some(Ok(())) => format!("What {step} changed was undone. "),
                    Some(Err(e)) => format!("Undoing {step} failed too: {e}. "),
                    None => String::new(),
                }
            ),
        ),
        Ending::RollbackFailed { error } => (
            "rollback-failed",
            format!(
                "the rollback did not finish: {error}. See `hoist status`; fix the cause, then `hoist rollback` again"
            ),
        ),
        Ending::FailedAtStop {
            failed,
            stop,
            left,
            errors,
        } => (
            "failed",
            format!(
                "{}{}. The hops up to {stop} are kept: fix the cause, then `hoist resume` goes on from {stop}, or `hoist rollback --all` goes back to {}",
                failed
                    .as_ref()
                    .map(|(step, error)| format!("step {step} failed: {error}. "))
                    .unwrap_or_default(),
                match (left.is_empty(), errors.is_empty()) {
                    (true, true) => format!("Rolled back to {stop}: {} is at {stop}", r.product),
                    (_, false) => format!(
                        "Going back to {stop} did not finish: {} (fix it, then `hoist rollback` again)",
                        errors.join("; ")
                    ),
                    (false, true) => format!(
                        "Rolled back to {stop}, but {} is NOT exactly as it was there: not undone: {}",
                        r.product,
                        left.join("; ")
                    ),
                },
                r.from
            ),
        ),
    };
    // A person's gate names itself, so a controller can ask for it.
    let awaits = match ending {
        Ending::AwaitsPerson { step, message } => Some(wire::AwaitsPerson {
            gate: step.split('@').next().unwrap_or(step).to_string(),
            step: step.clone(),
            message: message.clone(),
        }),
        _ => None,
    };
    engine.ui.event(Event::RunFinished {
        run: engine.run,
        state: state.to_string(),
        message: text.clone(),
        log: Some(log.display().to_string()),
        awaits_person: awaits,
    });
    crate::commands::report::record_end(engine);
    if !engine.ui.json() {
        outln!("{text}");
        if matches!(ending, Ending::Committed) {
            for line in to_look_at(engine) {
                outln!("{line}");
            }
        }
        outln!("run {} log: {}", engine.run, log.display());
    }
    ending.exit_code()
}

/// What the admin should look at after a successful upgrade: configuration
/// files a package left beside theirs (seed 001: "questions to answer about
/// replacing packaged files that have been modified": none was asked, so
/// it is said here), services still running replaced files.
fn to_look_at(engine: &Engine) -> Vec<String> {
    let events = engine.journal.events(engine.run).unwrap_or_default();
    events
        .iter()
        .filter_map(|e| match e.kind.as_str() {
            "conffiles" => Some(format!(
                "kept your configuration files; the packages' new versions are beside them, to merge: {}",
                e.detail
            )),
            "stale-services" => Some(format!(
                "still running replaced files, restart when convenient: {}",
                e.detail
            )),
            _ => None,
        })
        .collect()
}

/// Bounds the wait for a boot in progress.
const BOOT_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// After a power cut an admin can log in, and resume, while the host still
/// boots: PostgreSQL may be in crash recovery ("the database system is
/// starting up") and a step or its undo would fail for that alone. So a
/// resume or rollback typed during the boot waits, bounded, for it to end.
/// Not from a unit (`INVOCATION_ID`): the boot-time resume is itself part
/// of the boot it would wait for.
pub(crate) fn wait_for_boot(json: bool) {
    if std::env::var_os("INVOCATION_ID").is_some() {
        return;
    }
    let state = crate::sys::process::run(
        &mut crate::sys::process::argv(&["systemctl".into(), "is-system-running".into()]),
        std::time::Duration::from_secs(10),
    );
    let booting = state
        .as_ref()
        .is_ok_and(|o| matches!(o.stdout.trim(), "initializing" | "starting"));
    if !booting {
        return;
    }
    if !json {
        outln!("the host is still booting: waiting for it to finish");
    }
    let _ = crate::sys::process::run(
        &mut crate::sys::process::argv(&[
            "systemctl".into(),
            "is-system-running".into(),
            "--wait".into(),
        ]),
        BOOT_WAIT,
    );
}

pub fn resume(state_dir: &Path, replan: bool, confirm: &[String], json: bool) -> u8 {
    match resume_inner(state_dir, replan, confirm, json) {
        Ok(code) => code,
        Err(e) => refuse(json, EXIT_REFUSED, "error", &e.to_string()),
    }
}

fn resume_inner(
    state_dir: &Path,
    replan: bool,
    confirm: &[String],
    json: bool,
) -> Result<u8, RunError> {
    crate::sys::process::stop::install();
    let (_lock, mut journal, run) = match take_unfinished(state_dir, json, "resume")? {
        Ok(taken) => taken,
        Err(code) => return Ok(code),
    };
    wait_for_boot(json);
    if matches!(run.state, RunState::RollingBack | RunState::RollbackFailed) {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "rolling-back",
            &format!(
                "run {} was being rolled back: finish with `hoist rollback`",
                run.id
            ),
        ));
    }
    let now = crate::run::file_sha256(Path::new(&run.recipe_path));
    if !now.is_empty() && now != run.recipe_sha256 {
        match changed_plan(&run) {
            Ok(Some((plan, diff))) => {
                if !replan {
                    return Ok(refuse(
                        json,
                        EXIT_REFUSED,
                        "recipe-changed",
                        &format!(
                            "the recipe {} changed since run {} started:\n{}\nresume with --replan to go on with the new plan",
                            run.recipe_path,
                            run.id,
                            diff.join("\n")
                        ),
                    ));
                }
                journal.replace_plan(run.id, &plan)?;
                journal.event(run.id, "replan", &diff.join("; "))?;
            }
            Ok(None) => journal.event(
                run.id,
                "recipe-changed",
                "the recipe's text changed, its plan did not",
            )?,
            Err(e) => {
                return Ok(refuse(
                    json,
                    EXIT_REFUSED,
                    "recipe-changed",
                    &format!("the recipe changed and cannot be planned: {e}"),
                ));
            }
        }
    }
    journal.event(run.id, "resume", &format!("resumed from {}", run.state))?;
    let mut engine = Engine::open(journal, run.id, json)?;
    engine
        .stored
        .options
        .confirm
        .extend(confirm.iter().cloned());
    engine.ui.event(Event::RunResumed {
        run: run.id,
        state: run.state.as_str().to_string(),
    });
    if !json {
        outln!(
            "resuming run {}: {} {} -> {} ({})",
            run.id,
            run.product,
            run.from,
            run.to,
            run.state
        );
    }
    let ending = engine.drive()?;
    Ok(report_ending(&engine, &ending))
}

/// A rollback tried again after an undo failed: the admin may have fixed
/// the recipe's undo, and the journal still holds the old one. Each failed
/// step's undo is taken from the recipe as it is now, and what changed is
/// shown and journaled (a wedged `rollback-failed` run otherwise stays so).
fn refresh_failed_undos(
    journal: &mut Journal,
    run: &crate::run::journal::RunRecord,
    json: bool,
) -> Result<(), RunError> {
    let failed: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| s.state == crate::run::state::StepState::UndoFailed)
        .map(|s| s.key.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let fresh = match replan(run) {
        Ok(p) => p,
        Err(e) => {
            notice(
                json,
                "recipe-unusable",
                &format!("the recipe cannot be planned now ({e}): the journaled undos are used"),
            );
            return Ok(());
        }
    };
    let undo_of = |s: &crate::plan::PlannedStep| {
        (
            s.undo.as_ref().map(|u| u.summary()),
            serde_json::to_string(&(&s.undo, &s.no_undo)).unwrap_or_default(),
        )
    };
    let mut plan = run.plan.clone();
    let mut diff = Vec::new();
    for key in failed {
        let (Some(old), Some(new)) = (
            plan.steps.iter_mut().find(|s| s.key == key),
            fresh.steps.iter().find(|s| s.key == key),
        ) else {
            continue;
        };
        let (was, now) = (undo_of(old), undo_of(new));
        if was.1 == now.1 {
            continue;
        }
        let show = |u: Option<String>| u.unwrap_or_else(|| "none".into());
        diff.push(format!(
            "  ~ {key}: undo {} (was: {})",
            show(now.0),
            show(was.0)
        ));
        old.undo = new.undo.clone();
        old.no_undo = new.no_undo.clone();
    }
    if diff.is_empty() {
        return Ok(());
    }
    notice(
        json,
        "undo-replaced",
        &format!(
            "the recipe's undo changed since the rollback failed; using it now:\n{}",
            diff.join("\n")
        ),
    );
    journal.replace_plan(run.id, &plan)?;
    journal.event(run.id, "undo-replaced", &diff.join("; "))?;
    Ok(())
}

/// The plan the recipe makes now with the run's own facts and target.
fn replan(run: &crate::run::journal::RunRecord) -> Result<Plan, String> {
    let loaded = crate::recipe::load(Path::new(&run.recipe_path)).map_err(|e| e.to_string())?;
    let recipe = loaded
        .recipe
        .ok_or_else(|| "it no longer lints clean (see `hoist lint`)".to_string())?;
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&run.facts_json).map_err(|e| e.to_string())?;
    let facts = Facts::from_text_map(&recipe.catalogue, &map)?;
    match crate::plan::resolve(&recipe, &facts, Some(&run.plan.target))
        .map_err(|e| e.to_string())?
    {
        Outcome::Plan(mut p) => {
            // A run of a rollout left steps to it: so does its plan now.
            let deferred = |s: &crate::plan::SkippedStep| {
                matches!(s.reason, crate::plan::SkipReason::Deferred { .. })
            };
            if run.plan.skipped.iter().any(deferred) {
                p.defer_to_rollout(&recipe);
            }
            Ok(*p)
        }
        Outcome::UpToDate { .. } => Err("the recipe has nothing to do now".into()),
    }
}

/// The plan the changed recipe makes with the run's own facts, and what
/// differs from the journaled one; `None` when nothing does.
fn changed_plan(
    run: &crate::run::journal::RunRecord,
) -> Result<Option<(Plan, Vec<String>)>, String> {
    let old = &run.plan;
    let plan = replan(run)?;
    if plan.hash == old.hash {
        return Ok(None);
    }
    let json = |s: &crate::plan::PlannedStep| {
        serde_json::to_string(&(&s.action, &s.undo, &s.probe, s.phase)).unwrap_or_default()
    };
    let mut diff = Vec::new();
    for s in &plan.steps {
        match old.steps.iter().find(|o| o.key == s.key) {
            None => diff.push(format!("  + {} ({}): {}", s.key, s.phase.name(), s.summary)),
            Some(o) if json(o) != json(s) => {
                diff.push(format!("  ~ {}: {} (was: {})", s.key, s.summary, o.summary))
            }
            _ => {}
        }
    }
    for o in &old.steps {
        if !plan.steps.iter().any(|s| s.key == o.key) {
            diff.push(format!("  - {} ({}): {}", o.key, o.phase.name(), o.summary));
        }
    }
    if diff.is_empty() {
        diff.push("  (the same steps, in another order or with other skips)".into());
    }
    Ok(Some((plan, diff)))
}

pub fn rollback(state_dir: &Path, json: bool, skip: &[String], reason: &str, all: bool) -> u8 {
    crate::sys::process::stop::install();
    let run = || -> Result<u8, RunError> {
        let (_lock, mut journal, run) = match take_unfinished(state_dir, json, "roll back")? {
            Ok(taken) => taken,
            Err(code) => return Ok(code),
        };
        if let Some((point, why)) = crate::run::point_passed(&run) {
            return Ok(refuse(
                json,
                EXIT_REFUSED,
                "past-point-of-no-return",
                &format!(
                    "run {} is past its point of no return ({point}: {why}): it cannot be rolled back. Fix the cause, then `hoist resume`",
                    run.id
                ),
            ));
        }
        if let Some(bad) = skip
            .iter()
            .find(|k| !run.steps.iter().any(|s| &s.key == *k))
        {
            return Ok(refuse(
                json,
                EXIT_USAGE,
                "bad-skip",
                &format!(
                    "--skip {bad}: run {} has no such step (its steps: {})",
                    run.id,
                    run.steps
                        .iter()
                        .map(|s| s.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if skip.iter().any(|_| reason.trim().is_empty()) {
            return Ok(refuse(
                json,
                EXIT_USAGE,
                "bad-skip",
                "--skip needs a --reason",
            ));
        }
        wait_for_boot(json);
        refresh_failed_undos(&mut journal, &run, json)?;
        journal.event(run.id, "rollback", "asked for by the admin")?;
        let mut engine = Engine::open(journal, run.id, json)?;
        engine.skip_undo = skip.to_vec();
        engine.skip_reason = reason.to_string();
        // A run that failed past a stop it keeps goes back to that stop
        // (finishing what an interrupted return there left), unless the
        // admin asks for the start.
        let ending = match crate::run::kept_hops(&run) {
            Some(hop) if !all && run.state == crate::run::state::RunState::Failed => {
                engine.roll_back_to_stop(hop, None)?
            }
            _ => engine.rollback(None)?,
        };
        Ok(report_ending(&engine, &ending))
    };
    run().unwrap_or_else(|e| refuse(json, EXIT_REFUSED, "error", &e.to_string()))
}
