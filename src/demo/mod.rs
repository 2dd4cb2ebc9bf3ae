//! `hoist demo`: a whole upgrade of an embedded demo product, no root and no
//! network needed.
//!
//! The product is the hoist binary itself in a hidden mode (`hoist
//! demo-internal`): an HTTP service with its data in SQLite. `hoist demo` sets
//! v1 up in a directory, then upgrades it to v2 by running `hoist upgrade` on
//! the demo's recipe as a child, exactly as an admin would, and reports what
//! is served at the end. `--fail-at STEP` makes that step fail (through the
//! engine's `HOIST_TEST_FAIL_AT`) to show the rollback.

mod durable;
pub mod layout;
pub mod ops;
pub mod server;
mod setup;
mod tar;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::{Args, Parser, Subcommand};

use durable::{Context, Res};
use layout::{Config, Layout};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to set the demo up (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Make this step fail, to see the automatic rollback.
    #[arg(long, value_name = "STEP")]
    pub fail_at: Option<String>,
}

#[derive(Args, Debug)]
pub struct InternalArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn main(args: &DemoArgs) -> u8 {
    match demo(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hoist demo: {e}");
            crate::cli::EXIT_USAGE
        }
    }
}

/// What the service shows: for the reports before and after.
struct Snapshot {
    served: Option<String>,
    health: Option<u16>,
    rows: Option<usize>,
}

fn snapshot(config: &Config) -> Snapshot {
    let json = |path: &str| {
        server::get(config.port, path)
            .ok()
            .map(|(code, body)| (code, serde_json::from_str::<serde_json::Value>(&body).ok()))
    };
    let health = json("/health");
    let rows = json("/rows").and_then(|(_, v)| Some(v?.get("rows")?.as_array()?.len()));
    Snapshot {
        served: health
            .as_ref()
            .and_then(|(_, v)| Some(v.as_ref()?.get("version")?.as_str()?.to_string())),
        health: health.map(|(code, _)| code),
        rows,
    }
}

impl Snapshot {
    fn describe(&self, port: u16) -> String {
        match (&self.served, self.health) {
            (Some(v), Some(200)) => format!("version {v} at http://127.0.0.1:{port}/ (healthy)"),
            (Some(v), Some(code)) => {
                format!("version {v} at http://127.0.0.1:{port}/ (unhealthy: HTTP {code})")
            }
            _ => format!("nothing answers at http://127.0.0.1:{port}/"),
        }
    }
}

fn demo(args: &DemoArgs) -> Res<u8> {
    let hoist = std::env::current_exe().ctx(|| "find the hoist binary".to_string())?;
    let layout = Layout::new(&choose_dir(args.dir.as_deref())?);
    let dir = layout.dir.display().to_string();
    let fresh = !layout.recipe().exists();
    if fresh {
        setup::setup(&layout, &hoist)?;
        println!(
            "hoist demo: set up v{} of the demo product in {dir}",
            layout::V1
        );
    } else {
        println!("hoist demo: using the demo already set up in {dir}");
    }
    let steps = step_ids(&layout)?;
    if let Some(step) = &args.fail_at
        && !steps.contains(step)
    {
        return Err(format!(
            "--fail-at {step}: the demo recipe has no such step (its steps: {})",
            steps.join(", ")
        ));
    }
    if fresh {
        let started = Command::new(&hoist)
            .args(["demo-internal", "start", "--dir", &dir])
            .stdin(Stdio::null())
            .status()
            .ctx(|| "start the demo service".to_string())?;
        if !started.success() {
            return Err(format!(
                "the demo service did not start: see {}",
                layout.server_log().display()
            ));
        }
    }
    let config = Config::load(&layout)?;
    let before = snapshot(&config);
    println!("  before:   {}", before.describe(config.port));
    println!("  data:     {}", count(&before, &config));
    println!();

    let code = upgrade(&hoist, &layout, args.fail_at.as_deref())?;

    let after = snapshot(&config);
    println!();
    let state = layout.state().display().to_string();
    let outcome = match (code, &args.fail_at) {
        (0, _) => "the upgrade succeeded".to_string(),
        // Killed: the journal knows where it stopped.
        (129.., _) => format!(
            "the upgrade was killed (signal {}): `hoist resume --state-dir {state}` finishes it, \
             `hoist rollback --state-dir {state}` puts v{} back",
            code - 128,
            layout::V1
        ),
        (_, Some(step)) => format!("step `{step}` failed, as asked (exit {code})"),
        _ => format!("the upgrade failed (exit {code})"),
    };
    println!("hoist demo: {outcome}");
    println!("  serving:  {}", after.describe(config.port));
    let schema = ops::open_read_only(&config.data)
        .and_then(|db| ops::schema(&db))
        .map_or_else(|e| e, |s| format!("schema {s}"));
    println!(
        "  data:     {} ({} before), {schema}",
        count(&after, &config),
        count(&before, &config)
    );
    println!("  state:    {state} (hoist status --state-dir {state})");
    match newest_log(&layout.state()) {
        Some(log) => println!("  run log:  {}", log.display()),
        None => println!("  run log:  none found under {}", layout.state().display()),
    }
    if server::running(&layout).is_some() {
        println!(
            "  service:  stops by itself after {} minutes idle, or: hoist demo-internal stop --dir {dir}",
            server::IDLE.as_secs() / 60
        );
    }
    Ok(code)
}

/// "N rows" as served, or as in the data file when nothing serves them.
fn count(snap: &Snapshot, config: &Config) -> String {
    match snap.rows {
        Some(n) => format!("{n} rows"),
        None => ops::open_read_only(&config.data)
            .and_then(|db| ops::row_count(&db))
            .map_or_else(
                |e| format!("rows unknown ({e})"),
                |n| format!("{n} rows in the file, not served"),
            ),
    }
}

/// Runs `hoist upgrade` on the demo's recipe, its output straight to the
/// admin's terminal; its exit code is the demo's.
fn upgrade(hoist: &Path, layout: &Layout, fail_at: Option<&str>) -> Res<u8> {
    let mut cmd = Command::new(hoist);
    cmd.arg("upgrade")
        .arg("--yes")
        .arg("-r")
        .arg(layout.recipe())
        .arg("--state-dir")
        .arg(layout.state());
    if let Some(step) = fail_at {
        cmd.env("HOIST_TEST_FAIL_AT", step);
    }
    println!(
        "$ hoist upgrade --yes -r {} --state-dir {}{}",
        layout.recipe().display(),
        layout.state().display(),
        fail_at.map_or(String::new(), |s| format!("   (HOIST_TEST_FAIL_AT={s})"))
    );
    let mut child = cmd.spawn().ctx(|| "run hoist upgrade".to_string())?;
    // Ctrl-C reaches the whole foreground group: the upgrade handles it (a
    // clean stop, resumable); this process waits for it and still reports.
    let mut sigint = nix::sys::signal::SigSet::empty();
    sigint.add(nix::sys::signal::Signal::SIGINT);
    let _ = sigint.thread_block();
    let status = child.wait().ctx(|| "wait for hoist upgrade".to_string())?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    })
}

/// `--dir` (created if absent; empty, or holding a demo already), or a new
/// directory under the system's temporary directory.
fn choose_dir(dir: Option<&Path>) -> Res<PathBuf> {
    let dir = match dir {
        Some(d) => {
            durable::mkdir_if_absent(d)?;
            let has_demo = d.join("recipe.toml").exists();
            let empty = std::fs::read_dir(d)
                .ctx(|| format!("read {}", d.display()))?
                .next()
                .is_none();
            if !has_demo && !empty {
                return Err(format!(
                    "{} is neither empty nor a demo directory: give a new or empty one",
                    d.display()
                ));
            }
            d.to_path_buf()
        }
        None => {
            let base = std::env::temp_dir();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let d = base.join(format!("hoist-demo-{}-{nanos:x}", std::process::id()));
            std::fs::create_dir(&d).ctx(|| format!("create {}", d.display()))?;
            d
        }
    };
    std::fs::canonicalize(&dir).ctx(|| format!("resolve {}", dir.display()))
}

fn step_ids(layout: &Layout) -> Res<Vec<String>> {
    let loaded = crate::recipe::load(&layout.recipe())
        .ctx(|| format!("read {}", layout.recipe().display()))?;
    match &loaded.recipe {
        Some(recipe) => Ok(recipe.steps.iter().map(|s| s.id.clone()).collect()),
        None => {
            let problems: Vec<String> = loaded.errors().map(|p| p.render()).collect();
            Err(format!(
                "the demo recipe is invalid:\n{}",
                problems.join("\n")
            ))
        }
    }
}

/// The run log hoist wrote last: the newest `*.log` under the state dir
/// (the journal decides its name).
fn newest_log(state: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut dirs = vec![(state.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            } else if path.extension().is_some_and(|e| e == "log")
                && let Ok(t) = meta.modified()
            {
                found.push((t, path));
            }
        }
    }
    found.into_iter().max().map(|(_, p)| p)
}

/// `hoist demo-internal OP --dir D ...`: the demo product's programs.
#[derive(Parser, Debug)]
#[command(name = "hoist demo-internal")]
struct Internal {
    /// The demo directory.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    op: Op,
}

#[derive(Subcommand, Debug)]
enum Op {
    /// Set a demo up in an empty directory, without starting or upgrading it.
    Setup,
    /// Serve HTTP in the foreground, from a release directory.
    Serve {
        #[arg(long)]
        release: PathBuf,
    },
    /// Start the service in the background (nothing if it runs).
    Start,
    /// Stop the service and wait until it is gone (nothing if stopped).
    Stop,
    /// Exit 0 when the service runs, 3 when it does not.
    Status,
    /// SQLite's integrity check of the data.
    CheckData,
    /// Copy the data to backup/ (fsynced).
    Backup,
    /// Put the backup back, byte for byte.
    Restore,
    /// Data schema 1 -> 2, in one transaction.
    Migrate,
    /// Data schema 2 -> 1, in one transaction.
    Unmigrate,
    /// Print the data's schema; with --is N, exit 0 only when it is N.
    Schema {
        #[arg(long)]
        is: Option<i64>,
    },
    /// Point `current` at releases/VERSION (atomic symlink flip).
    Switch { version: String },
    /// Exit 0 when `current` points at releases/VERSION.
    IsCurrent { version: String },
    /// Unpack a release artifact into releases/.
    Unpack { artifact: PathBuf },
    /// Remove an unpacked release that is not current.
    Discard { version: String },
}

pub fn internal(args: &InternalArgs) -> u8 {
    let argv = std::iter::once("hoist demo-internal".to_string()).chain(args.args.iter().cloned());
    let parsed = match Internal::try_parse_from(argv) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                crate::cli::EXIT_USAGE
            } else {
                0
            };
        }
    };
    let Some(dir) = parsed.dir.as_deref() else {
        eprintln!("hoist demo-internal: --dir is required");
        return crate::cli::EXIT_USAGE;
    };
    // One spelling of the directory everywhere: `status` recognises the
    // server by it.
    let layout = match std::fs::canonicalize(dir) {
        Ok(d) => Layout::new(&d),
        Err(e) => {
            eprintln!("hoist demo-internal: {}: {e}", dir.display());
            return crate::cli::EXIT_USAGE;
        }
    };
    let done = |message: String| (0, message);
    // A probe's answer: exit 0 when the step is applied.
    let answer = |yes: bool, message: String| (if yes { 0 } else { 1 }, message);
    let result = match &parsed.op {
        Op::Setup => std::env::current_exe()
            .ctx(|| "find the hoist binary".to_string())
            .and_then(|hoist| setup::setup(&layout, &hoist))
            .map(|()| done(format!("demo set up in {}", layout.dir.display()))),
        Op::Serve { release } => server::serve(&layout, release).map(|()| (0, String::new())),
        Op::Start => server::start(&layout).map(done),
        Op::Stop => server::stop(&layout).map(done),
        // 3: "not running", as LSB init scripts say it.
        Op::Status => {
            let (up, message) = server::status(&layout);
            Ok((if up { 0 } else { 3 }, message))
        }
        Op::CheckData => ops::check_data(&layout).map(done),
        Op::Backup => ops::backup(&layout).map(done),
        Op::Restore => ops::restore(&layout).map(done),
        Op::Migrate => ops::migrate(&layout).map(done),
        Op::Unmigrate => ops::unmigrate(&layout).map(done),
        Op::Schema { is } => ops::schema_is(&layout, *is).map(|(yes, m)| answer(yes, m)),
        Op::Switch { version } => ops::switch(&layout, version).map(done),
        Op::IsCurrent { version } => {
            let yes = ops::is_current(&layout, version);
            Ok(answer(
                yes,
                format!("current is {}{version}", if yes { "" } else { "not " }),
            ))
        }
        Op::Unpack { artifact } => ops::unpack(&layout, artifact).map(done),
        Op::Discard { version } => ops::discard(&layout, version).map(done),
    };
    match result {
        Ok((code, message)) => {
            if !message.is_empty() {
                println!("{message}");
            }
            code
        }
        Err(e) => {
            eprintln!("hoist demo-internal: {e}");
            1
        }
    }
}
