//! The controller's journal: SQLite in the state directory (`fleet.db`),
//! WAL and `synchronous=FULL` as each host's own journal, one transaction
//! per state change, every change checked against `fleet::state`.
//!
//! It holds the rollout's plan (so `resume` walks the same items), each
//! host's state and each item's. A host is committed `running` before its
//! upgrade is started, so after a controller crash `resume` knows which
//! hosts to ask (through the transport) rather than start again. Results
//! that arrive together are committed together: still one fsync before the
//! controller acts on any of them.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::plan::FleetPlan;
use super::state::{FleetState, HostState, ItemState, PerHost, UndoState};
use crate::run::journal::{JournalError, now};

type Result<T> = std::result::Result<T, JournalError>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fleet_runs (
    id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    state TEXT NOT NULL,
    plan TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS fleet_hosts (
    run_id INTEGER NOT NULL REFERENCES fleet_runs(id),
    host TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, host)
);
CREATE TABLE IF NOT EXISTS fleet_items (
    run_id INTEGER NOT NULL REFERENCES fleet_runs(id),
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS fleet_item_hosts (
    run_id INTEGER NOT NULL REFERENCES fleet_runs(id),
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq, host)
);
CREATE TABLE IF NOT EXISTS fleet_undos (
    run_id INTEGER NOT NULL REFERENCES fleet_runs(id),
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq, host)
);
";

/// A row keyed by (item, host): item index, host, state, detail.
pub type PerHostRow<S> = (usize, String, S, Option<String>);

pub struct FleetJournal {
    conn: Connection,
}

/// A rollout as the journal knows it.
#[derive(Clone, Debug, Serialize)]
pub struct RolloutView {
    pub id: i64,
    pub state: FleetState,
    pub error: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub plan: FleetPlan,
    /// Every host of the rollout in plan order, with its state and detail.
    pub hosts: Vec<(String, HostState, Option<String>)>,
    pub items: Vec<(ItemState, Option<String>)>,
    /// Each host of a run-on-each item (`on = { every = ROLE }`) that was
    /// started: item index, host, state, detail. A host absent is pending.
    pub item_hosts: Vec<PerHostRow<ItemState>>,
    /// `hoist fleet rollback`'s undos in the order they were started:
    /// item index, host, state, detail (`fleet::rollback`).
    pub undos: Vec<PerHostRow<UndoState>>,
}

impl FleetJournal {
    /// Opens (creating) `fleet.db` in the state directory.
    /// The state directory is made if need be and checked first
    /// (`statedir::trusted`), as for the host's journal: whoever could edit
    /// `fleet.db` could change the plan the controller runs on every host.
    pub fn open(dir: &Path) -> Result<FleetJournal> {
        let dir = crate::statedir::trusted(dir, true)?.unwrap_or_else(|| dir.to_path_buf());
        Self::at(&dir)
    }

    /// `None` when no rollout ever ran from this state directory. Read-only
    /// commands (`fleet status`) check the directory as writers do.
    pub fn open_existing(dir: &Path) -> Result<Option<FleetJournal>> {
        let Some(dir) = crate::statedir::trusted(dir, false)? else {
            return Ok(None);
        };
        if !dir.join("fleet.db").exists() {
            return Ok(None);
        }
        Self::at(&dir).map(Some)
    }

    fn at(dir: &Path) -> Result<FleetJournal> {
        let conn = crate::run::journal::connect_sqlite(dir, "fleet.db", SCHEMA)?;
        Ok(FleetJournal { conn })
    }

    /// The rollout, its plan, every host `pending` and every item
    /// `pending`, in one transaction.
    pub fn create(&mut self, plan: &FleetPlan) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let at = now();
        tx.execute(
            "INSERT INTO fleet_runs (product, state, plan, plan_hash, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                plan.product,
                FleetState::Planned.as_str(),
                serde_json::to_string(plan).map_err(|e| JournalError::Corrupt(e.to_string()))?,
                plan.hash,
                at
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut host = tx.prepare(
                "INSERT INTO fleet_hosts (run_id, host, seq, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (seq, h) in plan.upgraded().enumerate() {
                host.execute(params![id, h, seq as i64, HostState::Pending.as_str(), at])?;
            }
            let mut item = tx.prepare(
                "INSERT INTO fleet_items (run_id, seq, state, updated_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for seq in 0..plan.items.len() {
                item.execute(params![id, seq as i64, ItemState::Pending.as_str(), at])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    pub fn set_state(&mut self, run: i64, to: FleetState, error: Option<&str>) -> Result<()> {
        let tx = self.conn.transaction()?;
        let from: String =
            tx.query_row("SELECT state FROM fleet_runs WHERE id = ?1", [run], |r| {
                r.get(0)
            })?;
        let from: FleetState = from.parse().map_err(JournalError::Corrupt)?;
        if !from.can_go(to) {
            return Err(transition("rollout", from, to));
        }
        tx.execute(
            "UPDATE fleet_runs SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
            params![run, to.as_str(), error, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Several hosts' changes that happened together, in one transaction.
    pub fn hosts(&mut self, run: i64, changes: &[(&str, HostState, Option<&str>)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let at = now();
        for (host, to, detail) in changes {
            let from: String = tx.query_row(
                "SELECT state FROM fleet_hosts WHERE run_id = ?1 AND host = ?2",
                params![run, host],
                |r| r.get(0),
            )?;
            let from: HostState = from.parse().map_err(JournalError::Corrupt)?;
            if !from.can_go(*to) {
                return Err(transition(&format!("host {host}"), from, *to));
            }
            tx.execute(
                "UPDATE fleet_hosts SET state = ?3, detail = ?4, updated_at = ?5 WHERE run_id = ?1 AND host = ?2",
                params![run, host, to.as_str(), detail, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn item(
        &mut self,
        run: i64,
        seq: usize,
        to: ItemState,
        detail: Option<&str>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let from: String = tx.query_row(
            "SELECT state FROM fleet_items WHERE run_id = ?1 AND seq = ?2",
            params![run, seq as i64],
            |r| r.get(0),
        )?;
        let from: ItemState = from.parse().map_err(JournalError::Corrupt)?;
        if !from.can_go(to) {
            return Err(transition(&format!("item {}", seq + 1), from, to));
        }
        tx.execute(
            "UPDATE fleet_items SET state = ?3, detail = ?4, updated_at = ?5 WHERE run_id = ?1 AND seq = ?2",
            params![run, seq as i64, to.as_str(), detail, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Several hosts of one run-on-each item that changed together, in one
    /// transaction, each checked against `ItemState::can_go` (a host not
    /// yet journaled for the item is `pending`).
    pub fn item_hosts(
        &mut self,
        run: i64,
        seq: usize,
        changes: &[(&str, ItemState, Option<&str>)],
    ) -> Result<()> {
        self.per_host("fleet_item_hosts", "item", run, seq, changes)
    }

    /// One undo of `hoist fleet rollback` (the host's rollback of batch
    /// item `seq`, or a run-once item's undo on `host`), checked against
    /// `UndoState::can_go` (a row absent is `pending`), one transaction.
    pub fn undo(
        &mut self,
        run: i64,
        seq: usize,
        host: &str,
        to: UndoState,
        detail: Option<&str>,
    ) -> Result<()> {
        self.per_host(
            "fleet_undos",
            "undo of item",
            run,
            seq,
            &[(host, to, detail)],
        )
    }

    /// Rows of `table` keyed by (run, item, host) changed together, in one
    /// transaction, each checked against its state's table.
    fn per_host<S: PerHost>(
        &mut self,
        table: &str,
        what: &str,
        run: i64,
        seq: usize,
        changes: &[(&str, S, Option<&str>)],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let at = now();
        for (host, to, detail) in changes {
            let from: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT state FROM {table} WHERE run_id = ?1 AND seq = ?2 AND host = ?3"
                    ),
                    params![run, seq as i64, host],
                    |r| r.get(0),
                )
                .optional()?;
            let from: S = match from {
                Some(f) => f.parse().map_err(JournalError::Corrupt)?,
                None => S::PENDING,
            };
            if !from.allows(*to) {
                return Err(transition(
                    &format!("{what} {} on {host}", seq + 1),
                    from,
                    *to,
                ));
            }
            tx.execute(
                &format!(
                    "INSERT INTO {table} (run_id, seq, host, state, detail, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (run_id, seq, host) DO UPDATE
                     SET state = excluded.state, detail = excluded.detail, updated_at = excluded.updated_at"
                ),
                params![run, seq as i64, host, to.text(), detail, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every row of `table` keyed by (run, item, host) for rollout `id`, in
    /// the order `order` says.
    fn per_host_rows<S: PerHost>(
        &self,
        table: &str,
        order: &str,
        id: i64,
    ) -> Result<Vec<PerHostRow<S>>> {
        let mut q = self.conn.prepare(&format!(
            "SELECT seq, host, state, detail FROM {table} WHERE run_id = ?1 ORDER BY {order}"
        ))?;
        q.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
            ))
        })?
        .map(|r| {
            let (seq, h, s, d) = r?;
            Ok((
                seq as usize,
                h,
                s.parse().map_err(JournalError::Corrupt)?,
                d,
            ))
        })
        .collect()
    }

    pub fn latest(&self) -> Result<Option<RolloutView>> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM fleet_runs", [], |r| r.get(0))
            .optional()?
            .flatten();
        id.map(|id| self.load(id)).transpose()
    }

    pub fn load(&self, id: i64) -> Result<RolloutView> {
        let (state, error, started_at, updated_at, plan): (
            String,
            Option<String>,
            String,
            String,
            String,
        ) = self.conn.query_row(
            "SELECT state, error, started_at, updated_at, plan FROM fleet_runs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let plan: FleetPlan =
            serde_json::from_str(&plan).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        let mut q = self.conn.prepare(
            "SELECT host, state, detail FROM fleet_hosts WHERE run_id = ?1 ORDER BY seq",
        )?;
        let hosts = q
            .query_map([id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?
            .map(|r| {
                let (h, s, d) = r?;
                Ok((h, s.parse().map_err(JournalError::Corrupt)?, d))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut q = self
            .conn
            .prepare("SELECT state, detail FROM fleet_items WHERE run_id = ?1 ORDER BY seq")?;
        let items = q
            .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
            .map(|r| {
                let (s, d) = r?;
                Ok((s.parse().map_err(JournalError::Corrupt)?, d))
            })
            .collect::<Result<Vec<_>>>()?;
        // The hosts of a run-on-each item in the order they started, the
        // undos in the order they ran.
        let item_hosts = self.per_host_rows("fleet_item_hosts", "seq, rowid", id)?;
        let undos = self.per_host_rows("fleet_undos", "rowid", id)?;
        Ok(RolloutView {
            id,
            state: state.parse().map_err(JournalError::Corrupt)?,
            error,
            started_at,
            updated_at,
            plan,
            hosts,
            items,
            item_hosts,
            undos,
        })
    }
}

fn transition(
    what: &str,
    from: impl std::fmt::Display,
    to: impl std::fmt::Display,
) -> JournalError {
    JournalError::Transition {
        what: what.to_string(),
        from: from.to_string(),
        to: to.to_string(),
    }
}

impl RolloutView {
    pub fn host_state(&self, name: &str) -> Option<HostState> {
        self.hosts.iter().find(|h| h.0 == name).map(|h| h.1)
    }

    /// The state of `host` in run-on-each item `seq` (pending when it was
    /// never started there).
    pub fn item_host_state(&self, seq: usize, host: &str) -> ItemState {
        self.item_hosts
            .iter()
            .find(|(s, h, _, _)| *s == seq && h == host)
            .map_or(ItemState::Pending, |x| x.2)
    }

    /// The state of the undo of item `seq` on `host` (pending when never
    /// started).
    pub fn undo_state(&self, seq: usize, host: &str) -> UndoState {
        self.undos
            .iter()
            .find(|(s, h, _, _)| *s == seq && h == host)
            .map_or(UndoState::Pending, |x| x.2)
    }
}
