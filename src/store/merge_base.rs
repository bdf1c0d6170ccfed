//! `merge_base`: per desired row, the values and numbers last reconciled with Tariscope.
//!
//! Owns: reading and writing the base of fields (`field` = the column name) and of numbers
//! (`field` = `dn:PBX/DN`, `value` empty: the number was held by both sides). Must not:
//! decide how the base moves (that is `sync::plan` and the push executor).

use std::collections::{BTreeMap, BTreeSet};

use super::db::{Conn, params};

use super::{Store, StoreError};
use crate::model::desired::DnKey;
use crate::model::fields::{Field, Fields};

const DN_PREFIX: &str = "dn:";

fn dn_field(dn: &DnKey) -> String {
    format!("{DN_PREFIX}{}/{}", dn.pbx_id, dn.dn)
}

fn parse_dn_field(field: &str) -> Option<DnKey> {
    let (pbx, dn) = field.strip_prefix(DN_PREFIX)?.split_once('/')?;
    Some(DnKey {
        pbx_id: pbx.parse().ok()?,
        dn: dn.to_string(),
    })
}

/// The merge base of every desired key: fields and numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeBase {
    pub fields: BTreeMap<String, Fields>,
    pub dns: BTreeMap<String, BTreeSet<DnKey>>,
}

fn read_base(conn: &Conn) -> Result<MergeBase, StoreError> {
    let mut stmt = conn
        .prepare("SELECT key, field, value FROM merge_base")
        .map_err(StoreError::sql("preparing the merge base read"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sql("reading the merge base"))?;
    let mut out = MergeBase::default();
    for (key, field, value) in rows {
        if let Some(dn) = parse_dn_field(&field) {
            out.dns.entry(key).or_default().insert(dn);
        } else if let Ok(f) = field.parse::<Field>() {
            out.fields.entry(key).or_default().insert(f, value);
        }
    }
    Ok(out)
}

fn insert_dn(conn: &Conn, key: &str, dn: &DnKey, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO merge_base (key, field, value, updated_at) VALUES (?1, ?2, '', ?3) \
         ON CONFLICT (key, field) DO UPDATE SET updated_at = excluded.updated_at",
        params![key, dn_field(dn), now],
    )
    .map(drop)
    .map_err(StoreError::sql("writing the merge base"))
}

impl Store {
    /// The merge base per desired key.
    pub async fn merge_base(&self) -> Result<MergeBase, StoreError> {
        self.read(read_base).await
    }

    /// Sets merge-base values of one desired row.
    pub async fn set_base(
        &self,
        key: String,
        fields: Fields,
        now: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            for (f, v) in &fields {
                conn.execute(
                    "INSERT INTO merge_base (key, field, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (key, field) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    params![key, f.name(), v, now],
                )
                .map_err(StoreError::sql("writing the merge base"))?;
            }
            Ok(())
        })
        .await
    }

    /// Replaces the numbers in the merge base of one desired row.
    pub async fn set_dn_base(
        &self,
        key: String,
        dns: BTreeSet<DnKey>,
        now: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM merge_base WHERE key = ?1 AND field LIKE 'dn:%'",
                [&key],
            )
            .map_err(StoreError::sql("replacing the merge base of numbers"))?;
            for dn in &dns {
                insert_dn(conn, &key, dn, &now)?;
            }
            Ok(())
        })
        .await
    }

    /// Adds one number to the merge base of a desired row (Tariscope confirmed it).
    pub async fn add_dn_base(&self, key: String, dn: DnKey, now: String) -> Result<(), StoreError> {
        self.write(move |conn| insert_dn(conn, &key, &dn, &now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn numbers_and_fields_share_the_base_without_mixing() {
        for backend in crate::store::test_backends::backends().await {
            let store = crate::store::test_backends::on(&backend);
            let dn = |n: &str| DnKey {
                pbx_id: 291,
                dn: n.into(),
            };
            let fields = Fields::from([(Field::Street, "Khreshchatyk".to_string())]);
            store
                .set_base("a".into(), fields.clone(), "2026-01-01T00:00:00Z".into())
                .await
                .unwrap();
            store
                .set_dn_base(
                    "a".into(),
                    [dn("1"), dn("2")].into(),
                    "2026-01-01T00:00:00Z".into(),
                )
                .await
                .unwrap();
            store
                .set_dn_base("a".into(), [dn("2")].into(), "2026-01-01T00:00:00Z".into())
                .await
                .unwrap();
            store
                .add_dn_base("a".into(), dn("+3"), "2026-01-01T00:00:00Z".into())
                .await
                .unwrap();
            let base = store.merge_base().await.unwrap();
            assert_eq!(base.fields["a"], fields);
            assert_eq!(base.dns["a"], [dn("2"), dn("+3")].into());
        }
    }
}
