//! The `dns` table: a subscriber's numbers as stored, read, compared and replaced.
//!
//! Owns: the stored form of a number ([`DnRow`], in the canonical order the content hash and
//! the diff compare), its JSON in the change log, and replacing a subscriber's numbers.
//! Must not: decide when they change (that is `subscribers`' diff).

use std::borrow::Cow;

use super::db::Conn;

use super::StoreError;
use super::bulk::Bulk;
use super::values::{self, Col};
use crate::model::{DnAssignment, SubscriberId};

/// A DN as stored, in a canonical order for hashing and comparing; borrows the record's
/// text when built from one, owns it when read from the mirror.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DnRow<'a> {
    pub(super) pbx_id: Option<i64>,
    pub(super) dn: Cow<'a, str>,
    pub(super) dn_id: Option<i64>,
    pub(super) from_date: Option<Cow<'a, str>>,
    pub(super) description: Option<Cow<'a, str>>,
}

pub(super) fn dn_rows(dns: &[DnAssignment]) -> Vec<DnRow<'_>> {
    let mut rows: Vec<DnRow> = dns
        .iter()
        .map(|d| DnRow {
            pbx_id: d.pbx_id,
            dn: Cow::Borrowed(&d.dn),
            dn_id: d.id,
            from_date: d.from_date.map(|d| Cow::Owned(values::date_text(d))),
            description: d.description.as_deref().map(Cow::Borrowed),
        })
        .collect();
    rows.sort();
    rows
}

pub(super) fn dns_json(rows: &[DnRow]) -> serde_json::Value {
    rows.iter()
        .map(|r| serde_json::json!({"pbx_id": r.pbx_id, "dn": r.dn, "from_date": r.from_date, "description": r.description}))
        .collect()
}

pub(super) fn load_dns(conn: &Conn, id: SubscriberId) -> Result<Vec<DnRow<'static>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT pbx_id, dn, dn_id, from_date, description FROM dns WHERE subscriber_id = ?1",
        )
        .map_err(StoreError::sql("preparing the DN read"))?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(DnRow {
                pbx_id: r.get(0)?,
                dn: Cow::Owned(r.get(1)?),
                dn_id: r.get(2)?,
                from_date: r.get::<_, Option<String>>(3)?.map(Cow::Owned),
                description: r.get::<_, Option<String>>(4)?.map(Cow::Owned),
            })
        })
        .map_err(StoreError::sql("reading DNs"))?;
    let mut out = rows
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("reading DNs"))?;
    out.sort();
    Ok(out)
}

pub(super) const DN_INSERT_HEAD: &str =
    "INSERT INTO dns (subscriber_id, dn_id, pbx_id, dn, from_date, description)";

/// The columns of `DN_INSERT_HEAD` for one DN of subscriber `id`.
pub(super) fn dn_cols(id: SubscriberId, d: DnRow<'_>) -> [Col<'_>; 6] {
    [
        Col::Int(id),
        Col::int(d.dn_id),
        Col::int(d.pbx_id),
        Col::from(d.dn),
        d.from_date.map_or(Col::Null, Col::from),
        d.description.map_or(Col::Null, Col::from),
    ]
}

/// Replaces a subscriber's DNs.
pub(super) fn replace_dns(
    conn: &Conn,
    id: SubscriberId,
    dns: Vec<DnRow>,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM dns WHERE subscriber_id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(StoreError::sql("deleting old DNs"))?;
    let mut rows = Bulk::new(DN_INSERT_HEAD, 6);
    for d in dns {
        rows.push(dn_cols(id, d));
    }
    rows.flush(conn, "inserting DNs")
}
