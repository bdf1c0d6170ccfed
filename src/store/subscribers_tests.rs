//! Subscriber mirror tests: the content hash and the columns' round trip.

use super::*;
use crate::model::{Code, SubscriberType};

fn sample() -> Subscriber {
    Subscriber {
        id: 7,
        fullname: Some("A".into()),
        house: Some("1".into()),
        privilegediscount: Some("2.50".parse().unwrap()),
        dns: Some(vec![
            DnAssignment {
                dn: "1".into(),
                pbx_id: Some(1),
                ..DnAssignment::default()
            },
            DnAssignment {
                dn: "2".into(),
                pbx_id: Some(1),
                ..DnAssignment::default()
            },
        ]),
        ..Subscriber::default()
    }
}

#[test]
fn content_hash_sees_every_change_and_ignores_dn_order() {
    let base = content_hash(&sample());
    assert_eq!(base.len(), 64);
    let mut reordered = sample();
    reordered.dns.as_mut().unwrap().reverse();
    assert_eq!(content_hash(&reordered), base);
    type Edit = Box<dyn Fn(&mut Subscriber)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("fullname", Box::new(|s| s.fullname = Some("B".into()))),
        ("house cleared", Box::new(|s| s.house = None)),
        ("empty vs null", Box::new(|s| s.flat = Some(String::new()))),
        (
            "decimal",
            Box::new(|s| s.privilegediscount = Some("2.51".parse().unwrap())),
        ),
        (
            "dn",
            Box::new(|s| s.dns.as_mut().unwrap()[0].dn = "3".into()),
        ),
        ("dns absent", Box::new(|s| s.dns = None)),
        (
            "text moved between fields",
            Box::new(|s| {
                s.fullname = None;
                s.street = Some("A".into());
            }),
        ),
    ];
    for (name, edit) in edits {
        let mut s = sample();
        edit(&mut s);
        assert_ne!(content_hash(&s), base, "{name}");
    }
}

#[test]
fn every_field_round_trips_through_the_columns() {
    let t = |v: &str| Some(v.to_owned());
    let d = chrono::NaiveDate::from_ymd_opt(2020, 2, 29);
    let s = Subscriber {
        id: 7,
        fullname: t("fullname"),
        street: t("street"),
        house: t("house"),
        flat: t("flat"),
        email: t("email"),
        description: t("description"),
        authcode: t("authcode"),
        ispublic: Some(true),
        subscriber_type: Some(SubscriberType::Other(9)),
        edrpou: t("00123456"),
        zipcode: t("zipcode"),
        personalcode: t("personalcode"),
        contract_number: t("247-23"),
        information: t("information"),
        privilegeinfo: t("privilegeinfo"),
        area: t("area"),
        contractdate: d,
        building: t("building"),
        floornumber: t("floornumber"),
        account_number: t("0042"),
        gender: Some(Code(2)),
        birthday: d,
        bankaccount: t("bankaccount"),
        bank_code: t("bankmfo"),
        taxcode: t("taxcode"),
        deliverytype: Some(Code(1)),
        privilegediscount: Some("12.50".parse().unwrap()),
        department_id: Some(11),
        node_id: Some(1),
        rateplan_id: Some(3),
        connectiondate: d,
        bankname: t("bankname"),
        dns: Some(vec![]),
    };
    let values: Vec<Value> = field_cols(&s).iter().map(Col::to_value).collect();
    assert_eq!(values.len(), FIELDS.len());
    assert!(values.iter().all(|v| v != &Value::Null), "every field set");
    let back = from_values(7, &values, vec![]).unwrap();
    assert_eq!(back, s);
}

/// An id listed again in one batch, after another id's repeat flushed the buffered rows
/// (X, Y, Y, X): the second X sees the first one's row (an update, not a second insert,
/// which would fail on the primary key), and the mirror holds the last record of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_repeated_across_a_flush_in_one_batch_are_updates() {
    use crate::store::runs::{Mode, RunStart};
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let run_id = store
            .start_run(RunStart {
                job: "subscribers".into(),
                mode: Mode::Incremental,
                window: None,
                started_at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        let record = |id: i64, name: &str| Subscriber {
            id,
            fullname: Some(name.into()),
            ..Subscriber::default()
        };
        let batch = vec![
            record(1, "X first"),
            record(2, "Y first"),
            record(2, "Y again"),
            record(1, "X again"),
        ];
        let counts = store
            .apply_subscribers(run_id, batch, "2026-01-01T00:00:01Z".into())
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.updated), (2, 2), "{counts:?}");
        for (id, name) in [(1, "X again"), (2, "Y again")] {
            let stored = store.subscriber(id).await.unwrap().unwrap();
            assert_eq!(stored.fullname.as_deref(), Some(name));
        }
        // Applied again, the same batch changes nothing but the repeats within it.
        let again = store
            .apply_subscribers(
                run_id,
                vec![record(1, "X again"), record(2, "Y again")],
                "2026-01-01T00:00:02Z".into(),
            )
            .await
            .unwrap();
        assert_eq!(again.unchanged, 2, "{again:?}");
    }
}
