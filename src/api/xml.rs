//! XML response bodies to a `serde_json::Value` tree, so one tolerant decoder serves both
//! formats.
//!
//! Owns: the mapping of the reference XML shape (`<response>` root, one child element per
//! field, `<item>` per list element, omitted nulls) and of plausible variants (attributes
//! as fields, repeated same-name children as lists, `nil="true"`, namespaces) onto JSON
//! values. Must not: know any method or model type, or panic on any input.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Map, Value};

use super::wire::WireError;

/// Deepest element nesting accepted (real bodies are 4 deep).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    nil: bool,
    children: Vec<Node>,
    text: String,
}

fn err(reason: impl Into<String>) -> WireError {
    WireError::new("(xml)", reason)
}

fn start_node(e: &BytesStart<'_>) -> Result<Node, WireError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut node = Node {
        name,
        ..Node::default()
    };
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(|e| err(format!("bad attribute: {e}")))?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let prefix = attr.key.prefix().map(|p| p.as_ref().to_vec());
        let value = attr
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&attr.value).into_owned());
        if key == "xmlns" || prefix.as_deref() == Some(b"xmlns") {
            continue;
        }
        if key.eq_ignore_ascii_case("nil") {
            node.nil = value.trim().eq_ignore_ascii_case("true");
            continue;
        }
        if prefix.is_some() {
            continue; // xsi:type and the like
        }
        node.attrs.push((key, value));
    }
    Ok(node)
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Parses an XML document into a JSON-like value (see the module doc for the mapping).
/// An empty document is `Null`.
pub fn parse(text: &str) -> Result<Value, WireError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            err(format!(
                "malformed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(err("content after the root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err("elements nested too deep"));
                }
                stack.push(start_node(&e)?);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(err("content after the root element"));
                }
                let node = start_node(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| err("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| err(format!("bad text: {e}")))?;
                    top.text.push_str(&s);
                } else if !t.iter().all(|b| b.is_ascii_whitespace()) {
                    return Err(err("text outside the root element"));
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let c =
                    resolve_entity(&name).ok_or_else(|| err(format!("unknown entity &{name};")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(err("the document ends inside an element (truncated body?)"));
    }
    Ok(match root {
        None => Value::Null,
        Some(node) => to_value(node, true),
    })
}

fn to_value(node: Node, is_root: bool) -> Value {
    if node.nil {
        return Value::Null;
    }
    if node.children.is_empty() && node.attrs.is_empty() {
        let blank = node.text.trim().is_empty();
        return match (blank, is_root) {
            (true, true) => Value::Null,
            (true, false) => Value::String(String::new()),
            (false, _) => Value::String(node.text),
        };
    }
    let all_items = !node.children.is_empty()
        && node.attrs.is_empty()
        && node
            .children
            .iter()
            .all(|c| c.name.eq_ignore_ascii_case("item"));
    if all_items {
        return Value::Array(
            node.children
                .into_iter()
                .map(|c| to_value(c, false))
                .collect(),
        );
    }
    let mut map = Map::new();
    for (k, v) in node.attrs {
        map.insert(k, Value::String(v));
    }
    // Names already turned into arrays by repetition (a child whose own value is an
    // array must not be mistaken for one).
    let mut repeated: Vec<String> = Vec::new();
    for child in node.children {
        let name = child.name.clone();
        let value = to_value(child, false);
        if repeated.contains(&name) {
            if let Some(Value::Array(list)) = map.get_mut(&name) {
                list.push(value);
            }
        } else if let Some(existing) = map.get_mut(&name) {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, value]);
            repeated.push(name);
        } else {
            map.insert(name, value);
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_of_shapes() {
        let cases: &[(&str, Value)] = &[
            ("", Value::Null),
            ("<response/>", Value::Null),
            ("<response></response>", Value::Null),
            ("<response>4.6.4</response>", json!("4.6.4")),
            (
                "<?xml version=\"1.0\"?>\n<response><token>a.b.c</token></response>",
                json!({"token": "a.b.c"}),
            ),
            (
                "<response><item><id>1</id></item><item><id>2</id></item></response>",
                json!([{"id": "1"}, {"id": "2"}]),
            ),
            (
                "<response><item><id>1</id></item></response>",
                json!([{"id": "1"}]),
            ),
            (
                "<response><id>7</id><street/><dns><item><dn>2001</dn></item></dns></response>",
                json!({"id": "7", "street": "", "dns": [{"dn": "2001"}]}),
            ),
            (
                "<r><row>1</row><row>2</row><row>3</row></r>",
                json!({"row": ["1", "2", "3"]}),
            ),
            (
                "<r xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><a i:nil=\"true\"/><b x=\"1\"/></r>",
                json!({"a": null, "b": {"x": "1"}}),
            ),
            (
                "<r><n>A &amp; B &#x41;&#66;</n></r>",
                json!({"n": "A & B AB"}),
            ),
            ("<r><n><![CDATA[<x>]]></n></r>", json!({"n": "<x>"})),
            (
                "<error><code>forbidden</code><message>no right</message></error>",
                json!({"code": "forbidden", "message": "no right"}),
            ),
            (
                "<response><count>0</count><items/></response>",
                json!({"count": "0", "items": ""}),
            ),
        ];
        for (xml, want) in cases {
            assert_eq!(&parse(xml).unwrap(), want, "{xml}");
        }
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for bad in [
            "<a>",
            "<a></b>",
            "</a>",
            "<a/><b/>",
            "text",
            "<a>&bogus;</a>",
            "<a b=></a>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
