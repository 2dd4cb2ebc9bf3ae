//! The command line: `hoist lint | check | plan`.
//!
//! Exit codes (documented in README.md): 0 success or ready; 1 refused
//! (an inhibitor failed, no supported upgrade path, lint found errors);
//! 2 usage error, unreadable or invalid recipe or facts; 141 a command
//! that only reads whose output was closed; all defined in `sys::exit`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::host::probe::Given;
use crate::host::{checks, probe};
use crate::output::wire::refuse as fail;
use crate::plan::{Outcome, PlanError};
use crate::recipe::Recipe;
use crate::recipe::facts::Facts;
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::version::Version;
use crate::{plan, recipe};

#[derive(Parser, Debug)]
#[command(
    name = "hoist",
    version,
    about = "Safe, automatic, resumable upgrades of server software",
    // The manual page's DESCRIPTION (`hoist man`) and `--help`: README.md's
    // first paragraph.
    long_about = "Safe, automatic, resumable upgrades of server software.\n\n\
        A product's maintainers describe their upgrade once, as a declarative \
        recipe (TOML); an admin runs one command. hoist shows the current and \
        new version and the exact plan, refuses what cannot work before it \
        touches anything, journals every step durably so that a crash anywhere \
        ends in `hoist resume` or `hoist rollback`, and puts the system back \
        when a step fails."
)]
pub struct Cli {
    /// Machine-readable output (JSON; JSON Lines events for runs).
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the journal, the lock and the run logs live.
    #[arg(
        long,
        global = true,
        env = "HOIST_STATE_DIR",
        default_value = "/var/lib/hoist"
    )]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check recipes and report every problem with its place.
    Lint {
        /// Recipe files or directories holding a recipe.toml.
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
    },
    /// Run the recipe's preflight checks on this host.
    Check {
        #[command(flatten)]
        host: HostArgs,
        /// Skip a check the recipe marks skippable (the skip is reported).
        #[arg(long = "skip", value_name = "CHECK")]
        skip: Vec<String>,
    },
    /// Show current -> target version, the route and every step, with why
    /// the others are not taken.
    Plan {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Upgrade this host: show current -> target, ask, then run the plan.
    Upgrade {
        #[command(flatten)]
        host: HostArgs,
        /// Only download and verify everything (the prepare phase).
        #[arg(short = 'd', long)]
        download_only: bool,
        /// Answer the upgrade prompt (current -> target) with yes. It does
        /// not open a gate that asks a person: see --confirm.
        #[arg(
            short = 'f',
            long = "yes",
            visible_alias = "force",
            visible_short_alias = 'y'
        )]
        yes: bool,
        /// Confirm a person's gate in advance (a step id from `hoist plan`,
        /// marked "needs a person"): the admin says it is done, journaled
        /// with who and when. Without it, and with no terminal, the run
        /// pauses at the gate (exit 3). Repeatable.
        #[arg(long = "confirm", value_name = "GATE")]
        confirm: Vec<String>,
        /// On failure, stop where it failed instead of rolling back.
        #[arg(long)]
        no_rollback: bool,
        /// Skip a preflight check the recipe marks skippable (journaled).
        #[arg(long = "skip", value_name = "CHECK")]
        skip: Vec<String>,
        /// The fleet rollout this upgrade belongs to (set by `hoist fleet
        /// upgrade`): journaled with the run, so the controller can tell
        /// its rollout's run from any other.
        #[arg(long, hide = true, value_name = "ID")]
        rollout: Option<String>,
    },
    /// Continue the interrupted or failed run from its first step not done.
    Resume {
        /// Go on with the changed recipe's plan (resume refuses a changed
        /// recipe without it, and says what changed).
        #[arg(long)]
        replan: bool,
        /// Confirm a person's gate (a run paused there waits for it).
        /// Repeatable.
        #[arg(long = "confirm", value_name = "GATE")]
        confirm: Vec<String>,
    },
    /// Put the host back as it was before the unfinished run.
    Rollback {
        /// The run of this fleet rollout instead, committed or not (sent
        /// by `hoist fleet rollback`): refused when a later run exists or
        /// the run is past its point of no return; nothing to do when it
        /// is rolled back already or never ran here.
        #[arg(long, hide = true, value_name = "TAG")]
        rollout: Option<String>,
        /// Give up on this step's undo (one that failed and cannot be
        /// fixed): it is left as it is, journaled with `--reason`, and the
        /// run ends partly rolled back. Repeatable.
        #[arg(long = "skip", value_name = "STEP", requires = "reason")]
        skip: Vec<String>,
        /// Why the undos given with `--skip` are skipped (journaled).
        #[arg(long, value_name = "TEXT", requires = "skip")]
        reason: Option<String>,
        /// Back to the version the run started from, past the stops of a
        /// multi-hop run it kept when a later hop failed (without it, such
        /// a run goes back to its last stop only).
        #[arg(long)]
        all: bool,
    },
    /// Where the last run stands, and what to do next.
    Status,
    /// Every run on this host.
    History,
    /// A run's report: its plan, preflight checks, each step's end and
    /// time, what it left (the newest run without RUN).
    Report {
        /// The run's id (`hoist history`).
        run: Option<i64>,
    },
    /// Temporary firewall rules: `hoist firewall leftovers [-r RECIPE] [--remove]`.
    #[command(subcommand)]
    Firewall(crate::commands::leftovers::FirewallCommand),
    /// The database dumps `db` backups took, newest first.
    Backups,
    /// A rollout across the hosts of an inventory: `hoist fleet plan |
    /// upgrade | resume | status`.
    #[command(subcommand)]
    Fleet(crate::fleet::cli::FleetCommand),
    /// Runs one fleet run-once step on this host (sent by the controller,
    /// the action as JSON on stdin).
    #[command(hide = true, name = "fleet-action")]
    FleetAction(crate::commands::fleet_action::ActionArgs),
    /// Upgrade an embedded demo product from v1 to v2, showing the whole
    /// flow (and with --fail-at, the automatic rollback).
    Demo(crate::demo::DemoArgs),
    /// The demo product's own programs (used by the demo recipe).
    #[command(hide = true, name = "demo-internal")]
    DemoInternal(crate::demo::InternalArgs),
    /// Print the completion script for a shell (the package installs
    /// bash's, zsh's and fish's): `hoist completions bash`.
    Completions {
        #[arg(value_enum)]
        shell: crate::commands::manual::Shell,
    },
    /// Write hoist.8 and a page per command into DIR (scripts/build-deb
    /// makes the package's manual pages with the binary it packages).
    #[command(hide = true)]
    Man {
        dir: PathBuf,
        /// The pages' date, YYYY-MM-DD (default: today).
        #[arg(long)]
        date: Option<String>,
    },
}

impl Command {
    /// What a closed or failing output does to the command: one that may
    /// change the host goes on (stopping it there would leave the host
    /// half-changed), one that only reads ends.
    pub fn output_policy(&self) -> crate::output::out::Policy {
        use crate::commands::leftovers::FirewallCommand;
        use crate::fleet::cli::FleetCommand;
        use crate::output::out::Policy::{GoOn, Quit};
        match self {
            Command::Lint { .. }
            | Command::Check { .. }
            | Command::Plan { .. }
            | Command::Status
            | Command::History
            | Command::Report { .. }
            | Command::Backups
            | Command::Completions { .. }
            | Command::Man { .. } => Quit,
            Command::Firewall(FirewallCommand::Leftovers { remove, .. }) => {
                if *remove {
                    GoOn
                } else {
                    Quit
                }
            }
            Command::Fleet(FleetCommand::Plan { .. } | FleetCommand::Status) => Quit,
            Command::Fleet(
                FleetCommand::Upgrade { .. }
                | FleetCommand::Resume { .. }
                | FleetCommand::Rollback { .. },
            ) => GoOn,
            Command::Upgrade { .. }
            | Command::Resume { .. }
            | Command::Rollback { .. }
            | Command::FleetAction(_)
            | Command::Demo(_)
            | Command::DemoInternal(_) => GoOn,
        }
    }
}

#[derive(Args, Debug)]
pub struct HostArgs {
    /// The recipe (a file, or a directory with recipe.toml).
    #[arg(short, long, env = "HOIST_RECIPE")]
    pub recipe: PathBuf,
    /// The version to upgrade to (a version, or a series such as 4.3).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Read facts from this TOML file instead of probing this host.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// Set a fact (repeatable): --fact hypervisor=kvm
    #[arg(long = "fact", value_name = "NAME=VALUE", value_parser = parse_kv)]
    pub fact: Vec<(String, String)>,
    /// A role of this host (repeatable): --role management
    #[arg(long = "role", value_name = "ROLE")]
    pub role: Vec<String>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

/// `hoist ...` (the branded `<product>-upgrade` entry point is chosen
/// before, in `main.rs`, and uses this module).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error asked for in JSON is a `refused` line too (help and
        // the version stay text).
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            let text = e.render().to_string();
            let message = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("usage error")
                .trim_start_matches("error: ");
            return ExitCode::from(fail(true, EXIT_USAGE, "usage", message));
        }
        Err(e) => return ExitCode::from(crate::output::out::clap_error(&e)),
    };
    crate::output::out::set_policy(cli.command.output_policy());
    let code = match &cli.command {
        Command::Lint { recipes } => lint(recipes, cli.json),
        Command::Check { host, skip } => check(host, skip, cli.json),
        Command::Plan { host } => plan_cmd(host, cli.json),
        Command::Upgrade {
            host,
            download_only,
            yes,
            no_rollback,
            skip,
            rollout,
            confirm,
        } => upgrade(
            host,
            &cli.state_dir,
            crate::run::Options {
                yes: *yes,
                download_only: *download_only,
                no_rollback: *no_rollback,
                json: cli.json,
                branded: false,
                confirm: confirm.clone(),
            },
            skip,
            rollout.clone(),
        ),
        Command::Resume { replan, confirm } => {
            crate::commands::upgrade::resume(&cli.state_dir, *replan, confirm, cli.json)
        }
        Command::Rollback {
            rollout: None,
            skip,
            reason,
            all,
        } => crate::commands::upgrade::rollback(
            &cli.state_dir,
            cli.json,
            skip,
            reason.as_deref().unwrap_or(""),
            *all,
        ),
        Command::Rollback {
            rollout: Some(tag), ..
        } => crate::commands::rollout_rollback::rollback(&cli.state_dir, tag, cli.json),
        Command::Status => crate::commands::status::status(&cli.state_dir, cli.json),
        Command::History => crate::commands::status::history(&cli.state_dir, cli.json),
        Command::Report { run } => crate::commands::report::show(&cli.state_dir, *run, cli.json),
        Command::Firewall(c) => crate::commands::leftovers::main(c, &cli.state_dir, cli.json),
        Command::Backups => crate::commands::backups::list(&cli.state_dir, cli.json),
        Command::Fleet(c) => crate::fleet::cli::main(c, &cli.state_dir, cli.json),
        Command::FleetAction(a) => crate::commands::fleet_action::action(a, &cli.state_dir),
        Command::Demo(args) => crate::demo::main(args, cli.json),
        Command::DemoInternal(args) => crate::demo::internal(args),
        Command::Completions { shell } => {
            crate::commands::manual::completions(Cli::command(), *shell)
        }
        Command::Man { dir, date } => {
            crate::commands::manual::man_pages(Cli::command(), dir, date.as_deref())
        }
    };
    ExitCode::from(code)
}

fn lint(paths: &[PathBuf], json: bool) -> u8 {
    let mut errors = 0;
    let mut warnings = 0;
    let mut all = Vec::new();
    for p in paths {
        let loaded = match recipe::load(p) {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    json,
                    EXIT_USAGE,
                    "unreadable",
                    &format!("cannot read {}: {e}", p.display()),
                );
            }
        };
        for located in &loaded.problems {
            match located.problem.severity {
                crate::output::diag::Severity::Error => errors += 1,
                crate::output::diag::Severity::Warning => warnings += 1,
            }
            if json {
                all.push(located.to_json());
            } else {
                errln!("{}", located.render());
            }
        }
    }
    if json {
        crate::output::wire::print_doc(crate::output::wire::LintReport {
            errors,
            warnings,
            problems: all,
        });
    } else {
        outln!(
            "{} recipe(s): {errors} error(s), {warnings} warning(s)",
            paths.len()
        );
    }
    if errors > 0 { EXIT_REFUSED } else { EXIT_OK }
}

/// The facts of this host, or of the fixture file.
pub(crate) fn host_facts(recipe: &Recipe, host: &HostArgs, json: bool) -> Result<Facts, u8> {
    let given = Given {
        roles: host.role.clone(),
        facts: host.fact.clone(),
    };
    let facts = match &host.facts {
        Some(file) => Facts::from_fixture(file, &recipe.catalogue)
            .map_err(|e| e.to_string())
            .and_then(|mut f| probe::apply_given(recipe, &mut f, &given).map(|_| f)),
        None => probe::gather(recipe, &given, &|f| {
            crate::actions::repo::candidate_view(recipe, f)
        }),
    };
    facts.map_err(|e| fail(json, EXIT_USAGE, "bad-facts", &e))
}

fn target_arg(host: &HostArgs, json: bool) -> Result<Option<Version>, u8> {
    host.to
        .as_deref()
        .map(Version::parse)
        .transpose()
        .map_err(|e| fail(json, EXIT_USAGE, "bad-version", &format!("--to: {e}")))
}

fn check(host: &HostArgs, skip: &[String], json: bool) -> u8 {
    let run = || -> Result<u8, u8> {
        let recipe = recipe::load_for_command(&host.recipe, json)?;
        checks::validate_skips(&recipe, skip)
            .map_err(|e| fail(json, EXIT_USAGE, "bad-skip", &e.to_string()))?;
        let mut facts = host_facts(&recipe, host, json)?;
        let to = target_arg(host, json)?;
        if let Some(t) = plan::choose_target(&recipe, &facts, to.as_ref()) {
            facts.set("target", crate::recipe::facts::Value::Version(t));
        }
        let report = if host.facts.is_some() {
            checks::run_from_facts(&recipe, &facts, skip)
        } else {
            checks::run(&recipe, &facts, skip)
        };
        if json {
            crate::output::wire::print_doc(&report);
        } else {
            for c in &report.checks {
                outln!("{}", checks::Report::row(c));
                if let Some(d) = &c.detail {
                    outln!("      {d}");
                }
                if matches!(c.status, checks::Status::Fail | checks::Status::Warn)
                    && let Some(r) = &c.remedy
                {
                    outln!("      remedy: {r}");
                }
            }
            outln!("{}", report.summary());
        }
        Ok(if report.ready() {
            EXIT_OK
        } else {
            EXIT_REFUSED
        })
    };
    run().unwrap_or_else(|code| code)
}

fn plan_cmd(host: &HostArgs, json: bool) -> u8 {
    let run = || -> Result<u8, u8> {
        let recipe = recipe::load_for_command(&host.recipe, json)?;
        let facts = host_facts(&recipe, host, json)?;
        let to = target_arg(host, json)?;
        match plan::resolve(&recipe, &facts, to.as_ref()) {
            Ok(Outcome::Plan(p)) => {
                if json {
                    outln!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                } else {
                    out!("{}", p.render());
                }
                Ok(EXIT_OK)
            }
            Ok(Outcome::UpToDate { current, target }) => {
                if json {
                    crate::output::wire::print_doc(crate::output::wire::PlanUpToDate {
                        up_to_date: true,
                        current: current.to_string(),
                        target: target.to_string(),
                    });
                } else {
                    outln!(
                        "{}: {current} is up to date (target {target}); nothing to do",
                        recipe.product.name
                    );
                }
                Ok(EXIT_OK)
            }
            Err(e @ PlanError::Route(crate::recipe::route::RouteError::Unsupported { .. })) => Ok(
                fail(json, EXIT_REFUSED, "unsupported", &format!("refused: {e}")),
            ),
            Err(e @ PlanError::Route(_)) => Ok(fail(json, EXIT_REFUSED, "no-path", &e.to_string())),
            Err(e) => Ok(fail(json, EXIT_USAGE, "cannot-plan", &e.to_string())),
        }
    };
    run().unwrap_or_else(|code| code)
}

fn upgrade(
    host: &HostArgs,
    state_dir: &std::path::Path,
    options: crate::run::Options,
    skip: &[String],
    rollout: Option<String>,
) -> u8 {
    let json = options.json;
    let run = || -> Result<u8, u8> {
        let recipe = recipe::load_for_command(&host.recipe, json)?;
        let facts = host_facts(&recipe, host, json)?;
        let to = target_arg(host, json)?;
        Ok(crate::commands::upgrade::upgrade(
            crate::commands::upgrade::Request {
                recipe: &recipe,
                facts,
                probed: host.facts.is_none(),
                to,
                options,
                skip: skip.to_vec(),
                state_dir,
                rollout: rollout.clone(),
            },
        ))
    };
    run().unwrap_or_else(|code| code)
}
