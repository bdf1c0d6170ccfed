//! Parsing and validating desired-state files for `tariscope-sync import FILE`.
//!
//! Owns: the column names of desired subscribers (header-driven) and turning a file's rows
//! into the raw rows `sync::validate` checks (the same check rows written with SQL pass), with
//! a reason for every rejected row. Must not: check values itself (one validator for every
//! path), read bytes or know encodings and separators (`crate::records` does: UTF-8 or
//! `--encoding`, a BOM, `;` / `,` / tab), write anything (the store does), or stop at the
//! first bad row (valid rows still go in).
//!
//! ## Format
//! One row per desired subscriber. Columns (CSV header) or keys (JSON objects):
//! * `key` (required): the integrator's own key, unique in the file;
//! * `tariscope_id` (optional): link to an existing Tariscope subscriber;
//! * any subscriber field by its canonical name (`fullname`, `departmentid`, `abonenttype`
//!   (alias `subscribertype`), `street`, `house`, `flat`, `email`, `accountid` (alias
//!   `accountnumber`), `contractid` (alias `contactnumber`), `code` (alias `edrpou`), ...;
//!   see `docs/schema.md`). An empty cell or `null` means "not managed";
//! * `dns` (optional): the numbers, `PBX/DN` or `PBX/DN/yyyy-mm-dd`, separated by `;`
//!   (JSON: that string, or an array of `{"pbx_id", "dn", "from_date", "description"}`).
//!
//! A row without `tariscope_id` needs `fullname`. Unknown columns reject the whole file.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::fields::Field;
use super::validate;
use crate::model::{Cell, RawDesired, RawDn, Rejection};
pub use crate::records::FileFormat as Format;
use crate::records::{self, ReadError, ReadOptions};

/// A row that was not imported, and why (the same type the push records for rows written with
/// SQL).
pub type Rejected = Rejection;

pub use crate::model::desired::ImportBatch;

/// A file that cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes, the CSV or the JSON cannot be read (`crate::records`).
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "unknown column {0:?}: use key, tariscope_id, dns or a subscriber field name (docs/schema.md lists them)"
    )]
    UnknownColumn(String),
    #[error("the file has no `key` column: every row needs the integrator's own key")]
    NoKeyColumn,
}

/// Parses a whole file given as UTF-8 text.
pub fn parse(text: &str, format: Format) -> Result<ImportBatch, ImportError> {
    parse_bytes(text.as_bytes(), &ReadOptions::new(format))
}

/// Parses a whole file as read from disk (encoding and separator per `options`).
pub fn parse_bytes(bytes: &[u8], options: &ReadOptions) -> Result<ImportBatch, ImportError> {
    let records = desired_records(records::read(bytes, options)?)?;
    let mut batch = ImportBatch::default();
    let mut seen = BTreeSet::new();
    for (row, record) in records {
        let checked = raw_row(&record).and_then(|raw| {
            validate::desired(&raw)
                .map_err(|problems| problems.into_iter().map(|(_, r)| r).collect())
        });
        match checked {
            Ok(d) if !seen.insert(d.key.clone()) => batch.rejected.push(Rejection {
                row,
                reason: format!("{}: the key appears more than once in the file", d.key),
                key: Some(d.key),
                field: Some("key".into()),
                ..Rejection::default()
            }),
            Ok(d) => batch.rows.push(d),
            Err(problems) => batch
                .rejected
                .extend(problems.into_iter().map(|r| Rejection { row, ..r })),
        }
    }
    Ok(batch)
}

type Record = BTreeMap<String, Value>;

/// Maps a column name to its canonical form, or `None` if unknown.
fn column(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    let alias = match lower.as_str() {
        "key" | "tariscope_id" | "dns" => return Some(lower),
        "subscribertype" => "abonenttype",
        "accountnumber" => "accountid",
        "contactnumber" | "contractnumber" => "contractid",
        "edrpou" => "code",
        "bankcode" => "bankmfo",
        other => other,
    };
    alias.parse::<Field>().ok().map(|f| f.name().to_string())
}

/// The file's records under canonical column names, without the cells that are "not
/// managed".
fn desired_records(table: records::Table) -> Result<Vec<(usize, Record)>, ImportError> {
    let names: BTreeMap<String, String> = table
        .columns
        .iter()
        .map(|c| {
            Ok((
                c.clone(),
                column(c).ok_or_else(|| ImportError::UnknownColumn(c.clone()))?,
            ))
        })
        .collect::<Result<_, ImportError>>()?;
    if !names.values().any(|n| n == "key") {
        return Err(ImportError::NoKeyColumn);
    }
    // An empty CSV cell is "not managed"; in JSON that is `null` (`""` is an empty value).
    let csv = table.separator.is_some();
    Ok(table
        .records
        .into_iter()
        .map(|r| {
            let record = r
                .cells
                .into_iter()
                .filter(|(_, v)| !(v.is_null() || (csv && v.as_str() == Some(""))))
                .map(|(name, v)| (names[&name].clone(), v))
                .collect();
            (r.line, record)
        })
        .collect())
}

/// A file value as the validator reads values: JSON numbers stay numbers, CSV cells are text.
pub(crate) fn cell(key: &str, name: &str, v: &Value) -> Result<Cell, Vec<Rejection>> {
    Ok(match v {
        Value::Null => Cell::Null,
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => {
            return Err(vec![Rejection {
                key: Some(key.to_string()),
                field: Some(name.to_string()),
                value: Some(other.to_string()),
                expected: Some("a single value".into()),
                reason: format!("{key}: {name} = {other}: expected a single value"),
                ..Rejection::default()
            }]);
        }
    })
}

/// A file row as the validator reads rows.
fn raw_row(record: &Record) -> Result<RawDesired, Vec<Rejection>> {
    let key_cell = match record.get("key") {
        None => Cell::Null,
        Some(v) => cell("?", "key", v)?,
    };
    let key = key_cell.shown().unwrap_or_default();
    let mut columns = Vec::new();
    for (name, value) in record.iter().filter(|(n, _)| *n != "key" && *n != "dns") {
        columns.push((name.clone(), cell(&key, name, value)?));
    }
    let dns = match record.get("dns") {
        None => Vec::new(),
        Some(v) => raw_dns(&key, v)?,
    };
    Ok(RawDesired {
        key: key_cell,
        columns,
        dns,
    })
}

fn dns_format(key: &str, shown: String) -> Vec<Rejection> {
    let expected = "numbers as \"PBX/DN;PBX/DN/yyyy-mm-dd\", or a list of {\"pbx_id\", \"dn\", \"from_date\", \"description\"}";
    vec![Rejection {
        key: Some(key.to_string()),
        field: Some("dns".into()),
        reason: format!("{key}: dns = {shown}: expected {expected}"),
        value: Some(shown),
        expected: Some(expected.into()),
        ..Rejection::default()
    }]
}

/// The `dns` column: `PBX/DN[/yyyy-mm-dd]` items separated by `;`, or (JSON) a list of
/// objects. Only the layout is checked here; the values are the validator's.
fn raw_dns(key: &str, v: &Value) -> Result<Vec<RawDn>, Vec<Rejection>> {
    let text = |s: &str| Cell::Text(s.to_string());
    match v {
        Value::String(s) => s
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|item| {
                let parts: Vec<&str> = item.split('/').map(str::trim).collect();
                let (pbx, dn, date) = match parts.as_slice() {
                    [pbx, dn] => (*pbx, *dn, Cell::Null),
                    [pbx, dn, date] => (*pbx, *dn, text(date)),
                    _ => return Err(dns_format(key, format!("{item:?}"))),
                };
                Ok(RawDn {
                    pbx_id: text(pbx),
                    dn: text(dn),
                    from_date: date,
                    description: Cell::Null,
                })
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let Value::Object(o) = item else {
                    return Err(dns_format(key, item.to_string()));
                };
                let get = |names: &[&str]| -> Result<Cell, Vec<Rejection>> {
                    let found = names.iter().find_map(|n| o.get(*n));
                    found.map_or(Ok(Cell::Null), |v| cell(key, names[0], v))
                };
                Ok(RawDn {
                    pbx_id: get(&["pbx_id", "pbxid"])?,
                    dn: get(&["dn"])?,
                    from_date: get(&["from_date", "fromdate"])?,
                    description: get(&["description"])?,
                })
            })
            .collect(),
        other => Err(dns_format(key, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    const CSV: &str = "key,fullname,departmentid,subscribertype,email,birthday,dns\n\
        crm-1,Kovalenko Olena,3,0,o@example.org,1990-02-03,292/2001;292/2002/2023-06-02\n\
        crm-2,,3,0,,,\n\
        crm-3,TOV Dnipro,3,9,,,\n\
        crm-4,Shevchenko Taras,3,0,,03.02.1990,\n\
        crm-5,Bondar Ivan,3,1,,,292/20A1\n\
        crm-1,Duplicate,3,0,,,\n\
        crm-6,Melnyk Anna,x,0,,,\n";

    #[test]
    fn csv_rows_are_validated_one_by_one() {
        let b = parse(CSV, Format::Csv).unwrap();
        assert_eq!(b.rows.len(), 1);
        let r = &b.rows[0];
        assert_eq!(r.key, "crm-1");
        assert_eq!(r.fields[&Field::SubscriberType], "0");
        assert_eq!(r.dns.len(), 2);
        assert_eq!(r.dns[1].from_date, NaiveDate::from_ymd_opt(2023, 6, 2));
        let reasons: Vec<(usize, &str)> = b
            .rejected
            .iter()
            .map(|r| (r.row, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 6, "{reasons:#?}");
        assert!(reasons[0].1.starts_with("crm-2: missing fullname"));
        assert_eq!(
            reasons[1].1,
            "crm-3: abonenttype = \"9\": expected a subscriber type 0..4 (0 individual, 1 legal entity, 2 official, 3 budget, 4 preferential)"
        );
        assert_eq!(
            reasons[2].1,
            "crm-4: birthday = \"03.02.1990\": expected a date yyyy-mm-dd"
        );
        assert!(
            reasons[3]
                .1
                .contains("dn = \"20A1\": expected a phone number")
        );
        assert!(reasons[4].1.contains("more than once"));
        assert!(reasons[5].1.starts_with("crm-6: departmentid = \"x\""));
        let bad_date = &b.rejected[2];
        assert_eq!(
            (bad_date.field.as_deref(), bad_date.value.as_deref()),
            (Some("birthday"), Some("03.02.1990"))
        );
        assert_eq!(b.rejected[0].row, 3);
        assert_eq!(b.rejected[0].key.as_deref(), Some("crm-2"));
    }

    #[test]
    fn json_rows_with_aliases_and_dn_objects() {
        let text = r#"[
            {"key": "a", "fullname": "Ivanenko Ivan", "accountnumber": "ACC-1", "edrpou": null,
             "dns": [{"pbx_id": 292, "dn": "+380441234567", "description": "office"}]},
            {"key": "b", "tariscope_id": 7334, "street": "Khreshchatyk"},
            {"key": "c", "tariscope_id": "x"}
        ]"#;
        let b = parse(text, Format::Json).unwrap();
        assert_eq!(b.rows.len(), 2);
        assert_eq!(b.rows[0].fields[&Field::AccountId], "ACC-1");
        assert!(
            !b.rows[0].fields.contains_key(&Field::Edrpou),
            "null = not managed"
        );
        assert_eq!(b.rows[0].dns[0].description.as_deref(), Some("office"));
        assert_eq!(b.rows[1].tariscope_id, Some(7334));
        assert!(b.rejected[0].reason.starts_with("c: tariscope_id = \"x\""));
    }

    #[test]
    fn whole_file_errors() {
        assert!(
            matches!(parse("key,colour\n1,red\n", Format::Csv), Err(ImportError::UnknownColumn(c)) if c == "colour")
        );
        assert!(matches!(
            parse("fullname\nx\n", Format::Csv),
            Err(ImportError::NoKeyColumn)
        ));
        assert!(matches!(
            parse("{", Format::Json),
            Err(ImportError::Read(ReadError::Json(_)))
        ));
    }

    /// `CSV` without its duplicate key: each row stands on its own, in any order.
    fn independent_rows() -> (Vec<String>, Vec<Vec<String>>) {
        let mut lines = CSV
            .lines()
            .map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
        let header = lines.next().unwrap();
        let rows = lines.filter(|r| r[1] != "Duplicate").collect();
        (header, rows)
    }

    fn to_csv(header: &[String], rows: &[Vec<String>], columns: &[usize]) -> String {
        let line = |cells: &[String]| {
            let picked: Vec<&str> = columns.iter().map(|&c| cells[c].as_str()).collect();
            picked.join(",") + "\n"
        };
        std::iter::once(line(header))
            .chain(rows.iter().map(|r| line(r)))
            .collect()
    }

    proptest! {
        /// The header decides, not the column order; each row is judged alone, not by its
        /// place: any order of columns and rows gives the same rows and rejections (each
        /// rejection naming the line where that row now is).
        #[test]
        fn column_and_row_order_do_not_change_the_result(
            columns in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
            order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            let (header, rows) = independent_rows();
            let identity: Vec<usize> = (0..header.len()).collect();
            let reference = parse(&to_csv(&header, &rows, &identity), Format::Csv).unwrap();
            prop_assert_eq!(reference.rows.len(), 1);
            prop_assert_eq!(reference.rejected.len(), 5);

            let by_columns = parse(&to_csv(&header, &rows, &columns), Format::Csv).unwrap();
            prop_assert_eq!(&by_columns, &reference);

            let shuffled: Vec<Vec<String>> = order.iter().map(|&i| rows[i].clone()).collect();
            let by_rows = parse(&to_csv(&header, &shuffled, &columns), Format::Csv).unwrap();
            prop_assert_eq!(&by_rows.rows, &reference.rows);
            let line_of = |key: &str| shuffled.iter().position(|r| r[0] == key).unwrap() + 2;
            let mut got: Vec<_> = by_rows
                .rejected
                .iter()
                .map(|r| (r.key.clone(), r.reason.clone(), r.row))
                .collect();
            let mut want: Vec<_> = reference
                .rejected
                .iter()
                .map(|r| (r.key.clone(), r.reason.clone(), line_of(r.key.as_deref().unwrap())))
                .collect();
            got.sort();
            want.sort();
            prop_assert_eq!(got, want);
        }
    }
}
