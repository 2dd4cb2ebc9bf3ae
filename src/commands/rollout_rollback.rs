//! The host side of `hoist fleet rollback`: `hoist rollback --rollout TAG`
//! rolls back this host's run of rollout TAG, committed or not.
//!
//! A rollout that stopped leaves hosts committed (upgraded before the
//! failure) beside hosts rolled back by themselves and hosts untouched; a
//! product whose hosts must run one version (CloudStack's management
//! servers share a database) is then broken until every host is back. So
//! the controller asks each host that ran this rollout to go back:
//!
//! - no run tagged TAG: nothing of the rollout ran here, nothing to do;
//! - the run rolled back already (by itself, or by an earlier fleet
//!   rollback), or only prepared (`-d`: nothing installed): nothing to do,
//!   success (a fleet rollback run again after a kill asks again); partly
//!   rolled back: nothing more to do, and the answer says what stays;
//! - a later run on this host: refused, its changes lie on top of the
//!   rollout's, and undoing the older run would break them;
//! - past its point of no return: refused, as `hoist rollback` refuses;
//! - unfinished (failed, paused, interrupted, a rollback that failed): as
//!   `hoist rollback`;
//! - committed: reopened (`state::FLEET_ROLLBACK`, the one way out of
//!   `committed`, journaled with who asked and what a restored database
//!   loses), then rolled back as any run.
//!
//! Nothing done at commit destroys what the undos need, so a committed run
//! is as undoable as a failed one: the engine prunes nothing when a run
//! commits; what the built-in undos restore from (files `saved` before a
//! change, `packages`' manifest and its old `.deb`s, `db`'s keep-aside
//! copies and the cluster fingerprint) lives in the run's own step
//! directories (`<state>/runs/<run>/<step>/`), which nothing removes; dumps
//! `db` backups take are rotated only by a later backup of the same path
//! (`keep`, 3 by default), and a later run is refused above. What is not
//! kept: data written after the dump, which a restore loses (said in the
//! journal and to the admin), and what a recipe `undo` reads from a path
//! something else rewrote since (a fleet run-once `db backup` to the same
//! dump path, say): the undo restores what is there.

use std::path::Path;

use crate::commands::upgrade::refuse;
use crate::run::journal::{Journal, RunRecord};
use crate::run::state::RunState;
use crate::run::{Engine, RunError};
use crate::sys::exit::{EXIT_OK, EXIT_REFUSED};

pub fn rollback(state_dir: &Path, tag: &str, json: bool) -> u8 {
    inner(state_dir, tag, json)
        .unwrap_or_else(|e| refuse(json, EXIT_REFUSED, "error", &e.to_string()))
}

fn inner(state_dir: &Path, tag: &str, json: bool) -> Result<u8, RunError> {
    let _lock = match crate::run::lock::acquire(state_dir, "rollback") {
        Ok(l) => l,
        Err(e) => return Ok(refuse(json, EXIT_REFUSED, e.code(), &e.to_string())),
    };
    let mut journal = Journal::open(state_dir)?;
    if let Err(code) = crate::commands::upgrade::settle_leftovers(state_dir, json, &mut journal) {
        return Ok(code);
    }
    let Some(id) = journal.run_of_rollout(tag)? else {
        return Ok(nothing(
            json,
            None,
            "not-started",
            &format!("nothing to roll back: no run of rollout {tag} on this host"),
        ));
    };
    let run = journal.load_run(id)?;
    if let Some(later) = journal.latest_run()?.filter(|l| l.id != id) {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "later-run",
            &format!(
                "run {id} (rollout {tag}) is not the last run here: run {} ({} {} -> {}, {}) came after it; undoing run {id} under it would break it. Roll run {} back first (`hoist rollback`) if it is unfinished, or put this host back by hand",
                later.id, later.product, later.from, later.to, later.state, later.id
            ),
        ));
    }
    match run.state {
        RunState::RolledBack => {
            return Ok(nothing(
                json,
                Some(&run),
                "rolled-back",
                &format!("nothing to roll back: run {id} (rollout {tag}) is rolled back already"),
            ));
        }
        // Final: its rollback ran and left steps not undone; asking again
        // changes nothing, and the fleet is told what stays.
        RunState::PartlyRolledBack => {
            return Ok(nothing(
                json,
                Some(&run),
                "partly-rolled-back",
                &format!(
                    "nothing more to roll back: run {id} (rollout {tag}) is partly rolled back, {}",
                    run.error.as_deref().unwrap_or("some steps were not undone")
                ),
            ));
        }
        RunState::Prepared => {
            return Ok(nothing(
                json,
                Some(&run),
                "prepared",
                &format!(
                    "nothing to roll back: run {id} (rollout {tag}) only downloaded, nothing was installed"
                ),
            ));
        }
        _ => {}
    }
    if let Some((point, why)) = crate::run::point_passed(&run) {
        return Ok(refuse(
            json,
            EXIT_REFUSED,
            "past-point-of-no-return",
            &format!(
                "run {id} (rollout {tag}) is past its point of no return ({point}: {why}): it cannot be rolled back"
            ),
        ));
    }
    crate::commands::upgrade::wait_for_boot(json);
    if run.state == RunState::Committed {
        let why = committed_why(&run, tag);
        journal.reopen_for_fleet_rollback(id, &why)?;
        if !json {
            outln!("run {id} was committed: {why}");
        }
    } else {
        journal.event(
            id,
            "rollback",
            &format!("asked for by the fleet rollback of rollout {tag}"),
        )?;
    }
    let mut engine = Engine::open(journal, id, json)?;
    let ending = engine.rollback(None)?;
    Ok(crate::commands::upgrade::report_ending(&engine, &ending))
}

/// The journal's words for reopening a committed run: who asked, and what
/// a database restored from its dump loses.
fn committed_why(run: &RunRecord, tag: &str) -> String {
    let restores: Vec<&str> = run
        .plan
        .steps
        .iter()
        .filter(|s| {
            s.undo.as_ref().map_or(
                s.action.touches_database() && s.action.builtin_undo(),
                |u| u.touches_database(),
            )
        })
        .map(|s| s.key.as_str())
        .collect();
    let loss = if restores.is_empty() {
        "no database step is undone".to_string()
    } else {
        format!(
            "data written since the upgrade is lost where a database is restored ({})",
            restores.join(", ")
        )
    };
    format!("asked for by the fleet rollback of rollout {tag} after the run committed; {loss}")
}

/// Success with nothing done: one JSON line, or the sentence.
fn nothing(json: bool, run: Option<&RunRecord>, reason: &str, message: &str) -> u8 {
    if json {
        crate::output::wire::emit(crate::output::wire::Event::NothingToRollBack {
            run: run.map(|r| r.id),
            state: run.map(|r| r.state.as_str().to_string()),
            reason: reason.to_string(),
            message: message.to_string(),
        });
    } else {
        outln!("{message}");
    }
    EXIT_OK
}
