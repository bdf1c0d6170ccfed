//! A keyed upsert that writes nothing when the row is unchanged.
//!
//! Owns: the compare-then-write of one row of a keyed table (used by the account and the
//! reference tables). Must not: know the domain types.

use super::db::{Conn, OptionalExtension, params_from_iter};
use rusqlite::types::Value;

use super::StoreError;

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl UpsertCounts {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: UpsertCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }

    pub(crate) fn count(&mut self, c: Change) {
        match c {
            Change::Inserted => self.inserted += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

pub(crate) enum Change {
    Inserted,
    Updated,
    Unchanged,
}

/// A table keyed by some columns, with data columns compared before writing.
pub(crate) struct Table {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub data: &'static [&'static str],
    /// Whether the table has a `first_seen_at` column.
    pub first_seen: bool,
}

/// The three statements of a table, built once per batch.
pub(crate) struct Sql {
    select: String,
    insert: String,
    update: String,
}

impl Table {
    pub(crate) fn sql(&self) -> Sql {
        let nk = self.keys.len();
        let nd = self.data.len();
        let key_where: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ?{}", i + 1))
            .collect();
        let key_where = key_where.join(" AND ");
        let mut cols: Vec<&str> = self.keys.iter().chain(self.data.iter()).copied().collect();
        if self.first_seen {
            cols.push("first_seen_at");
        }
        cols.push("updated_at");
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sets: Vec<String> = self
            .data
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{d} = ?{}", nk + i + 1))
            .collect();
        Sql {
            select: format!(
                "SELECT {} FROM {} WHERE {key_where}",
                self.data.join(", "),
                self.name
            ),
            insert: format!(
                "INSERT INTO {} ({}) VALUES ({})",
                self.name,
                cols.join(", "),
                marks.join(", ")
            ),
            update: format!(
                "UPDATE {} SET {}, updated_at = ?{} WHERE {key_where}",
                self.name,
                sets.join(", "),
                nk + nd + 1
            ),
        }
    }
}

pub(crate) fn upsert(
    conn: &Conn,
    t: &Table,
    sql: &Sql,
    key: Vec<Value>,
    data: Vec<Value>,
    now: &str,
) -> Result<Change, StoreError> {
    let old: Option<Vec<Value>> = conn
        .prepare_cached(&sql.select)
        .and_then(|mut st| {
            st.query_row(params_from_iter(key.iter()), |r| {
                (0..t.data.len()).map(|i| r.get::<_, Value>(i)).collect()
            })
            .optional()
        })
        .map_err(StoreError::sql("reading an account row"))?;
    let mut p = key;
    match old {
        Some(old) if old == data => Ok(Change::Unchanged),
        Some(_) => {
            p.extend(data);
            p.push(Value::Text(now.to_owned()));
            conn.prepare_cached(&sql.update)
                .and_then(|mut st| st.execute(params_from_iter(p)))
                .map_err(StoreError::sql("updating an account row"))?;
            Ok(Change::Updated)
        }
        None => {
            p.extend(data);
            if t.first_seen {
                p.push(Value::Text(now.to_owned()));
            }
            p.push(Value::Text(now.to_owned()));
            conn.prepare_cached(&sql.insert)
                .and_then(|mut st| st.execute(params_from_iter(p)))
                .map_err(StoreError::sql("inserting an account row"))?;
            Ok(Change::Inserted)
        }
    }
}
