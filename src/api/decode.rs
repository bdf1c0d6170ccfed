//! Response records to domain types (`crate::model`), through the tolerant readers of
//! `wire.rs`. Field aliases cover the guide's naming differences between methods
//! (`abonenttype`/`subscribertype`, `code`/`edrpou`, `accountId`/`accountnumber`, ...).
//!
//! Owns: which wire field feeds which model field. Must not: do I/O, or fail on an
//! unknown field or an unknown enumeration code.

use chrono::NaiveDate;
use serde_json::Value;

use super::wire::{self, Record, WireError};
use crate::model::{
    AccountSummary, Charge, Code, CreatedSubscriber, DnAssignment, Payment, PaymentType,
    RecordedPayment, Service, SqlResult, Subscriber, SubscriberId, SubscriberType, SystemInfo,
    Tariff, TariffPlan, TariffTime,
};

fn object<'a>(v: &'a Value, what: &str) -> Result<Record<'a>, WireError> {
    let rec = Record::new(v);
    if rec.is_object() {
        Ok(rec)
    } else {
        Err(WireError::new(what, "expected a record (an object)"))
    }
}

/// A `subscriber.get` record (also the elements of `subscriber.list.*`).
pub fn subscriber(v: &Value) -> Result<Subscriber, WireError> {
    subscriber_in(v, None)
}

/// [`subscriber`] for a server that lists the numbers under `dns_field`
/// (`api.profile.dns_field`) instead of `dns`.
pub fn subscriber_in(v: &Value, dns_field: Option<&str>) -> Result<Subscriber, WireError> {
    subscriber_record(&object(v, "subscriber")?, dns_field)
}

/// [`subscriber_in`] over a list element read into [`wire::Fields`].
pub fn subscriber_fields_in(
    f: &wire::Fields<'_>,
    dns_field: Option<&str>,
) -> Result<Subscriber, WireError> {
    subscriber_record(&Record::from_fields(f), dns_field)
}

/// A record with no DN list is `dns: None` (the server does not show numbers), an empty
/// list `Some(vec![])`.
fn subscriber_record(r: &Record<'_>, dns_field: Option<&str>) -> Result<Subscriber, WireError> {
    let id = r.req_int(&["id", "subscriberid"])?;
    let dns = match r.get(&[dns_field.unwrap_or("dns")]) {
        None => None,
        Some((_, list)) => Some(
            wire::list_items(list)
                .into_iter()
                .map(|d| dn(d, id, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    let list = dns_field.unwrap_or("dns");
                    WireError::new(format!("{list}.{}", e.field), e.reason)
                })?,
        ),
    };
    Ok(Subscriber {
        id,
        fullname: r.text(&["fullname", "name"])?,
        street: r.text(&["street"])?,
        house: r.text(&["house"])?,
        flat: r.text(&["flat"])?,
        email: r.text(&["email"])?,
        description: r.text(&["description"])?,
        authcode: r.text(&["authcode"])?,
        ispublic: r.flag(&["ispublic"])?,
        subscriber_type: r
            .code(&["abonenttype", "subscribertype"])
            .map(SubscriberType::from_code),
        edrpou: r.text(&["code", "edrpou"])?,
        zipcode: r.text(&["zipcode"])?,
        personalcode: r.text(&["personalcode"])?,
        contract_number: r.text(&["contractid", "contactnumber", "contractnumber"])?,
        information: r.text(&["information"])?,
        privilegeinfo: r.text(&["privilegeinfo"])?,
        area: r.text(&["area"])?,
        contractdate: r.date(&["contractdate"])?,
        building: r.text(&["building"])?,
        floornumber: r.text(&["floornumber"])?,
        account_number: r.text(&["accountid", "accountnumber"])?,
        gender: r.code(&["gender"]).map(Code),
        birthday: r.date(&["birthday"])?,
        bankaccount: r.text(&["bankaccount"])?,
        bank_code: r.text(&["bankmfo", "bankcode"])?,
        taxcode: r.text(&["taxcode"])?,
        deliverytype: r.code(&["deliverytype"]).map(Code),
        privilegediscount: r.decimal(&["privilegediscount"])?,
        department_id: r.int(&["departmentid"])?,
        node_id: r.int(&["nodeid"])?,
        rateplan_id: r.int(&["rateplanid"])?,
        connectiondate: r.date(&["connectiondate"])?,
        bankname: r.text(&["bankname"])?,
        dns,
    })
}

/// A phone number record (in a subscriber's `dns`, or the answer of `subscriber.dnadd`).
/// Missing fields fall back to the request: `fallback` = (dn, fromdate, description).
pub fn dn(
    v: &Value,
    subscriber_id: SubscriberId,
    fallback: Option<(&str, Option<NaiveDate>, Option<&str>)>,
) -> Result<DnAssignment, WireError> {
    let r = object(v, "dn")?;
    let dn = match (r.text(&["dn", "number", "phone"])?, fallback) {
        (Some(dn), _) => dn,
        (None, Some((dn, _, _))) => dn.to_owned(),
        (None, None) => return Err(WireError::new("dn", "missing")),
    };
    Ok(DnAssignment {
        id: r.int(&["id", "dnid"])?,
        subscriber_id: r.int(&["subscriberid"])?.unwrap_or(subscriber_id),
        pbx_id: r.int(&["pbxid"])?,
        dn,
        from_date: r.date(&["fromdate"])?.or(fallback.and_then(|f| f.1)),
        description: r
            .text(&["description"])?
            .or(fallback.and_then(|f| f.2.map(str::to_owned))),
    })
}

/// The answer of `subscriber.create`.
pub fn created(v: &Value) -> Result<CreatedSubscriber, WireError> {
    let r = object(v, "subscriber.create")?;
    Ok(CreatedSubscriber {
        id: r.req_int(&["id", "subscriberid"])?,
        account_number: r.text(&["accountnumber", "accountid"])?,
        fullname: r.text(&["fullname", "name"])?,
    })
}

/// The answer of `accounts.summary` (`date` falls back to the requested day).
pub fn summary(v: &Value, id: SubscriberId, date: NaiveDate) -> Result<AccountSummary, WireError> {
    let r = object(v, "accounts.summary")?;
    Ok(AccountSummary {
        subscriber_id: r.int(&["subscriberid"])?.unwrap_or(id),
        date: r.date(&["date"])?.unwrap_or(date),
        start_debt: r.decimal(&["start_debt", "startdebt"])?,
        end_debt: r.decimal(&["end_debt", "enddebt"])?,
        charge: r.decimal(&["charge", "charges"])?,
        payment: r.decimal(&["payment", "payments"])?,
    })
}

/// One element of `accounts.charges`.
pub fn charge(v: &Value, subscriber_id: SubscriberId) -> Result<Charge, WireError> {
    let r = object(v, "charge")?;
    Ok(Charge {
        id: r.int(&["id"])?,
        subscriber_id,
        recdate: r.date(&["recdate"])?,
        fromdate: r.date(&["fromdate"])?,
        todate: r.date(&["todate"])?,
        servicename: r.text(&["servicename", "service"])?,
        charge: r.decimal(&["charge", "amount", "sum"])?,
        numberofservices: r.decimal(&["numberofservices"])?,
    })
}

/// One element of `accounts.payments`.
pub fn payment(v: &Value, subscriber_id: SubscriberId) -> Result<Payment, WireError> {
    let r = object(v, "payment")?;
    Ok(Payment {
        payment_id: r.req_int(&["paymentid", "paymenttid"])?,
        subscriber_id: r.int(&["subscriberid"])?.unwrap_or(subscriber_id),
        payment_day: r.date(&["paymentday", "date"])?,
        amount: r.decimal(&["payment", "amount", "sum"])?,
        payment_type: r.code(&["paymenttype"]).map(PaymentType::from_code),
        bank: r.text(&["bank"])?,
    })
}

/// The answer of `accounts.payment` (missing fields fall back to the request).
pub fn recorded_payment(
    v: &Value,
    subscriber_id: SubscriberId,
    day: NaiveDate,
) -> Result<RecordedPayment, WireError> {
    let r = object(v, "accounts.payment")?;
    Ok(RecordedPayment {
        subscriber_id: r.int(&["subscriberid"])?.unwrap_or(subscriber_id),
        payment_id: r.req_int(&["paymentid", "paymenttid"])?,
        payment_day: r.date(&["paymentday", "date"])?.or(Some(day)),
    })
}

/// One element of `tariffs.plans`.
pub fn tariff_plan(v: &Value) -> Result<TariffPlan, WireError> {
    let r = object(v, "tariff plan")?;
    Ok(TariffPlan {
        id: r.req_int(&["id", "planid"])?,
        name: r.text(&["name", "planname"])?,
        raw: r.raw(),
    })
}

/// One element of `tariffs.details`.
pub fn tariff(v: &Value) -> Result<Tariff, WireError> {
    let r = object(v, "tariff")?;
    Ok(Tariff {
        id: r.req_int(&["id", "rateid"])?,
        name: r.text(&["name"])?,
        provider_id: r.int(&["providerid"])?,
        parameters_id: r.int(&["parametersid"])?,
        plan_id: r.int(&["planid"])?,
        active_date: r.date(&["activedate"])?,
        currency_id: r.int(&["currencyid"])?,
        value: r.decimal(&["value"])?,
        roundto: r.code(&["roundto"]).map(Code),
        freeseconds: r.int(&["freeseconds"])?,
        subtract_seconds: r.int(&["substractseconds", "subtractseconds"])?,
        roundcostto: r.code(&["roundcostto"]).map(Code),
        rounddurationdown: r.flag(&["rounddurationdown"])?,
        roundcostdown: r.flag(&["roundcostdown"])?,
        roundfirstminute: r.flag(&["roundfirstminute"])?,
        noaccount: r.flag(&["noaccount"])?,
        accountdescription: r.text(&["accountdescription"])?,
        accountdns: r.flag(&["accountdns"])?,
        minimumduration: r.int(&["minimumduration"])?,
        stages: r.code(&["stages"]).map(Code),
        minimumcost: r.decimal(&["minimumcost"])?,
        raw: r.raw(),
    })
}

/// One element of `services.list`.
pub fn service(v: &Value) -> Result<Service, WireError> {
    let r = object(v, "service")?;
    Ok(Service {
        id: r.req_int(&["id", "serviceid"])?,
        name: r.text(&["name", "servicename"])?,
        raw: r.raw(),
    })
}

/// One element of `tariffs.time`.
pub fn tariff_time(v: &Value) -> Result<TariffTime, WireError> {
    let r = object(v, "tariff time")?;
    Ok(TariffTime { raw: r.raw() })
}

/// The names a server plausibly gives each system value, matched in any casing with `_`
/// ignored: the guide's first, then the names a .NET server uses (`DatabaseVersion`,
/// `BuildDate`, `SerialNumber`, ...).
fn system_aliases(field: &str) -> &'static [&'static str] {
    match field {
        "version" => &["version", "ProductVersion", "AppVersion", "ServerVersion"],
        "database" => &["database", "DatabaseVersion", "DbVersion", "SchemaVersion"],
        "build" => &["build", "BuildDate", "BuildVersion", "BuildNumber"],
        "serial" => &["serial", "SerialNumber", "SerialNo", "LicenseSerial"],
        "edition" => &["edition", "EditionName", "ProductEdition", "LicenseEdition"],
        _ => &[],
    }
}

/// The answer of one `tariscope.<field>` method: its value, whatever shape it comes in: a
/// bare value (a JSON string, or a plain-text body the caller turned into one), an object
/// with the field under one of its names ([`system_aliases`]), or an object with one scalar
/// field of any name. A date (`build`) is normalised to `yyyy-mm-dd`.
pub fn info_field(v: &Value, field: &str) -> Result<Option<String>, WireError> {
    let record = Record::new(v);
    let names = &[system_aliases(field), &["value", "result"]].concat();
    let text = match record.scalar() {
        Some(s) => wire::to_text(s).map_err(|e| WireError::new(field, e))?,
        None if record.has(names) => record.text(names)?,
        None => match v {
            Value::Object(map) if map.len() == 1 => match map.values().next() {
                Some(s @ (Value::String(_) | Value::Number(_))) => {
                    wire::to_text(s).map_err(|e| WireError::new(field, e))?
                }
                _ => None,
            },
            _ => None,
        },
    };
    Ok(text.map(|t| normalise_date_text(&t)))
}

fn normalise_date_text(t: &str) -> String {
    if t.len() >= 10
        && t.contains(['-', '.', '/', '('])
        && let Ok(Some(d)) = wire::to_date(&Value::String(t.to_owned()))
    {
        return d.format("%Y-%m-%d").to_string();
    }
    t.to_owned()
}

/// The answer of `tariscope.summary`.
pub fn system_info(v: &Value) -> Result<SystemInfo, WireError> {
    let r = object(v, "tariscope.summary")?;
    let f = |name: &str| -> Result<Option<String>, WireError> {
        Ok(r.text(system_aliases(name))?
            .map(|t: String| normalise_date_text(&t)))
    };
    Ok(SystemInfo {
        version: f("version")?,
        database: f("database")?,
        build: f("build")?,
        serial: f("serial")?,
        edition: f("edition")?,
    })
}

/// The answer of `claims`: method names as strings or as records with a name.
pub fn claims(v: &Value) -> Result<Vec<String>, WireError> {
    let mut out = Vec::new();
    for item in wire::list_items(v) {
        let rec = Record::new(item);
        let name = match rec.scalar() {
            Some(s) => wire::to_text(s).map_err(|e| WireError::new("claims", e))?,
            None => rec.text(&["method", "name", "claim", "claims", "value"])?,
        };
        match name {
            Some(n) if n.contains(',') => out.extend(
                n.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            ),
            Some(n) if !n.trim().is_empty() => out.push(n.trim().to_owned()),
            _ => {}
        }
    }
    Ok(out)
}

/// The answer of `sql`: `{columns, rows: [[...]]}`, or rows as records.
pub fn sql(v: &Value) -> Result<SqlResult, WireError> {
    let empty = Value::Null;
    let (columns_v, rows_v) = match v {
        Value::Object(_) => {
            let r = Record::new(v);
            (
                r.get(&["columns", "cols", "fields"]).map(|(_, v)| v),
                r.get(&["rows", "data", "items", "records"])
                    .map(|(_, v)| v)
                    .unwrap_or(&empty),
            )
        }
        other => (None, other),
    };
    let mut columns: Vec<String> = match columns_v {
        Some(c) => wire::list_items(c)
            .into_iter()
            .map(|c| wire::to_text(c).map(Option::unwrap_or_default))
            .collect::<Result<_, _>>()
            .map_err(|e| WireError::new("columns", e))?,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for row in wire::list_items(rows_v) {
        match row {
            Value::Object(map) => {
                if columns.is_empty() {
                    columns = map.keys().cloned().collect();
                }
                let rec = Record::new(row);
                let cells = columns
                    .iter()
                    .map(|c| rec.text(&[c.as_str()]))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(cells);
            }
            other => {
                let cells = wire::list_items(other)
                    .into_iter()
                    .map(wire::to_text)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| WireError::new("rows", e))?;
                rows.push(cells);
            }
        }
    }
    Ok(SqlResult { columns, rows })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
