//! Before hoist acts on a state directory (`upgrade`, `resume`,
//! `rollback`): the processes a previous hoist's steps left behind when it
//! died (kill -9, the OOM killer, a lost terminal) are waited for while a
//! command's first process still runs (bounded), then the rest is ended,
//! and the admin is told. A rollback or a resume never starts
//! while a step of the previous hoist can still change the host.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::sys::process::scope;

/// How long a previous step's processes get to finish on their own (an
/// orphaned `dpkg` is better left to end than killed in the middle).
pub const WAIT: Duration = Duration::from_secs(10);
/// Then SIGTERM, and SIGKILL after this.
const GRACE: Duration = Duration::from_secs(5);
/// What a command left behind gets after SIGTERM, as in a run.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Waits for, then ends, what a previous hoist's steps left running on
/// `state_dir`; each line says what was found and what became of it (for
/// the admin and the journal). Empty when nothing was left.
pub fn settle(state_dir: &Path, say: &dyn Fn(&str)) -> Vec<String> {
    let id = scope::state_id(state_dir);
    let found = scope::survivors(&id);
    if found.is_empty() {
        return Vec::new();
    }
    let list = |m: &[scope::Member]| {
        m.iter()
            .map(|m| format!("{m} of step {}", step_of(&m.marker)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![format!(
        "a previous hoist left processes running: {}; waiting up to {} for them to end",
        list(&found),
        humantime::format_duration(WAIT)
    )];
    say(&lines[0]);
    // A command whose first process still runs is left to finish, bounded;
    // what it leaves behind is then ended at once, as the run itself would
    // have ended it when that first process ended (`process::scope`).
    let until = Instant::now() + WAIT;
    let mut left = found;
    while left.iter().any(|m| m.leader) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        left = scope::survivors(&id);
    }
    let line = if left.is_empty() {
        "they ended by themselves".to_string()
    } else {
        let grace = if left.iter().any(|m| m.leader) {
            GRACE
        } else {
            LEFTOVER_GRACE
        };
        scope::end_members(&left, grace, || scope::survivors(&id));
        let still = scope::survivors(&id);
        if still.is_empty() {
            format!("ended them: {}", list(&left))
        } else {
            format!("could not end: {}", list(&still))
        }
    };
    say(&line);
    lines.push(line);
    lines
}

/// `<state-id>/<run>/<step>#<pid>.<n>` -> `<step>` (run `<run>`).
fn step_of(marker: &str) -> String {
    let scope = marker.split('#').next().unwrap_or(marker);
    let mut parts = scope.splitn(3, '/');
    let (_, run, step) = (parts.next(), parts.next(), parts.next());
    match (run, step) {
        (Some(run), Some(step)) => format!("{step} (run {run})"),
        _ => scope.to_string(),
    }
}

/// Whether any are still there (for refusing to act).
pub fn any_left(state_dir: &Path) -> bool {
    !scope::survivors(&scope::state_id(state_dir)).is_empty()
}
