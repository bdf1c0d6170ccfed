//! Table cases and property tests of the tolerant readers.

use super::*;
use proptest::prelude::*;
use rust_decimal_macros_free::dec;
use serde_json::json;

mod rust_decimal_macros_free {
    /// `dec("1.5")` without the macro crate.
    pub fn dec(s: &str) -> rust_decimal::Decimal {
        s.parse().unwrap()
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn a_key_sent_twice_in_two_spellings_reads_the_same_in_any_key_order() {
    // The exact spelling wins, else the smallest as sent; streamed fields keep document
    // order, a whole-body Value sorts its keys: both must pick the same value.
    let body = br#"{"_id":[1],"Id":"2","id":3}"#;
    let fields: Fields<'_> = serde_json::from_slice(body).unwrap();
    let whole: Value = serde_json::from_slice(body).unwrap();
    let reversed: Fields<'_> = serde_json::from_slice(br#"{"id":3,"Id":"2","_id":[1]}"#).unwrap();
    for record in [
        Record::from_fields(&fields),
        Record::new(&whole),
        Record::from_fields(&reversed),
    ] {
        assert_eq!(record.int(&["id"]).unwrap(), Some(3));
        assert_eq!(record.get(&["ID"]).map(|(k, _)| k), Some("Id"));
    }
    let two: Fields<'_> = serde_json::from_slice(br#"{"ID":1,"Id":2}"#).unwrap();
    let two_whole: Value = serde_json::from_slice(br#"{"Id":2,"ID":1}"#).unwrap();
    assert_eq!(Record::from_fields(&two).int(&["id"]).unwrap(), Some(1));
    assert_eq!(Record::new(&two_whole).int(&["id"]).unwrap(), Some(1));
}

#[test]
fn long_json_numbers_read_exactly() {
    let v: Value = serde_json::from_str("64255555555555555555555555555555555555555555555").unwrap();
    let again: Value = serde_json::from_str(&v.to_string()).unwrap();
    assert_eq!(v, again);
}

#[test]
fn ints_accept_numbers_and_numeric_strings() {
    let ok: &[(Value, Option<i64>)] = &[
        (json!(2928), Some(2928)),
        (json!("2928"), Some(2928)),
        (json!(" 2928 "), Some(2928)),
        (json!("2928.0"), Some(2928)),
        (json!(2928.0), Some(2928)),
        (json!(-3), Some(-3)),
        (json!(""), None),
        (json!(null), None),
    ];
    for (v, want) in ok {
        assert_eq!(to_int(v).unwrap(), *want, "{v}");
    }
    for bad in [json!("12a"), json!(1.5), json!(true), json!([1]), json!({})] {
        assert!(to_int(&bad).is_err(), "{bad}");
    }
}

#[test]
fn decimals_never_go_through_a_float_for_text() {
    let ok: &[(Value, &str)] = &[
        (json!(370.00), "370"),
        (json!("370.00"), "370.00"),
        (json!("370,00"), "370.00"),
        (json!("1 234.50"), "1234.50"),
        (json!("1,234.50"), "1234.50"),
        (json!(0.1), "0.1"),
        (json!("-12.345"), "-12.345"),
        (json!(42), "42"),
        (
            json!("0.1000000000000000055511151231257827"),
            "0.1000000000000000055511151231",
        ),
    ];
    for (v, want) in ok {
        assert_eq!(to_decimal(v).unwrap(), Some(dec(want)), "{v}");
    }
    assert_eq!(to_decimal(&json!("")).unwrap(), None);
    for bad in [json!("abc"), json!(true), json!({})] {
        assert!(to_decimal(&bad).is_err(), "{bad}");
    }
}

#[test]
fn flags_accept_bools_digits_and_words() {
    let cases: &[(Value, Option<bool>)] = &[
        (json!(true), Some(true)),
        (json!(false), Some(false)),
        (json!(1), Some(true)),
        (json!(0), Some(false)),
        (json!("1"), Some(true)),
        (json!("0"), Some(false)),
        (json!("True"), Some(true)),
        (json!("FALSE"), Some(false)),
        (json!("yes"), Some(true)),
        (json!(-1), Some(true)),
        (json!("-1"), Some(true)),
        (json!(1.0), Some(true)),
        (json!("1.0"), Some(true)),
        (json!(""), None),
        (json!(null), None),
    ];
    for (v, want) in cases {
        assert_eq!(to_bool(v).unwrap(), *want, "{v}");
    }
    for bad in [json!(2), json!("2"), json!(-2), json!("maybe"), json!([])] {
        assert!(to_bool(&bad).is_err(), "{bad}");
    }
}

#[test]
fn dates_in_every_plausible_format() {
    let cases: &[(&str, Option<NaiveDate>)] = &[
        ("2023-05-17", Some(d(2023, 5, 17))),
        ("2023-05-17T00:00:00", Some(d(2023, 5, 17))),
        ("2023-05-17T13:45:10.123", Some(d(2023, 5, 17))),
        ("2023-05-17T00:00:00+03:00", Some(d(2023, 5, 17))),
        ("2023-05-17T00:00:00Z", Some(d(2023, 5, 17))),
        ("2023-05-17 00:00:00", Some(d(2023, 5, 17))),
        ("17.05.2023", Some(d(2023, 5, 17))),
        ("17.05.2023 10:00", Some(d(2023, 5, 17))),
        ("2023/05/17", Some(d(2023, 5, 17))),
        ("/Date(1684281600000)/", Some(d(2023, 5, 17))),
        ("/Date(1684270800000+0300)/", Some(d(2023, 5, 17))),
        ("/Date(-86400000)/", Some(d(1969, 12, 31))),
        ("", None),
        ("  ", None),
    ];
    for (text, want) in cases {
        assert_eq!(to_date(&json!(text)).unwrap(), *want, "{text}");
    }
    for bad in [
        "2023-13-01",
        "2023-5-17",
        "17/05/2023",
        "yesterday",
        "/Date()/",
        "/Date(x)/",
        "2023-05-17X",
        "2023-02-30",
        "2023-05-1x",
        "2023-05/17",
        "17-05-2023",
        "32.05.2023",
    ] {
        assert!(to_date(&json!(bad)).is_err(), "{bad}");
    }
    assert!(to_date(&json!(20230517)).is_err());
}

#[test]
fn records_match_keys_case_and_underscore_insensitively() {
    let v = json!({"House": "5", "ACCOUNTID": "A-1", "Start_debt": "1.50", "fullname": null, "id": "7"});
    let r = Record::new(&v);
    assert_eq!(r.text(&["house"]).unwrap().as_deref(), Some("5"));
    assert_eq!(r.text(&["accountId"]).unwrap().as_deref(), Some("A-1"));
    assert_eq!(r.decimal(&["start_debt"]).unwrap(), Some(dec("1.50")));
    assert_eq!(r.decimal(&["startdebt"]).unwrap(), Some(dec("1.50")));
    assert_eq!(r.text(&["fullname"]).unwrap(), None);
    assert_eq!(r.int(&["nope", "id"]).unwrap(), Some(7));
    let err = r.req_int(&["missing"]).unwrap_err();
    assert_eq!(err.field, "missing");
    let bad = json!({"Id": "x"});
    let err = Record::new(&bad).req_int(&["id"]).unwrap_err();
    assert_eq!(err.field, "Id");
    assert!(err.reason.contains("integer"), "{err:?}");
}

#[test]
fn list_shapes() {
    let rec = json!({"id": 1, "dns": []});
    let cases: &[(Value, usize)] = &[
        (json!([]), 0),
        (json!(null), 0),
        (json!(""), 0),
        (json!({}), 0),
        (json!([{"id": 1}, {"id": 2}]), 2),
        (json!({"count": 2, "items": [{"id": 1}, {"id": 2}]}), 2),
        (json!({"Items": [{"id": 1}]}), 1),
        (
            json!({"data": {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}}),
            3,
        ),
        (json!({"d": [{"id": 1}]}), 1),
        (json!({"count": 0, "items": null}), 0),
        (json!({"count": "0", "items": ""}), 0),
        (json!({"subscriber": [{"id": 1}, {"id": 2}]}), 2),
        (rec.clone(), 1),
        (json!({"id": 1, "value": null}), 1),
        (json!({"id": 1, "value": "0.5"}), 1),
        (json!(["a", "b"]), 2),
    ];
    for (v, n) in cases {
        assert_eq!(list_items(v).len(), *n, "{v}");
    }
    assert_eq!(list_items(&rec)[0], &rec);
}

#[test]
fn single_shapes() {
    let rec = json!({"id": 1, "fullname": "A"});
    let cases: &[(Value, Option<&Value>)] = &[
        (json!(null), None),
        (json!([]), None),
        (json!({}), None),
        (json!(""), None),
        (rec.clone(), Some(&rec)),
        (json!([rec.clone()]), Some(&rec)),
        (json!({"data": rec.clone()}), Some(&rec)),
        (json!({"subscriber": rec.clone()}), Some(&rec)),
        (json!({"count": 1, "items": [rec.clone()]}), Some(&rec)),
    ];
    for (v, want) in cases {
        assert_eq!(single(v), *want, "{v}");
    }
}

#[test]
fn bodies_in_either_format_and_empty() {
    assert_eq!(parse_body(b"", Format::Json).unwrap(), Value::Null);
    assert_eq!(parse_body(b" \n", Format::Xml).unwrap(), Value::Null);
    assert_eq!(parse_body(b"[1]", Format::Xml).unwrap(), json!([1]));
    assert_eq!(
        parse_body(b"<response><id>1</id></response>", Format::Json).unwrap(),
        json!({"id": "1"})
    );
    assert_eq!(
        parse_body("\u{feff}{\"a\":1}".as_bytes(), Format::Json).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(parse_body(b"4.6.4", Format::Xml).unwrap(), json!("4.6.4"));
    assert_eq!(parse_body(b"4.6", Format::Json).unwrap(), json!(4.6));
    let err = parse_body(b"{\"a\":", Format::Json).unwrap_err();
    assert!(err.reason.contains("JSON"));
    assert!(parse_body(&[0xff, 0xfe], Format::Json).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for format in [Format::Json, Format::Xml] {
            if let Ok(v) = parse_body(&bytes, format) {
                let _ = list_items(&v);
                let _ = single(&v);
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
        let v = Value::String(text.clone());
        let _ = to_int(&v);
        let _ = to_decimal(&v);
        let _ = to_bool(&v);
        let _ = to_date(&v);
        let _ = parse_body(text.as_bytes(), Format::Xml);
        let _ = parse_body(format!("<r><a>{text}</a></r>").as_bytes(), Format::Xml);
        let _ = parse_body(format!("/Date({text})/").as_bytes(), Format::Json);
        let _ = to_date(&Value::String(format!("/Date({text})/")));
    }

    #[test]
    fn decimals_round_trip_as_number_and_string(units in -1_000_000_000i64..1_000_000_000, scale in 0u32..4) {
        let want = Decimal::new(units, scale);
        let text = want.to_string();
        prop_assert_eq!(to_decimal(&json!(text)).unwrap(), Some(want));
        let number: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(to_decimal(&number).unwrap(), Some(want));
    }

    #[test]
    fn dates_round_trip_in_every_format(days in 0i64..60_000) {
        let date = d(1900, 1, 1) + chrono::Days::new(days as u64);
        for text in [
            date.format("%Y-%m-%d").to_string(),
            date.format("%Y-%m-%dT00:00:00").to_string(),
            date.format("%d.%m.%Y").to_string(),
        ] {
            prop_assert_eq!(to_date(&json!(text)).unwrap(), Some(date));
        }
    }
}
