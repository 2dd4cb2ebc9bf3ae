//! `hoist fleet status` drawn from the controller's journal: where a
//! rollout stands and what to do next, for a person and as JSON. The
//! journal (`fleet::journal`) only reads and writes; what is shown of it is
//! made here.

use super::journal::RolloutView;
use super::plan::Item;
use super::state::{FleetState, HostState, ItemState};

impl RolloutView {
    pub(super) fn with(&self, state: HostState) -> Vec<&(String, HostState, Option<String>)> {
        self.hosts.iter().filter(|h| h.1 == state).collect()
    }

    /// `hoist fleet status`: where the rollout stands and what to do next.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Rollout {} of {} to {}: {}{}",
            self.id,
            self.plan.product,
            self.plan
                .target
                .as_deref()
                .unwrap_or("each host's candidate"),
            self.state,
            self.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        for (state, what) in [
            (HostState::Done, "upgraded"),
            (HostState::Failed, "failed"),
            (
                HostState::Waiting,
                "wait for a person (`hoist fleet resume --confirm GATE@HOST` once done)",
            ),
            (HostState::Running, "in progress"),
            (HostState::Pending, "not started (untouched)"),
        ] {
            let hosts = self.with(state);
            if hosts.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {what}: {}", hosts.len());
            for (h, _, detail) in hosts.iter().take(20) {
                match detail {
                    Some(d) if state != HostState::Done => {
                        let _ = writeln!(out, "    {h}: {d}");
                    }
                    _ => {
                        let _ = writeln!(out, "    {h}");
                    }
                }
            }
            if hosts.len() > 20 {
                let _ = writeln!(out, "    ... and {} more", hosts.len() - 20);
            }
        }
        for (seq, ((state, detail), item)) in self.items.iter().zip(&self.plan.items).enumerate() {
            match (state, item) {
                (ItemState::Failed, Item::RunOnce { id, host, .. }) => {
                    let _ = writeln!(
                        out,
                        "  {id} on {host} failed: {}",
                        detail.as_deref().unwrap_or("")
                    );
                }
                (ItemState::Failed, Item::RunOnEach { id, hosts, .. }) => {
                    for h in hosts {
                        let detail = self
                            .item_hosts
                            .iter()
                            .find(|(s, n, st, _)| *s == seq && n == h && *st == ItemState::Failed)
                            .map(|x| x.3.as_deref().unwrap_or(""));
                        if let Some(d) = detail {
                            let _ = writeln!(out, "  {id} on {h} failed: {d}");
                        }
                    }
                }
                _ => {}
            }
        }
        for line in super::rollback::status_lines(self) {
            let _ = writeln!(out, "{line}");
        }
        let next = match self.state {
            FleetState::Done => "nothing: every host of the plan is upgraded.",
            FleetState::Stopped => {
                "look at each failed host (`hoist status` there); hosts not started were left as they were."
            }
            FleetState::Paused => "`hoist fleet resume` goes on with the next batch.",
            FleetState::Failed => {
                "fix what the failed step needs, then `hoist fleet resume` runs it again."
            }
            FleetState::Running | FleetState::Planned => {
                "if no controller is running, `hoist fleet resume` carries on; finished hosts are not upgraded again."
            }
            FleetState::RollingBack => {
                "if no `hoist fleet rollback` is running, run it again: what was undone is not undone again."
            }
            FleetState::RolledBack => {
                "nothing: every host the rollout touched is back as before it (each host's `hoist status` says so)."
            }
            FleetState::PartlyRolledBack => {
                "put back by hand what the rollback lists as LEFT (the hosts' `hoist status` say what their rollbacks left); nothing more is undone by hoist."
            }
            FleetState::RollbackFailed => {
                "fix what the failed undo needs (`hoist status` on that host), then `hoist fleet rollback` again: what was undone is not undone again."
            }
        };
        let _ = writeln!(out, "Next: {next}");
        out
    }

    pub fn summary_json(&self) -> serde_json::Value {
        let names =
            |s: HostState| -> Vec<&str> { self.with(s).iter().map(|h| h.0.as_str()).collect() };
        let mut v = serde_json::json!({
            "id": self.id,
            "product": self.plan.product,
            "target": self.plan.target,
            "state": self.state,
            "error": self.error,
            "done": names(HostState::Done),
            "failed": self.with(HostState::Failed).iter().map(|h| serde_json::json!({"host": h.0, "detail": h.2})).collect::<Vec<_>>(),
            "waiting": self.with(HostState::Waiting).iter().map(|h| serde_json::json!({"host": h.0, "detail": h.2})).collect::<Vec<_>>(),
            "running": names(HostState::Running),
            "untouched": names(HostState::Pending),
        });
        if let Some(o) = v.as_object_mut() {
            o.extend(super::rollback::status_json(self));
        }
        v
    }
}
