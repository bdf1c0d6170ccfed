//! `tariscope-sync import-payments FILE`: desired payments from CSV or JSON.
//!
//! Owns: the file's column names (header-driven, aliases included) and what a file row is
//! next to the rows already there: a reference already in `desired_payments` with the same
//! values is unchanged, with other values it is refused (never overwritten); the same within
//! the file. Must not: check values itself (`check.rs` does, for every path), read bytes or
//! know encodings (`crate::records`), or write anything.
//!
//! ## Format
//! One row per payment: `reference` (required), exactly one of `subscriberid`, `accountid`
//! (alias `accountnumber`) or `subscriber_key`, `amount` (alias `payment`), `paymentday`
//! (alias `date`), `paymenttype` (optional, 0..3), `bank` (optional). Unknown columns reject
//! the whole file.

use std::collections::BTreeMap;

use super::{PaymentContext, PaymentRow, ValidPayment, form, resolve};
use crate::model::{Cell, RawDesired, Rejection};
use crate::records::{self, ReadError, ReadOptions};

/// The outcome of reading one file against the rows already there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentBatch {
    /// Rows to insert (references not in `desired_payments`).
    pub rows: Vec<ValidPayment>,
    /// File rows equal to a row already there (or to an earlier row of the file).
    pub unchanged: u64,
    pub rejected: Vec<Rejection>,
}

/// A file that cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PaymentImportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "unknown column {0:?}: use reference, subscriberid, accountid, subscriber_key, amount, paymentday, paymenttype, bank (docs/schema.md)"
    )]
    UnknownColumn(String),
    #[error("the file has no `reference` column: every payment needs the payer system's unique id")]
    NoReferenceColumn,
}

fn column(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "reference" => "reference",
        "subscriberid" | "subscriber_id" => "subscriberid",
        "accountid" | "accountnumber" | "account_number" => "accountid",
        "subscriber_key" => "subscriber_key",
        "amount" | "payment" => "amount",
        "paymentday" | "payment_day" | "date" => "paymentday",
        "paymenttype" | "payment_type" => "paymenttype",
        "bank" => "bank",
        _ => return None,
    })
}

/// Reads a file: every row checked (against `ctx`) and compared with `existing` (the rows of
/// `desired_payments` by reference, as written).
pub fn parse_payments(
    bytes: &[u8],
    options: &ReadOptions,
    ctx: &PaymentContext,
    existing: &BTreeMap<String, RawDesired>,
) -> Result<PaymentBatch, PaymentImportError> {
    let table = records::read(bytes, options)?;
    let mut names = BTreeMap::new();
    for c in &table.columns {
        let name = column(c).ok_or_else(|| PaymentImportError::UnknownColumn(c.clone()))?;
        names.insert(c.clone(), name);
    }
    if !names.values().any(|n| *n == "reference") {
        return Err(PaymentImportError::NoReferenceColumn);
    }
    // Rows already there are compared by form only: their day may be outside today's limits.
    let lenient = PaymentContext {
        today: chrono::NaiveDate::MAX,
        ..PaymentContext::default()
    };
    let csv = table.separator.is_some();
    let mut batch = PaymentBatch::default();
    let mut seen: BTreeMap<String, PaymentRow> = BTreeMap::new();
    for record in table.records {
        let mut raw = RawDesired {
            key: Cell::Null,
            columns: Vec::new(),
            dns: Vec::new(),
        };
        let mut bad = None;
        for (name, value) in record.cells {
            let name = names[&name];
            let cell = match crate::sync::import::cell("?", name, &value) {
                Ok(c) => c,
                Err(mut r) => {
                    bad = r.pop();
                    break;
                }
            };
            // An empty CSV cell is NULL (JSON writes null).
            let cell = match cell {
                Cell::Text(t) if csv && t.is_empty() => Cell::Null,
                c => c,
            };
            match name {
                "reference" => raw.key = cell,
                _ => raw.columns.push((name.to_string(), cell)),
            }
        }
        let at = |r: Rejection| Rejection {
            row: record.line,
            ..r
        };
        if let Some(r) = bad {
            batch.rejected.push(at(r));
            continue;
        }
        let checked = form(&raw, ctx).and_then(|row| resolve(row, ctx).map_err(|r| vec![*r]));
        let valid = match checked {
            Ok(v) => v,
            Err(problems) => {
                batch.rejected.extend(problems.into_iter().map(at));
                continue;
            }
        };
        let reference = valid.row.reference.clone();
        let before = match seen.get(&reference) {
            Some(row) => Some((row.clone(), "an earlier line of this file")),
            None => existing.get(&reference).map(|e| {
                let row = form(e, &lenient).unwrap_or_else(|_| invalid(&reference));
                (row, "desired_payments")
            }),
        };
        match before {
            Some((row, _)) if row == valid.row => batch.unchanged += 1,
            Some((row, place)) => batch
                .rejected
                .push(at(seen_before(&valid.row, &row, place))),
            None => {
                seen.insert(reference, valid.row.clone());
                batch.rows.push(valid);
            }
        }
    }
    Ok(batch)
}

/// Stands for a row already there that is not valid itself: never equal to a file row.
fn invalid(reference: &str) -> PaymentRow {
    PaymentRow {
        reference: reference.to_string(),
        payer: super::Payer::Id(0),
        amount: rust_decimal::Decimal::ZERO,
        day: chrono::NaiveDate::MIN,
        kind: -1,
        bank: None,
    }
}

fn describe(row: &PaymentRow) -> String {
    let payer = match &row.payer {
        super::Payer::Id(id) if *id > 0 => format!("subscriberid {id}"),
        super::Payer::Id(_) => return "values that are not valid themselves".into(),
        super::Payer::Account(a) => format!("accountid {a:?}"),
        super::Payer::Key(k) => format!("subscriber_key {k:?}"),
    };
    format!(
        "{payer}, {} on {}, type {}, bank {}",
        row.amount,
        row.day,
        row.kind,
        row.bank.as_deref().unwrap_or("-")
    )
}

fn seen_before(new: &PaymentRow, old: &PaymentRow, place: &str) -> Rejection {
    Rejection {
        key: Some(new.reference.clone()),
        field: Some("reference".into()),
        value: Some(new.reference.clone()),
        expected: Some("a new reference, or the values it already has".into()),
        reason: format!(
            "payment {}: a reference seen before with different values: {place} has it as {}, this row says {}; a reference names one payment: fix the row or give the new payment its own reference",
            new.reference,
            describe(old),
            describe(new)
        ),
        ..Rejection::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FileFormat;

    fn ctx() -> PaymentContext {
        PaymentContext {
            today: "2025-05-20".parse().unwrap(),
            subscribers: [10, 11].into(),
            accounts: BTreeMap::from([("ACC-11".to_string(), vec![11])]),
            ..PaymentContext::default()
        }
    }

    fn parse(
        text: &str,
        format: FileFormat,
        existing: &BTreeMap<String, RawDesired>,
    ) -> PaymentBatch {
        parse_payments(text.as_bytes(), &ReadOptions::new(format), &ctx(), existing).unwrap()
    }

    #[test]
    fn header_driven_csv_with_aliases_and_bad_rows_beside_good_ones() {
        let csv = "date;payment;reference;accountnumber;subscriberid;bank\n\
            2025-05-17;370,00;bank-1;;10;PrivatBank\n\
            2025-05-18;12.50;bank-2;ACC-11;;\n\
            2025-05-18;-3;bank-3;;10;\n\
            2025-05-18;12.50;bank-2;ACC-11;;\n\
            2025-05-18;99.00;bank-2;ACC-11;;\n";
        let b = parse(csv, FileFormat::Csv, &BTreeMap::new());
        let refs: Vec<&str> = b.rows.iter().map(|v| v.row.reference.as_str()).collect();
        assert_eq!(refs, ["bank-1", "bank-2"]);
        assert_eq!(
            b.rows[1].target,
            crate::sync::payments::Target::Subscriber(11)
        );
        assert_eq!(b.unchanged, 1, "the repeated line with equal values");
        assert_eq!(b.rejected.len(), 2, "{:?}", b.rejected);
        assert_eq!((b.rejected[0].row, b.rejected[1].row), (4, 6));
        assert!(b.rejected[0].reason.contains("above 0"));
        assert!(
            b.rejected[1]
                .reason
                .contains("seen before with different values")
                && b.rejected[1]
                    .reason
                    .contains("an earlier line of this file"),
            "{}",
            b.rejected[1].reason
        );
    }

    #[test]
    fn json_rows_and_a_reference_already_in_the_table() {
        let json = r#"[
            {"reference": "r-1", "subscriberid": 10, "amount": "5.00", "paymentday": "2025-05-01"},
            {"reference": "r-2", "subscriberid": 10, "amount": "5.00", "paymentday": "2025-05-01"},
            {"reference": "r-3", "subscriberid": 10, "amount": 7, "paymentday": "2025-05-01", "paymenttype": null}
        ]"#;
        let first = parse(json, FileFormat::Json, &BTreeMap::new());
        assert_eq!((first.rows.len(), first.rejected.len()), (3, 0));
        assert_eq!(first.rows[2].row.amount.to_string(), "7.00");
        let existing: BTreeMap<String, RawDesired> = [("r-1", "5.00"), ("r-2", "6.00")]
            .into_iter()
            .map(|(r, amount)| {
                let raw = RawDesired {
                    key: Cell::Text(r.into()),
                    columns: vec![
                        ("subscriberid".into(), Cell::Int(10)),
                        ("amount".into(), Cell::Text(amount.into())),
                        ("paymentday".into(), Cell::Text("2025-05-01".into())),
                    ],
                    dns: Vec::new(),
                };
                (r.to_string(), raw)
            })
            .collect();
        let again = parse(json, FileFormat::Json, &existing);
        assert_eq!(again.unchanged, 1, "r-1 is there with the same values");
        assert_eq!(again.rows.len(), 1, "r-3 is new");
        let r = &again.rejected[0].reason;
        assert!(
            r.contains("r-2")
                && r.contains("seen before")
                && r.contains("desired_payments has it as subscriberid 10, 6.00"),
            "{r}"
        );
    }

    #[test]
    fn whole_file_errors() {
        let e = parse_payments(
            b"reference,colour\n1,red\n",
            &ReadOptions::new(FileFormat::Csv),
            &ctx(),
            &BTreeMap::new(),
        );
        assert!(matches!(e, Err(PaymentImportError::UnknownColumn(c)) if c == "colour"));
        let e = parse_payments(
            b"amount\n1\n",
            &ReadOptions::new(FileFormat::Csv),
            &ctx(),
            &BTreeMap::new(),
        );
        assert!(matches!(e, Err(PaymentImportError::NoReferenceColumn)));
    }
}
