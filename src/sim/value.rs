//! The emulator's own response tree and its JSON and XML writers, applying the wire
//! variant (key casing, numbers as strings, date style, list envelope).
//!
//! Owns: `Val`, rendering to bytes, error bodies. Must not: know the dataset or HTTP
//! (the caller picks status and content type), or share code with `crate::api`.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::config::{DateStyle, Envelope, KeyCase, WireVariant};

/// A response value. Object keys are the documented names; casing is applied on output.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Int(i64),
    /// Money and other decimals: always two decimals on the wire.
    Dec(Decimal),
    /// A floating-point number (only from `sql`).
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Str(Cow<'a, str>),
    List(Vec<Val<'a>>),
    Obj(Vec<(&'static str, Val<'a>)>),
}

impl<'a> Val<'a> {
    pub fn str(s: &'a str) -> Self {
        Val::Str(Cow::Borrowed(s))
    }

    pub fn opt_str(s: Option<&'a str>) -> Self {
        s.map_or(Val::Null, Val::str)
    }

    pub fn owned(s: String) -> Self {
        Val::Str(Cow::Owned(s))
    }

    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Val<'a>) -> Self {
        v.map_or(Val::Null, f)
    }
}

/// The response body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// Render a whole response body. A top-level list is wrapped when the variant says so.
pub fn render(val: Val<'_>, wire: &WireVariant, format: Format) -> String {
    let val = match val {
        Val::List(items) if wire.envelope == Envelope::Wrapped => {
            let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
            Val::Obj(vec![
                ("count", Val::Int(count)),
                ("items", Val::List(items)),
            ])
        }
        other => other,
    };
    let mut out = String::with_capacity(1024);
    match format {
        Format::Json => json(&mut out, &val, wire),
        Format::Xml => {
            out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<response>");
            xml(&mut out, &val, wire);
            out.push_str("</response>");
        }
    }
    out
}

/// Render an error body (the same in every wire variant).
pub fn render_error(code: &str, message: &str, format: Format) -> String {
    let mut out = String::with_capacity(64 + message.len());
    match format {
        Format::Json => {
            out.push_str("{\"error\":");
            json_str(&mut out, code);
            out.push_str(",\"message\":");
            json_str(&mut out, message);
            out.push('}');
        }
        Format::Xml => {
            out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<error><code>");
            xml_text(&mut out, code);
            out.push_str("</code><message>");
            xml_text(&mut out, message);
            out.push_str("</message></error>");
        }
    }
    out
}

/// The key as the variant spells it.
pub fn key<'k>(k: &'k str, case: KeyCase) -> Cow<'k, str> {
    match case {
        KeyCase::Documented => Cow::Borrowed(k),
        KeyCase::Lower if k.bytes().all(|b| !b.is_ascii_uppercase()) => Cow::Borrowed(k),
        KeyCase::Lower => Cow::Owned(k.to_ascii_lowercase()),
        KeyCase::Pascal => {
            let mut chars = k.chars();
            match chars.next() {
                Some(first) if first.is_ascii_lowercase() => {
                    Cow::Owned(first.to_ascii_uppercase().to_string() + chars.as_str())
                }
                _ => Cow::Borrowed(k),
            }
        }
    }
}

/// A scalar's text (the same for JSON strings and XML), or `None` for structured values.
fn scalar_text(v: &Val<'_>, wire: &WireVariant, out: &mut String) {
    match v {
        Val::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Dec(d) => {
            let _ = write!(out, "{:.2}", d.round_dp(2));
        }
        Val::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Val::Bool(b) if wire.numbers_as_strings => out.push(if *b { '1' } else { '0' }),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Date(d) => {
            let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
            if wire.dates == DateStyle::DotNet {
                out.push_str("T00:00:00");
            }
        }
        Val::Null | Val::Str(_) | Val::List(_) | Val::Obj(_) => {}
    }
}

fn json(out: &mut String, v: &Val<'_>, wire: &WireVariant) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Str(s) => json_str(out, s),
        Val::Date(_) => {
            out.push('"');
            scalar_text(v, wire, out);
            out.push('"');
        }
        Val::Int(_) | Val::Dec(_) | Val::Float(_) | Val::Bool(_) => {
            if wire.numbers_as_strings {
                out.push('"');
                scalar_text(v, wire, out);
                out.push('"');
            } else {
                scalar_text(v, wire, out);
            }
        }
        Val::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(out, item, wire);
            }
            out.push(']');
        }
        Val::Obj(fields) => {
            out.push('{');
            for (i, (k, val)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, &key(k, wire.key_case));
                out.push(':');
                json(out, val, wire);
            }
            out.push('}');
        }
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn xml(out: &mut String, v: &Val<'_>, wire: &WireVariant) {
    match v {
        Val::Null => {}
        Val::Str(s) => xml_text(out, s),
        Val::List(items) => {
            for item in items {
                out.push_str("<item>");
                xml(out, item, wire);
                out.push_str("</item>");
            }
        }
        Val::Obj(fields) => {
            for (k, val) in fields {
                if *val == Val::Null {
                    continue;
                }
                let name = key(k, wire.key_case);
                out.push('<');
                out.push_str(&name);
                out.push('>');
                xml(out, val, wire);
                out.push_str("</");
                out.push_str(&name);
                out.push('>');
            }
        }
        scalar => scalar_text(scalar, wire, out),
    }
}

fn xml_text(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(esc);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Val<'static> {
        Val::Obj(vec![
            ("id", Val::Int(2928)),
            ("House", Val::str("12a")),
            ("accountId", Val::str("2928")),
            ("start_debt", Val::Dec(Decimal::new(370, 0))),
            ("ispublic", Val::Bool(true)),
            (
                "birthday",
                Val::Date(NaiveDate::from_ymd_opt(2023, 5, 17).unwrap()),
            ),
            ("email", Val::Null),
            ("name", Val::str("A \"B\" <&>")),
        ])
    }

    #[test]
    fn json_variants() {
        let reference = WireVariant::default();
        let cases = [
            (
                reference,
                r#"{"id":2928,"House":"12a","accountId":"2928","start_debt":370.00,"ispublic":true,"birthday":"2023-05-17","email":null,"name":"A \"B\" <&>"}"#,
            ),
            (
                WireVariant {
                    key_case: KeyCase::Lower,
                    ..reference
                },
                r#"{"id":2928,"house":"12a","accountid":"2928","start_debt":370.00,"ispublic":true,"birthday":"2023-05-17","email":null,"name":"A \"B\" <&>"}"#,
            ),
            (
                WireVariant {
                    key_case: KeyCase::Pascal,
                    ..reference
                },
                r#"{"Id":2928,"House":"12a","AccountId":"2928","Start_debt":370.00,"Ispublic":true,"Birthday":"2023-05-17","Email":null,"Name":"A \"B\" <&>"}"#,
            ),
            (
                WireVariant {
                    numbers_as_strings: true,
                    dates: DateStyle::DotNet,
                    ..reference
                },
                r#"{"id":"2928","House":"12a","accountId":"2928","start_debt":"370.00","ispublic":"1","birthday":"2023-05-17T00:00:00","email":null,"name":"A \"B\" <&>"}"#,
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(render(sample(), &wire, Format::Json), want, "{wire:?}");
        }
    }

    #[test]
    fn json_output_parses() {
        let body = render(
            Val::List(vec![sample(), sample()]),
            &WireVariant::default(),
            Format::Json,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn envelope_wraps_top_level_lists_only() {
        let wire = WireVariant {
            envelope: Envelope::Wrapped,
            ..WireVariant::default()
        };
        let body = render(Val::List(vec![Val::Int(1)]), &wire, Format::Json);
        assert_eq!(body, r#"{"count":1,"items":[1]}"#);
        let body = render(
            Val::Obj(vec![("dns", Val::List(vec![]))]),
            &wire,
            Format::Json,
        );
        assert_eq!(body, r#"{"dns":[]}"#);
    }

    #[test]
    fn xml_shape() {
        let body = render(
            Val::List(vec![sample()]),
            &WireVariant::default(),
            Format::Xml,
        );
        assert!(body.starts_with("<?xml"));
        assert!(body.contains("<response><item><id>2928</id><House>12a</House>"));
        assert!(body.contains("<start_debt>370.00</start_debt>"));
        assert!(!body.contains("<email>"), "nulls are omitted");
        assert!(body.contains("<name>A &quot;B&quot; &lt;&amp;&gt;</name>"));
        assert!(body.ends_with("</item></response>"));
    }

    #[test]
    fn escapes() {
        let mut out = String::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let mut out = String::new();
        xml_text(&mut out, "é<a & 'b'>");
        assert_eq!(out, "é&lt;a &amp; &apos;b&apos;&gt;");
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips_through_json(text in "\\PC*", ctl in proptest::collection::vec(0u8..0x20, 0..4)) {
            let mut text = text;
            text.extend(ctl.into_iter().map(char::from));
            let body = render(Val::Obj(vec![("k", Val::str(&text))]), &WireVariant::default(), Format::Json);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            proptest::prop_assert_eq!(v["k"].as_str().unwrap(), text.as_str());
        }

        #[test]
        fn any_string_round_trips_through_xml(text in "\\PC*") {
            let mut out = String::new();
            xml_text(&mut out, &text);
            proptest::prop_assert!(!out.contains('<') && !out.contains('>'));
            let back = quick_xml::escape::unescape(&out).unwrap();
            proptest::prop_assert_eq!(back.as_ref(), text.as_str());
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            render_error("not_found", "subscriber 5 does not exist", Format::Json),
            r#"{"error":"not_found","message":"subscriber 5 does not exist"}"#
        );
        assert!(
            render_error("forbidden", "x", Format::Xml)
                .contains("<error><code>forbidden</code><message>x</message></error>")
        );
    }
}
