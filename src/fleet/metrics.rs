//! A rollout's end in the controller's Prometheus textfile
//! (`hoist_fleet.prom`, `output::metrics`): how it ended and its hosts
//! per state, rewritten each time `hoist fleet upgrade|resume` stops.

use super::journal::RolloutView;
use super::state::HostState;

/// How a rollout's drive may end (`drive`'s words for its outcome).
const ENDS: [&str; 5] = ["done", "paused", "stopped", "failed", "crashed"];

/// Writes the file for `view`, which ended as `state` after `seconds`;
/// a failure is said on stderr and changes nothing else.
pub fn write(view: &RolloutView, state: &str, seconds: f64) {
    let host_states: Vec<&str> = HostState::ALL.iter().map(|s| s.as_str()).collect();
    let target = view.plan.target.clone().unwrap_or_default();
    let text = crate::output::metrics::fleet(&crate::output::metrics::Rollout {
        id: view.id,
        product: &view.plan.product,
        target: &target,
        state,
        states: &ENDS,
        hosts: view.hosts.iter().map(|h| h.1.as_str()).collect(),
        host_states: &host_states,
        seconds,
    });
    if let Err(e) = crate::output::metrics::write("hoist_fleet.prom", &text) {
        errln!("hoist: {e}");
    }
}
