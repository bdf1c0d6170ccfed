//! Domain types shared by the client, the store and the sync engine.
//!
//! Owns: the plain data the product talks about (subscribers, phone numbers, payments,
//! charges, daily account summaries, reference data) and the requests the push side sends.
//! Must not: do I/O, know wire field names or casing (that is `api::wire`), or know SQL
//! (that is `store`). Money is `rust_decimal::Decimal`, never a float; dates are
//! `chrono::NaiveDate` (Tariscope calendar dates, no time zone).
//!
//! | file | owns |
//! |---|---|
//! | `model/fields.rs` | the subscriber fields the push manages, canonical text |
//! | `model/desired.rs` | desired subscribers and numbers, the mirror's view, conflicts |
//! | `model/payments.rs` | desired payments in canonical form |

pub mod desired;
pub mod fields;
pub mod payments;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Tariscope's numeric identifier of a subscriber.
pub type SubscriberId = i64;

/// A coded value from an enumeration the guide documents only partly (or not at all).
/// Unknown codes are kept as they came, never rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub i64);

/// `subscribertype` (create) / `abonenttype` (get): 0..4 are documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriberType {
    Individual,
    LegalEntity,
    Official,
    Budget,
    Preferential,
    /// A code the guide does not document; kept as received.
    Other(i64),
}

impl SubscriberType {
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Individual,
            1 => Self::LegalEntity,
            2 => Self::Official,
            3 => Self::Budget,
            4 => Self::Preferential,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::Individual => 0,
            Self::LegalEntity => 1,
            Self::Official => 2,
            Self::Budget => 3,
            Self::Preferential => 4,
            Self::Other(c) => c,
        }
    }
}

/// `paymenttype`: 0..3 are documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentType {
    NotSpecified,
    Cash,
    Receipt,
    Account,
    /// A code the guide does not document; kept as received.
    Other(i64),
}

impl PaymentType {
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::NotSpecified,
            1 => Self::Cash,
            2 => Self::Receipt,
            3 => Self::Account,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::NotSpecified => 0,
            Self::Cash => 1,
            Self::Receipt => 2,
            Self::Account => 3,
            Self::Other(c) => c,
        }
    }
}

/// Call direction filter of `tariffs.details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    In,
    Out,
    #[default]
    All,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::All => "all",
        }
    }
}

/// Filter of `tariffs.details`: `0` means "all" for each id (documented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TariffFilter {
    /// `providerid` (0 = all operators).
    pub provider_id: i64,
    /// `planid` (0 = all plans).
    pub plan_id: i64,
    /// `rateid` (0 = all tariffs matching the other filters).
    pub rate_id: i64,
    /// `direction`: `in`, `out` or `all`.
    pub direction: Direction,
}

/// A subscriber as `subscriber.get` describes it, plus the extensions our reference
/// wire profile documents (department, node, tariff plan, connection date, bank name,
/// phone numbers). Every field but `id` is optional: a server may omit any of them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub fullname: Option<String>,
    pub street: Option<String>,
    /// `House` in the guide.
    pub house: Option<String>,
    /// `Flat` in the guide.
    pub flat: Option<String>,
    pub email: Option<String>,
    pub description: Option<String>,
    pub authcode: Option<String>,
    pub ispublic: Option<bool>,
    /// `abonenttype` in `subscriber.get`, `subscribertype` in `subscriber.create`.
    pub subscriber_type: Option<SubscriberType>,
    /// EDRPOU: `code` in `subscriber.get`, `edrpou` in `subscriber.create`.
    pub edrpou: Option<String>,
    pub zipcode: Option<String>,
    pub personalcode: Option<String>,
    /// `contractid` in `subscriber.get`, `contactnumber` in `subscriber.create`.
    pub contract_number: Option<String>,
    pub information: Option<String>,
    pub privilegeinfo: Option<String>,
    pub area: Option<String>,
    pub contractdate: Option<NaiveDate>,
    pub building: Option<String>,
    pub floornumber: Option<String>,
    /// `accountId` in `subscriber.get`, `accountnumber` in `subscriber.create`.
    pub account_number: Option<String>,
    pub gender: Option<Code>,
    pub birthday: Option<NaiveDate>,
    pub bankaccount: Option<String>,
    /// `bankmfo` in `subscriber.get`, `bankcode` in `subscriber.create`.
    pub bank_code: Option<String>,
    pub taxcode: Option<String>,
    pub deliverytype: Option<Code>,
    pub privilegediscount: Option<Decimal>,
    // Extensions (reference wire profile; a real server may not send them).
    pub department_id: Option<i64>,
    pub node_id: Option<i64>,
    pub rateplan_id: Option<i64>,
    pub connectiondate: Option<NaiveDate>,
    pub bankname: Option<String>,
    /// Phone numbers, when the server includes them in the record (`None`: not sent).
    pub dns: Option<Vec<DnAssignment>>,
}

/// Whether a server's subscriber records show the subscriber's numbers (a `dns` list, even an
/// empty one) or carry no such field. The guide does not say; the daemon finds out from the
/// records it reads, and the push learns which numbers are held accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnListing {
    Shown,
    NotShown,
}

impl DnListing {
    /// What `records` show: `Shown` when any record carries a DN list, `NotShown` when none
    /// does, `None` when there are no records to tell.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Subscriber>) -> Option<Self> {
        let mut seen = None;
        for r in records {
            if r.dns.is_some() {
                return Some(Self::Shown);
            }
            seen = Some(Self::NotShown);
        }
        seen
    }

    /// The mirror's spelling (`server_traits.value`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shown => "shown",
            Self::NotShown => "not-shown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shown" => Some(Self::Shown),
            "not-shown" => Some(Self::NotShown),
            _ => None,
        }
    }
}

/// A phone number (DN) attached to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnAssignment {
    /// Tariscope's id of the number record, when known.
    pub id: Option<i64>,
    pub subscriber_id: SubscriberId,
    pub pbx_id: Option<i64>,
    /// Kept as text: DNs can have leading zeros or a `+`.
    pub dn: String,
    pub from_date: Option<NaiveDate>,
    pub description: Option<String>,
}

/// A payment as `accounts.payments` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payment_id: i64,
    pub subscriber_id: SubscriberId,
    pub payment_day: Option<NaiveDate>,
    pub amount: Option<Decimal>,
    pub payment_type: Option<PaymentType>,
    pub bank: Option<String>,
}

/// A charge as `accounts.charges` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The row's `id`. The guide calls it the subscriber id; our reference profile
    /// serves a charge record id. Stores must not assume it is unique across subscribers.
    pub id: Option<i64>,
    /// The subscriber the charges were asked for.
    pub subscriber_id: SubscriberId,
    pub recdate: Option<NaiveDate>,
    pub fromdate: Option<NaiveDate>,
    pub todate: Option<NaiveDate>,
    pub servicename: Option<String>,
    pub charge: Option<Decimal>,
    /// Seconds for calls, a count for other services.
    pub numberofservices: Option<Decimal>,
}

/// The answer of `accounts.summary` for one subscriber and one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub subscriber_id: SubscriberId,
    pub date: NaiveDate,
    pub start_debt: Option<Decimal>,
    pub end_debt: Option<Decimal>,
    pub charge: Option<Decimal>,
    pub payment: Option<Decimal>,
}

/// A tariff plan (`tariffs.plans`). The guide documents no fields; we keep id and name
/// and the raw record for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffPlan {
    pub id: i64,
    pub name: Option<String>,
    /// Every field of the record as received, keys lower-cased, values as text.
    pub raw: Vec<(String, String)>,
}

/// A tariff (rate) as `tariffs.details` lists it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tariff {
    pub id: i64,
    pub name: Option<String>,
    pub provider_id: Option<i64>,
    pub parameters_id: Option<i64>,
    pub plan_id: Option<i64>,
    pub active_date: Option<NaiveDate>,
    pub currency_id: Option<i64>,
    pub value: Option<Decimal>,
    pub roundto: Option<Code>,
    pub freeseconds: Option<i64>,
    /// `substractseconds`, spelled as published.
    pub subtract_seconds: Option<i64>,
    pub roundcostto: Option<Code>,
    pub rounddurationdown: Option<bool>,
    pub roundcostdown: Option<bool>,
    pub roundfirstminute: Option<bool>,
    pub noaccount: Option<bool>,
    pub accountdescription: Option<String>,
    pub accountdns: Option<bool>,
    pub minimumduration: Option<i64>,
    pub stages: Option<Code>,
    pub minimumcost: Option<Decimal>,
    /// Every field of the record as received (including those after `minimumcost`).
    pub raw: Vec<(String, String)>,
}

/// A service (`services.list`): documented by purpose only; id, name and raw fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: i64,
    pub name: Option<String>,
    pub raw: Vec<(String, String)>,
}

/// One time-of-day band of a tariff (`tariffs.time`): raw fields, as the guide
/// documents nothing but the purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffTime {
    pub raw: Vec<(String, String)>,
}

/// What the six `tariscope.*` methods report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemInfo {
    pub version: Option<String>,
    pub database: Option<String>,
    pub build: Option<String>,
    pub serial: Option<String>,
    pub edition: Option<String>,
}

/// Parameters of `subscriber.create` (names in comments are the guide's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSubscriber {
    pub fullname: String,
    /// `departmentid`
    pub department_id: Option<i64>,
    /// `subscribertype`
    pub subscriber_type: Option<SubscriberType>,
    /// `connectiondate`
    pub connectiondate: Option<NaiveDate>,
    /// `contactnumber` (sic)
    pub contract_number: Option<String>,
    pub contractdate: Option<NaiveDate>,
    /// `accountnumber`
    pub account_number: Option<String>,
    pub personalcode: Option<String>,
    pub edrpou: Option<String>,
    pub taxcode: Option<String>,
    /// `bankcode`
    pub bank_code: Option<String>,
    pub bankname: Option<String>,
    pub bankaccount: Option<String>,
    /// `rateplanid`
    pub rateplan_id: Option<i64>,
}

/// What `subscriber.create` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSubscriber {
    pub id: SubscriberId,
    pub account_number: Option<String>,
    pub fullname: Option<String>,
}

/// A field `subscriber.update` may change, with its new value. Which names a real
/// server accepts is undocumented; the API profile maps each to a wire name.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(Option<String>),
    Date(Option<NaiveDate>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Decimal(Option<Decimal>),
}

/// A partial update of one subscriber: only the listed fields change.
/// Field keys are the `subscriber.get` names in lower case (`fullname`, `house`,
/// `accountid`, ...) plus the extensions `departmentid`, `rateplanid`, `connectiondate`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscriberPatch {
    pub id: SubscriberId,
    pub fields: Vec<(String, FieldValue)>,
}

/// Parameters of `subscriber.dnadd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDn {
    pub subscriber_id: SubscriberId,
    pub dn: String,
    pub pbx_id: i64,
    pub from_date: Option<NaiveDate>,
    pub description: Option<String>,
}

/// Parameters of `accounts.payment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub subscriber_id: SubscriberId,
    pub payment_day: NaiveDate,
    pub amount: Decimal,
    pub payment_type: PaymentType,
    pub bank: Option<String>,
}

/// What `accounts.payment` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPayment {
    pub subscriber_id: SubscriberId,
    pub payment_id: i64,
    pub payment_day: Option<NaiveDate>,
}

/// A value as local software wrote it into a desired-state table or file, before it is
/// checked: SQLite's storage classes, onto which CSV (text) and JSON (numbers, text) map.
/// SQLite keeps whatever an `INSERT` gives it (a column has an affinity, not a type), so
/// nothing about a desired value is known until `sync::validate` has looked at it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The value as an operator would write it back: text as is, numbers in decimal, a
    /// blob as an SQL hex literal (first 16 bytes). `None` for NULL.
    pub fn shown(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(i.to_string()),
            Cell::Real(f) => Some(f.to_string()),
            Cell::Text(t) => Some(t.clone()),
            Cell::Blob(b) => {
                let hex: String = b.iter().take(16).map(|x| format!("{x:02x}")).collect();
                let more = if b.len() > 16 { "..." } else { "" };
                Some(format!("x'{hex}{more}'"))
            }
        }
    }

    /// The storage class, in SQLite's words (for messages).
    pub fn class(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "INTEGER",
            Cell::Real(_) => "REAL",
            Cell::Text(_) => "TEXT",
            Cell::Blob(_) => "BLOB",
        }
    }
}

/// A desired subscriber exactly as written (a `desired_subscribers` row with its
/// `desired_dns` rows, or a row of an import file), before it is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDesired {
    pub key: Cell,
    /// `tariscope_id` and every field column, by column name (NULL included).
    pub columns: Vec<(String, Cell)>,
    pub dns: Vec<RawDn>,
}

/// A desired number exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDn {
    pub pbx_id: Cell,
    pub dn: Cell,
    pub from_date: Cell,
    pub description: Cell,
}

/// A desired row refused before anything was sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejection {
    /// 1-based line (CSV, counting the header) or array index (JSON) of a file; 0 for a row
    /// of a desired-state table.
    pub row: usize,
    pub key: Option<String>,
    /// The column (or file column) holding the bad value; `None` for the row as a whole.
    pub field: Option<String>,
    /// The value as written (`None`: absent or NULL).
    pub value: Option<String>,
    /// What the column takes, e.g. "a date yyyy-mm-dd".
    pub expected: Option<String>,
    /// The whole story in one sentence (names the key, column, value and what is expected).
    pub reason: String,
}

/// The result of the `sql` method: column names and rows of text values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_codes_round_trip_including_unknown() {
        for code in -1..8 {
            assert_eq!(SubscriberType::from_code(code).code(), code);
            assert_eq!(PaymentType::from_code(code).code(), code);
        }
        assert_eq!(SubscriberType::from_code(7), SubscriberType::Other(7));
        assert_eq!(PaymentType::from_code(3), PaymentType::Account);
    }
}
