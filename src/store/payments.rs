//! `desired_payments` and the payment side of the outbox (issue 15).
//!
//! Owns: reading desired payments exactly as written, what the mirror knows about payers
//! (subscriber ids, account numbers, desired keys), inserting an import's new rows, and the
//! one transaction that records a confirmed payment (outbox entry done, `paymentid` on the
//! desired row, the pulled `payments` mirror naming the reference). Must not: decide whether
//! a row is valid (`sync::payments`) or whether a payment landed (`sync::push`).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::desired::{ImportCounts, cell};
use super::rejected::insert_rejection;
use super::{Store, StoreError};
use crate::model::{RawDesired, Rejection};
use crate::sync::payments::{COLUMNS, Payer, ValidPayment};

/// Mirrored subscribers Tariscope still has, account number → their ids, desired key → link.
pub type Payers = (
    BTreeSet<i64>,
    BTreeMap<String, Vec<i64>>,
    BTreeMap<String, Option<i64>>,
);

fn read_rows(conn: &Connection) -> Result<Vec<RawDesired>, StoreError> {
    let sql = format!(
        "SELECT reference, {} FROM desired_payments ORDER BY reference",
        COLUMNS.join(", ")
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(StoreError::sql("preparing the desired payments read"))?;
    stmt.query_map([], |r| {
        let mut columns = Vec::with_capacity(COLUMNS.len());
        for (i, name) in COLUMNS.iter().enumerate() {
            columns.push((name.to_string(), cell(r.get::<_, Value>(i + 1)?)));
        }
        Ok(RawDesired {
            key: cell(r.get(0)?),
            columns,
            dns: Vec::new(),
        })
    })
    .and_then(|it| it.collect())
    .map_err(StoreError::sql("reading desired payments"))
}

fn read_payers(conn: &Connection) -> Result<Payers, StoreError> {
    let fail = StoreError::sql("reading the payers of desired payments");
    let mut stmt = conn
        .prepare("SELECT id, accountid FROM subscribers WHERE removed_at IS NULL")
        .map_err(StoreError::sql("preparing the payers read"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(fail)?;
    let mut ids = BTreeSet::new();
    let mut accounts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, account) in rows {
        ids.insert(id);
        if let Some(a) = account
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
        {
            accounts.entry(a).or_default().push(id);
        }
    }
    let mut stmt = conn
        .prepare("SELECT key, tariscope_id FROM desired_subscribers")
        .map_err(StoreError::sql("preparing the desired keys read"))?;
    let keys = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .and_then(|it| it.collect())
        .map_err(StoreError::sql("reading desired keys"))?;
    Ok((ids, accounts, keys))
}

fn insert_row(conn: &Connection, p: &ValidPayment) -> Result<bool, StoreError> {
    let r = &p.row;
    let (id, account, key) = match &r.payer {
        Payer::Id(id) => (Some(*id), None, None),
        Payer::Account(a) => (None, Some(a.clone()), None),
        Payer::Key(k) => (None, None, Some(k.clone())),
    };
    let n = conn
        .execute(
            "INSERT INTO desired_payments (reference, subscriberid, accountid, subscriber_key, amount, paymentday, paymenttype, bank) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (reference) DO NOTHING",
            params![r.reference, id, account, key, r.amount.to_string(), r.day.to_string(), r.kind, r.bank],
        )
        .map_err(StoreError::sql("writing a desired payment"))?;
    Ok(n == 1)
}

impl Store {
    /// Desired payments exactly as written (the key is the reference), ordered by reference.
    pub async fn desired_payment_rows(&self) -> Result<Vec<RawDesired>, StoreError> {
        self.read(read_rows).await
    }

    /// What the mirror knows about payers (see [`Payers`]).
    pub async fn payment_payers(&self) -> Result<Payers, StoreError> {
        self.read(read_payers).await
    }

    /// Writes an import of payments: new rows inserted (a reference already there is never
    /// overwritten), rejected rows recorded under `source` (replacing that source's earlier
    /// rejections). One transaction.
    pub async fn import_payments(
        &self,
        rows: Vec<ValidPayment>,
        unchanged: u64,
        rejected: Vec<Rejection>,
        source: String,
        now: String,
    ) -> Result<ImportCounts, StoreError> {
        self.write(move |conn| {
            let mut counts = ImportCounts {
                unchanged,
                ..ImportCounts::default()
            };
            for p in &rows {
                if insert_row(conn, p)? {
                    counts.inserted += 1;
                } else {
                    counts.unchanged += 1;
                }
            }
            conn.execute("DELETE FROM rejected WHERE source = ?1", [&source])
                .map_err(StoreError::sql("clearing earlier rejections"))?;
            for r in &rejected {
                insert_rejection(conn, &source, r, None, &now)?;
                counts.rejected += 1;
            }
            Ok(counts)
        })
        .await
    }
}

#[cfg(test)]
#[path = "payments_tests.rs"]
mod tests;
