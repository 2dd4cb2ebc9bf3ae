//! `hoist fleet plan | upgrade | resume | rollback | status`: the fleet's
//! commands (see `cli` for the exit codes); `upgrade`, `resume` and
//! `rollback` are in `drive`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::output::wire::refuse as fail;
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED};

/// `--limit`'s help, shared by `plan` and `upgrade`.
const LIMIT: &str = "Only the hosts this Ansible host pattern selects: names, groups, \
`a,b` or `a:b`, `&` intersect, `!` exclude, `web*`, `~regex`, `group[0]`, `group[1:3]`, \
`@FILE` (one pattern a line). A pattern that matches nothing is refused";

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Show the rollout: stages, batches and hosts, run-once steps and
    /// gates, in order.
    Plan {
        /// The inventory: hoist's TOML, or an Ansible inventory (INI, YAML,
        /// JSON, or a directory of them, with group_vars/ and host_vars/).
        #[arg(short, long, value_name = "INVENTORY")]
        inventory: PathBuf,
        /// The recipe (a file, or a directory with recipe.toml).
        #[arg(short, long, env = "HOIST_RECIPE")]
        recipe: PathBuf,
        /// The version every host goes to (default: each host's candidate).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        #[arg(short, long, value_name = "PATTERN", help = LIMIT)]
        limit: Option<String>,
    },
    /// Roll out: show the plan, ask (unless --yes), then upgrade each host
    /// over SSH in the plan's order, with its gates and thresholds.
    Upgrade {
        #[command(flatten)]
        run: super::drive::RunArgs,
        /// The version every host goes to (default: each host's candidate).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        #[arg(short, long, value_name = "PATTERN", help = LIMIT)]
        limit: Option<String>,
        /// Do not ask for confirmation.
        #[arg(short = 'f', long = "yes", visible_short_alias = 'y')]
        yes: bool,
    },
    /// Carry on with the last rollout (after a pause, a failed step, or a
    /// controller that died): hosts already ended are never upgraded again.
    /// Its --limit is the rollout's, journaled with its plan.
    Resume {
        #[command(flatten)]
        run: super::drive::RunArgs,
    },
    /// Put every host the last rollout touched back as before it: its
    /// run-once steps undone and its hosts' runs rolled back (committed
    /// ones too), newest first; shows what it will do and asks (unless
    /// --yes). Run again after a failure or a kill: what was undone is not
    /// undone again.
    Rollback {
        #[command(flatten)]
        run: super::drive::RunArgs,
        /// Do not ask for confirmation.
        #[arg(short = 'f', long = "yes", visible_short_alias = 'y')]
        yes: bool,
    },
    /// Where the last rollout stands: hosts done, failed, running, not
    /// started, and what to do next.
    Status,
}

pub fn main(command: &FleetCommand, state_dir: &Path, json: bool) -> u8 {
    match command {
        FleetCommand::Plan {
            inventory,
            recipe,
            to,
            limit,
        } => plan(inventory, recipe, (to.as_deref(), limit.as_deref()), json),
        FleetCommand::Status => status(state_dir, json),
        FleetCommand::Upgrade {
            run,
            to,
            limit,
            yes,
        } => super::drive::upgrade(
            run,
            (to.as_deref(), limit.as_deref()),
            *yes,
            state_dir,
            json,
        ),
        FleetCommand::Resume { run } => super::drive::resume(run, state_dir, json),
        FleetCommand::Rollback { run, yes } => super::drive::rollback(run, *yes, state_dir, json),
    }
}

fn plan(
    inventory: &Path,
    recipe: &Path,
    (to, limit): (Option<&str>, Option<&str>),
    json: bool,
) -> u8 {
    match super::drive::load(inventory, recipe, to, limit, json) {
        Ok((_, inv, p)) => {
            for w in &inv.warnings {
                errln!("hoist: {w}");
            }
            if json {
                crate::output::wire::print_doc(&p);
            } else {
                out!("{}", p.render());
            }
            EXIT_OK
        }
        Err(code) => code,
    }
}

fn status(state_dir: &Path, json: bool) -> u8 {
    let journal = match super::journal::FleetJournal::open_existing(state_dir) {
        Ok(Some(j)) => j,
        Ok(None) => {
            return fail(
                json,
                EXIT_OK,
                "no-rollout",
                &format!("no fleet rollout in {}", state_dir.display()),
            );
        }
        // As the host's `status`: a journal refused or unreadable is not a
        // usage error.
        Err(e) => return fail(json, EXIT_REFUSED, "journal", &e.to_string()),
    };
    match journal.latest() {
        Ok(Some(view)) => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&crate::output::wire::Doc {
                        schema: crate::output::wire::SCHEMA,
                        body: view.summary_json(),
                    })
                    .unwrap_or_default()
                );
            } else {
                out!("{}", view.summary());
            }
            EXIT_OK
        }
        Ok(None) => fail(json, EXIT_OK, "no-rollout", "no fleet rollout yet"),
        Err(e) => fail(json, EXIT_REFUSED, "journal", &e.to_string()),
    }
}
