//! `hoist completions SHELL` and `hoist man DIR`: the shell completions and
//! the manual pages, both made from the command line's own definition
//! (given as a `clap::Command`), so they never drift from what hoist
//! accepts. clap_mangen writes NAME, SYNOPSIS, DESCRIPTION, OPTIONS and the
//! command list; the sections clap cannot know (EXIT STATUS, ENVIRONMENT,
//! FILES, EXAMPLES, SEE ALSO) are written here, in man-pages(7)'s order.
//! The pages are in section 8: hoist changes the system and runs as root.

use std::path::Path;

use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::sys::exit::{EXIT_BROKEN_PIPE, EXIT_OK, EXIT_PAUSED, EXIT_REFUSED, EXIT_USAGE};

/// The shells `hoist completions` writes for.
pub type Shell = clap_complete::Shell;

/// Writes the completion script for `shell` on standard output.
pub fn completions(cmd: clap::Command, shell: Shell) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut shown(&cmd), "hoist", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    EXIT_OK
}

/// `cmd` without its hidden commands (`fleet-action`, `man`...) and
/// arguments (`--rollout`), which clap_complete would offer: the same name,
/// help and shown arguments, and the shown commands under it, each the same
/// way. Not the argument groups: the derive's name every argument of a
/// command, hidden ones too, and completion needs none. clap makes the help and
/// version flags again when it builds the copy.
fn shown(cmd: &clap::Command) -> clap::Command {
    let mut copy = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .disable_help_subcommand(true);
    if let Some(about) = cmd.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        copy = copy.version(version.to_string());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        copy = copy.subcommand(shown(sub));
    }
    copy
}

/// Writes `hoist.8` and a page per command (`hoist-fleet.8`,
/// `hoist-fleet-upgrade.8`, ...) into `dir`; hidden commands get none.
/// `date` is the pages' date (YYYY-MM-DD; the package passes its
/// SOURCE_DATE_EPOCH's, so a tree gives the same pages twice), today's
/// without it: `.TH` takes its arguments by position, so it is never empty.
pub fn man_pages(cmd: clap::Command, dir: &Path, date: Option<&str>) -> u8 {
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let date = date.unwrap_or(today.get(..10).unwrap_or(&today));
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    match write_pages(&cmd, dir, date, &mut written) {
        Ok(()) => {
            for page in written {
                outln!("{page}");
            }
            EXIT_OK
        }
        Err(e) => {
            errln!("hoist man: {}: {e}", dir.display());
            EXIT_REFUSED
        }
    }
}

fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    date: &str,
    written: &mut Vec<String>,
) -> std::io::Result<()> {
    let page = page(cmd, date)?;
    let name = format!("{}.8", display_name(cmd));
    std::fs::write(dir.join(&name), page)?;
    written.push(name);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, date, written)?;
    }
    Ok(())
}

/// `hoist-fleet-upgrade` for `hoist fleet upgrade` (clap sets it in `build`).
fn display_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or(cmd.get_name())
}

/// One page: clap_mangen's, with hoist's own sections before VERSION.
fn page(cmd: &clap::Command, date: &str) -> std::io::Result<String> {
    let name = display_name(cmd).to_string();
    let man = Man::new(cmd.clone())
        .section("8")
        .date(date)
        .source(format!("hoist {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut text = Vec::new();
    man.render(&mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let ours = sections(cmd, &name).render();
    // Both renderings start with roff's preamble (the apostrophe string):
    // once is enough.
    let ours: String = ours
        .lines()
        .filter(|l| !l.starts_with(".ie \\n(.g .ds Aq") && !l.starts_with(".el .ds Aq"))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(match text.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{ours}{}", &text[..at], &text[at + 1..]),
        None => format!("{text}{ours}"),
    })
}

fn sections(cmd: &clap::Command, name: &str) -> Roff {
    let mut r = Roff::new();
    let top = name == "hoist";
    if top {
        r.control("SH", ["PRODUCT COMMANDS"]);
        r.text([roman(BRANDED)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        item(&mut r, vec![bold(code.to_string())], meaning);
    }
    if top {
        r.control("SH", ["ENVIRONMENT"]);
        for (var, meaning) in ENVIRONMENT {
            item(&mut r, vec![bold(*var)], meaning);
        }
        for text in [SET_FOR_STEPS, TEST_HOOKS] {
            r.control("PP", []);
            r.text([roman(text)]);
        }
        r.control("SH", ["FILES"]);
        for (path, meaning) in FILES {
            item(&mut r, vec![italic(*path)], meaning);
        }
    }
    // Each page shows the examples of its command and the commands under it.
    let words = name.replace('-', " ");
    let shown: Vec<_> = EXAMPLES
        .iter()
        .filter(|(_, line)| top || *line == words || line.starts_with(&format!("{words} ")))
        .collect();
    if !shown.is_empty() {
        r.control("SH", ["EXAMPLES"]);
        for (what, line) in shown {
            r.control("PP", []);
            r.text([roman(*what)]);
            r.control("PP", []);
            r.control("RS", ["4"]);
            r.text([bold(*line)]);
            r.control("RE", []);
        }
    }
    r.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = Vec::new();
    if !top {
        see.push("hoist".into());
    }
    see.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| display_name(s).to_string()),
    );
    let mut refs: Vec<Inline> = Vec::new();
    for (i, page) in see.iter().enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(page.clone()));
        refs.push(roman("(8)"));
    }
    if !refs.is_empty() {
        refs.push(roman("; "));
    }
    refs.push(italic("/usr/share/doc/hoist/README.md"));
    refs.push(roman(" and "));
    refs.push(italic("/usr/share/doc/hoist/RECIPE.md"));
    refs.push(roman(" (the recipe format)."));
    r.text(refs);
    r
}

/// A tagged paragraph: the tag on its own line, the text indented.
fn item(r: &mut Roff, tag: Vec<Inline>, text: &str) {
    r.control("TP", []);
    r.text(tag);
    r.text([roman(text)]);
}

/// `branded`: seeds 000 and 001's `xivo-upgrade`.
const BRANDED: &str = "Run through a symbolic link named product-upgrade (xivo-upgrade), which a product's own package ships, hoist upgrades that product with its recipe in /usr/share/hoist/recipes/product/, saying current version: and new version:. It takes -d (download only) and -f (do not ask), and --state-dir.";

/// As `sys::exit` defines them (README.md, "Exit codes").
const EXIT_STATUS: &[(u8, &str)] = &[
    (
        EXIT_OK,
        "Success: clean, ready, planned, upgraded, downloaded, up to date, rolled back on request; for fleet upgrade and resume, every host of the plan upgraded.",
    ),
    (
        EXIT_REFUSED,
        "Refused or failed: lint errors, an inhibitor, no supported path, another hoist running, a failed step, a state directory refused, too little free space, a journal that cannot be written, the prompt answered no (\"Abort.\"), a partly rolled back run; for the fleet, a failure threshold reached or a failed run-once step or undo. Also a command that only reads whose output cannot be written (a full disk).",
    ),
    (
        EXIT_USAGE,
        "Usage: a bad argument, an unreadable or invalid recipe or facts file, no terminal to confirm on.",
    ),
    (
        EXIT_PAUSED,
        "Paused, resumable: a run stopped by SIGTERM, SIGINT or SIGHUP or waiting at a person's gate (hoist resume goes on); a rollout paused (hoist fleet resume goes on).",
    ),
    (
        EXIT_BROKEN_PIPE,
        "A command that only reads whose reader has gone (hoist history | head -3): 128 + SIGPIPE, as a shell reports it.",
    ),
];

/// What hoist reads from its environment (the test hooks apart).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "HOIST_STATE_DIR",
        "The state directory when --state-dir is not given (default /var/lib/hoist).",
    ),
    (
        "HOIST_RECIPE",
        "The recipe when -r is not given; for product-upgrade, instead of /usr/share/hoist/recipes/product.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: problems are drawn without colour (https://no-color.org).",
    ),
    (
        "SUDO_USER",
        "Journaled with the user who started a run, when hoist runs through sudo.",
    ),
    (
        "INVOCATION_ID",
        "Set by systemd in a unit: a resume or rollback started there does not wait for the boot to end (it is part of it).",
    ),
    (
        "HOIST_METRICS_DIR",
        "Where a run's Prometheus textfile (hoist.prom; hoist_fleet.prom on a fleet's controller) is written at each end, when that directory exists (default /var/lib/prometheus/node-exporter, node_exporter's textfile collector); empty: none is written.",
    ),
    (
        "HOIST_NO_SYSTEMD_SCOPE",
        "Set: a step's commands are not put in a transient systemd scope unit of their own (a host whose service manager misbehaves).",
    ),
    (
        "PG_CLUSTER_CONF_ROOT",
        "postgresql-common's configuration root, read by db steps as its tools read it (default /etc/postgresql).",
    ),
    (
        "PATH",
        "Where systemd-run and the firewall's tools are looked for.",
    ),
];

/// What hoist sets, for the recipe's commands (`run`, `fleet_action`,
/// `sys::process::scope`), and the test hooks (`run::testhook`).
const SET_FOR_STEPS: &str = "hoist sets HOIST_FROM_VERSION and HOIST_TO_VERSION (the hop's versions), HOIST_RUN_ID, HOIST_PHASE, HOIST_FLEET_STEP (a fleet's run-once step) and HOIST_SCOPE (the marker it finds a step's processes by) for the commands a step runs.";

const TEST_HOOKS: &str = "HOIST_TEST_FAIL_AT, HOIST_TEST_CRASH_AT and HOIST_TEST_SIGNAL_AT are for hoist's own tests (they fail, kill or signal a run at a step) and hoist demo --fail-at: never set them on a real host.";

/// The state directory's files (docs/DURABILITY.md) and the recipes.
const FILES: &[(&str, &str)] = &[
    (
        "/var/lib/hoist/",
        "The state directory (--state-dir, HOIST_STATE_DIR), mode 0700, owned by the user running hoist.",
    ),
    (
        "/var/lib/hoist/journal.db",
        "The journal (SQLite, with its -wal and -shm): every run, its plan and every step and undo.",
    ),
    (
        "/var/lib/hoist/lock",
        "Held by the hoist that upgrades, resumes or rolls back.",
    ),
    (
        "/var/lib/hoist/runs/",
        "Each run's log (N.log) and what its steps saved to be undone (N/step/).",
    ),
    (
        "/var/lib/hoist/reports/",
        "Each run's report (N.json), written at each of its ends (hoist report).",
    ),
    (
        "/var/lib/hoist/reserve",
        "8 MiB hoist deletes to finish a run when the disk fills.",
    ),
    (
        "/var/lib/hoist/backups.json",
        "The database dumps db steps took and keep (hoist backups).",
    ),
    (
        "/var/lib/hoist/fleet.db, /var/lib/hoist/fleet.lock",
        "The fleet controller's journal and lock.",
    ),
    (
        "/usr/share/hoist/recipes/product/",
        "The recipes shipped with hoist (XiVO, CloudStack, WalT) and by products; product-upgrade uses its product's.",
    ),
    (
        "~/.ssh/config",
        "The fleet's connections (or --ssh-config): the system ssh, never asking.",
    ),
];

/// What an admin runs, in the order of a first upgrade; each command's
/// page shows its own.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "Every problem of a recipe, with its place:",
        "hoist lint /usr/share/hoist/recipes/xivo",
    ),
    (
        "The preflight checks on this host:",
        "hoist check -r /usr/share/hoist/recipes/xivo",
    ),
    (
        "Current and target version, and every step in order:",
        "hoist plan -r /usr/share/hoist/recipes/xivo",
    ),
    (
        "Download and verify only:",
        "hoist upgrade -r /usr/share/hoist/recipes/xivo -d",
    ),
    (
        "Upgrade without asking, a person's gate confirmed in advance:",
        "hoist upgrade -r /usr/share/hoist/recipes/xivo --yes --confirm GATE",
    ),
    (
        "Where the last run stands, and what to do next:",
        "hoist status",
    ),
    (
        "Go on after a pause, a crash or a fixed failure:",
        "hoist resume",
    ),
    (
        "Put the host back as before the unfinished run:",
        "hoist rollback",
    ),
    ("The last three runs:", "hoist history | head -3"),
    (
        "A rollout across the hosts of an inventory, then run it:",
        "hoist fleet plan -i hosts.toml -r /usr/share/hoist/recipes/xivo",
    ),
    (
        "Run the rollout over SSH without asking:",
        "hoist fleet upgrade -i hosts.toml -r /usr/share/hoist/recipes/xivo --yes",
    ),
    ("Where the last rollout stands:", "hoist fleet status"),
    (
        "The embedded demo, failing at its migration to show the rollback:",
        "hoist demo --fail-at migrate",
    ),
    (
        "Completions for the current user's bash:",
        "hoist completions bash > ~/.local/share/bash-completion/completions/hoist",
    ),
];
