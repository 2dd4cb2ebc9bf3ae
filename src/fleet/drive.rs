//! `hoist fleet upgrade`, `hoist fleet resume` and `hoist fleet rollback`:
//! a rollout driven (or undone, `fleet::rollback`) over SSH. The plan is shown and confirmed, the controller's state directory
//! locked (`fleet.lock`), SIGINT/SIGTERM set the executor's pause flag
//! (the rollout stops cleanly before its next item; hosts upgrading finish),
//! and every host's progress is shown as it comes (`--json`: events).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Args;

use super::inventory::Inventory;
use super::journal::{FleetJournal, RolloutView};
use super::plan::{FleetPlan, Item};
use super::rollback::{
    Options as RbOptions, Outcome as RbOutcome, Progress as RbProgress, Rollback, Undo, undos,
};
use super::run::{Executor, Options, Outcome, Progress};
use super::ssh::{Settings, SshTransport};
use super::state::FleetState;
use super::transport::{HostEvent, HostResult};
use crate::output::wire::{self, FleetEvent, refuse as fail};
use crate::recipe::Recipe;
use crate::sys::exit::{EXIT_OK, EXIT_PAUSED, EXIT_REFUSED, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The inventory: hoist's TOML, or an Ansible inventory (INI, YAML).
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,
    /// The recipe (a file, or a directory with recipe.toml).
    #[arg(short, long, env = "HOIST_RECIPE")]
    pub recipe: PathBuf,
    /// ssh's configuration file (`ssh -F`); default: the admin's own.
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// The hoist binary copied to the hosts (default: this one).
    #[arg(long, value_name = "FILE")]
    pub hoist_binary: Option<PathBuf>,
    /// Bound on one host's upgrade: past it the host is counted failed
    /// (it goes on by its own journal).
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = humantime::parse_duration)]
    pub host_timeout: Duration,
    /// Bound on connecting to a host.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Confirm a person's gate for the rollout (upgrade, resume): GATE on
    /// every host that meets it, GATE@HOST on one. `--yes` never does; a
    /// host that meets an unconfirmed one pauses there. Repeatable.
    #[arg(long = "confirm", value_name = "GATE[@HOST]")]
    pub confirm: Vec<String>,
}

/// A value as JSON for an event that carries a document made elsewhere.
fn doc<T: serde::Serialize>(x: &T) -> serde_json::Value {
    serde_json::to_value(x).unwrap_or_default()
}

/// The recipe, the inventory and the plan; `Err` is the exit code, the
/// problems printed.
pub fn load(
    inventory: &Path,
    recipe: &Path,
    to: Option<&str>,
    limit: Option<&str>,
    json: bool,
) -> Result<(Recipe, Inventory, FleetPlan), u8> {
    let recipe = crate::recipe::load_for_command(recipe, json)?;
    if let Some(t) = to
        && let Err(e) = crate::version::Version::parse(t)
    {
        return Err(fail(json, EXIT_USAGE, "bad-version", &format!("--to: {e}")));
    }
    let inventory = match super::inventory::load(inventory) {
        Ok(i) => i,
        Err(super::inventory::InventoryError::Invalid(problems)) => {
            for p in &problems {
                if json {
                    outln!("{}", p.to_json());
                } else {
                    errln!("{}", p.render());
                }
            }
            return Err(fail(
                json,
                EXIT_USAGE,
                "invalid-inventory",
                &format!("{} problem(s) in the inventory", problems.len()),
            ));
        }
        Err(e) => return Err(fail(json, EXIT_USAGE, "unreadable", &e.to_string())),
    };
    match super::plan::plan_limited(&recipe, &inventory, to, limit) {
        Ok(p) => Ok((recipe, inventory, p)),
        Err(e @ super::plan::FleetPlanError::NoFleet { .. }) => {
            Err(fail(json, EXIT_REFUSED, "no-fleet", &e.to_string()))
        }
        Err(
            e @ (super::plan::FleetPlanError::Limit(_)
            | super::plan::FleetPlanError::OutsideLimit { .. }),
        ) => Err(fail(json, EXIT_USAGE, "bad-limit", &e.to_string())),
        Err(e) => Err(fail(json, EXIT_USAGE, "cannot-plan", &e.to_string())),
    }
}

fn settings(args: &RunArgs, state_dir: &Path) -> Result<Settings, String> {
    let binary = match &args.hoist_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| format!("this hoist's own binary: {e}"))?,
    };
    Ok(Settings {
        ssh: crate::ssh::Options {
            config: args.ssh_config.clone(),
            connect_timeout: args.connect_timeout,
            // Short: a control socket's path must fit in 108 bytes.
            control_dir: short_control_dir(state_dir),
        },
        binary,
        host_timeout: args.host_timeout,
        copy_timeout: Duration::from_secs(300),
        poll: Duration::from_secs(1),
    })
}

/// The state directory's `ssh/` when its path is short enough for a
/// socket, else one under /tmp named after the process.
fn short_control_dir(state_dir: &Path) -> PathBuf {
    let d = state_dir.join("ssh");
    if d.as_os_str().len() <= 60 {
        d
    } else {
        std::env::temp_dir().join(format!("hoist-ssh-{}", std::process::id()))
    }
}

pub fn upgrade(
    args: &RunArgs,
    (to, limit): (Option<&str>, Option<&str>),
    yes: bool,
    state_dir: &Path,
    json: bool,
) -> u8 {
    let (recipe, inventory, plan) = match load(&args.inventory, &args.recipe, to, limit, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let _lock = match crate::run::lock::acquire_file(state_dir, "fleet.lock", "fleet upgrade") {
        Ok(l) => l,
        Err(e) => return fail(json, EXIT_REFUSED, "locked", &e.to_string()),
    };
    let mut journal = match FleetJournal::open(state_dir) {
        Ok(j) => j,
        Err(e) => return fail(json, EXIT_USAGE, "journal", &e.to_string()),
    };
    match journal.latest() {
        Ok(Some(v)) if v.state.rolling_back() || v.state.resumable() => {
            let (error, next) = if v.state.rolling_back() {
                ("rolling-back", "finish it with `hoist fleet rollback")
            } else {
                ("unfinished", "carry on with `hoist fleet resume")
            };
            return fail(
                json,
                EXIT_REFUSED,
                error,
                &format!(
                    "rollout {} is {}: {next} -i INVENTORY -r RECIPE` (see `hoist fleet status`)",
                    v.id, v.state
                ),
            );
        }
        Ok(_) => {}
        Err(e) => return fail(json, EXIT_USAGE, "journal", &e.to_string()),
    }
    if json {
        wire::emit(FleetEvent::FleetPlan { plan: doc(&plan) });
    } else {
        out!("{}", plan.render());
    }
    let n = plan.upgraded().count();
    let question = format!("Upgrade {n} host(s) as above? [y/N] ");
    if let Err(code) = confirm(json, yes, &question, "roll out") {
        return code;
    }
    let settings = match settings(args, state_dir) {
        Ok(s) => s,
        Err(e) => return fail(json, EXIT_USAGE, "binary", &e),
    };
    // Checked before the rollout is journaled: a refusal leaves none.
    let transport = match SshTransport::new(settings, &recipe, &inventory, &plan) {
        Ok(t) => t,
        Err(e) => return fail(json, EXIT_REFUSED, "cannot-start", &e),
    };
    let run = match journal.create(&plan) {
        Ok(r) => r,
        Err(e) => return fail(json, EXIT_USAGE, "journal", &e.to_string()),
    };
    let transport = transport.for_rollout(run, &plan);
    drive(&mut journal, &transport, run, json, &args.confirm, |ex| {
        ex.run(run)
    })
}

pub fn resume(args: &RunArgs, state_dir: &Path, json: bool) -> u8 {
    let (_lock, mut journal, view) = match last_rollout(state_dir, json, "resume") {
        Ok(x) => x,
        Err(code) => return code,
    };
    if !view.state.resumable() {
        if !json {
            outln!(
                "nothing to resume: rollout {} is {} (see `hoist fleet status`)",
                view.id,
                view.state
            );
        }
        return EXIT_OK;
    }
    if view.state == FleetState::PartlyRolledBack {
        return refuse_partly_rolled_back(&view, json);
    }
    let transport = match transport_for(args, &view, state_dir, json) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !json {
        outln!("resuming rollout {} ({})", view.id, view.state);
    }
    let id = view.id;
    drive(&mut journal, &transport, id, json, &args.confirm, |ex| {
        ex.resume().map(|o| o.map_or(Outcome::Done, |(_, o)| o))
    })
}

/// Asks `question` unless `yes`; `Err` is the exit code: no terminal to
/// ask on (usage), or not confirmed (an abort: nothing was changed, exit 1).
fn confirm(json: bool, yes: bool, question: &str, verb: &str) -> Result<(), u8> {
    if yes {
        return Ok(());
    }
    if !crate::output::ui::interactive() {
        return Err(fail(
            json,
            EXIT_USAGE,
            "no-terminal",
            &format!("no terminal to ask for confirmation: add --yes to {verb} without asking"),
        ));
    }
    let answer = crate::output::ui::ask(question);
    // As apt: a prompt answered no is an abort, not a success.
    if !matches!(answer.as_deref().map(str::trim), Some("y" | "Y" | "yes")) {
        outln!("Abort: nothing was changed");
        return Err(EXIT_REFUSED);
    }
    Ok(())
}

/// `fleet.lock` (held: a controller runs this rollout now, refused), the
/// controller's journal and its last rollout; `Err` is the exit code.
fn last_rollout(
    state_dir: &Path,
    json: bool,
    what: &str,
) -> Result<(crate::run::lock::Lock, FleetJournal, RolloutView), u8> {
    let lock = crate::run::lock::acquire_file(state_dir, "fleet.lock", &format!("fleet {what}"))
        .map_err(|e| {
            fail(
                json,
                EXIT_REFUSED,
                "locked",
                &format!("refused: the rollout's controller is running ({e}); `hoist fleet {what}` once it has stopped"),
            )
        })?;
    let none = || {
        fail(
            json,
            EXIT_OK,
            "no-rollout",
            &format!("no fleet rollout to {what}"),
        )
    };
    let journal = match FleetJournal::open_existing(state_dir) {
        Ok(Some(j)) => j,
        Ok(None) => return Err(none()),
        Err(e) => return Err(fail(json, EXIT_USAGE, "journal", &e.to_string())),
    };
    match journal.latest() {
        Ok(Some(v)) => Ok((lock, journal, v)),
        Ok(None) => Err(none()),
        Err(e) => Err(fail(json, EXIT_USAGE, "journal", &e.to_string())),
    }
}

/// The SSH transport for a journaled rollout, from the inventory and the
/// recipe given, which must make the same plan: the journal's items are
/// walked, and hosts would be matched to the wrong ones.
fn transport_for(
    args: &RunArgs,
    view: &RolloutView,
    state_dir: &Path,
    json: bool,
) -> Result<SshTransport, u8> {
    let (recipe, inventory, plan) = load(
        &args.inventory,
        &args.recipe,
        view.plan.target.as_deref(),
        // The rollout's own limit: the same hosts, the same plan.
        view.plan.limit.as_deref(),
        json,
    )?;
    if plan.hash != view.plan.hash {
        return Err(fail(
            json,
            EXIT_REFUSED,
            "plan-changed",
            &format!(
                "the inventory or the recipe's [fleet] changed since rollout {} started: its plan is not the same (see `hoist fleet plan`); use the same files",
                view.id
            ),
        ));
    }
    let settings = settings(args, state_dir).map_err(|e| fail(json, EXIT_USAGE, "binary", &e))?;
    SshTransport::new(settings, &recipe, &inventory, &view.plan)
        .map(|t| t.for_rollout(view.id, &view.plan))
        .map_err(|e| fail(json, EXIT_REFUSED, "cannot-start", &e))
}

/// `hoist fleet rollback`: the last rollout's undos (`fleet::rollback`),
/// shown and confirmed, then run over SSH; stops at the first failure.
pub fn rollback(args: &RunArgs, yes: bool, state_dir: &Path, json: bool) -> u8 {
    let (_lock, mut journal, view) = match last_rollout(state_dir, json, "rollback") {
        Ok(x) => x,
        Err(code) => return code,
    };
    if view.state == FleetState::RolledBack {
        if !json {
            outln!(
                "nothing to roll back: rollout {} is rolled back (see `hoist fleet status`)",
                view.id
            );
        }
        return EXIT_OK;
    }
    if view.state == FleetState::PartlyRolledBack {
        return refuse_partly_rolled_back(&view, json);
    }
    let transport = match transport_for(args, &view, state_dir, json) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let todo: Vec<Undo> = undos(&view)
        .into_iter()
        .filter(|u| !view.undo_state(u.seq(), u.host()).ended())
        .collect();
    if json {
        let list: Vec<String> = todo.iter().map(Undo::describe).collect();
        wire::emit(FleetEvent::FleetRollbackPlan {
            rollout: view.id,
            state: view.state.to_string(),
            undos: list,
        });
    } else {
        outln!(
            "Rolling back rollout {} of {} ({}), newest first:",
            view.id,
            view.plan.product,
            view.state
        );
        for (n, u) in todo.iter().enumerate() {
            outln!("{:>3}. {}", n + 1, u.describe());
        }
        if todo.is_empty() {
            outln!("  nothing left to undo");
        }
    }
    if let Err(code) = confirm(json, yes, "Roll back as above? [y/N] ", "roll back") {
        return code;
    }
    let started = Instant::now();
    let mut progress = |p: RbProgress<'_>| {
        let t = started.elapsed().as_secs_f64();
        match p {
            RbProgress::Started(u) if json => {
                wire::emit(FleetEvent::FleetUndoStarted { what: u.describe() })
            }
            RbProgress::Started(u) => outln!("[{t:7.1}s] {}", u.describe()),
            RbProgress::Ended(u, state, detail) if json => {
                wire::emit(FleetEvent::FleetUndoFinished {
                    what: u.label(),
                    host: u.host().to_string(),
                    state: state.to_string(),
                    detail: detail.map(|d| d.to_string()),
                })
            }
            RbProgress::Ended(u, state, detail) => outln!(
                "[{t:7.1}s]   {}: {state}{}",
                u.label(),
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
        }
    };
    let outcome = Rollback::new(
        &mut journal,
        &transport,
        RbOptions::default(),
        &mut progress,
    )
    .run(view.id);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(json, EXIT_REFUSED, "journal", &e.to_string()),
    };
    let after = journal.load(view.id).ok();
    if json {
        wire::emit(FleetEvent::RollbackFinished {
            rollout: view.id,
            state: after.as_ref().map(|v| v.state.to_string()),
            error: match &outcome {
                RbOutcome::Failed(e) => Some(e.clone()),
                _ => None,
            },
            left: match &outcome {
                RbOutcome::PartlyRolledBack(l) => Some(l.clone()),
                _ => None,
            },
            summary: after.as_ref().map(|v| v.summary_json()),
        });
    } else {
        match &outcome {
            RbOutcome::Failed(why) => outln!("rollback stopped: {why}"),
            RbOutcome::PartlyRolledBack(left) => outln!(
                "Partly rolled back: the fleet is NOT as it was before rollout {}; left as they are: {}",
                view.id,
                left.join("; ")
            ),
            RbOutcome::RolledBack | RbOutcome::Crashed => {}
        }
        if let Some(v) = &after {
            out!("{}", v.summary());
        }
    }
    match outcome {
        RbOutcome::RolledBack => EXIT_OK,
        // As a host's partly rolled back run: not a success.
        RbOutcome::PartlyRolledBack(_) | RbOutcome::Failed(_) | RbOutcome::Crashed => EXIT_REFUSED,
    }
}

/// Runs the executor with live progress and the pause flag on signals;
/// reports how it ended.
fn drive(
    journal: &mut FleetJournal,
    transport: &SshTransport,
    run: i64,
    json: bool,
    confirm: &[String],
    go: impl FnOnce(&mut Executor<'_>) -> Result<Outcome, crate::run::journal::JournalError>,
) -> u8 {
    let pause = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&pause));
    }
    let started = Instant::now();
    if json {
        wire::emit(FleetEvent::RolloutStarted {
            rollout: run,
            tag: transport.tag().to_string(),
        });
    }
    let mut progress = |p: Progress<'_>| show(json, started, p);
    let outcome = {
        let mut ex = Executor::new(
            journal,
            transport,
            Options {
                pause: Some(Arc::clone(&pause)),
                crash_after_hosts: None,
                confirm: confirm.to_vec(),
                // A person's gate reached on a host is asked here when a
                // person is at this terminal (bounded as a host gate is,
                // and at once given up on a pause signal).
                ask: (!json && crate::output::ui::interactive()).then(|| {
                    let ask: super::run::Asker = Arc::new(|q: &str| {
                        crate::output::ui::ask_within(q, Some(Duration::from_secs(24 * 3600)))
                            .is_some_and(|a| a.trim() == "yes")
                    });
                    ask
                }),
            },
            &mut progress,
        );
        go(&mut ex)
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(json, EXIT_REFUSED, "journal", &e.to_string()),
    };
    let (state, code) = match &outcome {
        Outcome::Done => ("done", EXIT_OK),
        Outcome::Paused | Outcome::Waiting(_) => ("paused", EXIT_PAUSED),
        Outcome::Stopped(_) => ("stopped", EXIT_REFUSED),
        Outcome::Failed(_) => ("failed", EXIT_REFUSED),
        Outcome::Crashed => ("crashed", EXIT_REFUSED),
    };
    let view = journal.load(run).ok();
    if let Some(v) = &view {
        super::metrics::write(v, state, started.elapsed().as_secs_f64());
    }
    if json {
        wire::emit(FleetEvent::RolloutFinished {
            rollout: run,
            state: state.to_string(),
            summary: view.as_ref().map(|v| v.summary_json()),
            seconds: started.elapsed().as_secs_f64(),
        });
    } else {
        if let Some(v) = &view {
            out!("{}", v.summary());
        }
        if outcome == Outcome::Paused {
            outln!(
                "paused: hosts already upgrading finished; `hoist fleet resume -i INVENTORY -r RECIPE` goes on"
            );
        }
        if let Outcome::Waiting(why) = &outcome {
            outln!("paused: {why}");
        }
    }
    code
}

/// One line per thing that happens, prefixed by the time since the start.
fn show(json: bool, started: Instant, p: Progress<'_>) {
    let t = started.elapsed().as_secs_f64();
    match p {
        Progress::Item(n, item) => {
            let what = match item {
                Item::RunOnce { id, host, .. } => format!("{id} on {host}"),
                Item::RunOnEach {
                    id, role, hosts, ..
                } => format!("{id} on every {role}: {}", hosts.join(", ")),
                Item::Skipped { id, reason } => format!("{id}: skipped ({reason})"),
                Item::Batch {
                    stage,
                    number,
                    of,
                    hosts,
                } => format!("stage {stage}, batch {number}/{of}: {}", hosts.join(", ")),
                Item::Pause { after } => format!("pause after stage {after}"),
            };
            if json {
                wire::emit(FleetEvent::FleetItem { n, item: what });
            } else {
                outln!("[{t:7.1}s] {what}");
            }
        }
        Progress::HostStarted(h) => {
            if json {
                wire::emit(FleetEvent::HostStarted {
                    host: h.to_string(),
                });
            } else {
                outln!("[{t:7.1}s]   {h}: started");
            }
        }
        Progress::HostEvent(h, e) => {
            if json {
                wire::emit(FleetEvent::HostEvent {
                    host: h.to_string(),
                    detail: doc(&e),
                });
                return;
            }
            match e {
                HostEvent::Started => outln!("[{t:7.1}s]   {h}: run started"),
                HostEvent::Step { id, state } if state != "running" => {
                    outln!("[{t:7.1}s]   {h}: {id} {state}")
                }
                HostEvent::Step { .. } => {}
                HostEvent::Note { text } => outln!("[{t:7.1}s]   {h}: {text}"),
            }
        }
        Progress::HostEnded(h, r) => {
            if json {
                wire::emit(FleetEvent::HostFinished {
                    host: h.to_string(),
                    ok: r.ok(),
                    result: doc(&r),
                });
            } else {
                let word = match r {
                    HostResult::Committed => "UPGRADED",
                    HostResult::RolledBack(_) => "ROLLED BACK",
                    HostResult::Failed(_) => "FAILED",
                    HostResult::Lost(_) => "NO ANSWER",
                    HostResult::Waiting { .. } => "WAITS FOR A PERSON",
                };
                outln!("[{t:7.1}s]   {h}: {word}: {}", r.detail());
            }
        }
        Progress::OnceEnded(h, id, r) => {
            if json {
                wire::emit(FleetEvent::HostStepFinished {
                    host: h.to_string(),
                    id: id.to_string(),
                    ok: r.is_ok(),
                    error: r.as_ref().err().map(|e| e.to_string()),
                });
            } else {
                match r {
                    Ok(()) => outln!("[{t:7.1}s]   {h}: {id} done"),
                    Err(e) => outln!("[{t:7.1}s]   {h}: {id} FAILED: {e}"),
                }
            }
        }
    }
}

/// A partly rolled back rollout is final, as a host's run: running the
/// undos again changes nothing, and "nothing to do" with success would hide
/// what stays as it is.
fn refuse_partly_rolled_back(view: &RolloutView, json: bool) -> u8 {
    if !json {
        out!("{}", view.summary());
    }
    fail(
        json,
        EXIT_REFUSED,
        "partly-rolled-back",
        &format!(
            "nothing more to do: rollout {} is partly rolled back; what it left is listed by `hoist fleet status`",
            view.id
        ),
    )
}
