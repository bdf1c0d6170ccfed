//! Tolerant decoding of response bodies: JSON or XML into one value tree, then values read
//! leniently (key casing, numbers as strings, 0/1 flags, several date formats, wrapped,
//! bare or single-object lists, empty results).
//!
//! Owns: the generic reading rules (`docs/client.md`, "Decoding"). Must not: know model
//! types (that is `decode.rs`) or do I/O. Never panics, whatever the bytes.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::config::Format;
pub use super::scalars::{to_bool, to_date, to_decimal, to_int, to_text};

/// Why a body or a field could not be read. The client adds the method and an excerpt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub field: String,
    pub reason: String,
}

impl WireError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a body in the configured format; a body that plainly is the other format
/// (starts with `<`, or with `{`/`[`) is read as that. Empty bodies are `Null`.
pub fn parse_body(body: &[u8], format: Format) -> Result<Value, WireError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| WireError::new("(body)", format!("not UTF-8: {e}")))?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let looks_xml = text.starts_with('<');
    let looks_json = text.starts_with(['{', '[', '"']);
    match (format, looks_xml, looks_json) {
        (_, true, _) => super::xml::parse(text),
        (Format::Xml, false, false) => Ok(Value::String(text.to_owned())),
        _ => serde_json::from_str(text)
            .map_err(|e| WireError::new("(body)", format!("malformed JSON: {e}"))),
    }
}

/// Key normalisation for case-insensitive matching: lower case, `_` and `-` dropped
/// (`start_debt`, `Start_Debt`, `StartDebt` and `startdebt` all match).
pub fn norm_key(key: &str) -> String {
    if key.is_ascii() {
        return key
            .bytes()
            .filter(|b| *b != b'_' && *b != b'-')
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// [`norm_key`], borrowing when `key` is already normalised (the usual case for the
/// names the decoders ask for).
fn norm_name(key: &str) -> std::borrow::Cow<'_, str> {
    if key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(norm_key(key))
    }
}

const WRAPPER_KEYS: &[&str] = &[
    "items",
    "data",
    "result",
    "results",
    "records",
    "list",
    "value",
    "d",
    "response",
    "item",
    "rows",
    "subscribers",
    "payments",
    "charges",
    "tariffs",
    "plans",
    "services",
    "claims",
    "methods",
];
const ENVELOPE_META: &[&str] = &[
    "count",
    "total",
    "totalcount",
    "page",
    "pagesize",
    "success",
    "status",
    "ok",
];

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// If `map` is an envelope around a list, the wrapped value.
fn unwrap_envelope(map: &Map<String, Value>) -> Option<&Value> {
    let wrapper = map
        .iter()
        .find(|(k, _)| WRAPPER_KEYS.contains(&norm_key(k).as_str()))?;
    let only_meta = map
        .keys()
        .filter(|k| *k != wrapper.0)
        .all(|k| ENVELOPE_META.contains(&norm_key(k).as_str()));
    match wrapper.1 {
        Value::Array(_) => Some(wrapper.1),
        v if only_meta && (is_blank(v) || v.is_object()) => Some(v),
        _ => None,
    }
}

/// The elements of a list result: a bare array, an object wrapping an array (`items`,
/// `data`, ...), a single object (one element), or an empty result (`null`, empty).
pub fn list_items(v: &Value) -> Vec<&Value> {
    list_items_depth(v, 0)
}

fn list_items_depth(v: &Value, depth: usize) -> Vec<&Value> {
    if depth > 8 {
        return vec![v];
    }
    match v {
        Value::Null => Vec::new(),
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => {
            if let Some(inner) = unwrap_envelope(map) {
                return list_items_depth(inner, depth + 1);
            }
            match map.iter().next() {
                Some((_, inner)) if map.len() == 1 && (inner.is_array() || inner.is_object()) => {
                    list_items_depth(inner, depth + 1)
                }
                _ if map.is_empty() => Vec::new(),
                _ => vec![v],
            }
        }
        other => vec![other],
    }
}

/// The one record of a single-record result (`None` for an empty result). An array
/// yields its first element; `{"data": {...}}`-style wrappers are opened.
pub fn single(v: &Value) -> Option<&Value> {
    let mut cur = v;
    for _ in 0..8 {
        match cur {
            Value::Null => return None,
            Value::String(s) if s.trim().is_empty() => return None,
            Value::Array(items) => cur = items.first()?,
            Value::Object(map) if map.is_empty() => return None,
            Value::Object(map) => {
                if let Some(inner) = unwrap_envelope(map) {
                    cur = inner;
                } else if map.len() == 1 && map.values().all(Value::is_object) {
                    cur = map.values().next()?;
                } else {
                    return Some(cur);
                }
            }
            other => return Some(other),
        }
    }
    Some(cur)
}

/// The fields of one JSON object in wire order, keys borrowed from the body where they
/// hold no escapes: what a list element is read into, instead of a `serde_json::Map`
/// that allocates every key and a tree of nodes per record.
#[derive(Debug, Default)]
pub struct Fields<'de>(pub Vec<(std::borrow::Cow<'de, str>, Value)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a record (an object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(40));
                while let Some(Key(k)) = map.next_key()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A map key, borrowed when the body allows (serde's own `Cow<str>` always copies).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// A record read with case-insensitive keys (normalised once, when built).
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// `(normalised key, key as sent, value)` of an object record; the normalised key
    /// borrows the key as sent when that already is normalised (the usual case).
    fields: Vec<(std::borrow::Cow<'a, str>, &'a str, &'a Value)>,
    is_object: bool,
    /// For a scalar "record" (e.g. a bare string answer), the scalar.
    scalar: Option<&'a Value>,
}

impl<'a> Record<'a> {
    pub fn new(v: &'a Value) -> Self {
        match v {
            Value::Object(map) => Self {
                fields: map
                    .iter()
                    .map(|(k, v)| (norm_name(k), k.as_str(), v))
                    .collect(),
                is_object: true,
                scalar: None,
            },
            other => Self {
                fields: Vec::new(),
                is_object: false,
                scalar: Some(other),
            },
        }
    }

    /// A record over the fields of a list element (see [`Fields`]).
    pub fn from_fields(f: &'a Fields<'_>) -> Self {
        Self {
            fields: f
                .0
                .iter()
                .map(|(k, v)| (norm_name(k), k.as_ref(), v))
                .collect(),
            is_object: true,
            scalar: None,
        }
    }

    pub fn is_object(&self) -> bool {
        self.is_object
    }

    /// The scalar, when the "record" is a bare value.
    pub fn scalar(&self) -> Option<&'a Value> {
        self.scalar
    }

    /// The first non-null value among `names` (any casing), with the name that matched.
    /// When several keys match one name (`id` and `Id`, `_id`), the key spelled exactly as
    /// asked wins, else the smallest as sent: the choice never depends on the order of the
    /// keys, so a record streamed from a list (document order) and the same record read
    /// whole (sorted keys) decode alike (found by the `list_splitter` fuzz target).
    pub fn get(&self, names: &[&str]) -> Option<(&'a str, &'a Value)> {
        for name in names {
            let want = norm_name(name);
            let mut best: Option<(&'a str, &'a Value)> = None;
            for (n, k, v) in &self.fields {
                if *n != *want || v.is_null() {
                    continue;
                }
                if *k == *name {
                    return Some((k, v));
                }
                if best.is_none_or(|(b, _)| *k < b) {
                    best = Some((k, v));
                }
            }
            if best.is_some() {
                return best;
            }
        }
        None
    }

    pub fn has(&self, names: &[&str]) -> bool {
        self.get(names).is_some()
    }

    fn read<T>(
        &self,
        names: &[&str],
        f: impl Fn(&Value) -> Result<Option<T>, String>,
    ) -> Result<Option<T>, WireError> {
        match self.get(names) {
            None => Ok(None),
            Some((key, v)) => f(v).map_err(|reason| WireError::new(key, reason)),
        }
    }

    pub fn text(&self, names: &[&str]) -> Result<Option<String>, WireError> {
        self.read(names, to_text)
    }
    pub fn int(&self, names: &[&str]) -> Result<Option<i64>, WireError> {
        self.read(names, to_int)
    }
    pub fn decimal(&self, names: &[&str]) -> Result<Option<Decimal>, WireError> {
        self.read(names, to_decimal)
    }
    pub fn flag(&self, names: &[&str]) -> Result<Option<bool>, WireError> {
        self.read(names, to_bool)
    }
    pub fn date(&self, names: &[&str]) -> Result<Option<NaiveDate>, WireError> {
        self.read(names, to_date)
    }

    /// An enumeration code: an integer, or a flag read as 0/1. Anything else (a word
    /// the guide does not foresee) is `None` rather than an error: the record's other
    /// fields still count, and `raw` keeps the value where the model has one.
    pub fn code(&self, names: &[&str]) -> Option<i64> {
        let (_, v) = self.get(names)?;
        to_int(v)
            .ok()
            .flatten()
            .or_else(|| to_bool(v).ok().flatten().map(i64::from))
    }

    /// A required integer (ids).
    pub fn req_int(&self, names: &[&str]) -> Result<i64, WireError> {
        self.int(names)?
            .ok_or_else(|| WireError::new(names[0], "missing (no such field, or null)"))
    }

    /// Every scalar field as `(lower-case key, text)`, sorted by key; nested values as
    /// compact JSON.
    pub fn raw(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .fields
            .iter()
            .filter(|(_, _, v)| !v.is_null())
            .map(|(_, k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.to_lowercase(), text)
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
