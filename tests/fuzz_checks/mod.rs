//! The properties the fuzz targets check (`fuzz/fuzz_targets/*.rs`), shared with
//! `tests/fuzz_corpus.rs`, which replays the committed corpus and every crash the fuzzers
//! found through the same checks in the normal suite.
//!
//! Owns: one `check_*` function per target, each taking the raw fuzz input and panicking
//! (with what broke) when a property fails. Each asserts more than "no panic" where the code
//! promises more: a listing yields what a whole-body parse yields, a record decodes the same
//! whatever the key casing, number style or body format, parsing is deterministic.

#![allow(dead_code)] // each fuzz target uses one check

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{Map, Value};
use tariscope_sync::api::listing::Listing;
use tariscope_sync::api::wire::{self, Fields, Record, WireError};
use tariscope_sync::api::{Format, decode};
use tariscope_sync::records::{FileFormat, ReadOptions};
use tariscope_sync::sync::import;

/// Every decoder of a record, run for "never panics" on any value.
fn decode_all(v: &Value) {
    let _ = decode::subscriber(v);
    let _ = decode::created(v);
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("a valid date");
    let _ = decode::summary(v, 1, day);
    let _ = decode::charge(v, 1);
    let _ = decode::payment(v, 1);
    let _ = decode::tariff_plan(v);
    let _ = decode::tariff(v);
    let _ = decode::service(v);
    let _ = decode::tariff_time(v);
    let _ = decode::system_info(v);
    let _ = decode::claims(v);
    let _ = decode::sql(v);
    let _ = decode::info_field(v, "version");
}

/// A JSON body: reading it never panics; what it reads re-serialises and reads back to the
/// same tree; every decoder of every list item never panics.
pub fn check_json_body(data: &[u8]) {
    let Ok(v) = wire::parse_body(data, Format::Json) else {
        return;
    };
    let text = serde_json::to_string(&v).expect("a parsed tree serialises");
    let again = wire::parse_body(text.as_bytes(), Format::Json)
        .unwrap_or_else(|e| panic!("the re-serialised body {text:?} does not read back: {e:?}"));
    assert_eq!(again, v, "JSON round trip changed the tree");
    for item in wire::list_items(&v) {
        decode_all(item);
    }
    if let Some(one) = wire::single(&v) {
        decode_all(one);
    }
}

/// An XML body: reading it never panics and is deterministic; every decoder never panics;
/// the tree it reads, written back as reference-profile XML, reads back to the same tree.
pub fn check_xml_body(data: &[u8]) {
    let first = wire::parse_body(data, Format::Xml);
    assert_eq!(
        first,
        wire::parse_body(data, Format::Xml),
        "XML reading is not deterministic"
    );
    let Ok(v) = first else { return };
    for item in wire::list_items(&v) {
        decode_all(item);
    }
    if let Some(xml) = to_xml(&v) {
        let again = wire::parse_body(xml.as_bytes(), Format::Xml)
            .unwrap_or_else(|e| panic!("the re-written body {xml:?} does not read back: {e:?}"));
        assert_eq!(
            again, v,
            "XML round trip changed the tree (written as {xml:?})"
        );
    }
}

fn id_of_fields(f: &Fields<'_>) -> Result<Value, WireError> {
    Record::from_fields(f)
        .get(&["id"])
        .map(|(_, v)| v.clone())
        .ok_or_else(|| WireError::new("id", "missing"))
}

fn id_of_value(v: &Value) -> Result<Value, WireError> {
    Record::new(v)
        .get(&["id"])
        .map(|(_, v)| v.clone())
        .ok_or_else(|| WireError::new("id", "missing"))
}

/// The list splitter: it always ends; on a body that is a well-formed JSON array it yields
/// exactly one item per element, each decoded as the element read whole would decode.
pub fn check_list_splitter(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let Ok(listing) = Listing::new("fuzz", body, Format::Json, id_of_fields, id_of_value) else {
        return;
    };
    let got: Vec<Result<Value, String>> = listing
        .take(data.len() + 2)
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    assert!(got.len() <= data.len() + 1, "the listing did not end");
    let Ok(Value::Array(elements)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // The whole-body reading strips a BOM and whitespace as the listing does.
    assert_eq!(
        got.len(),
        elements.len(),
        "the splitter yielded {} items for a {}-element array",
        got.len(),
        elements.len()
    );
    for (i, (item, element)) in got.iter().zip(&elements).enumerate() {
        let whole = id_of_value(element).ok();
        assert_eq!(
            item.as_ref().ok(),
            whole.as_ref(),
            "element {i} ({element}) decoded differently when split: {item:?}"
        );
    }
}

/// Builds a JSON object from fuzz bytes: keys from the subscriber fields the decoder knows,
/// values strings, numbers, flags, dates or null (the decodable shapes).
struct Bytes2<'a>(&'a [u8]);

impl Bytes2<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 12);
        let take = n.min(self.0.len());
        let (head, rest) = self.0.split_at(take);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }
}

const SUBSCRIBER_KEYS: &[&str] = &[
    "id",
    "fullname",
    "street",
    "House",
    "Flat",
    "email",
    "description",
    "ispublic",
    "abonenttype",
    "code",
    "zipcode",
    "contractid",
    "contractdate",
    "accountId",
    "gender",
    "birthday",
    "bankmfo",
    "deliverytype",
    "privilegediscount",
    "departmentid",
    "nodeid",
    "rateplanid",
    "connectiondate",
];

fn record_from_bytes(data: &[u8]) -> Map<String, Value> {
    let mut b = Bytes2(data);
    let mut map = Map::new();
    map.insert("id".into(), Value::from(i64::from(b.byte()) + 1));
    while !b.0.is_empty() {
        let key = SUBSCRIBER_KEYS[usize::from(b.byte()) % SUBSCRIBER_KEYS.len()];
        let value = match b.byte() % 7 {
            0 => Value::Null,
            1 => Value::from(i64::from(b.byte()) - 20),
            2 => Value::Bool(b.byte() % 2 == 0),
            3 => Value::String(format!(
                "20{:02}-{:02}-{:02}",
                b.byte() % 40,
                b.byte() % 13,
                b.byte() % 32
            )),
            4 => Value::String(format!("{}.{:02}", b.byte(), b.byte() % 100)),
            _ => Value::String(b.text()),
        };
        map.insert(key.to_owned(), value);
    }
    map
}

/// A record decodes to the same subscriber (or fails on the same field) whatever the key
/// casing (documented, lower, Pascal), with numbers sent as strings, and read from XML.
pub fn check_record_variants(data: &[u8]) {
    let map = record_from_bytes(data);
    let reference =
        decode::subscriber(&Value::Object(map.clone())).map_err(|e| wire::norm_key(&e.field));
    let variants: [(&str, Value); 3] = [
        (
            "lower-case keys",
            Value::Object(rekey(&map, |k| k.to_ascii_lowercase())),
        ),
        ("Pascal keys", Value::Object(rekey(&map, pascal))),
        (
            "numbers as strings",
            Value::Object(numbers_as_strings(&map)),
        ),
    ];
    for (name, v) in variants {
        let got = decode::subscriber(&v).map_err(|e| wire::norm_key(&e.field));
        assert_eq!(
            got, reference,
            "{name}: {v} decodes differently from {map:?}"
        );
    }
    // XML carries text only; a record that reads from JSON must read the same from XML.
    let texts_are_xml_safe = map.values().all(|v| match v {
        Value::String(s) => s.chars().all(|c| c >= ' ' && c != '\u{fffd}') && s.trim() == s,
        _ => true,
    });
    if let (Ok(want), true) = (&reference, texts_are_xml_safe) {
        let xml = record_xml(&map);
        let tree = wire::parse_body(xml.as_bytes(), Format::Xml).expect("our own XML reads");
        let got = decode::subscriber(&tree).map_err(|e| wire::norm_key(&e.field));
        assert_eq!(got.as_ref(), Ok(want), "XML {xml:?} decodes differently");
    }
}

fn rekey(map: &Map<String, Value>, f: impl Fn(&str) -> String) -> Map<String, Value> {
    map.iter().map(|(k, v)| (f(k), v.clone())).collect()
}

fn pascal(k: &str) -> String {
    let mut c = k.chars();
    c.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + c.as_str()
    })
}

fn numbers_as_strings(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| match v {
            Value::Number(n) => (k.clone(), Value::String(n.to_string())),
            other => (k.clone(), other.clone()),
        })
        .collect()
}

/// A flat record as a server writing XML sends it: every scalar as element text.
fn record_xml(map: &Map<String, Value>) -> String {
    let mut out = String::from("<response>");
    for (k, v) in map {
        match v {
            Value::Null => out.push_str(&format!("<{k} nil=\"true\"/>")),
            Value::String(s) => out.push_str(&format!("<{k}>{}</{k}>", escape(s))),
            other => out.push_str(&format!("<{k}>{other}</{k}>")),
        }
    }
    out.push_str("</response>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The reference XML profile of a tree: `<response>`, one element per field, `<item>` per
/// list element, null as `nil="true"`. `None` for trees XML cannot carry (arrays of one
/// kind that read back otherwise are left to the caller's comparison).
fn to_xml(v: &Value) -> Option<String> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    element(&mut out, "response", v)?;
    Some(out)
}

fn element(out: &mut String, name: &str, v: &Value) -> Option<()> {
    let ok_name = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.eq_ignore_ascii_case("item")
        && !name.eq_ignore_ascii_case("nil");
    if name != "response" && name != "item" && !ok_name {
        return None;
    }
    match v {
        Value::Null => out.push_str(&format!("<{name} nil=\"true\"/>")),
        Value::String(s) => {
            if s.trim().is_empty() || s.trim() != s || s.chars().any(|c| c < ' ') {
                return None; // XML reads blank text as empty and trims nothing else
            }
            out.push_str(&format!("<{name}>{}</{name}>", escape(s)));
        }
        Value::Array(items) => {
            // An empty array and a one-field object have no unambiguous XML form.
            if items.is_empty() {
                return None;
            }
            out.push_str(&format!("<{name}>"));
            for item in items {
                element(out, "item", item)?;
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Object(map) => {
            if map.is_empty() {
                return None;
            }
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                element(out, k, v)?;
            }
            out.push_str(&format!("</{name}>"));
        }
        // Numbers and flags become text in XML: not the same tree.
        Value::Number(_) | Value::Bool(_) => return None,
    }
    Some(())
}

/// The import parser, CSV and JSON: never panics, is deterministic, accepts each key once,
/// and every rejection says why.
pub fn check_import(data: &[u8]) {
    for format in [FileFormat::Csv, FileFormat::Json] {
        let options = ReadOptions::new(format);
        let first = import::parse_bytes(data, &options);
        let again = import::parse_bytes(data, &options);
        match (&first, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "import is not deterministic"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("import is not deterministic: {first:?} vs {again:?}"),
        }
        let Ok(batch) = first else { continue };
        let mut keys = BTreeSet::new();
        for row in &batch.rows {
            assert!(
                keys.insert(row.key.clone()),
                "key {:?} accepted twice",
                row.key
            );
        }
        for r in &batch.rejected {
            assert!(
                !r.reason.trim().is_empty(),
                "a rejection without a reason: {r:?}"
            );
        }
    }
}

/// The configuration loader: never panics on any text, is deterministic, and every error
/// names something to fix.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = HashMap::new();
    let first = tariscope_sync::config::from_toml_str(text, &env).map_err(|e| e.to_string());
    let again = tariscope_sync::config::from_toml_str(text, &env).map_err(|e| e.to_string());
    assert_eq!(
        first.is_ok(),
        again.is_ok(),
        "config loading is not deterministic"
    );
    if let (Err(a), Err(b)) = (&first, &again) {
        assert_eq!(a, b, "config errors are not deterministic");
        assert!(!a.trim().is_empty(), "an empty configuration error");
    }
}
