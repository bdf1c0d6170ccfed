//! `desired_payments` and the payment side of the outbox (issue 15).
//!
//! Owns: reading desired payments exactly as written, what the mirror knows about payers
//! (subscriber ids, account numbers, desired keys), inserting an import's new rows, and the
//! one transaction that records a confirmed payment (outbox entry done, `paymentid` on the
//! desired row, the pulled `payments` mirror naming the reference). Must not: decide whether
//! a row is valid (`sync::payments`) or whether a payment landed (`sync::push`).

use std::collections::{BTreeMap, BTreeSet};

use super::db::{Conn, OptionalExtension, params};
use rusqlite::types::Value;
use rust_decimal::Decimal;

use super::desired::{ImportCounts, cell};
use super::rejected::insert_rejection;
use super::{Store, StoreError};
use crate::model::payments::{COLUMNS, Payer, ValidPayment};
use crate::model::{Payment, PaymentType, RawDesired, Rejection};

/// Mirrored subscribers Tariscope still has, account number → their ids, desired key → link,
/// and account number → the desired rows that want it (a subscriber a push may be creating).
pub type Payers = (
    BTreeSet<i64>,
    BTreeMap<String, Vec<i64>>,
    BTreeMap<String, Option<i64>>,
    BTreeMap<String, Vec<String>>,
);

fn read_rows(conn: &Conn) -> Result<Vec<RawDesired>, StoreError> {
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

fn read_payers(conn: &Conn) -> Result<Payers, StoreError> {
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
        .prepare("SELECT key, tariscope_id, accountid FROM desired_subscribers")
        .map_err(StoreError::sql("preparing the desired keys read"))?;
    // Rows written with SQL hold what they were given: a link that is not a whole number is
    // no link (`sync::validate` rejects that row).
    let rows = stmt
        .query_map([], |r| {
            let key = cell(r.get(0)?).shown().unwrap_or_default();
            let link = match r.get::<_, Value>(1)? {
                Value::Integer(id) => Some(id),
                _ => None,
            };
            let account = cell(r.get(2)?).shown();
            Ok((key, link, account))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sql("reading desired keys"))?;
    let mut keys = BTreeMap::new();
    let mut desired_accounts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, link, account) in rows {
        if let Some(a) = account
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
        {
            desired_accounts.entry(a).or_default().push(key.clone());
        }
        keys.insert(key, link);
    }
    Ok((ids, accounts, keys, desired_accounts))
}

fn insert_row(conn: &Conn, p: &ValidPayment) -> Result<bool, StoreError> {
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

/// A payment confirmed in Tariscope, to record (see [`Store::payment_posted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedPayment {
    pub entry_id: i64,
    pub reference: String,
    /// As Tariscope lists it (what we sent where it did not say).
    pub payment: Payment,
    /// The outbox entry's result JSON (`{"paymentid": N, "by": ...}`).
    pub result: String,
}

/// How `desired_payments` rows stand, for `status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentStates {
    /// `(state, rows, sum of their amounts)`, state `posted` / `pending` / `ambiguous` /
    /// `rejected`, every state listed.
    pub states: Vec<(&'static str, u64, Decimal)>,
    /// Rows of imported files refused before they reached the table.
    pub rejected_in_files: u64,
}

fn write_posted(conn: &Conn, p: &PostedPayment, now: &str) -> Result<(), StoreError> {
    let fail = StoreError::sql("recording a posted payment");
    let pay = &p.payment;
    conn.execute(
        "UPDATE outbox SET state = 'done', subscriber_id = ?2, result = ?3, updated_at = ?4 WHERE id = ?1",
        params![p.entry_id, pay.subscriber_id, p.result, now],
    )
    .map_err(fail)?;
    conn.execute(
        "UPDATE desired_payments SET paymentid = ?2, posted_at = ?3 WHERE reference = ?1",
        params![p.reference, pay.payment_id, now],
    )
    .map_err(StoreError::sql("recording a posted payment"))?;
    conn.execute(
        "INSERT INTO payments (subscriber_id, payment_id, payment_day, amount, payment_type, bank, first_seen_at, updated_at, reference) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) \
         ON CONFLICT (subscriber_id, payment_id) DO UPDATE SET reference = excluded.reference",
        params![
            pay.subscriber_id,
            pay.payment_id,
            pay.payment_day.map(|d| d.to_string()),
            pay.amount.map(|a| a.to_string()),
            pay.payment_type.map(PaymentType::code),
            pay.bank,
            now,
            p.reference
        ],
    )
    .map(drop)
    .map_err(StoreError::sql("linking a posted payment in the mirror"))
}

const STATES_SQL: &str = "SELECT d.amount, CASE \
    WHEN d.paymentid IS NOT NULL THEN 'posted' \
    WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.op = 'payment' AND o.key = d.reference AND o.state = 'ambiguous') THEN 'ambiguous' \
    WHEN EXISTS (SELECT 1 FROM rejected r WHERE r.source = 'desired_payments' AND r.key = d.reference) THEN 'rejected' \
    ELSE 'pending' END FROM desired_payments d";

impl Store {
    /// Records the snapshot of an entry (before it is sent).
    pub async fn outbox_set_snapshot(&self, id: i64, snapshot: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE outbox SET snapshot = ?2 WHERE id = ?1",
                params![id, snapshot],
            )
            .map(drop)
            .map_err(StoreError::sql("recording a payment snapshot"))
        })
        .await
    }

    /// The payment ids an entry's snapshot recorded (`None`: no snapshot, or not readable).
    pub async fn outbox_snapshot(&self, id: i64) -> Result<Option<BTreeSet<i64>>, StoreError> {
        let text: Option<String> = self
            .read(move |conn| {
                conn.query_row("SELECT snapshot FROM outbox WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map(Option::flatten)
                .map_err(StoreError::sql("reading a payment snapshot"))
            })
            .await?;
        Ok(text
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
            }))
    }

    /// Payment ids of `subscriber` that `payment` entries other than `except` confirmed.
    pub async fn claimed_payment_ids(
        &self,
        subscriber: i64,
        except: i64,
    ) -> Result<BTreeSet<i64>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT result FROM outbox WHERE op = 'payment' \
                     AND state = 'done' AND subscriber_id = ?1 AND id != ?2",
                )
                .map_err(StoreError::sql("preparing the claimed payments read"))?;
            stmt.query_map(params![subscriber, except], |r| {
                r.get::<_, Option<String>>(0)
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| paymentid(r.as_deref()))
                    .collect()
            })
            .map_err(StoreError::sql("reading claimed payments"))
        })
        .await
    }

    /// Records a confirmed payment in one transaction: its outbox entry done with the
    /// result, `paymentid` and `posted_at` on the desired row, and the `payments` mirror row
    /// (inserted if the pull has not seen it yet) naming the reference.
    pub async fn payment_posted(&self, p: PostedPayment, now: String) -> Result<(), StoreError> {
        self.write(move |conn| write_posted(conn, &p, &now)).await
    }

    /// Desired payments by state, with their amounts (for `status` and `/metrics`).
    pub async fn payment_states(&self) -> Result<PaymentStates, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(STATES_SQL)
                .map_err(StoreError::sql("preparing the payment states read"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, Value>(0)?, r.get::<_, String>(1)?)))
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(StoreError::sql("reading payment states"))?;
            let mut out = PaymentStates {
                states: ["posted", "pending", "ambiguous", "rejected"]
                    .into_iter()
                    .map(|s| (s, 0, Decimal::ZERO))
                    .collect(),
                rejected_in_files: 0,
            };
            for (amount, state) in rows {
                let Some(slot) = out.states.iter_mut().find(|s| s.0 == state) else {
                    continue;
                };
                slot.1 += 1;
                // A rejected row's amount may not be one; it is counted, not summed.
                if let Value::Text(t) = amount
                    && let Ok(a) = t.parse::<Decimal>()
                {
                    slot.2 += a;
                }
            }
            out.rejected_in_files =
                conn.query_row(
                    "SELECT count(*) FROM rejected WHERE source LIKE '% (payments)'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(StoreError::sql("counting rejected payment rows"))? as u64;
            Ok(out)
        })
        .await
    }

    /// A person settles an ambiguous payment entry: `Some(id)` when Tariscope payment `id` is
    /// the one it sent (recorded as posted), `None` when it did not land (the entry is sent
    /// again by the next push, after a new snapshot). Errors say why it cannot be done.
    pub async fn payment_resolve(
        &self,
        reference: String,
        landed: Option<i64>,
        now: String,
    ) -> Result<Result<String, String>, StoreError> {
        self.write(move |conn| {
            let found: Option<(i64, String, Option<i64>, String)> = conn
                .query_row(
                    "SELECT id, state, subscriber_id, payload FROM outbox WHERE op = 'payment' AND key = ?1 ORDER BY id DESC LIMIT 1",
                    [&reference],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(StoreError::sql("reading the outbox"))?;
            let Some((id, state, subscriber, payload)) = found else {
                return Ok(Err(format!("no payment with reference {reference:?} was ever sent: nothing to resolve")));
            };
            if state != "ambiguous" && state != "sent" {
                return Ok(Err(format!(
                    "payment {reference} is {state} (outbox entry {id}), not waiting for a person: nothing to resolve"
                )));
            }
            let subscriber = subscriber.unwrap_or_default();
            let Some(pid) = landed else {
                conn.execute(
                    "UPDATE outbox SET state = 'failed', attempts = 0, last_error = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, "resolved by a person: it did not land; the next push sends it (after a new snapshot)", now],
                )
                .map_err(StoreError::sql("resolving a payment"))?;
                return Ok(Ok(format!("payment {reference}: recorded as not landed; the next push sends it")));
            };
            let claimed: Option<String> = conn
                .prepare_cached(
                    "SELECT key, result FROM outbox WHERE op = 'payment' AND state = 'done' \
                     AND subscriber_id = ?1 ORDER BY id",
                )
                .and_then(|mut st| {
                    st.query_map(params![subscriber], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(StoreError::sql("reading the outbox"))?
                .into_iter()
                .find(|(_, result)| paymentid(result.as_deref()) == Some(pid))
                .map(|(key, _)| key);
            if let Some(other) = claimed {
                return Ok(Err(format!(
                    "Tariscope payment {pid} is already recorded as payment {other}: each payment is one reference's"
                )));
            }
            let p: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
            let payment = Payment {
                payment_id: pid,
                subscriber_id: subscriber,
                payment_day: p["paymentday"].as_str().and_then(|d| d.parse().ok()),
                amount: p["amount"].as_str().and_then(|a| a.parse().ok()),
                payment_type: p["paymenttype"].as_i64().map(PaymentType::from_code),
                bank: p["bank"].as_str().map(String::from),
            };
            let posted = PostedPayment {
                entry_id: id,
                reference: reference.clone(),
                payment,
                result: serde_json::json!({"paymentid": pid, "by": "person"}).to_string(),
            };
            write_posted(conn, &posted, &now)?;
            Ok(Ok(format!("payment {reference}: recorded as Tariscope payment {pid}")))
        })
        .await
    }
}

#[cfg(test)]
#[path = "payments_tests.rs"]
mod tests;

/// The Tariscope payment id a `payment` entry's result names.
fn paymentid(result: Option<&str>) -> Option<i64> {
    super::outbox::json(result)?.get("paymentid")?.as_i64()
}
