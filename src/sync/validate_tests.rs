//! Validator tests: one table of values per rule and storage class, then whole rows.

use super::*;

fn text(s: &str) -> Cell {
    Cell::Text(s.into())
}

fn row(key: &str, columns: &[(&str, Cell)], dns: Vec<RawDn>) -> RawDesired {
    RawDesired {
        key: text(key),
        columns: columns
            .iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect(),
        dns,
    }
}

fn number(pbx: Cell, dn: Cell, from: Cell) -> RawDn {
    RawDn {
        pbx_id: pbx,
        dn,
        from_date: from,
        description: Cell::Null,
    }
}

/// (field, value as written, canonical text when accepted / a piece of what is expected).
#[test]
fn values_by_rule_and_storage_class() {
    use Cell::*;
    #[rustfmt::skip]
    let cases: Vec<(Field, Cell, Result<&str, &str>)> = vec![
        (Field::DepartmentId, text("1201"),      Ok("1201")),
        (Field::DepartmentId, Int(1201),         Ok("1201")),
        (Field::DepartmentId, Real(1201.0),      Ok("1201")),
        (Field::DepartmentId, Real(1201.5),      Err("a department id: a positive whole number")),
        (Field::DepartmentId, text("abc"),       Err("a department id")),
        (Field::DepartmentId, text(""),          Err("a positive whole number")),
        (Field::DepartmentId, Int(0),            Err("a positive whole number")),
        (Field::DepartmentId, Blob(vec![1]),     Err("a positive whole number")),
        (Field::SubscriberType, Int(4),          Ok("4")),
        (Field::SubscriberType, text("0"),       Ok("0")),
        (Field::SubscriberType, Int(99),         Err("a subscriber type 0..4")),
        (Field::SubscriberType, Int(-1),         Err("a subscriber type 0..4")),
        (Field::SubscriberType, text(""),        Ok("")),
        (Field::Gender, Int(2),                  Ok("2")),
        (Field::Gender, Int(3),                  Err("a gender code 0..2")),
        (Field::DeliveryType, Int(7),            Err("a delivery type 0..2")),
        (Field::Birthday, text("2020-02-29"),    Ok("2020-02-29")),
        (Field::Birthday, text(" 2020-02-29 "),  Ok("2020-02-29")),
        (Field::Birthday, text("31.02.2020"),    Err("a date yyyy-mm-dd")),
        (Field::Birthday, text("2021-02-29"),    Err("a date yyyy-mm-dd")),
        (Field::Birthday, Int(20200229),         Err("a date yyyy-mm-dd, written as text")),
        (Field::Birthday, text(""),              Ok("")),
        (Field::IsPublic, Int(1),                Ok("true")),
        (Field::IsPublic, text("false"),         Ok("false")),
        (Field::IsPublic, text("0"),             Ok("false")),
        (Field::IsPublic, Int(2),                Err("a flag")),
        (Field::IsPublic, text("maybe"),         Err("a flag")),
        (Field::PrivilegeDiscount, text("2.50"), Ok("2.5")),
        (Field::PrivilegeDiscount, Int(5),       Ok("5")),
        (Field::PrivilegeDiscount, Real(370.5),  Err("write decimals as text")),
        (Field::PrivilegeDiscount, text("2,5"),  Ok("2.5")),
        (Field::PrivilegeDiscount, text("2.5.1"), Err("a decimal number")),
        (Field::PrivilegeDiscount, text("1.201"), Err("at most 2 decimal places")),
        (Field::PrivilegeDiscount, text("1.200"), Ok("1.2")),
        (Field::Street, text(" Main "),          Ok(" Main ")),
        (Field::Street, text(""),                Ok("")),
        (Field::Street, Int(12),                 Ok("12")),
        (Field::Street, Real(1.5),               Err("text")),
        (Field::Street, Blob(vec![0xff]),        Err("text")),
        (Field::Fullname, text("Ivanenko"),      Ok("Ivanenko")),
        (Field::Fullname, text("  "),            Err("a non-empty text")),
    ];
    for (field, cell, want) in cases {
        let got = value(rule(field), &cell);
        match (want, &got) {
            (Ok(v), Ok(Some(g))) => assert_eq!(g, v, "{field:?} {cell:?}"),
            (Err(piece), Err(e)) => assert!(e.contains(piece), "{field:?} {cell:?}: {e}"),
            _ => panic!("{field:?} {cell:?}: want {want:?}, got {got:?}"),
        }
    }
    assert_eq!(
        value(rule(Field::Street), &Cell::Null),
        Ok(None),
        "NULL = not managed"
    );
}

/// The four rows of issue 22, as written with SQL, and a valid one.
#[test]
fn rows_written_with_sql() {
    let base = |key: &str| {
        vec![
            ("tariscope_id", Cell::Null),
            ("fullname", text(&format!("Person {key}"))),
            ("departmentid", Cell::Int(1201)),
        ]
    };
    let with = |key: &str, extra: (&str, Cell)| {
        let mut cols = base(key);
        cols.retain(|(n, _)| *n != extra.0);
        cols.push(extra);
        row(key, &cols, vec![])
    };
    let bad_a = with("bad-a", ("departmentid", text("abc")));
    let bad_b = with("bad-b", ("birthday", text("31.02.2020")));
    let bad_c = with("bad-c", ("abonenttype", Cell::Int(99)));
    let mut good_d = with("good-d", ("street", text("Khreshchatyk")));
    good_d.dns = vec![number(Cell::Int(291), text("12ab"), Cell::Null)];
    let mut ok = with("ok", ("street", text("Sadova")));
    ok.dns = vec![
        number(Cell::Int(291), text("2001"), text("2025-06-01")),
        number(text("291"), Cell::Int(2002), Cell::Null),
    ];
    let checked = check_rows(&[bad_a, bad_b, bad_c, good_d, ok]);
    assert_eq!(checked.valid.len(), 1);
    let valid = &checked.valid[0];
    assert_eq!(valid.key, "ok");
    assert_eq!(valid.fields[&Field::DepartmentId], "1201");
    assert_eq!(valid.dns[1].dn, "2002");
    let reasons: Vec<(&str, &str)> = checked
        .rejected
        .iter()
        .map(|r| (r.table, r.rejection.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                SUBSCRIBERS_TABLE,
                "bad-a: departmentid = \"abc\": expected a department id: a positive whole number (NULL if you do not manage it)"
            ),
            (
                SUBSCRIBERS_TABLE,
                "bad-b: birthday = \"31.02.2020\": expected a date yyyy-mm-dd"
            ),
            (
                SUBSCRIBERS_TABLE,
                "bad-c: abonenttype = 99: expected a subscriber type 0..4 (0 individual, 1 legal entity, 2 official, 3 budget, 4 preferential)"
            ),
            (
                DNS_TABLE,
                "good-d: dn = \"12ab\": expected a phone number: digits, optionally a leading +, at most 20"
            ),
        ]
    );
    let r = &checked.rejected[1].rejection;
    assert_eq!(
        (r.key.as_deref(), r.field.as_deref(), r.value.as_deref()),
        (Some("bad-b"), Some("birthday"), Some("31.02.2020"))
    );
    assert_eq!(r.expected.as_deref(), Some("a date yyyy-mm-dd"));
    assert_eq!(
        checked.rejected_keys().into_iter().collect::<Vec<_>>(),
        ["bad-a", "bad-b", "bad-c", "good-d"]
    );
}

#[test]
fn every_problem_of_a_row_is_reported_and_blobs_are_refused() {
    let raw = row(
        "k",
        &[
            ("tariscope_id", text("x")),
            ("street", Cell::Blob(vec![0, 1])),
            ("gender", Cell::Int(9)),
        ],
        vec![number(text("PBX"), text("2001"), Cell::Null)],
    );
    let problems = desired(&raw).unwrap_err();
    let fields: Vec<_> = problems
        .iter()
        .map(|(t, r)| (*t, r.field.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (SUBSCRIBERS_TABLE, "tariscope_id".to_string()),
            (SUBSCRIBERS_TABLE, "street".into()),
            (SUBSCRIBERS_TABLE, "gender".into()),
            (DNS_TABLE, "pbx_id".into()),
        ]
    );
    assert!(
        problems[1].1.reason.contains("street = BLOB x'0001'"),
        "{problems:?}"
    );
    // A linked row needs no full name; an unlinked one does (to be created).
    let unlinked = row("u", &[("street", text("Main"))], vec![]);
    let r = desired(&unlinked).unwrap_err();
    assert!(r[0].1.reason.starts_with("u: missing fullname"), "{r:?}");
    let linked = row(
        "l",
        &[("tariscope_id", Cell::Int(7)), ("street", text("Main"))],
        vec![],
    );
    assert_eq!(desired(&linked).unwrap().tariscope_id, Some(7));
    // A row without a usable key.
    let keyless = RawDesired {
        key: Cell::Blob(vec![7]),
        columns: vec![],
        dns: vec![],
    };
    assert_eq!(
        desired(&keyless).unwrap_err()[0].1.field.as_deref(),
        Some("key")
    );
}

#[test]
fn numbers() {
    let ok = |pbx: Cell, dn: Cell| super::dn("k", &number(pbx, dn, Cell::Null));
    assert_eq!(
        ok(Cell::Int(3), text("+380441234567")).unwrap().dn,
        "+380441234567"
    );
    assert_eq!(
        ok(text("3"), text("0044")).unwrap().dn,
        "0044",
        "leading zeros kept"
    );
    assert!(ok(Cell::Int(3), text("1".repeat(21).as_str())).is_err());
    assert!(ok(Cell::Int(3), text("20 01")).is_err());
    assert!(ok(Cell::Null, text("2001")).is_err(), "the PBX is required");
    let bad_date = super::dn("k", &number(Cell::Int(3), text("2001"), text("2025-13-01")));
    assert_eq!(
        bad_date.unwrap_err().reason,
        "k: number 3/2001: from_date = \"2025-13-01\": expected a date yyyy-mm-dd"
    );
}

#[test]
fn fingerprints_change_with_any_value_or_class() {
    let a = row("k", &[("departmentid", Cell::Int(12))], vec![]);
    let same = row("k", &[("departmentid", Cell::Int(12))], vec![]);
    let text_class = row("k", &[("departmentid", text("12"))], vec![]);
    let mut with_dn = a.clone();
    with_dn.dns = vec![number(Cell::Int(1), text("2"), Cell::Null)];
    assert_eq!(fingerprint(&a), fingerprint(&same));
    assert_ne!(fingerprint(&a), fingerprint(&text_class));
    assert_ne!(fingerprint(&a), fingerprint(&with_dn));
}
