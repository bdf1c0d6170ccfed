//! Tolerant reading of one JSON value as text, integer, decimal, flag or date.
//!
//! Owns: the scalar rules of `docs/client.md` ("Decoding"): numbers as strings, 0/1 and
//! word flags, decimal commas, every plausible date format. Must not: know records,
//! lists or model types (`wire.rs`, `decode.rs`), or panic on any input.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;
use serde_json::Value;

/// Text: strings as they are, numbers and booleans as their JSON text.
pub fn to_text(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err("expected text, got a list or an object".into()),
    }
}

/// Integers: numbers, numeric strings (`"2928"`, `"2928.0"`); blank is `None`.
pub fn to_int(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| format!("expected an integer, got {n}")),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Some(i));
            }
            match parse_decimal(t) {
                Some(d) if d.fract().is_zero() => i64::try_from(d)
                    .map(Some)
                    .map_err(|_| format!("integer out of range: {t:?}")),
                _ => Err(format!("expected an integer, got {:?}", short(t))),
            }
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(format!("expected an integer, got {}", kind(v)))
        }
    }
}

fn parse_decimal(t: &str) -> Option<Decimal> {
    let cleaned: String = t
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\'')
        .collect();
    let normalised = if cleaned.contains(',') && cleaned.contains('.') {
        cleaned.replace(',', "")
    } else {
        cleaned.replace(',', ".")
    };
    Decimal::from_str(&normalised)
        .or_else(|_| Decimal::from_scientific(&normalised))
        .ok()
}

/// Money and other decimals: numbers or strings (`370.00`, `"370,00"`, `"1 234.50"`),
/// never through a float for strings.
pub fn to_decimal(v: &Value) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => parse_decimal(&n.to_string())
            .map(Some)
            .ok_or_else(|| format!("number out of decimal range: {n}")),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            parse_decimal(t)
                .map(Some)
                .ok_or_else(|| format!("expected a decimal, got {:?}", short(t)))
        }
        other => Err(format!("expected a decimal, got {}", kind(other))),
    }
}

/// A flag sent as a number: 0 is false, 1 and -1 (Visual Basic's and COM's `True`) true.
fn numeric_flag(n: Option<f64>) -> Option<Option<bool>> {
    match n {
        Some(0.0) => Some(Some(false)),
        Some(1.0) | Some(-1.0) => Some(Some(true)),
        _ => None,
    }
}

/// Flags: `true/false`, `0/1` (and `-1` for true), as numbers or text, and the words `"true"`,
/// `"yes"`, ... (any case).
pub fn to_bool(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) => {
            numeric_flag(n.as_f64()).ok_or_else(|| format!("expected a flag (0/1), got {n}"))
        }
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            match t.as_str() {
                "" => Ok(None),
                "true" | "yes" | "y" | "t" | "on" => Ok(Some(true)),
                "false" | "no" | "n" | "f" | "off" => Ok(Some(false)),
                // A number sent as text reads as the number would (the record_variants
                // fuzz target found `-1` accepted as text but refused as a number).
                _ => numeric_flag(t.parse().ok())
                    .ok_or_else(|| format!("expected a flag, got {:?}", short(s))),
            }
        }
        other => Err(format!("expected a flag, got {}", kind(other))),
    }
}

/// Dates: `yyyy-mm-dd`, ISO / .NET date-times (`2023-05-17T00:00:00[.fff][Z|±hh:mm]`,
/// date part taken as is), `dd.mm.yyyy [hh:mm[:ss]]`, `/Date(ms[±hhmm])/`; blank is `None`.
pub fn to_date(v: &Value) -> Result<Option<NaiveDate>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            parse_date(t)
                .map(Some)
                .ok_or_else(|| format!("expected a date, got {:?}", short(t)))
        }
        other => Err(format!("expected a date, got {}", kind(other))),
    }
}

fn parse_date(t: &str) -> Option<NaiveDate> {
    if let Some(inner) = t
        .strip_prefix("/Date(")
        .or_else(|| t.strip_prefix("\\/Date("))
        .and_then(|r| r.strip_suffix(")/").or_else(|| r.strip_suffix(")\\/")))
    {
        return parse_dotnet_json_date(inner);
    }
    let head = t.get(..10)?;
    let rest = &t[10..];
    if !(rest.is_empty() || rest.starts_with(['T', 't', ' '])) {
        return None;
    }
    if rest.len() > 40 {
        return None;
    }
    if let Some(d) = fixed_date(head.as_bytes()) {
        return Some(d);
    }
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(head, "%d.%m.%Y"))
        .or_else(|_| NaiveDate::parse_from_str(head, "%Y/%m/%d"))
        .ok()
        .filter(|_| head.is_ascii() && head.chars().filter(char::is_ascii_digit).count() == 8)
}

/// `yyyy-mm-dd`, `yyyy/mm/dd` or `dd.mm.yyyy` with every digit in place: the shapes
/// servers send, read without chrono's format parser (a list of 50,000 subscribers holds
/// 150,000 dates). Anything else falls through to the lenient parsers.
fn fixed_date(b: &[u8]) -> Option<NaiveDate> {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = match (b.get(2), b.get(4), b.get(5), b.get(7)) {
        (_, Some(s1), _, Some(s2)) if s1 == s2 && matches!(s1, b'-' | b'/') => {
            (num(0..4)?, num(5..7)?, num(8..10)?)
        }
        (Some(b'.'), _, Some(b'.'), _) => (num(6..10)?, num(3..5)?, num(0..2)?),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

fn parse_dotnet_json_date(inner: &str) -> Option<NaiveDate> {
    let split = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i);
    let (ms, offset) = match split {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let ms: i64 = ms.parse().ok()?;
    let offset_ms = match offset {
        None => 0,
        Some(o) if o.len() == 5 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hh: i64 = o.get(1..3)?.parse().ok()?;
            let mm: i64 = o.get(3..5)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60) * 1000
        }
        Some(_) => return None,
    };
    DateTime::from_timestamp_millis(ms.checked_add(offset_ms)?).map(|d| d.date_naive())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}
