//! The check every desired payment passes before it is posted: its form ([`form`]), its
//! subscriber ([`resolve`], through what the mirror knows), and what our outbox already sent
//! for its reference (a reference is posted at most once, ever: a posted row that changed is
//! refused, not posted again).

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{
    COLUMNS, PAYMENTS_TABLE, Payer, PaymentContext, PaymentRow, SentPayment, Target, ValidPayment,
};
use crate::model::{Cell, RawDesired, Rejection};
use crate::store::OutboxState;
use crate::sync::validate::{self, TableRejection, fingerprint, shown, whole};

/// The rows of `desired_payments`, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedPayments {
    pub valid: Vec<ValidPayment>,
    /// Every problem of the rows that did not pass (a row can have several).
    pub rejected: Vec<TableRejection>,
}

/// Checks every row read from `desired_payments`.
pub fn check_rows(rows: &[RawDesired], ctx: &PaymentContext) -> CheckedPayments {
    let mut out = CheckedPayments::default();
    for raw in rows {
        match form(raw, ctx).and_then(|row| resolve(row, ctx).map_err(|r| vec![*r])) {
            Ok(v) => out.valid.push(v),
            Err(problems) => {
                let fp = fingerprint(raw);
                out.rejected
                    .extend(problems.into_iter().map(|rejection| TableRejection {
                        table: PAYMENTS_TABLE,
                        fingerprint: fp.clone(),
                        rejection,
                    }));
            }
        }
    }
    out
}

fn get<'a>(raw: &'a RawDesired, column: &str) -> &'a Cell {
    raw.columns
        .iter()
        .find(|(n, _)| n == column)
        .map_or(&Cell::Null, |(_, c)| c)
}

/// A bad value of the row `reference` (the reason names the payment).
fn problem(reference: &str, field: &str, cell: &Cell, expected: &str) -> Rejection {
    let mut r = validate::rejection(reference, field, cell, expected);
    r.reason = format!("payment {}", r.reason);
    r
}

fn text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Text(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        Cell::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

const AMOUNT: &str =
    "an amount above 0 with at most 2 decimal places, written as text, e.g. '370.00'";

/// The amount of a cell: positive, at most two decimal places, rescaled to two.
fn amount(cell: &Cell) -> Result<Decimal, String> {
    let d = match cell {
        Cell::Text(t) => crate::records::normalize_decimal(t.trim())
            .parse::<Decimal>()
            .map_err(|_| AMOUNT.to_string())?,
        Cell::Int(i) => Decimal::from(*i),
        Cell::Real(_) => {
            return Err(format!(
                "{AMOUNT} (a REAL is a binary fraction, not the amount you meant)"
            ));
        }
        _ => return Err(AMOUNT.into()),
    };
    if d <= Decimal::ZERO {
        return Err(format!("{AMOUNT}: a payment is money received, above 0"));
    }
    let mut d = d.normalize();
    if d.scale() > 2 {
        return Err(format!(
            "{AMOUNT}: Tariscope keeps amounts to the cent, {d} has {} decimal places",
            d.scale()
        ));
    }
    d.rescale(2);
    Ok(d)
}

fn day(cell: &Cell, ctx: &PaymentContext) -> Result<NaiveDate, String> {
    let Cell::Text(t) = cell else {
        return Err("a date yyyy-mm-dd, written as text".into());
    };
    let d = NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
        .map_err(|_| "a date yyyy-mm-dd".to_string())?;
    if d > ctx.today {
        return Err(format!(
            "a day not after today ({}): a payment cannot arrive in the future",
            ctx.today
        ));
    }
    if let Some(earliest) = ctx.earliest.filter(|e| d < *e) {
        return Err(format!(
            "a day on or after {earliest} (payments.earliest_day): older payments are not posted; correct the day or the setting"
        ));
    }
    Ok(d)
}

/// The form of a row: every column's value, and exactly one way of naming the subscriber.
/// `Err` lists every problem.
pub fn form(raw: &RawDesired, ctx: &PaymentContext) -> Result<PaymentRow, Vec<Rejection>> {
    let Some(reference) = text(&raw.key) else {
        return Err(vec![Rejection {
            key: raw.key.shown(),
            field: Some("reference".into()),
            value: raw.key.shown(),
            expected: Some("the payer system's unique id of the payment, as text".into()),
            reason: format!(
                "a payment without a usable reference ({}): every payment needs the payer system's unique id (a bank transaction id)",
                shown(&raw.key)
            ),
            ..Rejection::default()
        }]);
    };
    let mut problems = Vec::new();
    let mut payers = Vec::new();
    let id_cell = get(raw, "subscriberid");
    if *id_cell != Cell::Null {
        match whole(id_cell).filter(|n| *n > 0) {
            Some(n) => payers.push(Payer::Id(n)),
            None => problems.push(problem(
                &reference,
                "subscriberid",
                id_cell,
                "a Tariscope subscriber id: a positive whole number",
            )),
        }
    }
    for (column, make) in [
        ("accountid", Payer::Account as fn(String) -> Payer),
        ("subscriber_key", Payer::Key),
    ] {
        let cell = get(raw, column);
        if *cell != Cell::Null {
            match text(cell) {
                Some(t) => payers.push(make(t)),
                None => problems.push(problem(&reference, column, cell, "non-empty text")),
            }
        }
    }
    if payers.len() != 1 && problems.is_empty() {
        problems.push(Rejection {
            key: Some(reference.clone()),
            field: Some("subscriberid".into()),
            expected: Some("exactly one of subscriberid, accountid, subscriber_key".into()),
            reason: format!(
                "payment {reference}: names its subscriber {} ways: give exactly one of subscriberid, accountid (personal account number) or subscriber_key (a desired_subscribers key)",
                payers.len()
            ),
            ..Rejection::default()
        });
    }
    let amount_cell = get(raw, "amount");
    let amount = amount(amount_cell)
        .map_err(|e| problems.push(problem(&reference, "amount", amount_cell, &e)))
        .ok();
    let day_cell = get(raw, "paymentday");
    let day = day(day_cell, ctx)
        .map_err(|e| problems.push(problem(&reference, "paymentday", day_cell, &e)))
        .ok();
    let kind_cell = get(raw, "paymenttype");
    let kind = match kind_cell {
        Cell::Null => Some(0),
        c => whole(c).filter(|k| (0..=3).contains(k)).or_else(|| {
            let what = "a payment type 0..3 (0 not specified, 1 cash, 2 by receipt, 3 by account)";
            problems.push(problem(&reference, "paymenttype", c, what));
            None
        }),
    };
    let bank_cell = get(raw, "bank");
    let bank = match bank_cell {
        Cell::Null => None,
        c => text(c).or_else(|| {
            problems.push(problem(&reference, "bank", c, "text (NULL for none)"));
            None
        }),
    };
    for (name, cell) in &raw.columns {
        if !COLUMNS.contains(&name.as_str()) {
            problems.push(problem(
                &reference,
                name,
                cell,
                "a desired_payments column (docs/schema.md)",
            ));
        }
    }
    match (payers.pop(), amount, day, kind) {
        (Some(payer), Some(amount), Some(day), Some(kind)) if problems.is_empty() => {
            Ok(PaymentRow {
                reference,
                payer,
                amount,
                day,
                kind,
                bank,
            })
        }
        _ => Err(problems),
    }
}

fn unknown(row: &PaymentRow, field: &str, value: String, why: String) -> Box<Rejection> {
    Box::new(Rejection {
        key: Some(row.reference.clone()),
        field: Some(field.into()),
        value: Some(value),
        expected: Some("a subscriber the mirror knows".into()),
        reason: format!("payment {}: {why}", row.reference),
        ..Rejection::default()
    })
}

/// Resolves the row's subscriber through the mirror, and refuses a row that differs from
/// what our outbox sent for its reference.
pub fn resolve(row: PaymentRow, ctx: &PaymentContext) -> Result<ValidPayment, Box<Rejection>> {
    let target = match &row.payer {
        Payer::Id(id) if ctx.subscribers.contains(id) => Target::Subscriber(*id),
        Payer::Id(id) => {
            let why = format!(
                "unknown subscriber: subscriberid {id} is not in the mirror (check the id, or run the subscribers pull if it is new)"
            );
            return Err(unknown(&row, "subscriberid", id.to_string(), why));
        }
        Payer::Account(acc) => match ctx.accounts.get(acc).map(Vec::as_slice) {
            Some([id]) => Target::Subscriber(*id),
            Some(ids) if ids.len() > 1 => {
                let why = format!(
                    "account {acc:?} is held by {} subscribers ({ids:?}): give subscriberid instead",
                    ids.len()
                );
                return Err(unknown(&row, "accountid", acc.clone(), why));
            }
            _ => match ctx.desired_accounts.get(acc).map(Vec::as_slice) {
                // The account of a desired row: the subscriber it creates (or has just
                // created, not pulled yet) is the payer.
                Some([key]) => match ctx.keys.get(key) {
                    Some(Some(id)) => Target::Subscriber(*id),
                    _ => Target::Waiting(key.clone()),
                },
                Some(keys) if keys.len() > 1 => {
                    let why = format!(
                        "account {acc:?} is wanted by {} desired subscribers ({keys:?}) and held by none in the mirror: give subscriber_key instead",
                        keys.len()
                    );
                    return Err(unknown(&row, "accountid", acc.clone(), why));
                }
                _ => {
                    let why = format!(
                        "unknown account: no subscriber in the mirror and no desired subscriber has account number {acc:?} (check it, or run the subscribers pull if it is new)"
                    );
                    return Err(unknown(&row, "accountid", acc.clone(), why));
                }
            },
        },
        Payer::Key(key) => match ctx.keys.get(key) {
            Some(Some(id)) => Target::Subscriber(*id),
            Some(None) => Target::Waiting(key.clone()),
            None => {
                let why = format!(
                    "unknown subscriber: subscriber_key {key:?} names no desired_subscribers row"
                );
                return Err(unknown(&row, "subscriber_key", key.clone(), why));
            }
        },
    };
    let id = match &target {
        Target::Subscriber(id) => Some(*id),
        Target::Waiting(_) => None,
    };
    if let Some(sent) = ctx
        .sent
        .get(&row.reference)
        .filter(|s| !s.same_as(&row, id))
    {
        return Err(Box::new(changed(&row, sent)));
    }
    Ok(ValidPayment { row, target })
}

/// A row that differs from what was sent for its reference.
fn changed(row: &PaymentRow, sent: &SentPayment) -> Rejection {
    let was = format!(
        "subscriber {}, {} on {}, type {}, bank {}",
        sent.subscriber_id,
        sent.amount,
        sent.day,
        sent.kind,
        sent.bank.as_deref().unwrap_or("-")
    );
    let reason = match (sent.state, sent.payment_id) {
        (OutboxState::Done, Some(pid)) => format!(
            "payment {}: editing a posted row: the reference was posted as Tariscope payment {pid} ({was}) and is never posted again; restore the row, and post a correction under a new reference",
            row.reference
        ),
        (OutboxState::Done, None) => format!(
            "payment {}: editing a posted row: the reference was posted ({was}) and is never posted again; restore the row, and post a correction under a new reference",
            row.reference
        ),
        _ => format!(
            "payment {}: a reference seen before with different values: it was sent as {was} (outbox entry {}, outcome not settled yet); restore the row: a reference is posted at most once",
            row.reference, sent.entry_id
        ),
    };
    Rejection {
        key: Some(row.reference.clone()),
        field: None,
        expected: Some(format!("the values already sent: {was}")),
        reason,
        ..Rejection::default()
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
