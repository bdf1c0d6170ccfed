//! The integrators' side of the mirror: desired subscribers and numbers, and the mirror as
//! the push planner reads it.
//!
//! Owns: reading and writing `desired_subscribers` and `desired_dns` (an import's rejected
//! rows go to `rejected.rs`; the merge base is `merge_base.rs`), and the bulk read of
//! `subscribers`/`dns` into planner inputs. Desired rows are read exactly as written ([`Cell`]s): whoever wrote them, they are checked by
//! `sync::validate` before anything is planned.
//! Must not: decide what to push (that is `sync::plan`) or whether a desired value is valid
//! (that is `sync::validate`), or talk to Tariscope.

use std::collections::BTreeMap;

use super::db::{Conn, params};
use rusqlite::types::Value;

use super::rejected::insert_rejection;
use super::{Store, StoreError};
use crate::model::desired::{DesiredDn, DesiredSubscriber, DnKey, ImportBatch, RemoteSubscriber};
use crate::model::fields::{Field, Fields, Kind, canonical};
use crate::model::{Cell, RawDesired, RawDn};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

pub(super) fn cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Integer(i) => Cell::Int(i),
        Value::Real(f) => Cell::Real(f),
        Value::Text(t) => Cell::Text(t),
        Value::Blob(b) => Cell::Blob(b),
    }
}

/// Desired subscribers with their numbers exactly as written, ordered by key. Numbers whose
/// key names no desired subscriber (SQLite checks the foreign key only on connections that
/// enable it) are left out.
fn read_raw(conn: &Conn) -> Result<Vec<RawDesired>, StoreError> {
    let sql = format!(
        "SELECT key, tariscope_id, {} FROM desired_subscribers ORDER BY key",
        field_columns()
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(StoreError::sql("preparing the desired read"))?;
    let names: Vec<String> = stmt
        .column_names()
        .map_err(StoreError::sql("preparing the desired read"))?;
    let mut rows: Vec<RawDesired> = stmt
        .query_map([], |r| {
            let mut columns = Vec::with_capacity(names.len() - 1);
            for (i, name) in names.iter().enumerate().skip(1) {
                columns.push((name.clone(), cell(r.get::<_, Value>(i)?)));
            }
            Ok(RawDesired {
                key: cell(r.get(0)?),
                columns,
                dns: Vec::new(),
            })
        })
        .and_then(|it| it.collect())
        .map_err(StoreError::sql("reading desired subscribers"))?;
    let mut stmt = conn
        .prepare("SELECT key, pbx_id, dn, from_date, description FROM desired_dns ORDER BY key, pbx_id, dn")
        .map_err(StoreError::sql("preparing the desired DN read"))?;
    let list = stmt
        .query_map([], |r| {
            Ok((
                cell(r.get(0)?).shown().unwrap_or_default(),
                RawDn {
                    pbx_id: cell(r.get(1)?),
                    dn: cell(r.get(2)?),
                    from_date: cell(r.get(3)?),
                    description: cell(r.get(4)?),
                },
            ))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sql("reading desired DNs"))?;
    let mut dns: BTreeMap<String, Vec<RawDn>> = BTreeMap::new();
    for (key, dn) in list {
        dns.entry(key).or_default().push(dn);
    }
    for row in &mut rows {
        let key = row.key.shown().unwrap_or_default();
        row.dns = dns.remove(&key).unwrap_or_default();
    }
    Ok(rows)
}

/// A column value in the planner's canonical text form (NULL → `None`).
fn canonical_value(field: Field, v: &Value) -> Option<String> {
    let raw = match v {
        Value::Null => return None,
        Value::Integer(i) if field.kind() == Kind::Bool => (*i != 0).to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(_) => return None,
    };
    Some(canonical(field, &raw).unwrap_or(raw))
}

/// A canonical text as the column value of `field` (empty non-text → NULL).
fn column_value(field: Field, v: &str) -> Value {
    match field.kind() {
        Kind::Text => Value::Text(v.to_string()),
        Kind::Date | Kind::Decimal if v.is_empty() => Value::Null,
        Kind::Date | Kind::Decimal => Value::Text(v.to_string()),
        Kind::Int => v.parse::<i64>().map_or(Value::Null, Value::Integer),
        Kind::Bool => match v {
            "true" => Value::Integer(1),
            "false" => Value::Integer(0),
            _ => Value::Null,
        },
    }
}

fn field_columns() -> String {
    Field::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_desired(conn: &Conn) -> Result<Vec<DesiredSubscriber>, StoreError> {
    let sql = format!(
        "SELECT key, tariscope_id, {} FROM desired_subscribers ORDER BY key",
        field_columns()
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(StoreError::sql("preparing the desired read"))?;
    let mut rows: Vec<DesiredSubscriber> = stmt
        .query_map([], |r| {
            let mut fields = Fields::new();
            for (i, f) in Field::ALL.iter().enumerate() {
                if let Some(v) = canonical_value(*f, &r.get::<_, Value>(i + 2)?) {
                    fields.insert(*f, v);
                }
            }
            Ok(DesiredSubscriber {
                key: r.get(0)?,
                tariscope_id: r.get(1)?,
                fields,
                dns: Vec::new(),
            })
        })
        .and_then(|it| it.collect())
        .map_err(StoreError::sql("reading desired subscribers"))?;
    let mut dns: BTreeMap<String, Vec<DesiredDn>> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT key, pbx_id, dn, from_date, description FROM desired_dns ORDER BY key, pbx_id, dn")
        .map_err(StoreError::sql("preparing the desired DN read"))?;
    let list = stmt
        .query_map([], |r| {
            let from: Option<String> = r.get(3)?;
            Ok((
                r.get::<_, String>(0)?,
                DesiredDn {
                    pbx_id: r.get(1)?,
                    dn: r.get(2)?,
                    from_date: from.and_then(|d| d.parse().ok()),
                    description: r.get(4)?,
                },
            ))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sql("reading desired DNs"))?;
    for (key, dn) in list {
        dns.entry(key).or_default().push(dn);
    }
    for row in &mut rows {
        row.dns = dns.remove(&row.key).unwrap_or_default();
    }
    Ok(rows)
}

fn read_remote(conn: &Conn) -> Result<BTreeMap<i64, RemoteSubscriber>, StoreError> {
    let sql = format!(
        "SELECT id, removed_at IS NOT NULL, {} FROM subscribers",
        field_columns()
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(StoreError::sql("preparing the mirror read"))?;
    let mut out: BTreeMap<i64, RemoteSubscriber> = stmt
        .query_map([], |r| {
            let id: i64 = r.get(0)?;
            let mut fields = Fields::new();
            for (i, f) in Field::ALL.iter().enumerate() {
                let v = canonical_value(*f, &r.get::<_, Value>(i + 2)?).unwrap_or_default();
                fields.insert(*f, v);
            }
            Ok((
                id,
                RemoteSubscriber {
                    id,
                    fields,
                    dns: Default::default(),
                    removed: r.get(1)?,
                },
            ))
        })
        .and_then(|it| it.collect())
        .map_err(StoreError::sql("reading the mirror for planning"))?;
    let mut stmt = conn
        .prepare("SELECT subscriber_id, pbx_id, dn FROM dns")
        .map_err(StoreError::sql("preparing the DN read"))?;
    let dns = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sql("reading DNs for planning"))?;
    for (id, pbx, dn) in dns {
        if let Some(s) = out.get_mut(&id) {
            s.dns.insert(DnKey {
                pbx_id: pbx.unwrap_or_default(),
                dn,
            });
        }
    }
    Ok(out)
}

/// Upserts one desired row (all managed fields replaced) and its numbers; returns whether it
/// was inserted, updated or unchanged.
fn put_desired(
    conn: &Conn,
    row: &DesiredSubscriber,
    existing: Option<&DesiredSubscriber>,
) -> Result<Change, StoreError> {
    let target = DesiredSubscriber {
        tariscope_id: row.tariscope_id.or(existing.and_then(|e| e.tariscope_id)),
        ..row.clone()
    };
    let mut sorted = target.clone();
    sorted.dns.sort();
    if let Some(e) = existing {
        let mut e = e.clone();
        e.dns.sort();
        if e == sorted {
            return Ok(Change::Unchanged);
        }
    }
    let cols = field_columns();
    let marks = (0..Field::ALL.len() + 2)
        .map(|i| format!("?{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let updates = Field::ALL
        .iter()
        .map(|f| format!("{0} = excluded.{0}", f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO desired_subscribers (key, tariscope_id, {cols}) VALUES ({marks}) \
         ON CONFLICT (key) DO UPDATE SET tariscope_id = excluded.tariscope_id, {updates}"
    );
    let mut values = vec![
        Value::Text(target.key.clone()),
        target.tariscope_id.map_or(Value::Null, Value::Integer),
    ];
    values.extend(Field::ALL.iter().map(|f| {
        target
            .fields
            .get(f)
            .map_or(Value::Null, |v| column_value(*f, v))
    }));
    conn.execute(&sql, super::db::params_from_iter(values))
        .map_err(StoreError::sql("writing a desired subscriber"))?;
    conn.execute("DELETE FROM desired_dns WHERE key = ?1", [&target.key])
        .map_err(StoreError::sql("replacing desired DNs"))?;
    for dn in &target.dns {
        conn.execute(
            "INSERT INTO desired_dns (key, pbx_id, dn, from_date, description) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (pbx_id, dn) DO UPDATE SET key = excluded.key, from_date = excluded.from_date, description = excluded.description",
            params![target.key, dn.pbx_id, dn.dn, dn.from_date.map(|d| d.to_string()), dn.description],
        )
        .map_err(StoreError::sql("writing a desired DN"))?;
    }
    Ok(if existing.is_some() {
        Change::Updated
    } else {
        Change::Inserted
    })
}

enum Change {
    Inserted,
    Updated,
    Unchanged,
}

impl Store {
    /// Desired subscribers with their numbers, ordered by key.
    pub async fn desired_subscribers(&self) -> Result<Vec<DesiredSubscriber>, StoreError> {
        self.read(read_desired).await
    }

    /// The mirror as the planner reads it: every subscriber (tombstoned ones flagged) with
    /// its numbers, fields in canonical text.
    pub async fn remote_for_plan(&self) -> Result<BTreeMap<i64, RemoteSubscriber>, StoreError> {
        self.read(read_remote).await
    }

    /// Writes an import: valid rows upserted (a row replaces the desired row; a missing
    /// `tariscope_id` keeps an existing link), rejected rows recorded under `source`
    /// (replacing that source's earlier rejections). One transaction.
    pub async fn import_desired(
        &self,
        batch: ImportBatch,
        source: String,
        now: String,
    ) -> Result<ImportCounts, StoreError> {
        self.write(move |conn| {
            let mut counts = ImportCounts::default();
            let existing: BTreeMap<String, DesiredSubscriber> = read_desired(conn)?
                .into_iter()
                .map(|d| (d.key.clone(), d))
                .collect();
            for row in &batch.rows {
                match put_desired(conn, row, existing.get(&row.key))? {
                    Change::Inserted => counts.inserted += 1,
                    Change::Updated => counts.updated += 1,
                    Change::Unchanged => counts.unchanged += 1,
                }
            }
            conn.execute("DELETE FROM rejected WHERE source = ?1", [&source])
                .map_err(StoreError::sql("clearing earlier rejections"))?;
            for r in &batch.rejected {
                insert_rejection(conn, &source, r, None, &now)?;
                counts.rejected += 1;
            }
            Ok(counts)
        })
        .await
    }

    /// Desired subscribers with their numbers exactly as written (see [`RawDesired`]).
    pub async fn desired_rows(&self) -> Result<Vec<RawDesired>, StoreError> {
        self.read(read_raw).await
    }

    /// Ids of mirrored subscribers first seen before `at` (RFC 3339, same format as the
    /// pull jobs write), plus every id linked to a desired row: subscribers a push must
    /// never adopt by name.
    pub async fn known_subscriber_ids(
        &self,
        at: String,
    ) -> Result<std::collections::BTreeSet<i64>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id FROM subscribers WHERE first_seen_at < ?1 \
                     UNION SELECT tariscope_id FROM desired_subscribers WHERE tariscope_id IS NOT NULL",
                )
                .map_err(StoreError::sql("preparing the known-ids read"))?;
            stmt.query_map([at], |r| r.get(0))
                .and_then(|it| it.collect())
                .map_err(StoreError::sql("reading known subscriber ids"))
        })
        .await
    }

    /// Row counts of the integrator-facing tables, for `demo` and `doctor`.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        const TABLES: &[&str] = &[
            "subscribers",
            "dns",
            "payments",
            "charges",
            "account_summaries",
            "tariff_plans",
            "tariffs",
            "services",
            "subscriber_changes",
            "desired_subscribers",
            "desired_dns",
            "outbox",
            "conflicts",
            "rejected",
            "job_runs",
        ];
        self.read(|conn| {
            TABLES
                .iter()
                .map(|t| {
                    conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                        .map(|n| (*t, n))
                        .map_err(StoreError::sql("counting rows"))
                })
                .collect()
        })
        .await
    }

    /// Proves the mirror is writable: a real write in a transaction, then rolled away.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            if conn.is_postgres() {
                // Taking every table's write lock needs the right to write it.
                let tables = super::pg::SCHEMA_TABLES.join(", ");
                return conn
                    .execute_batch(&format!("LOCK TABLE {tables} IN ROW EXCLUSIVE MODE"))
                    .map_err(StoreError::sql("checking the right to write every table"));
            }
            conn.execute_batch("CREATE TABLE doctor_probe (x); DROP TABLE doctor_probe;")
                .map_err(StoreError::sql("writing a probe table"))
        })
        .await
    }

    /// Links a desired row to a Tariscope subscriber.
    pub async fn link_desired(&self, key: String, id: i64) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE desired_subscribers SET tariscope_id = ?2 WHERE key = ?1",
                params![key, id],
            )
            .map(drop)
            .map_err(StoreError::sql("linking a desired subscriber"))
        })
        .await
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
