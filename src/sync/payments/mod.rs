//! Desired payments (issue 15): what a valid row of `desired_payments` is, and reading them
//! from files for `tariscope-sync import-payments`.
//!
//! Owns: the payment's canonical form ([`PaymentRow`]), the check every row passes before it
//! is posted, whoever wrote it (`check.rs`: form, then the subscriber resolved through what
//! the mirror knows, then the comparison with what our outbox already sent for the
//! reference), and the header-driven file reader (`import.rs`). Must not: read the mirror
//! itself (the caller hands in a [`PaymentContext`]), ask Tariscope, or post anything (that
//! is `sync::push`, through the outbox).
//!
//! | file | owns |
//! |---|---|
//! | `check.rs` | the form of a row, resolving its subscriber, every rejection reason |
//! | `import.rs` | CSV / JSON files: columns by header, the file's own duplicates |

mod check;
mod import;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

pub use check::{CheckedPayments, check_rows, form, resolve};
pub use import::{PaymentBatch, PaymentImportError, parse_payments};

pub use crate::model::payments::{COLUMNS, Payer, PaymentRow, Target, ValidPayment};
use crate::store::{OutboxEntry, OutboxState, Store, StoreError};

/// The table desired payments are read from (the source of their rejections).
pub const PAYMENTS_TABLE: &str = "desired_payments";

/// What our outbox holds for a reference: the request as sent (or about to be), and how far
/// it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPayment {
    pub entry_id: i64,
    pub state: OutboxState,
    pub subscriber_id: i64,
    pub amount: Decimal,
    pub day: NaiveDate,
    pub kind: i64,
    pub bank: Option<String>,
    /// Tariscope's payment id once the entry is done.
    pub payment_id: Option<i64>,
}

impl SentPayment {
    /// The outbox payload of posting `row` to subscriber `id`: what is sent, and what an
    /// unknown outcome is settled against.
    pub fn payload(row: &PaymentRow, id: i64) -> String {
        serde_json::json!({
            "subscriberid": id,
            "paymentday": row.day.to_string(),
            "amount": row.amount.to_string(),
            "paymenttype": row.kind,
            "bank": row.bank,
        })
        .to_string()
    }

    /// Reads a `payment` outbox entry (`None` when its payload is not one).
    pub fn of(e: &OutboxEntry) -> Option<SentPayment> {
        let p: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
        let result: Option<serde_json::Value> = e
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        Some(SentPayment {
            entry_id: e.id,
            state: e.state,
            subscriber_id: p["subscriberid"].as_i64()?,
            amount: p["amount"].as_str()?.parse().ok()?,
            day: p["paymentday"].as_str()?.parse().ok()?,
            kind: p["paymenttype"].as_i64()?,
            bank: p["bank"].as_str().map(String::from),
            payment_id: result
                .filter(|_| e.state == OutboxState::Done)
                .and_then(|r| r["paymentid"].as_i64()),
        })
    }

    /// Whether `row` for subscriber `id` is the same payment as this one.
    pub fn same_as(&self, row: &PaymentRow, id: Option<i64>) -> bool {
        id == Some(self.subscriber_id)
            && self.amount == row.amount
            && self.day == row.day
            && self.kind == row.kind
            && self.bank == row.bank
    }

    /// The request may have reached Tariscope, or did: the row must not change under it.
    pub fn may_have_landed(&self) -> bool {
        matches!(
            self.state,
            OutboxState::Done | OutboxState::Sent | OutboxState::Ambiguous
        )
    }
}

/// What the check needs to know beyond the row: today, the configured earliest day, and what
/// the mirror and our outbox know.
#[derive(Debug, Clone, Default)]
pub struct PaymentContext {
    /// Today in Tariscope's time zone: later days are refused.
    pub today: NaiveDate,
    /// `payments.earliest_day`.
    pub earliest: Option<NaiveDate>,
    /// Mirrored subscribers Tariscope still has.
    pub subscribers: BTreeSet<i64>,
    /// Account number → the mirrored subscribers holding it.
    pub accounts: BTreeMap<String, Vec<i64>>,
    /// `desired_subscribers` key → its link.
    pub keys: BTreeMap<String, Option<i64>>,
    /// Account number → the `desired_subscribers` keys that want it: a payment by an account
    /// no mirrored subscriber holds yet waits for the one desired row that will create it.
    pub desired_accounts: BTreeMap<String, Vec<String>>,
    /// Reference → the newest `payment` outbox entry that may have landed (done, sent or
    /// ambiguous).
    pub sent: BTreeMap<String, SentPayment>,
}

impl PaymentContext {
    /// Reads the mirror's part of the context.
    pub async fn load(
        store: &Store,
        today: NaiveDate,
        earliest: Option<NaiveDate>,
    ) -> Result<PaymentContext, StoreError> {
        let (subscribers, accounts, keys, desired_accounts) = store.payment_payers().await?;
        let mut sent = BTreeMap::new();
        for e in store.outbox_of_op("payment").await? {
            if let Some(s) = SentPayment::of(&e).filter(SentPayment::may_have_landed) {
                sent.insert(e.key.clone(), s);
            }
        }
        Ok(PaymentContext {
            today,
            earliest,
            subscribers,
            accounts,
            keys,
            desired_accounts,
            sent,
        })
    }
}
