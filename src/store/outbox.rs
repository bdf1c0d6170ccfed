//! The outbox (every push write recorded before it is sent) and the conflicts table.
//!
//! Owns: `outbox` rows and their state machine (pending → sent → done | failed | ambiguous;
//! failed → terminal after the configured attempts), and replacing `conflicts` with the
//! latest plan's. Must not: send anything or decide how an ambiguous write is resolved
//! (that is `sync::push`).

use std::collections::{BTreeMap, BTreeSet};

use super::db::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::desired::{Conflict, DnKey, Resolution};

/// `outbox.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutboxState {
    Pending,
    Sent,
    Done,
    Failed,
    Ambiguous,
    Terminal,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Ambiguous => "ambiguous",
            Self::Terminal => "terminal",
        }
    }

    /// Not done and not terminal: a push run must finish it.
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Done | Self::Terminal)
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "ambiguous" => Self::Ambiguous,
            "terminal" => Self::Terminal,
            other => {
                return Err(StoreError::Corrupt {
                    table: "outbox",
                    column: "state",
                    value: other.into(),
                });
            }
        })
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub key: String,
    /// `create`, `update` or `dnadd`.
    pub op: String,
    pub subscriber_id: Option<i64>,
    /// JSON of the intended request.
    pub payload: String,
    pub state: OutboxState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// JSON of the API's answer, once done.
    pub result: Option<String>,
}

fn entry(r: &super::db::Row<'_, '_>) -> rusqlite::Result<(OutboxEntry, String)> {
    let state: String = r.get(5)?;
    Ok((
        OutboxEntry {
            id: r.get(0)?,
            key: r.get(1)?,
            op: r.get(2)?,
            subscriber_id: r.get(3)?,
            payload: r.get(4)?,
            state: OutboxState::Pending,
            attempts: r.get(6)?,
            last_error: r.get(7)?,
            result: r.get(8)?,
        },
        state,
    ))
}

const COLUMNS: &str = "id, key, op, subscriber_id, payload, state, attempts, last_error, result";

fn resolution_str(r: Resolution) -> &'static str {
    match r {
        Resolution::KeepRemote => "keep-remote",
        Resolution::PushLocal => "push-local",
        Resolution::Manual => "manual",
        Resolution::Blocked => "blocked",
    }
}

/// A stored conflict (for `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConflict {
    pub key: String,
    pub subject: String,
    pub subscriber_id: Option<i64>,
    pub base: Option<String>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub resolution: String,
    pub reason: String,
    pub first_seen_at: String,
}

impl Store {
    /// Records a write before it is sent; returns its id.
    pub async fn outbox_insert(
        &self,
        key: String,
        op: &'static str,
        subscriber_id: Option<i64>,
        payload: String,
        now: String,
    ) -> Result<i64, StoreError> {
        self.write(move |conn| {
            conn.query_row(
                "INSERT INTO outbox (key, op, subscriber_id, payload, state, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5) RETURNING id",
                params![key, op, subscriber_id, payload, now],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("recording an outbox entry"))
        })
        .await
    }

    /// Moves an entry to `state`. `attempt` counts one more send. `subscriber_id`, `error` and
    /// `result` are written when given.
    #[allow(clippy::too_many_arguments)]
    pub async fn outbox_mark(
        &self,
        id: i64,
        state: OutboxState,
        attempt: bool,
        subscriber_id: Option<i64>,
        error: Option<String>,
        result: Option<String>,
        now: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE outbox SET state = ?2, attempts = attempts + ?3, \
                 subscriber_id = COALESCE(?4, subscriber_id), last_error = COALESCE(?5, last_error), \
                 result = COALESCE(?6, result), updated_at = ?7 WHERE id = ?1",
                params![id, state.as_str(), i64::from(attempt), subscriber_id, error, result, now],
            )
            .map(drop)
            .map_err(StoreError::sql("updating an outbox entry"))
        })
        .await
    }

    /// Entries not done and not terminal, oldest first: what a push run must finish.
    pub async fn outbox_open(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_query(format!(
            "SELECT {COLUMNS} FROM outbox WHERE state NOT IN ('done', 'terminal') ORDER BY id"
        ))
        .await
    }

    /// The newest entry of `key` and `op` (any state).
    pub async fn outbox_latest(
        &self,
        key: String,
        op: &'static str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(move |conn| {
            let found = conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM outbox WHERE key = ?1 AND op = ?2 ORDER BY id DESC LIMIT 1"),
                    params![key, op],
                    entry,
                )
                .optional()
                .map_err(StoreError::sql("reading the outbox"))?;
            found.map(|(mut e, s)| {
                e.state = OutboxState::parse(&s)?;
                Ok(e)
            })
            .transpose()
        })
        .await
    }

    /// Every entry of one desired key and operation (any state), oldest first.
    pub async fn outbox_of(
        &self,
        key: String,
        op: &'static str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_select(
            format!("SELECT {COLUMNS} FROM outbox WHERE key = ?1 AND op = ?2 ORDER BY id"),
            vec![key, op.to_string()],
        )
        .await
    }

    /// Every entry of one operation (any state), oldest first.
    pub async fn outbox_of_op(&self, op: &'static str) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_select(
            format!("SELECT {COLUMNS} FROM outbox WHERE op = ?1 ORDER BY id"),
            vec![op.to_string()],
        )
        .await
    }

    /// When an entry was first recorded (RFC 3339).
    pub async fn outbox_created_at(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            conn.query_row("SELECT created_at FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sql("reading the outbox"))
        })
        .await
    }

    /// Numbers our own `subscriber.dnadd` writes put on each subscriber, as Tariscope
    /// confirmed them: entries `done` by an answer, by "already assigned", by a look-up or by
    /// a person; not those closed because the plan no longer needed them (`settled`).
    pub async fn confirmed_dns(&self) -> Result<BTreeMap<i64, BTreeSet<DnKey>>, StoreError> {
        let rows = self
            .dnadd_numbers("state = 'done'", |result| {
                json(result).is_none_or(|r| r.get("settled").is_none_or(|v| v.is_null()))
            })
            .await?;
        let mut out: BTreeMap<i64, BTreeSet<DnKey>> = BTreeMap::new();
        for (id, dn) in rows {
            out.entry(id).or_default().insert(dn);
        }
        Ok(out)
    }

    /// Numbers whose `dnadd` may have landed on a subscriber without us knowing: entries
    /// `sent` (a run died or lost the answer) or `ambiguous`; number → that subscriber.
    pub async fn unsettled_dns(&self) -> Result<BTreeMap<DnKey, i64>, StoreError> {
        let rows = self
            .dnadd_numbers("state IN ('sent', 'ambiguous')", |_| true)
            .await?;
        Ok(rows.into_iter().map(|(id, dn)| (dn, id)).collect())
    }

    /// (subscriber, number) of the `dnadd` entries that match `filter` (an SQL condition)
    /// and whose result `keep` accepts. JSON is read here rather than in SQL: the two
    /// engines' JSON functions differ.
    async fn dnadd_numbers(
        &self,
        filter: &'static str,
        keep: fn(Option<&str>) -> bool,
    ) -> Result<Vec<(i64, DnKey)>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT subscriber_id, payload, result \
                 FROM outbox WHERE op = 'dnadd' AND subscriber_id IS NOT NULL AND {filter}"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(StoreError::sql("preparing the outbox numbers read"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(StoreError::sql("reading the outbox numbers"))?;
            Ok(rows
                .into_iter()
                .filter(|(_, _, result)| keep(result.as_deref()))
                .filter_map(|(id, payload, _)| {
                    let p = json(Some(&payload))?;
                    let pbx_id = p.get("pbx_id")?.as_i64()?;
                    let dn = p.get("dn")?.as_str()?.to_owned();
                    Some((id, DnKey { pbx_id, dn }))
                })
                .collect())
        })
        .await
    }

    /// Entries in the given states (for `status`), oldest first.
    pub async fn outbox_in(&self, states: &[OutboxState]) -> Result<Vec<OutboxEntry>, StoreError> {
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        self.outbox_query(format!(
            "SELECT {COLUMNS} FROM outbox WHERE state IN ({list}) ORDER BY id"
        ))
        .await
    }

    async fn outbox_query(&self, sql: String) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_select(sql, Vec::new()).await
    }

    async fn outbox_select(
        &self,
        sql: String,
        args: Vec<String>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&sql)
                .map_err(StoreError::sql("preparing an outbox read"))?;
            let rows = stmt
                .query_map(super::db::params_from_iter(args), entry)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(StoreError::sql("reading the outbox"))?;
            rows.into_iter()
                .map(|(mut e, s)| {
                    e.state = OutboxState::parse(&s)?;
                    Ok(e)
                })
                .collect()
        })
        .await
    }

    /// Replaces the conflicts table with `conflicts` (the latest plan's), keeping the first
    /// time each (key, subject) was seen.
    pub async fn replace_conflicts(
        &self,
        conflicts: Vec<Conflict>,
        now: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen_conflicts (key TEXT, field TEXT)", [])
                .and_then(|_| conn.execute("DELETE FROM seen_conflicts", []))
                .map_err(StoreError::sql("preparing the conflicts update"))?;
            for c in &conflicts {
                let subject = c.subject();
                conn.execute(
                    "INSERT INTO conflicts (key, field, subscriber_id, base, local, remote, resolution, reason, first_seen_at, last_seen_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
                     ON CONFLICT (key, field) DO UPDATE SET subscriber_id = excluded.subscriber_id, base = excluded.base, \
                     local = excluded.local, remote = excluded.remote, resolution = excluded.resolution, \
                     reason = excluded.reason, last_seen_at = excluded.last_seen_at",
                    params![c.key, subject, c.id, c.base, c.local, c.remote, resolution_str(c.resolution), c.reason, now],
                )
                .and_then(|_| conn.execute("INSERT INTO seen_conflicts VALUES (?1, ?2)", params![c.key, subject]))
                .map_err(StoreError::sql("recording a conflict"))?;
            }
            conn.execute(
                "DELETE FROM conflicts WHERE NOT EXISTS \
                 (SELECT 1 FROM seen_conflicts s WHERE s.key = conflicts.key AND s.field = conflicts.field)",
                [],
            )
            .map(drop)
            .map_err(StoreError::sql("clearing settled conflicts"))
        })
        .await
    }

    /// Every recorded conflict, by key.
    pub async fn conflicts(&self) -> Result<Vec<StoredConflict>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT key, field, subscriber_id, base, local, remote, resolution, reason, first_seen_at \
                     FROM conflicts ORDER BY key, field",
                )
                .map_err(StoreError::sql("preparing the conflicts read"))?;
            stmt.query_map([], |r| {
                Ok(StoredConflict {
                    key: r.get(0)?,
                    subject: r.get(1)?,
                    subscriber_id: r.get(2)?,
                    base: r.get(3)?,
                    local: r.get(4)?,
                    remote: r.get(5)?,
                    resolution: r.get(6)?,
                    reason: r.get(7)?,
                    first_seen_at: r.get(8)?,
                })
            })
            .and_then(|it| it.collect())
            .map_err(StoreError::sql("reading conflicts"))
        })
        .await
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;

/// A stored JSON text, if it is valid JSON.
pub(crate) fn json(text: Option<&str>) -> Option<serde_json::Value> {
    serde_json::from_str(text?).ok()
}
