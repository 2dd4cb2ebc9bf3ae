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
mod flow;
pub mod layout;
pub mod ops;
pub mod server;
mod setup;
mod tar;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use durable::Context;
use layout::Layout;

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

/// `hoist demo`; with `--json`, the run's events on stdout, the demo's
/// own report on stderr.
pub fn main(args: &DemoArgs, json: bool) -> u8 {
    match flow::demo(args, json) {
        Ok(code) => code,
        Err(e) => {
            errln!("hoist demo: {e}");
            crate::sys::exit::EXIT_USAGE
        }
    }
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
            crate::output::out::clap_error(&e);
            return if e.use_stderr() {
                crate::sys::exit::EXIT_USAGE
            } else {
                crate::sys::exit::EXIT_OK
            };
        }
    };
    let Some(dir) = parsed.dir.as_deref() else {
        errln!("hoist demo-internal: --dir is required");
        return crate::sys::exit::EXIT_USAGE;
    };
    // One spelling of the directory everywhere: `status` recognises the
    // server by it.
    let layout = match std::fs::canonicalize(dir) {
        Ok(d) => Layout::new(&d),
        Err(e) => {
            errln!("hoist demo-internal: {}: {e}", dir.display());
            return crate::sys::exit::EXIT_USAGE;
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
                outln!("{message}");
            }
            code
        }
        Err(e) => {
            errln!("hoist demo-internal: {e}");
            1
        }
    }
}
