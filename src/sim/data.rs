//! The emulator's records (its own types, independent of `crate::model`) and the
//! snapshot handed to tests.
//!
//! Owns: record structs, the daily-summary arithmetic, and setting a subscriber field by
//! its record (wire) name from text. Must not: serialise to the wire or do I/O.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

/// A communication node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimNode {
    pub id: i64,
    pub name: String,
}

/// A PBX of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimPbx {
    pub id: i64,
    pub node_id: i64,
    pub name: String,
}

/// A department (group) in a node's tree. The root carries the node's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDepartment {
    pub id: i64,
    pub node_id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
}

/// A phone number assigned to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDn {
    pub id: i64,
    pub pbx_id: i64,
    pub dn: String,
    pub from_date: NaiveDate,
    pub description: Option<String>,
}

/// A subscriber with every field of the record (wire names in comments).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSubscriber {
    pub id: i64,
    pub fullname: String,
    pub street: Option<String>,
    /// `House`
    pub house: Option<String>,
    /// `Flat`
    pub flat: Option<String>,
    pub email: Option<String>,
    pub description: Option<String>,
    pub authcode: Option<String>,
    pub ispublic: Option<bool>,
    /// `abonenttype` (0..4)
    pub abonenttype: Option<i64>,
    /// `code` (EDRPOU, legal entities)
    pub edrpou: Option<String>,
    pub zipcode: Option<String>,
    pub personalcode: Option<String>,
    /// `contractid`
    pub contract_number: Option<String>,
    pub information: Option<String>,
    pub privilegeinfo: Option<String>,
    pub area: Option<String>,
    pub contractdate: Option<NaiveDate>,
    pub building: Option<String>,
    pub floornumber: Option<String>,
    /// `accountId`
    pub account_number: Option<String>,
    /// 0 unknown, 1 male, 2 female
    pub gender: Option<i64>,
    pub birthday: Option<NaiveDate>,
    pub bankaccount: Option<String>,
    /// `bankmfo`
    pub bankmfo: Option<String>,
    pub taxcode: Option<String>,
    /// 0 post, 1 e-mail, 2 in person
    pub deliverytype: Option<i64>,
    pub privilegediscount: Option<Decimal>,
    pub department_id: i64,
    pub node_id: i64,
    pub rateplan_id: Option<i64>,
    pub connectiondate: Option<NaiveDate>,
    pub bankname: Option<String>,
    pub dns: Vec<SimDn>,
    /// Debt at the start of the first day of history (not a wire field).
    pub opening_debt: Decimal,
}

/// A balance adjustment no list shows (the hidden-adjustments variant, `sim::adjustments`):
/// it moves the balance at the end of `day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimAdjustment {
    pub subscriber_id: i64,
    pub day: NaiveDate,
    pub amount: Decimal,
}

/// A payment received from a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimPayment {
    pub payment_id: i64,
    pub subscriber_id: i64,
    pub payment_day: NaiveDate,
    pub amount: Decimal,
    pub payment_type: i64,
    pub bank: Option<String>,
}

/// A charge to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimCharge {
    pub id: i64,
    pub subscriber_id: i64,
    pub recdate: NaiveDate,
    pub fromdate: NaiveDate,
    pub todate: NaiveDate,
    pub servicename: String,
    pub amount: Decimal,
    /// Seconds for calls, a count for other services.
    pub numberofservices: i64,
}

/// A tariff plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimTariffPlan {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub currencyid: i64,
    pub active: bool,
}

/// A tariff (rate) of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimTariff {
    pub id: i64,
    pub name: String,
    pub providerid: i64,
    pub parametersid: i64,
    pub planid: i64,
    pub activedate: NaiveDate,
    pub currencyid: i64,
    pub value: Decimal,
    pub roundto: i64,
    pub freeseconds: i64,
    pub substractseconds: i64,
    pub roundcostto: i64,
    pub rounddurationdown: bool,
    pub roundcostdown: bool,
    pub roundfirstminute: bool,
    pub noaccount: bool,
    pub accountdescription: String,
    pub accountdns: bool,
    pub minimumduration: i64,
    pub stages: i64,
    pub minimumcost: Decimal,
    /// `in` or `out`
    pub direction: String,
}

/// One time-of-day band of a tariff; `tohour` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimTariffTime {
    pub rateid: i64,
    pub fromhour: i64,
    pub tohour: i64,
    pub value: Decimal,
}

/// A billable service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimService {
    pub id: i64,
    pub name: String,
    pub price: Decimal,
    pub unit: String,
}

/// A copy of the emulator's data, for assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSnapshot {
    pub subscribers: Vec<SimSubscriber>,
    pub payments: Vec<SimPayment>,
    pub charges: Vec<SimCharge>,
    pub departments: Vec<SimDepartment>,
    pub nodes: Vec<SimNode>,
    pub pbxs: Vec<SimPbx>,
    pub plans: Vec<SimTariffPlan>,
    pub tariffs: Vec<SimTariff>,
    pub tariff_times: Vec<SimTariffTime>,
    pub services: Vec<SimService>,
    /// Hidden adjustments (empty unless the variant is on).
    pub adjustments: Vec<SimAdjustment>,
    /// First day of the generated history.
    pub start_date: NaiveDate,
    /// Last day of the generated history.
    pub end_date: NaiveDate,
}

impl SimSnapshot {
    /// The subscriber with this id.
    pub fn subscriber(&self, id: i64) -> Option<&SimSubscriber> {
        self.subscribers.iter().find(|s| s.id == id)
    }

    /// `(start_debt, end_debt, charge, payment)` of a subscriber on a day, computed from
    /// the charges and payments (zeros for an unknown subscriber).
    pub fn summary(
        &self,
        subscriber_id: i64,
        date: NaiveDate,
    ) -> (Decimal, Decimal, Decimal, Decimal) {
        let opening = self
            .subscriber(subscriber_id)
            .map_or(Decimal::ZERO, |s| s.opening_debt);
        let charges = self
            .charges
            .iter()
            .filter(|c| c.subscriber_id == subscriber_id)
            .map(|c| (c.recdate, c.amount));
        let payments = self
            .payments
            .iter()
            .filter(|p| p.subscriber_id == subscriber_id)
            .map(|p| (p.payment_day, p.amount));
        let adjustments = self
            .adjustments
            .iter()
            .filter(|a| a.subscriber_id == subscriber_id)
            .map(|a| (a.day, a.amount));
        adjusted(
            day_summary(opening, charges, payments, date),
            adjustments,
            date,
        )
    }
}

/// `summary` moved by adjustments: those before `date` into start and end, those on `date`
/// into end only (charge and payment do not show them).
pub fn adjusted(
    (start, end, charge, payment): (Decimal, Decimal, Decimal, Decimal),
    adjustments: impl Iterator<Item = (NaiveDate, Decimal)>,
    date: NaiveDate,
) -> (Decimal, Decimal, Decimal, Decimal) {
    let (mut before, mut on) = (Decimal::ZERO, Decimal::ZERO);
    for (day, amount) in adjustments {
        if day < date {
            before += amount;
        } else if day == date {
            on += amount;
        }
    }
    if before.is_zero() && on.is_zero() {
        return (start, end, charge, payment);
    }
    (start + before, end + before + on, charge, payment)
}

/// `(start, end, charge, payment)` for `date`: start = opening + charges before `date` -
/// payments before `date`; charge/payment = that day's totals; end = start + charge - payment.
pub fn day_summary(
    opening: Decimal,
    charges: impl Iterator<Item = (NaiveDate, Decimal)>,
    payments: impl Iterator<Item = (NaiveDate, Decimal)>,
    date: NaiveDate,
) -> (Decimal, Decimal, Decimal, Decimal) {
    let mut start = opening;
    let mut charge = Decimal::ZERO;
    let mut payment = Decimal::ZERO;
    for (day, amount) in charges {
        if day < date {
            start += amount;
        } else if day == date {
            charge += amount;
        }
    }
    for (day, amount) in payments {
        if day < date {
            start -= amount;
        } else if day == date {
            payment += amount;
        }
    }
    (start, start + charge - payment, charge, payment)
}

/// Why a field could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// The name is not a settable record field.
    Unknown,
    /// The value does not parse for this field; the text says what is expected.
    Invalid(String),
}

/// Parse `yyyy-mm-dd`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// Parse a flag: `true`/`false`/`1`/`0`.
pub fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn invalid(field: &str, expected: &str) -> FieldError {
    FieldError::Invalid(format!("{field} must be {expected}"))
}

fn code(field: &str, v: Option<&str>, max: i64) -> Result<Option<i64>, FieldError> {
    match v {
        None => Ok(None),
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(field, &format!("an integer 0..{max}"))),
        },
    }
}

fn date(field: &str, v: Option<&str>) -> Result<Option<NaiveDate>, FieldError> {
    v.map(|t| parse_date(t).ok_or_else(|| invalid(field, "a date yyyy-mm-dd")))
        .transpose()
}

impl SimSubscriber {
    /// Set a plain field by its record name (case-insensitive; `None` clears it). The
    /// fields that need the dataset (`departmentid`, `rateplanid`) and read-only ones
    /// (`id`, `nodeid`, `dns`) are not handled here: they give `FieldError::Unknown`.
    pub fn set_field(&mut self, name: &str, v: Option<&str>) -> Result<(), FieldError> {
        let text = v.map(str::to_owned);
        // An empty string clears a typed (date, number, flag) field.
        let v_text = v;
        let v = v.filter(|t| !t.trim().is_empty());
        let lname = name.to_ascii_lowercase();
        let slot: &mut Option<String> = match lname.as_str() {
            "fullname" => {
                match v_text.map(str::trim) {
                    Some(t) if !t.is_empty() => self.fullname = t.to_owned(),
                    _ => return Err(invalid("fullname", "a non-empty text")),
                }
                return Ok(());
            }
            "ispublic" => {
                self.ispublic = v
                    .map(|t| parse_flag(t).ok_or_else(|| invalid("ispublic", "true or false")))
                    .transpose()?;
                return Ok(());
            }
            "abonenttype" => {
                self.abonenttype = code("abonenttype", v, 4)?;
                return Ok(());
            }
            "gender" => {
                self.gender = code("gender", v, 2)?;
                return Ok(());
            }
            "deliverytype" => {
                self.deliverytype = code("deliverytype", v, 2)?;
                return Ok(());
            }
            "contractdate" => {
                self.contractdate = date("contractdate", v)?;
                return Ok(());
            }
            "birthday" => {
                self.birthday = date("birthday", v)?;
                return Ok(());
            }
            "connectiondate" => {
                self.connectiondate = date("connectiondate", v)?;
                return Ok(());
            }
            "privilegediscount" => {
                self.privilegediscount = v
                    .map(|t| {
                        t.trim()
                            .parse::<Decimal>()
                            .map_err(|_| invalid("privilegediscount", "a decimal number"))
                    })
                    .transpose()?;
                return Ok(());
            }
            "street" => &mut self.street,
            "house" => &mut self.house,
            "flat" => &mut self.flat,
            "email" => &mut self.email,
            "description" => &mut self.description,
            "authcode" => &mut self.authcode,
            "code" => &mut self.edrpou,
            "zipcode" => &mut self.zipcode,
            "personalcode" => &mut self.personalcode,
            "contractid" => &mut self.contract_number,
            "information" => &mut self.information,
            "privilegeinfo" => &mut self.privilegeinfo,
            "area" => &mut self.area,
            "building" => &mut self.building,
            "floornumber" => &mut self.floornumber,
            "accountid" => &mut self.account_number,
            "bankaccount" => &mut self.bankaccount,
            "bankmfo" => &mut self.bankmfo,
            "taxcode" => &mut self.taxcode,
            "bankname" => &mut self.bankname,
            _ => return Err(FieldError::Unknown),
        };
        *slot = text;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn day_summary_adds_up() {
        let dec = |t: &str| t.parse::<Decimal>().unwrap();
        let charges = [
            (d("2025-05-01"), dec("100.00")),
            (d("2025-05-02"), dec("5.50")),
        ];
        let payments = [(d("2025-05-02"), dec("30.00"))];
        let cases = [
            ("2025-04-30", ["50", "50", "0", "0"]),
            ("2025-05-01", ["50", "150", "100", "0"]),
            ("2025-05-02", ["150", "125.5", "5.5", "30"]),
            ("2025-05-03", ["125.5", "125.5", "0", "0"]),
        ];
        for (day, want) in cases {
            let got = day_summary(
                dec("50"),
                charges.iter().copied(),
                payments.iter().copied(),
                d(day),
            );
            let want = want.map(dec);
            assert_eq!([got.0, got.1, got.2, got.3], want, "{day}");
        }
    }

    #[test]
    fn an_adjustment_moves_the_end_of_its_day_and_every_later_start() {
        let dec = |t: &str| t.parse::<Decimal>().unwrap();
        let charges = [(d("2025-05-02"), dec("5.50"))];
        let adjustments = [(d("2025-05-02"), dec("-20")), (d("2025-05-04"), dec("3"))];
        let cases = [
            ("2025-05-01", ["50", "50", "0", "0"]),
            ("2025-05-02", ["50", "35.5", "5.5", "0"]),
            ("2025-05-03", ["35.5", "35.5", "0", "0"]),
            ("2025-05-04", ["35.5", "38.5", "0", "0"]),
            ("2025-05-05", ["38.5", "38.5", "0", "0"]),
        ];
        for (day, want) in cases {
            let base = day_summary(dec("50"), charges.iter().copied(), [].into_iter(), d(day));
            let got = adjusted(base, adjustments.iter().copied(), d(day));
            assert_eq!([got.0, got.1, got.2, got.3], want.map(dec), "{day}");
        }
    }

    proptest::proptest! {
        /// For any charges and payments, consecutive days chain: end = start + charge -
        /// payment, and the next start is this end.
        #[test]
        fn summaries_chain(
            opening in -100_000i64..100_000,
            charges in proptest::collection::vec((0u64..20, 0i64..100_000), 0..30),
            payments in proptest::collection::vec((0u64..20, 1i64..100_000), 0..30),
        ) {
            let base = d("2025-05-01");
            let day = |n: u64| base.checked_add_days(chrono::Days::new(n)).unwrap();
            let c: Vec<_> = charges.iter().map(|(n, a)| (day(*n), Decimal::new(*a, 2))).collect();
            let p: Vec<_> = payments.iter().map(|(n, a)| (day(*n), Decimal::new(*a, 2))).collect();
            let mut prev_end = None;
            for n in 0..21 {
                let (start, end, charge, payment) = day_summary(Decimal::new(opening, 2), c.iter().copied(), p.iter().copied(), day(n));
                proptest::prop_assert_eq!(end, start + charge - payment);
                if let Some(e) = prev_end {
                    proptest::prop_assert_eq!(start, e);
                }
                prev_end = Some(end);
            }
        }
    }

    #[test]
    fn set_field_parses_by_type() {
        let cfg = crate::sim::config::DatasetConfig {
            subscribers: 1,
            ..Default::default()
        };
        let mut s = crate::sim::generate::generate(&cfg)
            .subscribers
            .into_values()
            .next()
            .unwrap();
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("street", Some("Khreshchatyk"), true),
            ("HOUSE", Some("12a"), true),
            ("ispublic", Some("1"), true),
            ("ispublic", Some("maybe"), false),
            ("abonenttype", Some("4"), true),
            ("abonenttype", Some("5"), false),
            ("birthday", Some("1990-02-30"), false),
            ("birthday", Some("1990-02-28"), true),
            ("privilegediscount", Some("12.5"), true),
            ("fullname", None, false),
            ("email", None, true),
            ("birthday", Some(""), true),
            ("street", Some(""), true),
            ("fullname", Some(" "), false),
        ];
        for (name, v, ok) in cases {
            assert_eq!(s.set_field(name, *v).is_ok(), *ok, "{name} = {v:?}");
        }
        assert_eq!(s.house.as_deref(), Some("12a"));
        assert_eq!(s.ispublic, Some(true));
        assert_eq!(s.email, None);
        assert_eq!(s.birthday, None, "an empty string clears a date");
        assert_eq!(
            s.street.as_deref(),
            Some(""),
            "an empty string is a text value"
        );
        assert_eq!(s.set_field("nodeid", Some("1")), Err(FieldError::Unknown));
    }
}
