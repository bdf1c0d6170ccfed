//! Conversions between domain values and SQLite values.
//!
//! Owns: how a date, a decimal, a flag or a code is written to and read from a column
//! (dates `yyyy-mm-dd`, decimals as `rust_decimal` text, flags 0/1). Must not: know tables.

use chrono::NaiveDate;
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rust_decimal::Decimal;

use super::StoreError;

pub(crate) fn text(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::Text)
}

pub(crate) fn int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

pub(crate) fn flag(v: Option<bool>) -> Value {
    v.map_or(Value::Null, |b| Value::Integer(i64::from(b)))
}

pub(crate) fn date(v: Option<NaiveDate>) -> Value {
    v.map_or(Value::Null, |d| Value::Text(date_text(d)))
}

/// `yyyy-mm-dd`, as `NaiveDate`'s `Display` writes it, without the strftime machinery
/// (bulk pulls format a few dates per record).
pub(crate) fn date_text(d: NaiveDate) -> String {
    use chrono::Datelike;
    let year = d.year();
    if !(0..=9999).contains(&year) {
        return d.to_string();
    }
    fn digits(out: &mut String, n: u32, width: u32) {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + ((n / 10u32.pow(p)) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(10);
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, d.month(), 2);
    out.push('-');
    digits(&mut out, d.day(), 2);
    out
}

/// A column value that borrows text from the record where it can: what the bulk write
/// path binds and hashes without cloning every string. Hashes and compares exactly like
/// the `Value` it stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Col<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Owned(String),
}

impl<'a> Col<'a> {
    pub(crate) fn text(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Col::Null, Col::Str)
    }
    pub(crate) fn int(v: Option<i64>) -> Self {
        v.map_or(Col::Null, Col::Int)
    }
    pub(crate) fn flag(v: Option<bool>) -> Self {
        v.map_or(Col::Null, |b| Col::Int(i64::from(b)))
    }
    pub(crate) fn date(v: Option<NaiveDate>) -> Self {
        v.map_or(Col::Null, |d| Col::Owned(date_text(d)))
    }
    pub(crate) fn dec(v: Option<Decimal>) -> Self {
        v.map_or(Col::Null, |d| Col::Owned(d.normalize().to_string()))
    }
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Col::Null => ValueRef::Null,
            Col::Int(i) => ValueRef::Integer(*i),
            Col::Str(s) => ValueRef::Text(s.as_bytes()),
            Col::Owned(s) => ValueRef::Text(s.as_bytes()),
        }
    }
    pub(crate) fn to_value(&self) -> Value {
        self.as_ref().into()
    }
}

impl<'a> From<std::borrow::Cow<'a, str>> for Col<'a> {
    fn from(v: std::borrow::Cow<'a, str>) -> Self {
        match v {
            std::borrow::Cow::Borrowed(s) => Col::Str(s),
            std::borrow::Cow::Owned(s) => Col::Owned(s),
        }
    }
}

impl ToSql for Col<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.as_ref()))
    }
}

/// Decimals are stored in canonical form, without trailing zeros (`370.00` -> `370`,
/// `133.60` -> `133.6`), so the same amount is the same text whatever scale the server or
/// the decoder produced.
pub(crate) fn dec(v: Option<Decimal>) -> Value {
    v.map_or(Value::Null, |d| Value::Text(d.normalize().to_string()))
}

/// A column value as JSON, for the change log.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Real(f) => serde_json::Value::from(*f),
        Value::Text(t) => serde_json::Value::from(t.as_str()),
        Value::Blob(b) => serde_json::Value::from(format!("<{} bytes>", b.len())),
    }
}

/// Reads typed values back out of `Value`s, naming the column on corruption.
pub(crate) struct Reader<'a> {
    pub table: &'static str,
    pub values: &'a [Value],
    pub names: &'a [&'static str],
}

impl Reader<'_> {
    fn corrupt(&self, i: usize) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            column: self.names.get(i).copied().unwrap_or("?"),
            value: format!("{:?}", self.values.get(i)),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.values.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            _ => Err(self.corrupt(i)),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.values.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Integer(v)) => Ok(Some(*v)),
            _ => Err(self.corrupt(i)),
        }
    }

    pub(crate) fn flag(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.int(i)?.map(|v| v != 0))
    }

    pub(crate) fn date(&self, i: usize) -> Result<Option<NaiveDate>, StoreError> {
        match self.text(i)? {
            None => Ok(None),
            Some(t) => t.parse().map(Some).map_err(|_| self.corrupt(i)),
        }
    }

    pub(crate) fn dec(&self, i: usize) -> Result<Option<Decimal>, StoreError> {
        match self.text(i)? {
            None => Ok(None),
            Some(t) => t.parse().map(Some).map_err(|_| self.corrupt(i)),
        }
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Feeds one value into a hasher, unambiguously (type tag, length-prefixed text).
pub(crate) fn hash_value(h: &mut impl sha2::Digest, v: &Value) {
    hash_ref(h, v.into());
}

/// [`hash_value`] of a borrowed value (the same bytes).
pub(crate) fn hash_ref(h: &mut impl sha2::Digest, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.update(b"n"),
        ValueRef::Integer(i) => {
            h.update(b"i");
            h.update(i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            h.update(b"r");
            h.update(f.to_le_bytes());
        }
        ValueRef::Text(t) => {
            h.update(b"t");
            h.update((t.len() as u64).to_le_bytes());
            h.update(t);
        }
        ValueRef::Blob(b) => {
            h.update(b"b");
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_text_is_what_display_writes() {
        // The content hash of stored subscribers depends on it: it must never change.
        let mut d = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        while chrono::Datelike::year(&d) < 9999 {
            assert_eq!(date_text(d), d.to_string());
            d = d + chrono::Days::new(997);
        }
        for d in [
            NaiveDate::from_ymd_opt(0, 2, 29).unwrap(),
            NaiveDate::from_ymd_opt(-1, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(10000, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        ] {
            assert_eq!(date_text(d), d.to_string());
        }
    }

    #[test]
    fn a_borrowed_column_hashes_and_converts_like_its_value() {
        use sha2::{Digest, Sha256};
        let owned = "x".to_owned();
        for (col, value) in [
            (Col::Null, Value::Null),
            (Col::Int(-7), Value::Integer(-7)),
            (Col::Str("é"), Value::Text("é".into())),
            (Col::Owned(owned.clone()), Value::Text(owned.clone())),
        ] {
            let (mut a, mut b) = (Sha256::new(), Sha256::new());
            hash_ref(&mut a, col.as_ref());
            hash_value(&mut b, &value);
            assert_eq!(a.finalize(), b.finalize());
            assert_eq!(col.to_value(), value);
        }
    }
}
