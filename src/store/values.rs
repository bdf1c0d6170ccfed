//! Conversions between domain values and SQLite values.
//!
//! Owns: how a date, a decimal, a flag or a code is written to and read from a column
//! (dates `yyyy-mm-dd`, decimals as `rust_decimal` text, flags 0/1). Must not: know tables.

use chrono::NaiveDate;
use rusqlite::types::Value;
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
    v.map_or(Value::Null, |d| Value::Text(d.to_string()))
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
    match v {
        Value::Null => h.update(b"n"),
        Value::Integer(i) => {
            h.update(b"i");
            h.update(i.to_le_bytes());
        }
        Value::Real(f) => {
            h.update(b"r");
            h.update(f.to_le_bytes());
        }
        Value::Text(t) => {
            h.update(b"t");
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        Value::Blob(b) => {
            h.update(b"b");
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}
