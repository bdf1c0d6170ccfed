//! The account tables: `payments`, `charges`, `account_summaries`.
//!
//! Owns: upserting what `accounts.payments` / `accounts.charges` / `accounts.summary` return
//! (and the summaries the job derived, marked by `origin`), writing nothing for unchanged
//! rows, committing the job's checkpoint in the same transaction (alone, or grouped with
//! other items' through `WriteGroup`), and the key of a charge row (see `charge_keys`).
//! Must not: delete account
//! rows (a record missing from a later answer is kept) or read the clock.

use std::collections::HashMap;

use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use super::group::{Row, WriteGroup};
use super::runs::{Checkpoint, put_checkpoint};
use super::upsert::{Table, UpsertCounts, upsert};
use super::values::{self, date, dec, int, text};
use super::{Store, StoreError};
use crate::model::{AccountSummary, Charge, Payment, PaymentType, SubscriberId};

const PAYMENTS: Table = Table {
    name: "payments",
    keys: &["subscriber_id", "payment_id"],
    data: &["payment_day", "amount", "payment_type", "bank"],
    first_seen: true,
};

const CHARGES: Table = Table {
    name: "charges",
    keys: &["subscriber_id", "charge_key"],
    data: &[
        "charge_id",
        "recdate",
        "fromdate",
        "todate",
        "servicename",
        "charge",
        "numberofservices",
    ],
    first_seen: true,
};

const SUMMARIES: Table = Table {
    name: "account_summaries",
    keys: &["subscriber_id", "date"],
    data: &["start_debt", "end_debt", "charge", "payment", "origin"],
    first_seen: false,
};

/// `account_summaries.origin`: where a row's values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOrigin {
    /// Answered by `accounts.summary` for that day.
    Fetched,
    /// A day with no charge and no payment between two fetched days whose balances connect:
    /// start = end = the previous day's end, charge and payment 0.
    Derived,
}

impl SummaryOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryOrigin::Fetched => "fetched",
            SummaryOrigin::Derived => "derived",
        }
    }
}

/// The key of each charge row of one subscriber's answer, in order.
///
/// The guide says a charge row's `id` is "the subscriber identifier"; our profile serves a
/// charge record id. So a row is keyed `id:<id>` only when its id is present, differs from the
/// subscriber id and is unique within the answer; otherwise it is keyed by its content,
/// `c:<hash of recdate, fromdate, todate, servicename, charge, numberofservices>#<n>`, where `n`
/// numbers identical rows of the answer in order. Identical rows share a `recdate`, so a
/// day-aligned window always holds all or none of them and the key is stable across windows.
pub fn charge_keys(subscriber: SubscriberId, charges: &[Charge]) -> Vec<String> {
    let mut id_uses: HashMap<i64, usize> = HashMap::new();
    for c in charges {
        if let Some(id) = c.id {
            *id_uses.entry(id).or_default() += 1;
        }
    }
    let mut seen_content: HashMap<String, usize> = HashMap::new();
    charges
        .iter()
        .map(|c| match c.id {
            Some(id) if id != subscriber && id_uses.get(&id) == Some(&1) => format!("id:{id}"),
            _ => {
                let mut h = Sha256::new();
                for v in [
                    date(c.recdate),
                    date(c.fromdate),
                    date(c.todate),
                    text(&c.servicename),
                    dec(c.charge),
                    dec(c.numberofservices),
                ] {
                    values::hash_value(&mut h, &v);
                }
                let digest = values::hex(&h.finalize()[..12]);
                let n = seen_content.entry(digest.clone()).or_default();
                *n += 1;
                format!("c:{digest}#{n}")
            }
        })
        .collect()
}

fn payment_rows(subscriber: SubscriberId, payments: Vec<Payment>) -> Vec<Row> {
    payments
        .into_iter()
        .map(|p| {
            let key = vec![Value::Integer(subscriber), Value::Integer(p.payment_id)];
            let data = vec![
                date(p.payment_day),
                dec(p.amount),
                int(p.payment_type.map(PaymentType::code)),
                text(&p.bank),
            ];
            (key, data)
        })
        .collect()
}

fn charge_rows(subscriber: SubscriberId, charges: &[Charge]) -> Vec<Row> {
    let keys = charge_keys(subscriber, charges);
    charges
        .iter()
        .zip(keys)
        .map(|(c, k)| {
            let key = vec![Value::Integer(subscriber), Value::Text(k)];
            let data = vec![
                int(c.id),
                date(c.recdate),
                date(c.fromdate),
                date(c.todate),
                text(&c.servicename),
                dec(c.charge),
                dec(c.numberofservices),
            ];
            (key, data)
        })
        .collect()
}

fn summary_rows(summaries: Vec<(AccountSummary, SummaryOrigin)>) -> Vec<Row> {
    summaries
        .into_iter()
        .map(|(s, origin)| {
            let key = vec![
                Value::Integer(s.subscriber_id),
                Value::Text(s.date.to_string()),
            ];
            let data = vec![
                dec(s.start_debt),
                dec(s.end_debt),
                dec(s.charge),
                dec(s.payment),
                Value::Text(origin.as_str().to_owned()),
            ];
            (key, data)
        })
        .collect()
}

impl Store {
    /// Upserts `rows` into `table` and writes the checkpoint, in one transaction.
    async fn upsert_rows(
        &self,
        table: &'static Table,
        rows: Vec<Row>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<UpsertCounts, StoreError> {
        self.write(move |conn| {
            let sql = table.sql();
            let mut counts = UpsertCounts::default();
            for (key, data) in rows {
                counts.count(upsert(conn, table, &sql, key, data, &now)?);
            }
            if let Some(cp) = checkpoint {
                put_checkpoint(conn, &cp, &now)?;
            }
            Ok(counts)
        })
        .await
    }

    /// Upserts one subscriber's payments by (subscriber, payment id), and the checkpoint.
    pub async fn upsert_payments(
        &self,
        subscriber: SubscriberId,
        payments: Vec<Payment>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<UpsertCounts, StoreError> {
        let rows = payment_rows(subscriber, payments);
        self.upsert_rows(&PAYMENTS, rows, checkpoint, now).await
    }

    /// Upserts one subscriber's charges keyed by `charge_keys`, and the checkpoint.
    pub async fn upsert_charges(
        &self,
        subscriber: SubscriberId,
        charges: Vec<Charge>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<UpsertCounts, StoreError> {
        let rows = charge_rows(subscriber, &charges);
        self.upsert_rows(&CHARGES, rows, checkpoint, now).await
    }

    /// Upserts daily account summaries by (subscriber, date) with their origin, and the
    /// checkpoint. A row whose values are unchanged but whose origin differs is updated.
    pub async fn upsert_summaries(
        &self,
        summaries: Vec<(AccountSummary, SummaryOrigin)>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<UpsertCounts, StoreError> {
        self.upsert_rows(&SUMMARIES, summary_rows(summaries), checkpoint, now)
            .await
    }
}

/// The same upserts, grouped with other items' into larger transactions (`WriteGroup`).
impl WriteGroup {
    /// `Store::upsert_payments`, committed with the group.
    pub async fn payments(
        &self,
        subscriber: SubscriberId,
        payments: Vec<Payment>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<(), StoreError> {
        let rows = payment_rows(subscriber, payments);
        self.add(&PAYMENTS, rows, checkpoint, now).await
    }

    /// `Store::upsert_charges`, committed with the group.
    pub async fn charges(
        &self,
        subscriber: SubscriberId,
        charges: Vec<Charge>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<(), StoreError> {
        let rows = charge_rows(subscriber, &charges);
        self.add(&CHARGES, rows, checkpoint, now).await
    }

    /// `Store::upsert_summaries`, committed with the group.
    pub async fn summaries(
        &self,
        summaries: Vec<(AccountSummary, SummaryOrigin)>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<(), StoreError> {
        self.add(&SUMMARIES, summary_rows(summaries), checkpoint, now)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn charge(id: Option<i64>, day: u32, amount: i64) -> Charge {
        let d = NaiveDate::from_ymd_opt(2026, 1, day);
        Charge {
            id,
            subscriber_id: 5,
            recdate: d,
            fromdate: d,
            todate: d,
            servicename: Some("Calls".into()),
            charge: Some(Decimal::new(amount, 2)),
            numberofservices: None,
        }
    }

    use chrono::NaiveDate;

    #[test]
    fn charge_keys_table() {
        type Case = (&'static str, Vec<Charge>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "record ids",
                vec![charge(Some(10), 1, 1), charge(Some(11), 1, 1)],
                vec!["id:10", "id:11"],
            ),
            (
                "id is the subscriber id",
                vec![charge(Some(5), 1, 1)],
                vec!["c:"],
            ),
            ("missing id", vec![charge(None, 1, 1)], vec!["c:"]),
            (
                "repeated id",
                vec![charge(Some(9), 1, 1), charge(Some(9), 2, 1)],
                vec!["c:", "c:"],
            ),
            (
                "mixed",
                vec![charge(Some(9), 1, 1), charge(None, 2, 1)],
                vec!["id:9", "c:"],
            ),
        ];
        for (name, charges, want) in cases {
            let keys = charge_keys(5, &charges);
            assert_eq!(keys.len(), want.len(), "{name}");
            for (k, w) in keys.iter().zip(want) {
                assert!(k.starts_with(w), "{name}: {k} should start with {w}");
            }
        }
        // Identical rows get distinct, stable keys.
        let twins = vec![charge(None, 3, 7), charge(None, 3, 7)];
        let a = charge_keys(5, &twins);
        assert_ne!(a[0], a[1]);
        assert!(a[0].ends_with("#1") && a[1].ends_with("#2"));
        assert_eq!(a, charge_keys(5, &twins));
    }

    proptest! {
        #[test]
        fn charge_keys_are_unique_within_an_answer(
            rows in proptest::collection::vec((proptest::option::of(0i64..6), 1u32..4, 0i64..3), 0..20)
        ) {
            let charges: Vec<Charge> = rows.iter().map(|(id, d, a)| charge(*id, *d, *a)).collect();
            let keys = charge_keys(5, &charges);
            let unique: std::collections::HashSet<&String> = keys.iter().collect();
            prop_assert_eq!(unique.len(), keys.len());
        }
    }
}
