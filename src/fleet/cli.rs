//! `hoist fleet plan | status`: the fleet's commands (see `cli` for the
//! exit codes). `upgrade` and `resume` come with the SSH transport; the
//! executor they will drive is `run::Executor`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::cli::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Show the rollout: stages, batches and hosts, run-once steps and
    /// gates, in order.
    Plan {
        /// The inventory: hoist's TOML, or an Ansible inventory (INI, YAML).
        #[arg(short, long, value_name = "INVENTORY")]
        inventory: PathBuf,
        /// The recipe (a file, or a directory with recipe.toml).
        #[arg(short, long, env = "HOIST_RECIPE")]
        recipe: PathBuf,
        /// The version every host goes to (default: each host's candidate).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
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
        } => plan(inventory, recipe, to.as_deref(), json),
        FleetCommand::Status => status(state_dir, json),
    }
}

fn fail(json: bool, code: u8, error: &str, message: &str) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": error, "message": message })
        );
    } else {
        eprintln!("hoist: {message}");
    }
    code
}

fn plan(inventory: &Path, recipe: &Path, to: Option<&str>, json: bool) -> u8 {
    let recipe = match crate::cli::load(recipe, json) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(t) = to
        && let Err(e) = crate::version::Version::parse(t)
    {
        return fail(json, EXIT_USAGE, "bad-version", &format!("--to: {e}"));
    }
    let inventory = match super::inventory::load(inventory) {
        Ok(i) => i,
        Err(super::inventory::InventoryError::Invalid(problems)) => {
            for p in &problems {
                if json {
                    println!("{}", p.to_json());
                } else {
                    eprintln!("{}", p.render());
                }
            }
            return fail(
                json,
                EXIT_USAGE,
                "invalid-inventory",
                &format!("{} problem(s) in the inventory", problems.len()),
            );
        }
        Err(e) => return fail(json, EXIT_USAGE, "unreadable", &e.to_string()),
    };
    match super::plan::plan(&recipe, &inventory, to) {
        Ok(p) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            } else {
                print!("{}", p.render());
            }
            EXIT_OK
        }
        Err(e @ super::plan::FleetPlanError::NoFleet { .. }) => {
            fail(json, EXIT_REFUSED, "no-fleet", &e.to_string())
        }
        Err(e) => fail(json, EXIT_USAGE, "cannot-plan", &e.to_string()),
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
        Err(e) => return fail(json, EXIT_USAGE, "journal", &e.to_string()),
    };
    match journal.latest() {
        Ok(Some(view)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&view.summary_json()).unwrap_or_default()
                );
            } else {
                print!("{}", view.summary());
            }
            EXIT_OK
        }
        Ok(None) => fail(json, EXIT_OK, "no-rollout", "no fleet rollout yet"),
        Err(e) => fail(json, EXIT_USAGE, "journal", &e.to_string()),
    }
}
