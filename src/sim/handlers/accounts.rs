//! `accounts.*` methods: summary, charges, payment, payments (with the `paymentid` check).
//!
//! Owns: parameter rules and response shapes of these methods. Must not: render, check
//! auth or apply faults.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::sim::dataset::Dataset;
use crate::sim::error::ApiError;
use crate::sim::params::Params;
use crate::sim::value::Val;

fn subscriber_exists(ds: &Dataset, id: i64) -> Result<(), ApiError> {
    ds.subscriber(id)
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("subscriber {id} does not exist")))
}

fn range(p: &Params) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = p.required_date("fromdate")?;
    let to = p.required_date("todate")?;
    if to < from {
        return Err(ApiError::invalid(format!(
            "todate {to} is before fromdate {from}"
        )));
    }
    Ok((from, to))
}

/// `accounts.summary`: one day's balance.
pub fn summary<'a>(ds: &'a Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    let year = p.required_int("year")?;
    let month = p.required_int("month")?;
    let day = p.required_int("day")?;
    let date = i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok())
        .zip(u32::try_from(day).ok())
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "year {year}, month {month}, day {day} is not a date"
            ))
        })?;
    let s = ds
        .subscriber(id)
        .ok_or_else(|| ApiError::not_found(format!("subscriber {id} does not exist")))?;
    let (start, end, charge, payment) = ds.summary(s, date);
    Ok(Val::Obj(vec![
        ("date", Val::Date(date)),
        ("start_debt", Val::Dec(start)),
        ("end_debt", Val::Dec(end)),
        ("charge", Val::Dec(charge)),
        ("payment", Val::Dec(payment)),
    ]))
}

/// `accounts.charges`: charges with `fromdate <= recdate <= todate`.
pub fn charges<'a>(ds: &'a Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    let (from, to) = range(p)?;
    subscriber_exists(ds, id)?;
    Ok(Val::List(
        ds.charges_of(id, from, to)
            .into_iter()
            .map(|c| {
                Val::Obj(vec![
                    ("id", Val::Int(c.id)),
                    ("recdate", Val::Date(c.recdate)),
                    ("fromdate", Val::Date(c.fromdate)),
                    ("todate", Val::Date(c.todate)),
                    ("servicename", Val::str(&c.servicename)),
                    ("charge", Val::Dec(c.amount)),
                    ("numberofservices", Val::Int(c.numberofservices)),
                ])
            })
            .collect(),
    ))
}

fn payment_val(p: &crate::sim::data::SimPayment) -> Val<'_> {
    Val::Obj(vec![
        ("subscriberid", Val::Int(p.subscriber_id)),
        ("paymentid", Val::Int(p.payment_id)),
        ("paymentday", Val::Date(p.payment_day)),
        ("payment", Val::Dec(p.amount)),
        ("paymenttype", Val::Int(p.payment_type)),
        ("bank", Val::opt_str(p.bank.as_deref())),
    ])
}

/// `accounts.payments`: a period, or with `paymentid` != 0 that one payment (dates ignored).
pub fn payments<'a>(ds: &'a Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    let payment_id = p.int("paymentid")?.unwrap_or(0);
    subscriber_exists(ds, id)?;
    if payment_id != 0 {
        return Ok(Val::List(
            ds.payment(id, payment_id)
                .map(payment_val)
                .into_iter()
                .collect(),
        ));
    }
    let (from, to) = range(p)?;
    Ok(Val::List(
        ds.payments_of(id, from, to)
            .into_iter()
            .map(payment_val)
            .collect(),
    ))
}

/// `accounts.payment`: answers `{subscriberid, paymentid, paymentday}`.
pub fn payment(ds: &mut Dataset, p: &Params) -> Result<Val<'static>, ApiError> {
    let id = p.required_int("id")?;
    let day = p.required_date("paymentday")?;
    let amount = p
        .decimal("payment")?
        .ok_or_else(|| ApiError::invalid("parameter payment is required"))?;
    if amount <= Decimal::ZERO {
        return Err(ApiError::invalid(format!(
            "parameter payment must be positive, got {amount}"
        )));
    }
    let kind = p.code("paymenttype", 3, 0)?;
    let payment_id = ds.add_payment(id, day, amount, kind, p.owned("bank"))?;
    Ok(Val::Obj(vec![
        ("subscriberid", Val::Int(id)),
        ("paymentid", Val::Int(payment_id)),
        ("paymentday", Val::Date(day)),
    ]))
}
