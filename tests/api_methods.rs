//! Acceptance: every API method, in JSON and XML, against every emulator wire variant,
//! gives the same domain values (and the values the emulator holds).

mod api_support;

use api_support::*;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use tariscope_sync::api::Format;
use tariscope_sync::model::*;
use tariscope_sync::sim::{DateStyle, Envelope, KeyCase, SimSnapshot, SystemFields, WireVariant};

/// Id, name and normalised raw fields of a reference record.
type Named = (i64, Option<String>, Vec<(String, String)>);

/// Everything the client returned for a fixed script of calls, with raw fields
/// normalised.
#[derive(Debug, PartialEq)]
struct Outcome {
    get: Option<Subscriber>,
    by_email: Option<Subscriber>,
    missing: Option<Subscriber>,
    by_department: Vec<Subscriber>,
    by_node: Vec<Subscriber>,
    summary: AccountSummary,
    charges: Vec<Charge>,
    payments: Vec<Payment>,
    exists: Option<Payment>,
    not_exists: Option<Payment>,
    plans: Vec<Named>,
    tariffs: Vec<Tariff>,
    times: Vec<Vec<(String, String)>>,
    services: Vec<Named>,
    info: SystemInfo,
    singles: Vec<Option<String>>,
    claims: Vec<String>,
    sql: SqlResult,
    updated: Option<Subscriber>,
    update_missing: Option<Subscriber>,
    created: CreatedSubscriber,
    dn: DnAssignment,
    paid: RecordedPayment,
    after_writes: Option<Subscriber>,
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn script(snap: &SimSnapshot, c: &tariscope_sync::api::TariscopeClient) -> Outcome {
    let with_email = snap
        .subscribers
        .iter()
        .find(|s| s.email.is_some() && !s.dns.is_empty())
        .unwrap();
    let id = with_email.id;
    let pay = snap.payments.iter().find(|p| p.subscriber_id != 0).unwrap();
    let dep = with_email.department_id;
    let node = with_email.node_id;
    let rate = snap.tariff_times[0].rateid;
    let mut tariffs = c.tariff_details(&TariffFilter::default()).await.unwrap();
    for t in &mut tariffs {
        t.raw = norm_raw(&t.raw);
    }
    let patch = SubscriberPatch {
        id,
        fields: vec![
            (
                "street".into(),
                FieldValue::Text(Some("Khreshchatyk".into())),
            ),
            ("house".into(), FieldValue::Text(Some("22".into()))),
            ("flat".into(), FieldValue::Text(None)),
            ("ispublic".into(), FieldValue::Bool(Some(true))),
            (
                "contractdate".into(),
                FieldValue::Date(Some(day(2024, 2, 29))),
            ),
        ],
    };
    let created = c
        .subscriber_create(&NewSubscriber {
            fullname: "JSC ABC".into(),
            department_id: Some(dep),
            subscriber_type: Some(SubscriberType::LegalEntity),
            connectiondate: Some(day(2023, 6, 2)),
            contract_number: Some("247-23".into()),
            contractdate: Some(day(2023, 6, 1)),
            edrpou: Some("55667788".into()),
            taxcode: Some("123456789".into()),
            bank_code: Some("325365".into()),
            bankname: Some("Kredobank".into()),
            ..NewSubscriber::default()
        })
        .await
        .unwrap();
    let dn = c
        .subscriber_dnadd(&NewDn {
            subscriber_id: created.id,
            dn: "0442001".into(),
            pbx_id: snap.pbxs[0].id,
            from_date: Some(day(2023, 6, 2)),
            description: Some("desk".into()),
        })
        .await
        .unwrap();
    let paid = c
        .account_payment(&NewPayment {
            subscriber_id: created.id,
            payment_day: day(2025, 5, 17),
            amount: "370.00".parse().unwrap(),
            payment_type: PaymentType::Account,
            bank: Some("PrivatBank".into()),
        })
        .await
        .unwrap();
    Outcome {
        get: c.subscriber_get(id).await.unwrap(),
        by_email: c
            .subscriber_get_by_email(with_email.email.as_deref().unwrap())
            .await
            .unwrap(),
        missing: c.subscriber_get(987_654_321).await.unwrap(),
        by_department: c.subscribers_by_department(dep).await.unwrap(),
        by_node: c.subscribers_by_node(node).await.unwrap(),
        summary: c.account_summary(id, snap.end_date).await.unwrap(),
        charges: c
            .account_charges(id, snap.start_date, snap.end_date)
            .await
            .unwrap(),
        payments: c
            .account_payments(pay.subscriber_id, snap.start_date, snap.end_date)
            .await
            .unwrap(),
        exists: c
            .payment_exists(pay.subscriber_id, pay.payment_id)
            .await
            .unwrap(),
        not_exists: c
            .payment_exists(pay.subscriber_id, 987_654_321)
            .await
            .unwrap(),
        plans: c
            .tariff_plans()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.name, norm_raw(&p.raw)))
            .collect(),
        tariffs,
        times: c
            .tariff_time(rate)
            .await
            .unwrap()
            .into_iter()
            .map(|t| norm_raw(&t.raw))
            .collect(),
        services: c
            .services()
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.name, norm_raw(&s.raw)))
            .collect(),
        info: c.system_info().await.unwrap(),
        singles: vec![
            c.version().await.unwrap(),
            c.database().await.unwrap(),
            c.build().await.unwrap(),
            c.serial().await.unwrap(),
            c.edition().await.unwrap(),
        ],
        claims: c.claims().await.unwrap(),
        sql: c
            .sql("SELECT id, fullname, email FROM subscribers ORDER BY id LIMIT 3")
            .await
            .unwrap(),
        updated: c.subscriber_update(&patch).await.unwrap(),
        update_missing: c
            .subscriber_update(&SubscriberPatch {
                id: 987_654_321,
                fields: patch.fields.clone(),
            })
            .await
            .unwrap(),
        created: created.clone(),
        dn,
        paid,
        after_writes: c.subscriber_get(created.id).await.unwrap(),
    }
}

fn check_against_state(o: &Outcome, snap: &SimSnapshot) {
    let get = o.get.as_ref().expect("subscriber found");
    let sim = snap.subscriber(get.id).unwrap();
    assert_eq!(get.fullname.as_deref(), Some(sim.fullname.as_str()));
    assert_eq!(get.house, sim.house);
    assert_eq!(get.email, sim.email);
    assert_eq!(get.account_number, sim.account_number);
    assert_eq!(get.edrpou, sim.edrpou);
    assert_eq!(get.bank_code, sim.bankmfo);
    assert_eq!(get.contract_number, sim.contract_number);
    assert_eq!(get.birthday, sim.birthday);
    assert_eq!(get.privilegediscount, sim.privilegediscount);
    assert_eq!(get.subscriber_type.map(|t| t.code()), sim.abonenttype);
    assert_eq!(get.department_id, Some(sim.department_id));
    let dns = get.dns.as_ref().expect("dns sent");
    assert_eq!(dns.len(), sim.dns.len());
    assert_eq!(dns[0].dn, sim.dns[0].dn);
    assert_eq!(o.by_email.as_ref().map(|s| s.id), Some(get.id));
    assert_eq!(o.missing, None);
    assert!(o.by_department.iter().any(|s| s.id == get.id));
    assert!(o.by_node.len() >= o.by_department.len());
    assert_eq!(o.summary.subscriber_id, get.id);
    assert_eq!(o.summary.date, snap.end_date);
    let (s, e, ch, p) = (
        o.summary.start_debt.unwrap(),
        o.summary.end_debt.unwrap(),
        o.summary.charge.unwrap(),
        o.summary.payment.unwrap(),
    );
    assert_eq!(e, s + ch - p, "end_debt = start_debt + charge - payment");
    let sim_charges: Vec<Decimal> = snap
        .charges
        .iter()
        .filter(|c| c.subscriber_id == get.id)
        .map(|c| c.amount)
        .collect();
    assert_eq!(
        o.charges
            .iter()
            .map(|c| c.charge.unwrap())
            .collect::<Vec<_>>(),
        sim_charges
    );
    assert!(!o.payments.is_empty());
    assert!(o.exists.is_some());
    assert_eq!(o.not_exists, None);
    assert_eq!(
        o.plans.len(),
        snap.plans.iter().filter(|p| p.active).count()
    );
    assert_eq!(o.tariffs.len(), snap.tariffs.len());
    assert_eq!(o.tariffs[0].value, Some(snap.tariffs[0].value));
    assert_eq!(
        o.tariffs[0].roundfirstminute,
        Some(snap.tariffs[0].roundfirstminute)
    );
    assert!(!o.times.is_empty());
    assert!(!o.services.is_empty());
    assert!(o.info.version.is_some() && o.info.edition.is_some() && o.info.build.is_some());
    assert_eq!(o.singles[0], o.info.version);
    assert_eq!(o.singles[2], o.info.build);
    assert!(
        o.claims.iter().any(|c| c == "subscriber.get"),
        "{:?}",
        o.claims
    );
    assert_eq!(o.sql.columns.len(), 3);
    assert_eq!(o.sql.rows.len(), 3);
    let upd = o.updated.as_ref().unwrap();
    assert_eq!(upd.street.as_deref(), Some("Khreshchatyk"));
    assert_eq!(upd.house.as_deref(), Some("22"));
    assert_eq!(upd.flat, None);
    assert_eq!(upd.ispublic, Some(true));
    assert_eq!(upd.contractdate, Some(day(2024, 2, 29)));
    assert_eq!(o.update_missing, None);
    assert_eq!(o.created.fullname.as_deref(), Some("JSC ABC"));
    assert_eq!(o.dn.subscriber_id, o.created.id);
    assert_eq!(o.dn.dn, "0442001");
    assert_eq!(o.paid.subscriber_id, o.created.id);
    let after = o.after_writes.as_ref().unwrap();
    assert_eq!(after.edrpou.as_deref(), Some("55667788"));
    assert_eq!(after.contract_number.as_deref(), Some("247-23"));
    assert_eq!(after.subscriber_type, Some(SubscriberType::LegalEntity));
    assert_eq!(after.dns.as_ref().unwrap()[0].dn, "0442001");
}

fn variants() -> Vec<(&'static str, WireVariant)> {
    let base = WireVariant::default();
    vec![
        ("documented", base),
        (
            "lower",
            WireVariant {
                key_case: KeyCase::Lower,
                ..base
            },
        ),
        (
            "pascal",
            WireVariant {
                key_case: KeyCase::Pascal,
                ..base
            },
        ),
        (
            "numbers-as-strings",
            WireVariant {
                numbers_as_strings: true,
                ..base
            },
        ),
        (
            "dotnet-dates",
            WireVariant {
                dates: DateStyle::DotNet,
                ..base
            },
        ),
        (
            "wrapped",
            WireVariant {
                envelope: Envelope::Wrapped,
                ..base
            },
        ),
        (
            "all-at-once",
            WireVariant {
                key_case: KeyCase::Pascal,
                numbers_as_strings: true,
                dates: DateStyle::DotNet,
                envelope: Envelope::Wrapped,
                partial_lists: false,
                system_fields: SystemFields::DotNet,
                ..WireVariant::default()
            },
        ),
        (
            "system-bare",
            WireVariant {
                system_fields: SystemFields::Bare,
                ..base
            },
        ),
        (
            "system-text",
            WireVariant {
                system_fields: SystemFields::Text,
                ..base
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_every_format_every_variant_gives_the_same_values() {
    let mut baseline: Option<Outcome> = None;
    for (name, wire) in variants() {
        for format in [Format::Json, Format::Xml] {
            let sim = start(sim_config(wire)).await;
            let snap = sim.state();
            let c = client(&sim, format);
            let outcome = script(&snap, &c).await;
            check_against_state(&outcome, &snap);
            match &baseline {
                None => baseline = Some(outcome),
                Some(b) => assert_eq!(
                    &outcome, b,
                    "variant {name}, {format:?} differs from documented JSON"
                ),
            }
            sim.shutdown().await;
        }
    }
}

#[tokio::test]
async fn partial_lists_carry_ids_and_names_only() {
    for format in [Format::Json, Format::Xml] {
        let sim = start(sim_config(WireVariant {
            partial_lists: true,
            ..WireVariant::default()
        }))
        .await;
        let snap = sim.state();
        let mut cfg = client_config(&sim, format);
        cfg.profile.lists_are_partial = true;
        let c = tariscope_sync::api::TariscopeClient::new(cfg).unwrap();
        assert!(c.profile().lists_are_partial);
        let dep = snap.subscribers[0].department_id;
        let list = c.subscribers_by_department(dep).await.unwrap();
        assert!(!list.is_empty());
        for s in &list {
            let sim_s = snap.subscriber(s.id).unwrap();
            assert_eq!(s.fullname.as_deref(), Some(sim_s.fullname.as_str()));
            assert_eq!(s.street, None);
            let full = c.subscriber_get(s.id).await.unwrap().unwrap();
            assert_eq!(full.street, sim_s.street);
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn unknown_department_is_not_found_and_writes_conflict_clearly() {
    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let c = client(&sim, Format::Json);
    let err = c.subscribers_by_department(987_654).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!err.is_retryable());
    let holder = snap.subscribers.iter().find(|s| !s.dns.is_empty()).unwrap();
    let held = &holder.dns[0];
    let other = snap
        .subscribers
        .iter()
        .find(|s| s.node_id == holder.node_id && s.id != holder.id)
        .unwrap();
    let err = c
        .subscriber_dnadd(&NewDn {
            subscriber_id: other.id,
            dn: held.dn.clone(),
            pbx_id: held.pbx_id,
            from_date: None,
            description: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(!err.is_retryable() && !err.is_outcome_unknown());
    let err = c
        .account_summary(987_654_321, snap.end_date)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    sim.shutdown().await;
}
