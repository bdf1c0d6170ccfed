//! Desired payments in canonical form, as the payment check and the store both see them.
//!
//! Owns: the columns of `desired_payments`, who a payment names ([`Payer`]), a row in
//! canonical form ([`PaymentRow`]) and a checked one ([`ValidPayment`]). The check itself is
//! `sync::payments`; keeping them is `store::payments`.

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// The columns of `desired_payments` after `reference`, in the order rows are read.
pub const COLUMNS: [&str; 7] = [
    "subscriberid",
    "accountid",
    "subscriber_key",
    "amount",
    "paymentday",
    "paymenttype",
    "bank",
];

/// Who a payment is for, as the row names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Payer {
    /// `subscriberid`: a Tariscope subscriber id.
    Id(i64),
    /// `accountid`: a personal account number, resolved through the mirror.
    Account(String),
    /// `subscriber_key`: a `desired_subscribers` key, resolved through its link.
    Key(String),
}

/// A desired payment in canonical form (its form checked, its subscriber not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub reference: String,
    pub payer: Payer,
    /// Positive, at most two decimal places, rescaled to two (`370.00`).
    pub amount: Decimal,
    pub day: NaiveDate,
    /// `paymenttype` 0..=3 (NULL is 0, not specified).
    pub kind: i64,
    pub bank: Option<String>,
}

/// Where a valid payment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Subscriber(i64),
    /// The `desired_subscribers` row it names is not linked yet (created by a later push).
    Waiting(String),
}

/// A payment that passed the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPayment {
    pub row: PaymentRow,
    pub target: Target,
}
