//! The host side of the SSH transport: what the controller runs on a host
//! besides `hoist upgrade --rollout ID --json` and `hoist status --json`.
//!
//! `hoist fleet-action -r RECIPE --id STEP` runs one run-once step (an
//! action of the registry) with the action read as JSON on stdin, so what
//! it carries (a command, a password of a `db` step) is never in argv.
//! It takes the host's lock: a run-once step never runs beside an upgrade.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::actions::Action;
use crate::output::wire::{self, Event};
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct ActionArgs {
    /// The recipe the step belongs to (its directory and services).
    #[arg(short, long)]
    pub recipe: PathBuf,
    /// The step's id, for the log and the messages.
    #[arg(long)]
    pub id: String,
    /// The admin confirmed this step's person gate for the rollout
    /// (`hoist fleet upgrade --confirm ID`).
    #[arg(long)]
    pub confirmed: bool,
    /// The host step this run-once step takes (`step = ID`): run only when
    /// this host's plan of rollout `--rollout` took it, with that plan's
    /// action.
    #[arg(long, requires = "rollout")]
    pub step: Option<String>,
    /// The rollout's tag, as `hoist upgrade --rollout` journaled it.
    #[arg(long)]
    pub rollout: Option<String>,
}

/// Always ends with one `action-finished` line on stdout (`ok`, and the
/// `error` when not), which the controller reads.
pub fn action(args: &ActionArgs, state_dir: &Path) -> u8 {
    let (code, error) = match run(args, state_dir) {
        Ok(()) => (EXIT_OK, None),
        Err((code, e)) => (code, Some(e)),
    };
    wire::emit(Event::ActionFinished {
        step: args.id.clone(),
        ok: error.is_none(),
        error,
    });
    code
}

fn run(args: &ActionArgs, state_dir: &Path) -> Result<(), (u8, String)> {
    let mut text = String::new();
    std::io::stdin()
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| (EXIT_USAGE, format!("reading the action on stdin: {e}")))?;
    let mut action: Action = serde_json::from_str(&text)
        .map_err(|e| (EXIT_USAGE, format!("the action on stdin is not valid: {e}")))?;
    if !action.executable() {
        return Err((
            EXIT_REFUSED,
            format!("this hoist cannot run `{}` steps", action.kind()),
        ));
    }
    let loaded = crate::recipe::load(&args.recipe)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", args.recipe.display())))?;
    let recipe = loaded.recipe.ok_or_else(|| {
        (
            EXIT_USAGE,
            format!("{} is not a valid recipe", args.recipe.display()),
        )
    })?;
    let _lock = crate::run::lock::acquire(state_dir, "fleet-action")
        .map_err(|e| (EXIT_REFUSED, e.to_string()))?;
    let mut journal =
        crate::run::journal::Journal::open(state_dir).map_err(|e| (EXIT_REFUSED, e.to_string()))?;
    if let (Some(step), Some(tag)) = (&args.step, &args.rollout) {
        match taken_here(&journal, step, tag)? {
            Ok(own) => action = own,
            Err(why) => {
                wire::emit(Event::StepProgress {
                    step: args.id.clone(),
                    line: format!("skipped: {why}"),
                });
                return Ok(());
            }
        }
    }
    // The step's output and what its undo would keep go beside the
    // rollout's copy of the recipe, not into a run's log: there is no run.
    let recipe_dir = recipe.dir();
    let work = recipe_dir
        .parent()
        .unwrap_or(&recipe_dir)
        .join(format!("once-{}", safe(&args.id)));
    crate::sys::fsutil::private_dir(&work)
        .map_err(|e| (EXIT_REFUSED, format!("{}: {e}", work.display())))?;
    let log_path = work.join("output.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| (EXIT_REFUSED, format!("{}: {e}", log_path.display())))?;
    let ask = |_: &str| None;
    // Before the answer line, one JSON line per progress line (a long
    // wait, a followed log), which the controller shows as they come.
    let progress = |line: &str| {
        wire::emit(Event::StepProgress {
            step: args.id.clone(),
            line: line.to_string(),
        });
    };
    let confirmed = args
        .confirmed
        .then(|| "confirmed for the rollout (hoist fleet --confirm)".to_string());
    let mut ctx = crate::actions::ctx::Ctx::new(
        &recipe.product.name,
        &recipe_dir,
        &recipe.services,
        &log,
        &mut journal,
    )
    .with_run(0, vec![("HOIST_FLEET_STEP".into(), args.id.clone())])
    .with_step_dir(work.clone(), false)
    .with_person(false, confirmed, &ask)
    .with_progress(&progress);
    action
        .preflight(&ctx)
        .and_then(|()| action.apply(&mut ctx))
        .map_err(|e| {
            let out = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = out.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            (
                EXIT_REFUSED,
                if tail.is_empty() {
                    e
                } else {
                    format!("{e} (output: {})", tail.join(" | "))
                },
            )
        })
}

/// The action this host's plan of rollout `tag` left to the rollout for
/// host step `step`; `Err` says why there is none (the plan did not take
/// the step here: another hop, a `when`, or no run of the rollout).
fn taken_here(
    journal: &crate::run::journal::Journal,
    step: &str,
    tag: &str,
) -> Result<Result<Action, String>, (u8, String)> {
    let refused = |e: crate::run::journal::JournalError| (EXIT_REFUSED, e.to_string());
    let Some(run) = journal.run_of_rollout(tag).map_err(refused)? else {
        return Ok(Err(format!("no run of rollout {tag} on this host")));
    };
    let plan = journal.load_run(run).map_err(refused)?.plan;
    Ok(match plan.deferred(step) {
        Some(a) => Ok(a.clone()),
        None => Err(match plan.skipped.iter().find(|s| s.id == step) {
            Some(s) => format!(
                "this host's plan of the rollout did not take {step}: {}",
                s.reason
            ),
            None => format!("this host's plan of the rollout has no step {step}"),
        }),
    })
}

/// A step id as a file name.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
