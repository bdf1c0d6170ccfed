//! Table cases of record decoding in the shapes a server may plausibly send.

use super::*;
use rust_decimal::Decimal;
use serde_json::json;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn subscriber_in_documented_lower_pascal_and_string_shapes() {
    let documented = json!({
        "id": 2928, "fullname": "JSC ABC", "street": "Main", "House": "5", "Flat": null,
        "ispublic": true, "abonenttype": 1, "code": "55667788", "contractid": "247-23",
        "contractdate": "2023-06-01", "accountId": "2928", "gender": 0,
        "bankmfo": "325365", "deliverytype": 7, "privilegediscount": 12.50,
        "departmentid": 3, "nodeid": 1, "rateplanid": 2, "connectiondate": "2023-06-02",
        "dns": [{"id": 11, "pbxid": 292, "dn": "2001", "fromdate": "2023-06-02", "description": null}]
    });
    let lower = json!({
        "id": "2928", "fullname": "JSC ABC", "street": "Main", "house": "5",
        "ispublic": "1", "abonenttype": "1", "code": "55667788", "contractid": "247-23",
        "contractdate": "2023-06-01T00:00:00", "accountid": "2928", "gender": "0",
        "bankmfo": "325365", "deliverytype": "7", "privilegediscount": "12.50",
        "departmentid": "3", "nodeid": "1", "rateplanid": "2", "connectiondate": "02.06.2023",
        "dns": {"count": 1, "items": [{"Id": "11", "PbxId": "292", "Dn": "2001", "FromDate": "/Date(1685664000000)/"}]}
    });
    let a = subscriber(&documented).unwrap();
    let b = subscriber(&lower).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.house.as_deref(), Some("5"));
    assert_eq!(a.flat, None);
    assert_eq!(a.subscriber_type, Some(SubscriberType::LegalEntity));
    assert_eq!(a.deliverytype, Some(Code(7)));
    assert_eq!(
        a.privilegediscount,
        Some("12.5".parse::<Decimal>().unwrap())
    );
    let dns = a.dns.unwrap();
    assert_eq!(dns[0].subscriber_id, 2928);
    assert_eq!(dns[0].from_date, Some(date(2023, 6, 2)));
    let bare = subscriber(&json!({"ID": 5})).unwrap();
    assert_eq!((bare.id, bare.dns.clone()), (5, None));
    let err = subscriber(&json!({"fullname": "x"})).unwrap_err();
    assert_eq!(err.field, "id");
    let err = subscriber(&json!({"id": 1, "birthday": "someday"})).unwrap_err();
    assert_eq!(err.field, "birthday");
    let err = subscriber(&json!({"id": 1, "dns": [{"id": 1}]})).unwrap_err();
    assert_eq!(err.field, "dns.dn");
    assert!(subscriber(&json!([1])).is_err());
    // Unknown codes are kept; a word where a code belongs is dropped, not fatal.
    let s = subscriber(&json!({"id": 1, "abonenttype": 9, "gender": "M"})).unwrap();
    assert_eq!(
        (s.subscriber_type, s.gender),
        (Some(SubscriberType::Other(9)), None)
    );
}

#[test]
fn account_records() {
    let s = summary(
        &json!({"date": "2025-05-20", "Start_debt": "10.00", "end_debt": 12.5, "charge": "2.50", "payment": 0}),
        1234,
        date(2025, 5, 20),
    )
    .unwrap();
    assert_eq!(s.subscriber_id, 1234);
    assert_eq!(s.end_debt, Some("12.50".parse().unwrap()));
    let s = summary(&json!({"start_debt": null}), 1, date(2025, 1, 2)).unwrap();
    assert_eq!(s.date, date(2025, 1, 2));
    let c = charge(
        &json!({"id": 9, "recdate": "2023-05-31", "servicename": "Calls", "charge": "1.20", "numberofservices": 65}),
        6169,
    )
    .unwrap();
    assert_eq!(
        (c.id, c.subscriber_id, c.numberofservices),
        (Some(9), 6169, Some(Decimal::from(65)))
    );
    let p = payment(
        &json!({"subscriberid": 6193, "paymentid": "77", "paymentday": "2023-05-17", "payment": "370.00", "paymenttype": 3, "bank": "PrivatBank"}),
        1,
    )
    .unwrap();
    assert_eq!(p.subscriber_id, 6193);
    assert_eq!(p.payment_type, Some(PaymentType::Account));
    assert_eq!(p.amount, Some("370".parse().unwrap()));
    assert_eq!(payment(&json!({"paymenttid": 5}), 3).unwrap().payment_id, 5);
    let r = recorded_payment(&json!({"paymentid": 8}), 6193, date(2023, 5, 17)).unwrap();
    assert_eq!(
        (r.subscriber_id, r.payment_day),
        (6193, Some(date(2023, 5, 17)))
    );
    assert!(recorded_payment(&json!({"subscriberid": 1}), 1, date(2023, 5, 17)).is_err());
}

#[test]
fn writes_answers() {
    let c = created(&json!({"id": 7334, "accountnumber": "7334", "fullname": "JSC ABC"})).unwrap();
    assert_eq!((c.id, c.account_number.as_deref()), (7334, Some("7334")));
    let d = dn(
        &json!({"id": 1, "subscriberid": 7334, "pbxid": 292, "dn": "2001"}),
        7334,
        Some(("2001", Some(date(2023, 6, 2)), Some("desk"))),
    )
    .unwrap();
    assert_eq!(d.from_date, Some(date(2023, 6, 2)));
    assert_eq!(d.description.as_deref(), Some("desk"));
    let d = dn(&json!({"id": 1}), 7334, Some(("+380", None, None))).unwrap();
    assert_eq!((d.dn.as_str(), d.subscriber_id), ("+380", 7334));
}

#[test]
fn reference_records() {
    let t = tariff(&json!({
        "id": 5, "name": "Local", "value": "0.50", "roundfirstminute": 1, "stages": true,
        "substractseconds": "3", "activedate": "2024-01-01T00:00:00", "direction": "out", "extra": [1]
    }))
    .unwrap();
    assert_eq!(t.roundfirstminute, Some(true));
    assert_eq!(t.stages, Some(Code(1)));
    assert_eq!(t.subtract_seconds, Some(3));
    assert_eq!(t.active_date, Some(date(2024, 1, 1)));
    assert!(t.raw.contains(&("direction".into(), "out".into())));
    assert!(t.raw.contains(&("extra".into(), "[1]".into())));
    let p = tariff_plan(&json!({"Id": 2, "Name": "Basic", "active": true})).unwrap();
    assert_eq!((p.id, p.name.as_deref()), (2, Some("Basic")));
    assert_eq!(
        p.raw,
        vec![
            ("active".into(), "true".into()),
            ("id".into(), "2".into()),
            ("name".into(), "Basic".into())
        ]
    );
    assert_eq!(
        service(&json!({"id": "3", "name": "Internet"})).unwrap().id,
        3
    );
    assert_eq!(
        tariff_time(&json!({"rateid": 5, "fromhour": 8}))
            .unwrap()
            .raw
            .len(),
        2
    );
}

#[test]
fn system_claims_and_sql() {
    let info = system_info(&json!({"Version": "4.6.4.1521", "build": "2024-03-01T00:00:00", "edition": "Provider", "subscribers": 10})).unwrap();
    assert_eq!(info.version.as_deref(), Some("4.6.4.1521"));
    assert_eq!(info.build.as_deref(), Some("2024-03-01"));
    assert_eq!(info.serial, None);
    assert_eq!(
        info_field(&json!({"version": "4.6"}), "version")
            .unwrap()
            .as_deref(),
        Some("4.6")
    );
    assert_eq!(
        info_field(&json!("4.6"), "version").unwrap().as_deref(),
        Some("4.6")
    );
    assert_eq!(
        info_field(&json!({"value": "X"}), "serial")
            .unwrap()
            .as_deref(),
        Some("X")
    );
    let want = vec!["subscriber.get".to_owned(), "claims".to_owned()];
    for v in [
        json!(["subscriber.get", "claims"]),
        json!({"claims": ["subscriber.get", "claims"]}),
        json!([{"method": "subscriber.get"}, {"Method": "claims"}]),
        json!("subscriber.get, claims"),
    ] {
        assert_eq!(claims(&v).unwrap(), want, "{v}");
    }
    let r = sql(&json!({"columns": ["id", "name"], "rows": [[1, "a"], [2, null]]})).unwrap();
    assert_eq!(r.columns, vec!["id", "name"]);
    assert_eq!(r.rows[1], vec![Some("2".to_owned()), None]);
    let r = sql(&json!([{"id": 1, "name": "a"}])).unwrap();
    assert_eq!(r.columns, vec!["id", "name"]);
    assert_eq!(
        r.rows,
        vec![vec![Some("1".to_owned()), Some("a".to_owned())]]
    );
    assert_eq!(
        sql(&json!({"columns": [], "rows": []})).unwrap(),
        SqlResult::default()
    );
}

#[test]
fn numbers_under_another_field_name_are_read_with_the_profile_override() {
    let record = json!({"id": 7, "Numbers": [{"pbxid": 291, "dn": "2001"}]});
    assert_eq!(
        subscriber(&record).unwrap().dns,
        None,
        "not `dns`: not shown"
    );
    let s = subscriber_in(&record, Some("numbers")).unwrap();
    let dns = s.dns.unwrap();
    assert_eq!((dns[0].dn.as_str(), dns[0].pbx_id), ("2001", Some(291)));
    let empty = subscriber_in(&json!({"id": 7, "numbers": []}), Some("numbers")).unwrap();
    assert_eq!(empty.dns, Some(vec![]), "an empty list still shows numbers");
    let err = subscriber_in(&json!({"id": 1, "numbers": [{"id": 1}]}), Some("numbers"));
    assert_eq!(err.unwrap_err().field, "numbers.dn");
}
