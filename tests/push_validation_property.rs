//! Property: any desired row `sync::validate` accepts is accepted by the emulator's
//! `subscriber.create`, `subscriber.update` (every field) and `subscriber.dnadd`, sent by the
//! real client, and every value takes (reads back). The check covers the form of values; which departments, tariff plans and PBXs
//! exist is Tariscope's to say, so the rows draw those from the emulator's own.

mod push_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use push_support::*;
use tariscope_sync::model::{Cell, RawDesired, RawDn};
use tariscope_sync::sim::SimHandle;
use tariscope_sync::sync::fields::{Field, Kind, new_subscriber, patch};
use tariscope_sync::sync::push::{PushRemote, verify};
use tariscope_sync::sync::validate;

/// What the emulator has that rows may refer to.
#[derive(Debug, Clone)]
struct Refs {
    departments: Vec<i64>,
    plans: Vec<i64>,
    pbx: i64,
}

fn refs(sim: &SimHandle) -> Refs {
    let s = sim.state();
    Refs {
        departments: s
            .departments
            .iter()
            .filter(|d| d.node_id == 1)
            .map(|d| d.id)
            .collect(),
        plans: s.plans.iter().map(|p| p.id).collect(),
        pbx: s.pbxs.iter().find(|p| p.node_id == 1).unwrap().id,
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// Plausible and implausible values of every storage class.
fn any_cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        2 => Just(Cell::Null),
        3 => ".{0,12}".prop_map(text),
        2 => (-3i64..130).prop_map(Cell::Int),
        1 => prop_oneof![Just(0.5), Just(1.0), Just(2.0), Just(370.5), Just(-1.25)].prop_map(Cell::Real),
        1 => proptest::collection::vec(any::<u8>(), 0..4).prop_map(Cell::Blob),
    ]
}

/// Values of the field's form, including the edges the check accepts (empty to clear, codes
/// as text, whole reals, flags spelled out).
fn good(field: Field, r: &Refs) -> BoxedStrategy<Cell> {
    let ids = |ids: Vec<i64>| {
        prop_oneof![
            3 => prop::sample::select(ids.clone()).prop_map(Cell::Int),
            1 => prop::sample::select(ids.clone()).prop_map(|i| text(i.to_string())),
            1 => prop::sample::select(ids).prop_map(|i| Cell::Real(i as f64)),
        ]
    };
    match field {
        Field::Fullname => "[A-Za-zА-Яа-яІіЇї' .-]{0,29}[A-Za-z]".prop_map(text).boxed(),
        Field::DepartmentId => ids(r.departments.clone()).boxed(),
        Field::RatePlanId => ids(r.plans.clone()).boxed(),
        Field::SubscriberType | Field::Gender | Field::DeliveryType => {
            let max: i64 = if field == Field::SubscriberType { 4 } else { 2 };
            prop_oneof![
                6 => (0..=max).prop_map(Cell::Int),
                2 => (0..=max).prop_map(|n| text(n.to_string())),
                1 => Just(text("")),
                // Around the range, whatever the check makes of it.
                1 => (-2i64..9).prop_map(Cell::Int),
            ]
            .boxed()
        }
        f => match f.kind() {
            Kind::Text => prop_oneof![4 => ".{0,20}".prop_map(text), 1 => (0i64..1000).prop_map(Cell::Int)].boxed(),
            Kind::Date => prop_oneof![
                6 => (1900i32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| text(format!("{y:04}-{m:02}-{d:02}"))),
                1 => (1900i32..2100, 0u32..14, 0u32..33).prop_map(|(y, m, d)| text(format!("{y:04}-{m:02}-{d:02}"))),
                1 => Just(text("2024-02-29")),
                1 => Just(text("")),
            ]
            .boxed(),
            Kind::Bool => prop_oneof![
                2 => (0i64..2).prop_map(Cell::Int),
                1 => (-1i64..4).prop_map(Cell::Int),
                2 => prop::sample::select(vec!["true", "false", "yes", "no", "1", "0", ""]).prop_map(text),
            ]
            .boxed(),
            Kind::Decimal => prop_oneof![
                4 => (0i64..100_000, 0u32..4).prop_map(|(n, s)| text(rust_decimal::Decimal::new(n, s).to_string())),
                1 => prop::sample::select(vec!["", "-0.50", " 7 ", "12"]).prop_map(text),
                1 => (0i64..100).prop_map(Cell::Int),
            ]
            .boxed(),
            Kind::Int => (0i64..100).prop_map(Cell::Int).boxed(),
        },
    }
}

/// Values that name nothing, in forms the check must refuse (a reference of the right form
/// names a department, plan or PBX the emulator may not have: that is not a question of form).
fn not_a_reference() -> impl Strategy<Value = Cell> {
    prop_oneof![
        Just(text("abc")),
        Just(text("  ")),
        Just(Cell::Int(0)),
        Just(Cell::Int(-1)),
        Just(Cell::Real(370.5)),
        Just(Cell::Blob(vec![0xff])),
    ]
}

/// Mostly values of the right form, now and then anything at all.
fn cell_for(field: Field, r: &Refs) -> BoxedStrategy<Cell> {
    if field == Field::AccountId {
        // Unique in Tariscope: a collision is not a question of form (every text passes).
        let unique = AtomicUsize::new(0);
        return prop_oneof![
            1 => Just(Cell::Null),
            3 => ".{0,8}".prop_map(move |s| text(format!("PROP-{}-{s}", unique.fetch_add(1, Ordering::Relaxed)))),
        ]
        .boxed();
    }
    if matches!(field, Field::DepartmentId | Field::RatePlanId) {
        let null_weight = if field == Field::RatePlanId { 20 } else { 0 };
        return prop_oneof![
            null_weight => Just(Cell::Null),
            40 => good(field, r),
            2 => not_a_reference(),
        ]
        .boxed();
    }
    let bad = prop_oneof![
        Just(text("31.02.2020")),
        Just(text("abc")),
        Just(text("  ")),
        Just(Cell::Int(99)),
        Just(Cell::Real(370.5)),
        Just(Cell::Blob(vec![0xff])),
    ];
    let null_weight = if field == Field::Fullname { 0 } else { 20 };
    prop_oneof![
        null_weight => Just(Cell::Null),
        40 => good(field, r),
        1 => bad,
        1 => any_cell(),
    ]
    .boxed()
}

fn dn_strategy(pbx: i64) -> impl Strategy<Value = RawDn> {
    let number = prop_oneof![
        10 => "\\+?[0-9]{6,20}".prop_map(text),
        2 => (100_000i64..999_999_999).prop_map(Cell::Int),
        1 => "[0-9a-z+ -]{0,8}".prop_map(text),
        1 => "[0-9]{21,22}".prop_map(text),
    ];
    let pbx_cell = prop_oneof![8 => Just(Cell::Int(pbx)), 2 => Just(text(pbx.to_string())), 1 => not_a_reference()];
    let from = prop_oneof![
        4 => Just(Cell::Null),
        4 => (2000i32..2030, 1u32..13, 1u32..29).prop_map(|(y, m, d)| text(format!("{y:04}-{m:02}-{d:02}"))),
        1 => Just(text("2025-13-01")),
    ];
    (pbx_cell, number, from).prop_map(|(pbx_id, dn, from_date)| RawDn {
        pbx_id,
        dn,
        from_date,
        description: Cell::Null,
    })
}

fn row_strategy(r: Refs) -> impl Strategy<Value = RawDesired> {
    let fields: Vec<BoxedStrategy<(String, Cell)>> = Field::ALL
        .iter()
        .map(|&f| {
            cell_for(f, &r)
                .prop_map(move |c| (f.name().to_string(), c))
                .boxed()
        })
        .collect();
    (fields, proptest::collection::vec(dn_strategy(r.pbx), 0..3)).prop_map(|(mut columns, dns)| {
        columns.insert(0, ("tariscope_id".into(), Cell::Null));
        RawDesired {
            key: text("prop"),
            columns,
            dns,
        }
    })
}

#[test]
fn every_row_the_check_accepts_the_emulator_accepts() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(sim());
    let client = client(&sim);
    let r = refs(&sim);
    let accepted = AtomicUsize::new(0);
    let numbers = AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    proptest!(config, |(raw in row_strategy(r.clone()))| {
        let Ok(row) = validate::desired(&raw) else {
            return Ok(());
        };
        // Without a department the planner does not create the row (it links it by the
        // natural key, or blocks it: plan_tests::create_needs_fullname_and_department).
        if !row.fields.contains_key(&Field::DepartmentId) {
            return Ok(());
        }
        accepted.fetch_add(1, Ordering::Relaxed);
        let outcome: Result<(), String> = rt.block_on(async {
            let created = client
                .create(&new_subscriber(&row.fields))
                .await
                .map_err(|e| format!("create refused: {e}"))?;
            client
                .update(&patch(created.id, &row.fields))
                .await
                .map_err(|e| format!("update refused: {e}"))?;
            // Accepted means taken: every value reads back (text up to surrounding blanks,
            // which the emulator trims from create's parameters).
            let record = client
                .get(created.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the created subscriber is gone")?;
            let (_, ignored) = verify(&record, &row.fields);
            let ignored: Vec<_> = ignored
                .into_iter()
                .filter(|i| i.field.kind() != Kind::Text || i.pushed.trim() != i.found.trim())
                .collect();
            if !ignored.is_empty() {
                return Err(format!("accepted but did not take: {ignored:?}"));
            }
            let held: BTreeSet<(i64, String)> = sim
                .state()
                .subscribers
                .iter()
                .flat_map(|s| s.dns.iter().map(|d| (d.pbx_id, d.dn.clone())))
                .collect();
            for dn in row.dns.iter().filter(|d| !held.contains(&(d.pbx_id, d.dn.clone()))) {
                client
                    .dnadd(&tariscope_sync::model::NewDn {
                        subscriber_id: created.id,
                        dn: dn.dn.clone(),
                        pbx_id: dn.pbx_id,
                        from_date: dn.from_date,
                        description: dn.description.clone(),
                    })
                    .await
                    .map_err(|e| format!("dnadd of {:?} refused: {e}", dn.dn))?;
                numbers.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{:?} for {:?}", outcome, row);
    });
    let (accepted, numbers) = (accepted.into_inner(), numbers.into_inner());
    eprintln!("{accepted} of 256 generated rows passed the check; {numbers} numbers added");
    assert!(
        accepted >= 20,
        "too few rows pass the check to say anything: {accepted}"
    );
    assert!(numbers >= 10, "too few numbers: {numbers}");
}
