//! `hoist report [RUN] [--json]`: a run's report (`output::report`), and
//! what a run's end leaves for an admin who was not watching: the report
//! file (`<state>/reports/N.json`) and the Prometheus textfile
//! (`output::metrics`). The run's events go to the systemd journal as they
//! happen (`output::journald`, through the reporter).

use std::path::Path;

use crate::output::report::Check;
use crate::run::Engine;
use crate::run::journal::Journal;
use crate::run::state::{RunState, StepState};
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED};

/// The preflight checks' verdicts as the journal keeps them
/// (`run::report::PREFLIGHT_EVENT`).
pub(crate) fn preflight_json(report: &crate::host::checks::Report) -> String {
    let checks: Vec<Check> = report
        .checks
        .iter()
        .map(|c| Check {
            id: c.id.clone(),
            status: serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: c.message.clone(),
        })
        .collect();
    serde_json::to_string(&checks).unwrap_or_default()
}

/// At a run's end (committed, rolled back, failed, paused...): its report
/// file and the metrics file. Neither decides the run's fate: a failure
/// is said on stderr and in the run's log, and the run ends as it would.
pub(crate) fn record_end(engine: &Engine) {
    let report = match crate::run::report::build(&engine.journal, engine.run) {
        Ok(r) => r,
        Err(e) => {
            warn(
                engine,
                &format!("cannot make run {}'s report: {e}", engine.run),
            );
            return;
        }
    };
    if let Err(e) = crate::run::report::write(engine.journal.dir(), &report) {
        warn(
            engine,
            &format!("cannot write run {}'s report: {e}", engine.run),
        );
    }
    let runs: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
    let steps: Vec<&str> = StepState::ALL.iter().map(|s| s.as_str()).collect();
    let text = crate::output::metrics::host(&report, &runs, &steps);
    if let Err(e) = crate::output::metrics::write("hoist.prom", &text) {
        warn(engine, &e);
    }
}

fn warn(engine: &Engine, message: &str) {
    engine.note(message);
    errln!("hoist: {message}");
}

/// `hoist report [RUN]`: the newest run's report without RUN. Made from
/// the journal, so any run it holds has one; `--json` prints the document
/// the report file holds.
pub fn show(state_dir: &Path, run: Option<i64>, json: bool) -> u8 {
    let refuse =
        |code: &str, message: &str| crate::output::wire::refuse(json, EXIT_REFUSED, code, message);
    let journal = match Journal::open_existing(state_dir) {
        Ok(Some(j)) => j,
        Ok(None) => {
            return refuse(
                "no-run",
                &format!(
                    "no upgrade has run on this host (state directory {})",
                    state_dir.display()
                ),
            );
        }
        Err(e) => return refuse("journal", &e.to_string()),
    };
    let ids = match journal.run_ids() {
        Ok(ids) => ids,
        Err(e) => return refuse("journal", &e.to_string()),
    };
    let id = match run.or_else(|| ids.last().copied()) {
        Some(id) if ids.contains(&id) => id,
        Some(id) => {
            return refuse(
                "no-run",
                &format!(
                    "the journal has no run {id} (its runs: {})",
                    ids.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        None => return refuse("no-run", "no upgrade has run on this host"),
    };
    let report = match crate::run::report::build(&journal, id) {
        Ok(r) => r,
        Err(e) => return refuse("journal", &e.to_string()),
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        out!("{}", report.render());
    }
    EXIT_OK
}
