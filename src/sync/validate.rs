//! The one check every desired row passes before the planner sees it, whatever wrote it:
//! `tariscope-sync import`, or local software with plain SQL.
//!
//! Owns: what a valid desired subscriber and a valid desired number are (the form of each
//! field's value, code ranges, required fields, the number format), how values of another
//! storage class than the column's are taken (accepted when they convert exactly, refused
//! otherwise), and a [`Rejection`] per bad value that names the key, the column, the value
//! and what is expected. Must not: read the mirror or ask Tariscope. It checks the form of a
//! row, not whether the department, tariff plan or PBX it names exists: Tariscope says that,
//! and a refusal of a write that passed this check ends its outbox entry at once
//! (`push::exec`).
//!
//! Why SQLite needs this: a column has an affinity, not a type. `departmentid = 'abc'` is
//! kept as TEXT, `370.5` written into a column without affinity stays a REAL, and any column
//! takes a BLOB. SQLite itself converts what converts exactly (`'1201'` into an INTEGER column
//! becomes 1201; a number into a TEXT column becomes its text), so what reaches this module in
//! the wrong class is what did not convert.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::fields::{Field, Fields, Kind};
use super::plan::{DesiredDn, DesiredSubscriber};
use crate::model::{Cell, RawDesired, RawDn, Rejection};

/// The table a rejected value was read from (for rows written with SQL).
pub const SUBSCRIBERS_TABLE: &str = "desired_subscribers";
/// See [`SUBSCRIBERS_TABLE`].
pub const DNS_TABLE: &str = "desired_dns";

/// Longest number, in digits, that a desired DN may have (the reference wire profile's limit).
pub const MAX_DN_DIGITS: usize = 20;

/// A rejection of a row read from the desired-state tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRejection {
    /// [`SUBSCRIBERS_TABLE`] or [`DNS_TABLE`].
    pub table: &'static str,
    /// Identifies the row as written: the rejection stands, unchanged, until the row changes.
    pub fingerprint: String,
    pub rejection: Rejection,
}

/// The desired rows of the mirror, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// Rows that passed, in canonical form, for the planner.
    pub valid: Vec<DesiredSubscriber>,
    /// Every problem of the rows that did not pass (a row can have several).
    pub rejected: Vec<TableRejection>,
}

impl Checked {
    /// Keys of the rejected rows.
    pub fn rejected_keys(&self) -> BTreeSet<String> {
        self.rejected
            .iter()
            .filter_map(|r| r.rejection.key.clone())
            .collect()
    }
}

/// Checks every row read from `desired_subscribers` / `desired_dns`.
pub fn check_rows(rows: &[RawDesired]) -> Checked {
    let mut out = Checked::default();
    for raw in rows {
        match desired(raw) {
            Ok(d) => out.valid.push(d),
            Err(problems) => {
                let fingerprint = fingerprint(raw);
                out.rejected
                    .extend(
                        problems
                            .into_iter()
                            .map(|(table, rejection)| TableRejection {
                                table,
                                fingerprint: fingerprint.clone(),
                                rejection,
                            }),
                    );
            }
        }
    }
    out
}

/// Checks one desired subscriber with its numbers. `Err` lists every problem, each with the
/// table it was read from.
pub fn desired(raw: &RawDesired) -> Result<DesiredSubscriber, Vec<(&'static str, Rejection)>> {
    let mut problems = Vec::new();
    let key = match key_of(&raw.key) {
        Ok(k) => k,
        Err(r) => return Err(vec![(SUBSCRIBERS_TABLE, *r)]),
    };
    let mut tariscope_id: Option<i64> = None;
    let mut fields = Fields::new();
    for (name, cell) in &raw.columns {
        if name == "tariscope_id" {
            match value(Rule::Id("a Tariscope subscriber id"), cell) {
                Ok(v) => tariscope_id = v.and_then(|v| v.parse().ok()),
                Err(expected) => {
                    problems.push((SUBSCRIBERS_TABLE, rejection(&key, name, cell, &expected)))
                }
            }
            continue;
        }
        let Ok(field) = name.parse::<Field>() else {
            problems.push((
                SUBSCRIBERS_TABLE,
                rejection(
                    &key,
                    name,
                    cell,
                    "a subscriber field name (docs/schema.md lists them)",
                ),
            ));
            continue;
        };
        match value(rule(field), cell) {
            Ok(Some(v)) => {
                fields.insert(field, v);
            }
            Ok(None) => {}
            Err(expected) => {
                problems.push((SUBSCRIBERS_TABLE, rejection(&key, name, cell, &expected)))
            }
        }
    }
    let given = |column: &str| {
        raw.columns
            .iter()
            .any(|(n, c)| n == column && *c != Cell::Null)
    };
    if !given("tariscope_id") && !given("fullname") {
        problems.push((
            SUBSCRIBERS_TABLE,
            Rejection {
                key: Some(key.clone()),
                field: Some("fullname".into()),
                expected: Some("a full name".into()),
                reason: format!(
                    "{key}: missing fullname (required to create a subscriber; or give tariscope_id)"
                ),
                ..Rejection::default()
            },
        ));
    }
    let mut dns = Vec::new();
    let mut seen = BTreeSet::new();
    for raw_dn in &raw.dns {
        match dn(&key, raw_dn) {
            Ok(d) if seen.insert(d.key()) => dns.push(d),
            Ok(_) => {}
            Err(r) => problems.push((DNS_TABLE, *r)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DesiredSubscriber {
        key,
        tariscope_id,
        fields,
        dns,
    })
}

/// Checks one desired number of the row `key`.
pub fn dn(key: &str, raw: &RawDn) -> Result<DesiredDn, Box<Rejection>> {
    let pbx = value(Rule::Id("a PBX id"), &raw.pbx_id)
        .and_then(|v| v.ok_or_else(|| "a PBX id (required)".to_string()))
        .map_err(|e| rejection(key, "pbx_id", &raw.pbx_id, &e))?;
    let pbx_id: i64 = pbx.parse().unwrap_or_default();
    let number = match &raw.dn {
        Cell::Text(t) => Some(t.clone()),
        Cell::Int(i) => Some(i.to_string()),
        _ => None,
    };
    let number = number.filter(|n| is_dn(n)).ok_or_else(|| {
        rejection(
            key,
            "dn",
            &raw.dn,
            &format!("a phone number: digits, optionally a leading +, at most {MAX_DN_DIGITS}"),
        )
    })?;
    let about = |field: &str, cell: &Cell, expected: &str| {
        let mut r = rejection(key, field, cell, expected);
        r.reason = format!(
            "{key}: number {pbx_id}/{number}: {field} = {}: expected {expected}",
            shown(cell)
        );
        r
    };
    let from_date = value(Rule::Date, &raw.from_date)
        .map_err(|e| about("from_date", &raw.from_date, &e))?
        .filter(|d| !d.is_empty())
        .and_then(|d| d.parse::<NaiveDate>().ok());
    let description = match &raw.description {
        Cell::Null => None,
        Cell::Text(t) => Some(t.clone()),
        Cell::Int(i) => Some(i.to_string()),
        other => return Err(about("description", other, "text").into()),
    };
    Ok(DesiredDn {
        pbx_id,
        dn: number,
        from_date,
        description,
    })
}

/// Digits with an optional leading `+`, at most [`MAX_DN_DIGITS`] of them.
fn is_dn(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    !digits.is_empty()
        && digits.len() <= MAX_DN_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn key_of(cell: &Cell) -> Result<String, Box<Rejection>> {
    let key = match cell {
        Cell::Text(t) => Some(t.trim().to_string()),
        Cell::Int(i) => Some(i.to_string()),
        _ => None,
    };
    key.filter(|k| !k.is_empty()).ok_or_else(|| {
        Box::new(Rejection {
        key: cell.shown(),
        field: Some("key".into()),
        value: cell.shown(),
        expected: Some("your own key, as non-empty text".into()),
        reason: format!(
            "a row without a usable key ({}): every desired row needs your own key, as non-empty text",
            shown(cell)
        ),
        ..Rejection::default()
        })
    })
}

/// Decimal places Tariscope keeps (amounts and percentages are stored to the cent).
const MAX_SCALE: u32 = 2;
const DECIMAL: &str =
    "a decimal number with at most 2 decimal places, written as text, e.g. '2.50'";

/// What a field takes.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Any text (an empty string clears the field).
    Text,
    /// Text that is not blank.
    Name,
    /// A positive whole number naming something (the text says what).
    Id(&'static str),
    /// A code `0..=max`; the text lists the codes.
    Code(i64, &'static str),
    Date,
    Flag,
    Decimal,
}

fn rule(field: Field) -> Rule {
    match field {
        Field::Fullname => Rule::Name,
        Field::DepartmentId => Rule::Id("a department id"),
        Field::RatePlanId => Rule::Id("a tariff plan id"),
        Field::SubscriberType => Rule::Code(
            4,
            "a subscriber type 0..4 (0 individual, 1 legal entity, 2 official, 3 budget, 4 preferential)",
        ),
        Field::Gender => Rule::Code(2, "a gender code 0..2 (0 unknown, 1 male, 2 female)"),
        Field::DeliveryType => {
            Rule::Code(2, "a delivery type 0..2 (0 post, 1 e-mail, 2 in person)")
        }
        f => match f.kind() {
            Kind::Text => Rule::Text,
            Kind::Date => Rule::Date,
            Kind::Bool => Rule::Flag,
            Kind::Decimal => Rule::Decimal,
            Kind::Int => Rule::Id("a whole number"),
        },
    }
}

/// A whole number from a cell, when the cell holds exactly one.
pub(crate) fn whole(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(i) => Some(*i),
        Cell::Text(t) => t.trim().parse().ok(),
        // Exact only: 1201.0 is 1201, 1201.5 is nothing (2^63 is out of range).
        Cell::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
        _ => None,
    }
}

/// The canonical text of `cell` under `rule` (`None`: NULL, not managed), or what is expected.
fn value(rule: Rule, cell: &Cell) -> Result<Option<String>, String> {
    if *cell == Cell::Null {
        return Ok(None);
    }
    let blank = matches!(cell, Cell::Text(t) if t.trim().is_empty());
    let ok = |v: String| Ok(Some(v));
    match rule {
        Rule::Text => match cell {
            Cell::Text(t) => ok(t.clone()),
            Cell::Int(i) => ok(i.to_string()),
            _ => Err("text".into()),
        },
        Rule::Name => match cell {
            Cell::Text(t) if !blank => ok(t.clone()),
            _ => Err("a non-empty text (NULL if you do not manage it)".into()),
        },
        Rule::Id(what) => match whole(cell) {
            Some(n) if n > 0 => ok(n.to_string()),
            _ => Err(format!(
                "{what}: a positive whole number (NULL if you do not manage it)"
            )),
        },
        Rule::Code(_, _) | Rule::Date | Rule::Flag | Rule::Decimal if blank => ok(String::new()),
        Rule::Code(max, what) => match whole(cell) {
            Some(n) if (0..=max).contains(&n) => ok(n.to_string()),
            _ => Err(what.into()),
        },
        Rule::Date => match cell {
            Cell::Text(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map(|d| Some(d.to_string()))
                .map_err(|_| "a date yyyy-mm-dd".into()),
            _ => Err("a date yyyy-mm-dd, written as text".into()),
        },
        Rule::Flag => match (cell, whole(cell)) {
            (_, Some(0)) => ok("false".into()),
            (_, Some(1)) => ok("true".into()),
            (Cell::Text(t), None) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => ok("true".into()),
                "false" | "no" => ok("false".into()),
                _ => Err("a flag: 1 or 0 (true or false)".into()),
            },
            _ => Err("a flag: 1 or 0 (true or false)".into()),
        },
        Rule::Decimal => match cell {
            // A decimal comma (`12,50`) as Ukrainian software writes it: `crate::records`.
            Cell::Text(t) => match crate::records::normalize_decimal(t.trim())
                .parse::<Decimal>()
                .map(|d| d.normalize())
            {
                Ok(d) if d.scale() <= MAX_SCALE => ok(d.to_string()),
                _ => Err(DECIMAL.into()),
            },
            Cell::Int(i) => ok(i.to_string()),
            Cell::Real(_) => Err(
                "a decimal written as text, e.g. '370.50' (write decimals as text: a REAL is a binary fraction, not the amount you meant)"
                    .into(),
            ),
            _ => Err(DECIMAL.into()),
        },
    }
}

/// How a value is shown in a message: text quoted, other classes named.
pub(crate) fn shown(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => format!("{t:?}"),
        Cell::Null => "NULL".into(),
        Cell::Int(_) => cell.shown().unwrap_or_default(),
        other => format!("{} {}", other.class(), other.shown().unwrap_or_default()),
    }
}

pub(crate) fn rejection(key: &str, field: &str, cell: &Cell, expected: &str) -> Rejection {
    Rejection {
        row: 0,
        key: Some(key.to_string()),
        field: Some(field.to_string()),
        value: cell.shown(),
        expected: Some(expected.to_string()),
        reason: format!("{key}: {field} = {}: expected {expected}", shown(cell)),
    }
}

/// Identifies a row exactly as written (every column with its storage class, and its
/// numbers): equal fingerprints mean the row did not change.
pub fn fingerprint(raw: &RawDesired) -> String {
    let mut h = Sha256::new();
    let mut put = |name: &str, c: &Cell| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(c.class().as_bytes());
        h.update([0]);
        h.update(c.shown().unwrap_or_default().as_bytes());
        h.update([1]);
    };
    put("key", &raw.key);
    for (name, c) in &raw.columns {
        put(name, c);
    }
    for d in &raw.dns {
        put("pbx_id", &d.pbx_id);
        put("dn", &d.dn);
        put("from_date", &d.from_date);
        put("description", &d.description);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
