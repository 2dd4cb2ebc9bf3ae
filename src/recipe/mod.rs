//! The recipe: a product's upgrade procedure, as its maintainers wrote it.
//!
//! `load` reads the TOML and returns either a validated [`Recipe`] or every
//! problem found, each with its place in the file (see `output::diag`). Parsing is
//! three stages: the TOML tree with spans (`parse`), the typed model, then the
//! checks across the whole recipe (`validate`).

pub mod condition;
pub mod duration;
pub mod facts;
pub mod fleet;
pub mod order;
pub mod parse;
pub mod route;
pub mod template;
mod validate;

use std::ops::Range as Span;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actions::Action;
use crate::output::diag::{Located, Problem, Severity, Source};
use crate::recipe::facts::{Catalogue, FactType};
use crate::version::Range;
use condition::Condition;

/// The fixed phases, in order (DESIGN.md). Nothing disruptive may run before
/// `prepare` has fully succeeded; `-d` stops after `prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prepare,
    Pre,
    Stop,
    Backup,
    Install,
    Migrate,
    Configure,
    Start,
    Verify,
    Post,
    Cleanup,
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Prepare,
        Phase::Pre,
        Phase::Stop,
        Phase::Backup,
        Phase::Install,
        Phase::Migrate,
        Phase::Configure,
        Phase::Start,
        Phase::Verify,
        Phase::Post,
        Phase::Cleanup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Pre => "pre",
            Phase::Stop => "stop",
            Phase::Backup => "backup",
            Phase::Install => "install",
            Phase::Migrate => "migrate",
            Phase::Configure => "configure",
            Phase::Start => "start",
            Phase::Verify => "verify",
            Phase::Post => "post",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// Where a value comes from on the host. Exactly one source is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A package's installed version (`dpkg-query`, `rpm -q`); as
    /// `[product].candidate`, the version the package manager would install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// A program's standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// A file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Whether a path exists (a bool fact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<String>,
    /// Takes the first capture group (or the whole match) of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `[product].candidate` with `package` only: refresh the package lists
    /// (`apt-get update`) before reading the candidate, as seed 001's
    /// xivo-upgrade does first; otherwise a new release stays unseen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// How to read the installed version.
    pub version: Probe,
    /// How to read the newest version available (e.g. the apt candidate);
    /// without it, the target is the newest version the paths reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Probe>,
    /// The host roles this recipe knows (`management`, `usage`, `kvm` ...).
    #[serde(default)]
    pub roles: Vec<String>,
    /// How to tell a role on the host when neither `--role` nor the
    /// inventory says: the roles whose test holds (installed packages,
    /// files). Read-only tests, as a check's.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub role_probes: std::collections::BTreeMap<String, Test>,
    /// A host must have one of `roles`: one with none (not given, none
    /// probed) is refused before anything changes, the roles named, since
    /// its plan would skip the product's own steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub role_required: bool,
}

/// An edge of the upgrade graph.
#[derive(Clone, Debug, Serialize)]
pub struct PathEdge {
    pub id: String,
    pub from: Range,
    /// A version, or a release series (`4.3` reaches 4.3.0, 4.3.1, 4.3.2).
    pub to: Option<crate::version::Version>,
    /// An intermediate stop: the route must go on from `to`.
    pub stop: bool,
    /// A stop that is not safe to stay at: a failure in the next hop
    /// rolls this hop back too (by default a completed hop is kept).
    pub atomic_with_next: bool,
    /// Upgrades from `from` (to `to`, if given) are refused with this message.
    pub unsupported: Option<String>,
    #[serde(skip)]
    pub span: Span<usize>,
    #[serde(skip)]
    pub from_span: Span<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FactSpec {
    pub name: String,
    pub ty: FactType,
    pub values: Option<Vec<String>>,
    pub probe: Option<Probe>,
    pub default: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Systemd,
    /// `service NAME stop|start`.
    Sysv,
    /// The recipe's own `start`, `stop` and `status` commands.
    Command,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Services this one starts after (and stops before).
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(default)]
    pub backend: Backend,
    /// For `backend = "command"`: how to start, stop and ask about it
    /// (`status` exits 0 when it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    /// The upgrade cannot start while it fails.
    Inhibitor,
    /// Reported; the upgrade may go on.
    Warning,
}

/// A read-only test on the host. Exactly one field is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_exists: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_absent: Option<String>,
    /// The file system holding `path` has at least `at_least` free (a dump,
    /// a new cluster, a release that the steps will write there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_space: Option<FreeSpace>,
}

/// `free_space = { path = "/var/lib/postgresql", at_least = "2 GiB" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreeSpace {
    pub path: String,
    /// A size: `"500 MiB"`, `"2 GiB"`, `"1.5GB"`.
    pub at_least: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub id: String,
    pub severity: CheckSeverity,
    /// What holds when it passes, shown on a PASS row (`message` says
    /// what is wrong when it fails).
    pub title: Option<String>,
    pub message: String,
    pub remedy: Option<String>,
    pub skippable: bool,
    #[serde(skip)]
    pub when: Option<Condition>,
    pub test: Option<Test>,
    /// A condition over facts that must hold, instead of a test.
    #[serde(skip)]
    pub require: Option<Condition>,
    #[serde(skip)]
    pub span: Span<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub id: String,
    pub phase: Phase,
    pub title: Option<String>,
    #[serde(skip)]
    pub when: Option<Condition>,
    /// Only on these hops (path ids); all hops when empty.
    pub hops: Vec<String>,
    pub action: Action,
    pub undo: Option<Action>,
    /// `undo = "none"`: why nothing can put back what the step changes
    /// (`undo_reason`), so a rollback says so rather than passing silently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_undo: Option<String>,
    /// Where `undo` names its action, or where it says `"none"`; empty when
    /// the step has no `undo`.
    #[serde(skip)]
    pub undo_span: Span<usize>,
    /// Tells whether the step is already applied (for a safe resume).
    pub probe: Option<Test>,
    #[serde(with = "duration::option")]
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// Never again on this host once done.
    pub once: bool,
    /// Updates hoist or the recipe (seed 001, step 1: "xivo-upgrade upgrade,
    /// to get the latest modifications to the upgrade process"): when it
    /// changed either, hoist re-executes itself and re-plans.
    pub self_update: bool,
    /// Why the run never goes back past this step once it has started
    /// (`point_of_no_return = "..."`): a Debian major upgrade has no
    /// downgrade. A later failure undoes only the failed step and stops for
    /// a fix forward; `hoist rollback` refuses.
    pub point_of_no_return: Option<String>,
    #[serde(skip)]
    pub span: Span<usize>,
}

#[derive(Clone, Debug)]
pub struct Recipe {
    pub source: Source,
    pub product: Product,
    pub paths: Vec<PathEdge>,
    pub facts: Vec<FactSpec>,
    pub services: Vec<ServiceSpec>,
    pub checks: Vec<Check>,
    pub steps: Vec<Step>,
    /// How the product is rolled out across hosts (`[fleet]`), if it says.
    pub fleet: Option<fleet::FleetSpec>,
    pub catalogue: Catalogue,
}

impl Recipe {
    /// The directory relative paths in the recipe (hook dirs) are read from.
    pub fn dir(&self) -> PathBuf {
        self.source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// The outcome of reading a recipe: the recipe when it has no errors, and
/// every problem (errors and warnings) either way.
pub struct Loaded {
    pub recipe: Option<Recipe>,
    pub problems: Vec<Located>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Located> {
        self.problems
            .iter()
            .filter(|p| p.problem.severity == Severity::Error)
    }
}

/// Reads and validates a recipe file. A path to a directory means its
/// `recipe.toml`.
pub fn load(path: &Path) -> std::io::Result<Loaded> {
    let path = if path.is_dir() {
        path.join("recipe.toml")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path)?;
    Ok(load_str(&path, &text))
}

/// A command's load: the recipe, or its problems said (each located, on
/// stderr) and the refusal (`--json`: a `refused` line); `Err` is the exit
/// code (usage).
pub fn load_for_command(path: &Path, json: bool) -> Result<Recipe, u8> {
    use crate::output::wire::refuse;
    use crate::sys::exit::EXIT_USAGE;
    let loaded = load(path).map_err(|e| {
        refuse(
            json,
            EXIT_USAGE,
            "unreadable",
            &format!("cannot read {}: {e}", path.display()),
        )
    })?;
    match loaded.recipe {
        Some(r) => Ok(r),
        None => {
            for p in loaded.errors() {
                errln!("{}", p.render());
            }
            Err(refuse(
                json,
                EXIT_USAGE,
                "invalid-recipe",
                &format!(
                    "{} is not a valid recipe (see `hoist lint`)",
                    path.display()
                ),
            ))
        }
    }
}

/// Reads and validates recipe text; `path` names it in problems.
pub fn load_str(path: &Path, text: &str) -> Loaded {
    let source = Source::new(path, text);
    let mut problems: Vec<Problem> = Vec::new();
    let recipe = parse::parse(&source, &mut problems).map(|mut r| {
        validate::validate(&mut r, &mut problems);
        r
    });
    problems.sort_by_key(|p| (p.span.start, p.code));
    problems.dedup_by(|a, b| a.span == b.span && a.code == b.code && a.message == b.message);
    let has_errors = problems.iter().any(|p| p.severity == Severity::Error);
    Loaded {
        recipe: if has_errors { None } else { recipe },
        problems: problems
            .into_iter()
            .map(|problem| Located {
                problem,
                file: source.clone(),
            })
            .collect(),
    }
}
