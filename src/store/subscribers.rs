//! The `subscribers`, `dns` and `subscriber_changes` tables.
//!
//! Owns: how a `model::Subscriber` maps to columns, its content hash, the diff against the
//! stored row (insert / update with changed fields / restore / tombstone) and the change log.
//! Must not: hard-delete a subscriber, or write a row whose content did not change (a no-op
//! pull writes nothing).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::db::{Conn, OptionalExtension, params, params_from_iter};
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use super::bulk::Bulk;
use super::removals::{self, HeldBack, ListScope, RemovalLimit};
use super::subscriber_columns::{FIELDS, field_cols, from_values};
use super::subscriber_dns::{
    DN_INSERT_HEAD, DnRow, dn_cols, dn_rows, dns_json, load_dns, replace_dns,
};
use super::values::{self, Col};
use super::{Store, StoreError};
use crate::model::{DnAssignment, Subscriber, SubscriberId};

fn hash(fields: &[Col], dns: Option<&[DnRow]>) -> String {
    let mut h = Sha256::new();
    for v in fields {
        values::hash_ref(&mut h, v.as_ref());
    }
    if let Some(dns) = dns {
        h.update(b"dns");
        for d in dns {
            for v in [
                Col::int(d.pbx_id),
                Col::Str(&d.dn),
                Col::int(d.dn_id),
                d.from_date.as_deref().map_or(Col::Null, Col::Str),
                d.description.as_deref().map_or(Col::Null, Col::Str),
            ] {
                values::hash_ref(&mut h, v.as_ref());
            }
        }
    }
    values::hex(&h.finalize())
}

/// The content hash stored in `subscribers.content_hash`: SHA-256 over every field (and the
/// DNs when the record carries them), hex. Equal records hash equal.
pub fn content_hash(s: &Subscriber) -> String {
    let dns = s.dns.as_deref().map(dn_rows);
    hash(&field_cols(s), dns.as_deref())
}

/// What one `apply_subscribers` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub inserted: u64,
    pub updated: u64,
    pub restored: u64,
    pub unchanged: u64,
}

static INSERT_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO subscribers (id, {}, content_hash, first_seen_at, updated_at)",
        FIELDS.join(", ")
    )
});

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{f} = ?{}", i + 2))
        .collect();
    let n = FIELDS.len();
    format!(
        "UPDATE subscribers SET {}, content_hash = ?{}, updated_at = ?{}, removed_at = NULL WHERE id = ?1",
        sets.join(", "),
        n + 2,
        n + 3
    )
});

static SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM subscribers WHERE id = ?1",
        FIELDS.join(", ")
    )
});

fn load_fields(conn: &Conn, id: SubscriberId) -> Result<Option<Vec<Value>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&SELECT_SQL)
        .map_err(StoreError::sql("preparing the subscriber read"))?;
    stmt.query_row([id], |row| {
        (0..FIELDS.len()).map(|i| row.get::<_, Value>(i)).collect()
    })
    .optional()
    .map_err(StoreError::sql("reading a subscriber"))
}

fn log_change(
    conn: &Conn,
    run_id: i64,
    id: SubscriberId,
    kind: &str,
    fields: Option<&serde_json::Value>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO subscriber_changes (run_id, subscriber_id, kind, changed_fields, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![run_id, id, kind, fields.map(|f| f.to_string()), now]))
    .map_err(StoreError::sql("writing the change log"))?;
    Ok(())
}

/// Applies pulled records: inserts new ones, updates changed ones (logging `{"field": [old,
/// new]}`), restores tombstoned ones that reappeared. Unchanged records are not written.
fn apply(
    conn: &Conn,
    run_id: i64,
    records: &[Subscriber],
    hashes: &[String],
    now: &str,
) -> Result<ApplyCounts, StoreError> {
    let mut counts = ApplyCounts::default();
    let mut lookup = conn
        .prepare_cached("SELECT content_hash, removed_at FROM subscribers WHERE id = ?1")
        .map_err(StoreError::sql("preparing the subscriber look-up"))?;
    // New subscribers (most of a first pull) are buffered and written with multi-row
    // inserts at the end of the batch; `pending` catches an id listed twice in one batch.
    let mut new_rows = Bulk::new(INSERT_HEAD.as_str(), FIELDS.len() + 4);
    let mut new_dns = Bulk::new(DN_INSERT_HEAD, 6);
    let mut new_log = Bulk::new(
        "INSERT INTO subscriber_changes (run_id, subscriber_id, kind, changed_fields, at)",
        5,
    );
    let mut pending = HashSet::new();
    // Every record's stored state in a few queries, not one per record (each query is a
    // round trip on PostgreSQL); an id listed again after a flush is looked up alone.
    let mut known = stored_states(conn, records)?;
    let mut seen = HashSet::new();
    let flush = |rows: &mut Bulk, dns: &mut Bulk, log: &mut Bulk| -> Result<(), StoreError> {
        rows.flush(conn, "inserting subscribers")?;
        dns.flush(conn, "inserting DNs")?;
        log.flush(conn, "writing the change log")
    };
    for (s, new_hash) in records.iter().zip(hashes) {
        if !pending.insert(s.id) {
            flush(&mut new_rows, &mut new_dns, &mut new_log)?;
            pending.clear();
            pending.insert(s.id);
        }
        // The state before the batch holds for an id's first record in it; a later one
        // sees what the earlier wrote (flushed above if it was still buffered).
        let existing: Option<(String, Option<String>)> = if seen.insert(s.id) {
            known.remove(&s.id)
        } else {
            lookup
                .query_row([s.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(StoreError::sql("looking up a subscriber"))?
        };
        let fields = field_cols(s);
        match existing {
            None => {
                new_rows.push(std::iter::once(Col::Int(s.id)).chain(fields).chain([
                    Col::Str(new_hash),
                    Col::Str(now),
                    Col::Str(now),
                ]));
                for d in s.dns.as_deref().map(dn_rows).into_iter().flatten() {
                    new_dns.push(dn_cols(s.id, d));
                }
                new_log.push([
                    Col::Int(run_id),
                    Col::Int(s.id),
                    Col::Str("inserted"),
                    Col::Null,
                    Col::Str(now),
                ]);
                counts.inserted += 1;
            }
            Some((old_hash, removed)) if &old_hash == new_hash && removed.is_none() => {
                counts.unchanged += 1;
            }
            Some((_, removed)) => {
                let old = load_fields(conn, s.id)?.unwrap_or_default();
                let mut changed = serde_json::Map::new();
                for (i, name) in FIELDS.iter().enumerate() {
                    let before = old.get(i).unwrap_or(&Value::Null);
                    let after = fields[i].to_value();
                    if before != &after {
                        changed.insert(
                            (*name).to_owned(),
                            serde_json::json!([values::to_json(before), values::to_json(&after)]),
                        );
                    }
                }
                if let Some(new_dns) = s.dns.as_deref().map(dn_rows) {
                    let old_dns = load_dns(conn, s.id)?;
                    if old_dns != new_dns {
                        changed.insert(
                            "dns".into(),
                            serde_json::json!([dns_json(&old_dns), dns_json(&new_dns)]),
                        );
                        replace_dns(conn, s.id, new_dns)?;
                    }
                }
                let id = Col::Int(s.id);
                let tail = [Col::Str(new_hash), Col::Str(now)];
                let p = std::iter::once(&id).chain(&fields).chain(&tail);
                conn.prepare_cached(&UPDATE_SQL)
                    .and_then(|mut st| st.execute(params_from_iter(p)))
                    .map_err(StoreError::sql("updating a subscriber"))?;
                let kind = if removed.is_some() {
                    "restored"
                } else {
                    "updated"
                };
                log_change(
                    conn,
                    run_id,
                    s.id,
                    kind,
                    Some(&serde_json::Value::Object(changed)),
                    now,
                )?;
                if removed.is_some() {
                    counts.restored += 1;
                } else {
                    counts.updated += 1;
                }
            }
        }
    }
    flush(&mut new_rows, &mut new_dns, &mut new_log)?;
    Ok(counts)
}

/// `(content_hash, removed_at)` of the stored subscribers among `records`, by id.
fn stored_states(
    conn: &Conn,
    records: &[Subscriber],
) -> Result<HashMap<SubscriberId, (String, Option<String>)>, StoreError> {
    const CHUNK: usize = 500;
    let mut out = HashMap::with_capacity(records.len());
    for chunk in records.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql =
            format!("SELECT id, content_hash, removed_at FROM subscribers WHERE id IN ({marks})");
        // Not cached: planned for these ids (see `Conn::prepare`).
        conn.prepare(&sql)
            .and_then(|mut st| {
                st.query_map(params_from_iter(chunk.iter().map(|s| s.id)), |r| {
                    Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
                })?
                .try_for_each(|row| row.map(|(id, state)| drop(out.insert(id, state))))
            })
            .map_err(StoreError::sql("looking up subscribers"))?;
    }
    Ok(out)
}

/// Tombstones (`removed_at = now`) every live subscriber not in `seen`, except those
/// `guard` holds back (recorded in `held_removals`); returns what it removed and held.
fn tombstone(
    conn: &Conn,
    run_id: i64,
    seen: &HashSet<SubscriberId>,
    guard: Option<&(RemovalLimit, Vec<ListScope>)>,
    now: &str,
) -> Result<Removals, StoreError> {
    let live: Vec<(SubscriberId, HashMap<&'static str, Option<i64>>)> = conn
        .prepare_cached("SELECT id, nodeid, departmentid FROM subscribers WHERE removed_at IS NULL")
        .and_then(|mut st| {
            st.query_map([], |r| {
                let cols = HashMap::from([("nodeid", r.get(1)?), ("departmentid", r.get(2)?)]);
                Ok((r.get(0)?, cols))
            })?
            .collect()
        })
        .map_err(StoreError::sql("listing live subscribers"))?;
    let going: HashSet<SubscriberId> = live
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !seen.contains(id))
        .collect();
    let (held, report) = match guard {
        Some((limit, scopes)) => removals::decide(*limit, scopes, &live, &going),
        None => Default::default(),
    };
    let mut out = Removals::default();
    let mut going: Vec<SubscriberId> = going
        .into_iter()
        .filter(|id| !held.contains_key(id))
        .collect();
    going.sort_unstable();
    for id in going {
        out.removed += u64::from(tombstone_one(conn, run_id, id, now)?);
    }
    removals::record(
        conn,
        run_id,
        "subscribers",
        held.into_iter().map(|(id, scope)| (id.to_string(), scope)),
    )?;
    out.held = report;
    Ok(out)
}

/// Tombstones one subscriber if it is live, logging `removed` for `run_id`.
pub(super) fn tombstone_one(
    conn: &Conn,
    run_id: i64,
    id: SubscriberId,
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE subscribers SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
        )
        .and_then(|mut st| st.execute(params![id, now]))
        .map_err(StoreError::sql("tombstoning a subscriber"))?;
    if n > 0 {
        log_change(conn, run_id, id, "removed", None, now)?;
    }
    Ok(n > 0)
}

/// What `tombstone_unseen` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removals {
    pub removed: u64,
    /// Scopes whose removals were over the limit and held back.
    pub held: Vec<HeldBack>,
}

impl Store {
    /// Applies a batch of pulled subscribers in one transaction (see `apply`). `now` is the
    /// RFC 3339 timestamp written to `first_seen_at` / `updated_at` / the change log.
    ///
    /// The batch is queued for the writer when this is called, not when the result is
    /// awaited: a job can decode the next batch meanwhile.
    ///
    /// The writer thread is a bulk pull's bottleneck, so it does only SQLite work: the
    /// content hashes are computed here, on the caller's thread, and the records come back
    /// to be freed where the future is awaited.
    pub fn apply_subscribers(
        &self,
        run_id: i64,
        records: Vec<Subscriber>,
        now: String,
    ) -> impl Future<Output = Result<ApplyCounts, StoreError>> + Send + 'static {
        let hashes: Vec<String> = records.iter().map(content_hash).collect();
        let write = self.writer.submit(move |conn| {
            apply(conn, run_id, &records, &hashes, &now).map(|counts| (counts, records))
        });
        async move { write.await.map(|(counts, _records)| counts) }
    }

    /// Tombstones live subscribers that the run did not see. Call only when every list of
    /// the scope was read completely. With `guard` (the limit and the lists read), removals
    /// over the limit in a list's scope are held back instead (see `removals`).
    pub async fn tombstone_unseen(
        &self,
        run_id: i64,
        seen: HashSet<SubscriberId>,
        guard: Option<(RemovalLimit, Vec<ListScope>)>,
        now: String,
    ) -> Result<Removals, StoreError> {
        self.write(move |conn| tombstone(conn, run_id, &seen, guard.as_ref(), &now))
            .await
    }

    /// Ids of subscribers not tombstoned, ascending: the set the account jobs pull for.
    pub async fn live_subscriber_ids(&self) -> Result<Vec<SubscriberId>, StoreError> {
        self.read(|conn| {
            conn.prepare("SELECT id FROM subscribers WHERE removed_at IS NULL ORDER BY id")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(StoreError::sql("listing live subscribers"))
        })
        .await
    }

    /// One subscriber as stored (with its DNs; `dns` is always `Some`), tombstoned or not.
    pub async fn subscriber(&self, id: SubscriberId) -> Result<Option<Subscriber>, StoreError> {
        self.read(move |conn| load_subscriber(conn, id)).await
    }

    /// Shows in the mirror a number our own `subscriber.dnadd` put on a live subscriber, as
    /// Tariscope confirmed it (logged as a change of `run_id`, like a pulled one; the next
    /// pull replaces it with what Tariscope lists). Without it a push that runs before the
    /// next pull, or whose read-back failed, plans from a mirror that lacks the number and
    /// takes that for an operator's removal (which `local-wins` adds again: assigned twice
    /// where the server accepts a repeated `dnadd`). Read and write are one transaction, so
    /// a pull writing meanwhile is not overwritten. False when the mirror lacks the
    /// subscriber, has it tombstoned, or already shows the number.
    pub async fn add_confirmed_dn(
        &self,
        run_id: i64,
        dn: DnAssignment,
        now: String,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let id = dn.subscriber_id;
            let live: Option<bool> = conn
                .query_row(
                    "SELECT removed_at IS NULL FROM subscribers WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::sql("reading a subscriber's state"))?;
            if live != Some(true) {
                return Ok(false);
            }
            let Some(mut s) = load_subscriber(conn, id)? else {
                return Ok(false);
            };
            let dns = s.dns.get_or_insert_with(Vec::new);
            if dns.iter().any(|d| d.pbx_id == dn.pbx_id && d.dn == dn.dn) {
                return Ok(false);
            }
            dns.push(dn);
            let hash = content_hash(&s);
            apply(conn, run_id, &[s], &[hash], &now)?;
            Ok(true)
        })
        .await
    }
}

fn load_subscriber(conn: &Conn, id: SubscriberId) -> Result<Option<Subscriber>, StoreError> {
    let Some(fields) = load_fields(conn, id)? else {
        return Ok(None);
    };
    let dns = load_dns(conn, id)?
        .into_iter()
        .map(|d| {
            Ok(DnAssignment {
                id: d.dn_id,
                subscriber_id: id,
                pbx_id: d.pbx_id,
                dn: d.dn.into_owned(),
                from_date: match d.from_date {
                    None => None,
                    Some(t) => Some(t.parse().map_err(|_| StoreError::Corrupt {
                        table: "dns",
                        column: "from_date",
                        value: t.into_owned(),
                    })?),
                },
                description: d.description.map(Cow::into_owned),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    from_values(id, &fields, dns).map(Some)
}

#[cfg(test)]
#[path = "subscribers_tests.rs"]
mod tests;
