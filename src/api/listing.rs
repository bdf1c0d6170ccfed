//! A list answer read one element at a time.
//!
//! Owns: splitting a bare JSON array body into its elements and decoding each one when
//! asked, so a list of 50,000 subscribers never exists as one `serde_json::Value` tree nor
//! as one `Vec` of records; a record that cannot be decoded is an error item and the
//! elements after it still come. Other shapes (an array wrapped in an object, a single
//! object, XML, empty results) are read whole by `wire.rs` and handed out the same way.
//! Must not: do I/O or know model types (the decoders are passed in).

use bytes::Bytes;
use serde_json::Value;

use super::error::{ApiError, excerpt};
use super::wire::{self, Fields, WireError};

/// Decodes one list element read into [`Fields`].
pub type FieldsDecoder<T> = Box<dyn Fn(&Fields<'_>) -> Result<T, WireError> + Send + Sync>;
/// Decodes one list element read as a `Value` (the whole-body shapes, non-object elements).
pub type ValueDecoder<T> = Box<dyn Fn(&Value) -> Result<T, WireError> + Send + Sync>;

/// The records of a list answer, decoded lazily; see the module docs.
pub struct Listing<T> {
    method: &'static str,
    state: State<T>,
}

enum State<T> {
    /// A bare JSON array: `pos` is the next byte to read in `body`.
    Stream {
        body: Bytes,
        pos: usize,
        index: usize,
        fields: FieldsDecoder<T>,
        value: ValueDecoder<T>,
    },
    /// Already decoded (other shapes), or finished.
    Ready(std::vec::IntoIter<Result<T, ApiError>>),
}

impl<T> Listing<T> {
    /// An empty list.
    pub fn empty(method: &'static str) -> Self {
        Self {
            method,
            state: State::Ready(Vec::new().into_iter()),
        }
    }

    /// Reads `body` (a 2xx answer that is not an empty result) as a list.
    pub fn new(
        method: &'static str,
        body: Bytes,
        format: super::Format,
        fields: impl Fn(&Fields<'_>) -> Result<T, WireError> + Send + Sync + 'static,
        value: impl Fn(&Value) -> Result<T, WireError> + Send + Sync + 'static,
    ) -> Result<Self, ApiError> {
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(body.len());
        let bom = body[start..].starts_with("\u{feff}".as_bytes());
        let start = if bom { start + 3 } else { start };
        if body.get(start) == Some(&b'[') {
            return Ok(Self {
                method,
                state: State::Stream {
                    body,
                    pos: start + 1,
                    index: 0,
                    fields: Box::new(fields),
                    value: Box::new(value),
                },
            });
        }
        let whole = wire::parse_body(&body, format).map_err(|e| ApiError::Decode {
            method: method.to_owned(),
            field: e.field,
            reason: e.reason,
            excerpt: excerpt(&body[..body.len().min(4096)], 120),
        })?;
        let items: Vec<Result<T, ApiError>> = wire::list_items(&whole)
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                value(v).map_err(|e| element_error(method, i, e, v.to_string().as_bytes()))
            })
            .collect();
        Ok(Self {
            method,
            state: State::Ready(items.into_iter()),
        })
    }
}

fn element_error(method: &str, index: usize, e: WireError, element: &[u8]) -> ApiError {
    ApiError::Decode {
        method: method.to_owned(),
        field: format!("[{index}].{}", e.field),
        reason: e.reason,
        excerpt: excerpt(&element[..element.len().min(4096)], 120),
    }
}

impl<T> Iterator for Listing<T> {
    type Item = Result<T, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (body, pos, index, fields, value) = match &mut self.state {
            State::Ready(items) => return items.next(),
            State::Stream {
                body,
                pos,
                index,
                fields,
                value,
            } => (body, pos, index, &*fields, &*value),
        };
        let (start, end) = match next_element(body, *pos) {
            Ok(Some(span)) => span,
            Ok(None) => {
                self.state = State::Ready(Vec::new().into_iter());
                return None;
            }
            Err(reason) => {
                let at = *pos;
                let err = element_error(
                    self.method,
                    *index,
                    WireError::new("(body)", reason),
                    &body[at..],
                );
                self.state = State::Ready(Vec::new().into_iter());
                return Some(Err(err));
            }
        };
        let i = *index;
        *index += 1;
        *pos = end;
        let element = &body[start..end];
        let decoded = if element.first() == Some(&b'{') {
            serde_json::from_slice::<Fields>(element)
                .map_err(|e| WireError::new("(record)", format!("malformed JSON: {e}")))
                .and_then(|f| fields(&f))
        } else {
            serde_json::from_slice::<Value>(element)
                .map_err(|e| WireError::new("(record)", format!("malformed JSON: {e}")))
                .and_then(|v| value(&v))
        };
        Some(decoded.map_err(|e| element_error(self.method, i, e, element)))
    }
}

/// The byte span of the next element of a JSON array whose `[` is before `pos`, or `None`
/// at its `]`. Tracks strings (with escapes) and nesting only: the element itself is
/// parsed by serde_json afterwards.
fn next_element(b: &[u8], mut pos: usize) -> Result<Option<(usize, usize)>, String> {
    let skip_ws = |mut p: usize| {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        p
    };
    pos = skip_ws(pos);
    if b.get(pos) == Some(&b',') {
        pos = skip_ws(pos + 1);
    }
    match b.get(pos) {
        None => return Err("malformed JSON: the list ends without `]`".into()),
        Some(b']') => return Ok(None),
        Some(_) => {}
    }
    let start = pos;
    if matches!(b[start], b',' | b'}' | b']') {
        return Err(format!(
            "malformed JSON: `{}` where a list element should start",
            char::from(b[start])
        ));
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = pos;
    while i < b.len() {
        let c = b[i];
        if in_string {
            // Most of a body is string contents: jump to the next quote or backslash.
            let Some(at) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
                break;
            };
            i += at;
            if b[i] == b'\\' {
                i += 1;
            } else {
                in_string = false;
                if depth == 0 {
                    return Ok(Some((start, i + 1)));
                }
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Ok(Some((start, trim_end(b, start, i)))),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Some((start, i + 1)));
                    }
                }
                b',' if depth == 0 => return Ok(Some((start, trim_end(b, start, i)))),
                _ => {}
            }
        }
        i += 1;
    }
    Err("malformed JSON: the body ends inside a list element".into())
}

/// `end` moved back over trailing whitespace (a scalar element before `,` or `]`).
fn trim_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Format;

    fn ids(f: &Fields<'_>) -> Result<i64, WireError> {
        wire::Record::from_fields(f).req_int(&["id"])
    }
    fn id_of_value(v: &Value) -> Result<i64, WireError> {
        wire::Record::new(v).req_int(&["id"])
    }

    fn read(body: &str) -> Vec<Result<i64, String>> {
        Listing::new(
            "m",
            Bytes::from(body.to_owned()),
            Format::Json,
            ids,
            id_of_value,
        )
        .map(|l| l.map(|r| r.map_err(|e| e.to_string())).collect())
        .unwrap_or_else(|e| vec![Err(e.to_string())])
    }

    #[test]
    fn bare_wrapped_and_single_lists_give_the_same_records() {
        let want = vec![Ok(1), Ok(2)];
        assert_eq!(read(r#" [{"id":1},{"Id":"2"}] "#), want);
        assert_eq!(read(r#"{"items":[{"id":1},{"ID":2}],"count":2}"#), want);
        assert_eq!(read("\u{feff}[ {\"id\":1} ,\n {\"id\":2}\n]"), want);
        assert_eq!(read(r#"{"id":7}"#), vec![Ok(7)]);
        assert_eq!(read("[]"), vec![]);
        assert_eq!(read("[ ]"), vec![]);
    }

    #[test]
    fn strings_with_brackets_and_escapes_do_not_split_elements() {
        let body = r#"[{"id":1,"n":"a]},{\"x"},{"id":2,"n":"[\\"}]"#;
        assert_eq!(read(body), vec![Ok(1), Ok(2)]);
    }

    #[test]
    fn a_bad_record_fails_alone_and_names_its_index_and_field() {
        let got = read(r#"[{"id":1},{"id":"x"},{"id":3},17,{"id":4,]"#);
        assert_eq!(got[0], Ok(1));
        let e = got[1].as_ref().unwrap_err();
        assert!(e.contains("[1].id"), "{e}");
        assert_eq!(got[2], Ok(3));
        assert!(got[3].as_ref().unwrap_err().contains("[3]"), "{:?}", got[3]);
        assert!(got[4].as_ref().unwrap_err().contains("malformed JSON"));
    }

    #[test]
    fn a_truncated_body_ends_with_an_error() {
        let got = read(r#"[{"id":1},{"id":2"#);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(1));
        assert!(
            got[1].as_ref().unwrap_err().contains("ends inside"),
            "{:?}",
            got[1]
        );
        let got = read(r#"[{"id":1}"#);
        assert!(
            got[1].as_ref().unwrap_err().contains("without `]`"),
            "{:?}",
            got[1]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Arbitrary bytes after a `[`, and arbitrary JSON-ish text: no panic, and the
        /// iterator always ends.
        #[test]
        fn never_panics_and_always_ends(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            text in "[\\[\\]{}\",:a-z0-9 \\\\]{0,64}",
        ) {
            for body in [[b"[".as_slice(), &bytes].concat(), format!("[{text}").into_bytes()] {
                let limit = body.len() + 2;
                if let Ok(l) = Listing::new("m", Bytes::from(body), Format::Json, ids, id_of_value) {
                    proptest::prop_assert!(l.take(limit + 1).count() <= limit);
                }
            }
        }

        /// The elements of any list of records come out one for one, in order.
        #[test]
        fn a_list_of_records_round_trips(ids_in in proptest::collection::vec(-1000i64..1000, 0..20)) {
            let body = serde_json::to_string(
                &ids_in.iter().map(|i| serde_json::json!({"id": i, "x": "],[{"})).collect::<Vec<_>>(),
            ).unwrap();
            let got: Vec<i64> = Listing::new("m", Bytes::from(body), Format::Json, ids, id_of_value)
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            proptest::prop_assert_eq!(got, ids_in);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        for body in [
            &b"["[..],
            b"[\"",
            b"[\\",
            b"[{",
            b"[}",
            b"[]]",
            b"[,,]",
            b"[\xff]",
        ] {
            let l = Listing::new(
                "m",
                Bytes::from_static(body),
                Format::Json,
                ids,
                id_of_value,
            );
            if let Ok(l) = l {
                let _ = l.count();
            }
        }
    }
}
