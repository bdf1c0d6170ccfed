//! `rejected`: desired rows that were not taken, with the reason.
//!
//! Owns: recording rejections (an import's, per file; rows written with SQL, per table,
//! standing with their first `at` until the row changes) and reading them for `status`.
//! Must not: decide whether a row is valid (that is `sync::validate`).

use super::db::{Conn, params};

use super::{Store, StoreError};
use crate::model::Rejection;

/// A rejected row as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRejection {
    /// The imported file, or the table a row written with SQL was read from.
    pub source: String,
    pub rejection: Rejection,
    /// When it was first rejected (as it stands).
    pub at: String,
}

const REJECTION_COLUMNS: &str = "source, row, key, field, value, expected, reason, fingerprint, at";

pub(super) fn insert_rejection(
    conn: &Conn,
    source: &str,
    r: &Rejection,
    fingerprint: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO rejected ({REJECTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            source,
            r.row as i64,
            r.key,
            r.field,
            r.value,
            r.expected,
            r.reason,
            fingerprint,
            now
        ],
    )
    .map(drop)
    .map_err(StoreError::sql("recording a rejected row"))
}

impl Store {
    /// Replaces the rejections of rows written with SQL (sources `tables`) with `rows`
    /// (source, fingerprint, rejection). A rejection already recorded for the same row as
    /// written keeps its first `at`. Returns the rejections that are new.
    pub async fn replace_table_rejections(
        &self,
        tables: Vec<&'static str>,
        rows: Vec<(&'static str, String, Rejection)>,
        now: String,
    ) -> Result<Vec<Rejection>, StoreError> {
        self.write(move |conn| {
            type Identity = (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
            );
            let identity = |source: &str, fp: &str, r: &Rejection| -> Identity {
                (
                    source.to_string(),
                    r.key.clone(),
                    r.field.clone(),
                    Some(fp.to_string()),
                    r.reason.clone(),
                )
            };
            let mut stmt = conn
                .prepare("SELECT id, source, key, field, fingerprint, reason FROM rejected")
                .map_err(StoreError::sql("preparing the rejected read"))?;
            let existing = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                    ))
                })
                .and_then(|it| it.collect::<Result<Vec<(i64, Identity)>, _>>())
                .map_err(StoreError::sql("reading rejected rows"))?;
            let wanted: std::collections::BTreeSet<Identity> =
                rows.iter().map(|(s, fp, r)| identity(s, fp, r)).collect();
            let mut kept = std::collections::BTreeSet::new();
            for (id, ident) in existing
                .into_iter()
                .filter(|(_, i)| tables.contains(&i.0.as_str()))
            {
                if wanted.contains(&ident) {
                    kept.insert(ident);
                } else {
                    conn.execute("DELETE FROM rejected WHERE id = ?1", [id])
                        .map_err(StoreError::sql("clearing a settled rejection"))?;
                }
            }
            let mut new = Vec::new();
            for (source, fp, r) in rows {
                if kept.insert(identity(source, &fp, &r)) {
                    insert_rejection(conn, source, &r, Some(&fp), &now)?;
                    new.push(r);
                }
            }
            Ok(new)
        })
        .await
    }

    /// Every rejected row: imports by file, then rows written with SQL, oldest first.
    pub async fn rejected_rows(&self) -> Result<Vec<StoredRejection>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {REJECTION_COLUMNS} FROM rejected ORDER BY id"
                ))
                .map_err(StoreError::sql("preparing the rejected read"))?;
            stmt.query_map([], |r| {
                Ok(StoredRejection {
                    source: r.get(0)?,
                    rejection: Rejection {
                        row: r.get::<_, i64>(1)? as usize,
                        key: r.get(2)?,
                        field: r.get(3)?,
                        value: r.get(4)?,
                        expected: r.get(5)?,
                        reason: r.get(6)?,
                    },
                    at: r.get(8)?,
                })
            })
            .and_then(|it| it.collect())
            .map_err(StoreError::sql("reading rejected rows"))
        })
        .await
    }
}
