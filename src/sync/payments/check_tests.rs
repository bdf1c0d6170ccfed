use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::sync::payments::{PaymentContext, SentPayment};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ctx() -> PaymentContext {
    PaymentContext {
        today: d("2025-05-20"),
        earliest: Some(d("2025-01-01")),
        subscribers: [10, 11, 12].into(),
        accounts: BTreeMap::from([
            ("ACC-10".to_string(), vec![10]),
            ("SHARED".to_string(), vec![11, 12]),
        ]),
        keys: BTreeMap::from([
            ("crm-1".to_string(), Some(11)),
            ("crm-new".to_string(), None),
        ]),
        desired_accounts: BTreeMap::from([
            ("ACC-NEW".to_string(), vec!["crm-new".to_string()]),
            (
                "ACC-TWICE".to_string(),
                vec!["crm-a".to_string(), "crm-b".to_string()],
            ),
        ]),
        sent: BTreeMap::new(),
    }
}

fn t(s: &str) -> Cell {
    Cell::Text(s.into())
}

/// A row: reference, then (column, cell) pairs; unspecified columns are NULL.
fn row(reference: &str, cells: &[(&str, Cell)]) -> RawDesired {
    RawDesired {
        key: t(reference),
        columns: COLUMNS
            .iter()
            .map(|c| {
                let v = cells.iter().find(|(n, _)| n == c).map(|(_, v)| v.clone());
                (c.to_string(), v.unwrap_or(Cell::Null))
            })
            .collect(),
        dns: Vec::new(),
    }
}

fn good(reference: &str) -> RawDesired {
    row(
        reference,
        &[
            ("subscriberid", Cell::Int(10)),
            ("amount", t("370,5")),
            ("paymentday", t("2025-05-17")),
            ("paymenttype", Cell::Int(3)),
            ("bank", t("PrivatBank")),
        ],
    )
}

fn reasons(raw: RawDesired, ctx: &PaymentContext) -> Vec<String> {
    check_rows(&[raw], ctx)
        .rejected
        .into_iter()
        .map(|r| r.rejection.reason)
        .collect()
}

#[test]
fn a_valid_row_is_canonical() {
    let c = check_rows(&[good("bank-1")], &ctx());
    assert!(c.rejected.is_empty(), "{:?}", c.rejected);
    let v = &c.valid[0];
    assert_eq!(v.target, Target::Subscriber(10));
    assert_eq!(v.row.amount.to_string(), "370.50");
    assert_eq!((v.row.kind, v.row.bank.as_deref()), (3, Some("PrivatBank")));
}

#[test]
fn payers_resolve_through_the_mirror_and_desired_keys() {
    let by = |column: &str, v: Cell| {
        let mut r = good("p");
        r.columns[0].1 = Cell::Null;
        r.columns.iter_mut().find(|(n, _)| n == column).unwrap().1 = v;
        check_rows(&[r], &ctx())
    };
    assert_eq!(
        by("accountid", t("ACC-10")).valid[0].target,
        Target::Subscriber(10)
    );
    assert_eq!(
        by("subscriber_key", t("crm-1")).valid[0].target,
        Target::Subscriber(11)
    );
    assert_eq!(
        by("subscriber_key", t("crm-new")).valid[0].target,
        Target::Waiting("crm-new".into()),
        "a subscriber the same push creates: the payment waits for it"
    );
    assert_eq!(
        by("accountid", t("ACC-NEW")).valid[0].target,
        Target::Waiting("crm-new".into()),
        "the account of a desired row no mirrored subscriber holds yet: the payment waits for the row"
    );
    let twice = by("accountid", t("ACC-TWICE"));
    assert!(
        twice.rejected[0]
            .rejection
            .reason
            .contains("wanted by 2 desired subscribers"),
        "{:?}",
        twice.rejected[0].rejection.reason
    );
    let shared = by("accountid", t("SHARED"));
    assert!(
        shared.rejected[0]
            .rejection
            .reason
            .contains("held by 2 subscribers")
    );
}

#[test]
fn every_rejection_reason() {
    let c = ctx();
    let with = |column: &str, v: Cell| {
        let mut r = good("p-1");
        r.columns.iter_mut().find(|(n, _)| n == column).unwrap().1 = v;
        reasons(r, &c)
    };
    let unknown_account = {
        let mut r = good("p-1");
        r.columns[0].1 = Cell::Null;
        r.columns[1].1 = t("ACC-404");
        reasons(r, &c)
    };
    assert!(
        unknown_account[0].contains("unknown account"),
        "{unknown_account:?}"
    );
    assert!(with("subscriberid", Cell::Int(99))[0].contains("unknown subscriber"));
    assert!(with("amount", t("-5.00"))[0].contains("above 0"));
    assert!(with("amount", t("0"))[0].contains("above 0"));
    assert!(with("amount", t("12,3x"))[0].contains("amount = \"12,3x\""));
    assert!(with("amount", t("1.005"))[0].contains("3 decimal places"));
    assert!(with("amount", Cell::Real(1.5))[0].contains("REAL"));
    assert!(with("paymentday", t("2025-05-21"))[0].contains("in the future"));
    assert!(with("paymentday", t("2024-12-31"))[0].contains("payments.earliest_day"));
    assert!(with("paymentday", t("17.05.2025"))[0].contains("yyyy-mm-dd"));
    assert!(with("paymenttype", Cell::Int(4))[0].contains("payment type 0..3"));
    assert!(with("accountid", t("ACC-10"))[0].contains("2 ways"));
    let no_ref = reasons(row("", &[]), &c);
    assert!(
        no_ref[0].contains("without a usable reference"),
        "{no_ref:?}"
    );
    // Several problems of one row are all reported.
    let many = reasons(
        row("p-2", &[("amount", t("-1")), ("paymentday", t("x"))]),
        &c,
    );
    assert_eq!(many.len(), 3, "{many:?}");
}

fn sent(state: OutboxState, amount: &str) -> SentPayment {
    SentPayment {
        entry_id: 7,
        state,
        subscriber_id: 10,
        amount: amount.parse().unwrap(),
        day: d("2025-05-17"),
        kind: 3,
        bank: Some("PrivatBank".into()),
        payment_id: (state == OutboxState::Done).then_some(501),
    }
}

#[test]
fn a_posted_or_sent_reference_cannot_change() {
    let mut c = ctx();
    c.sent
        .insert("bank-1".into(), sent(OutboxState::Done, "370.50"));
    assert!(
        check_rows(&[good("bank-1")], &c).rejected.is_empty(),
        "the same row is fine"
    );
    c.sent
        .insert("bank-1".into(), sent(OutboxState::Done, "370.00"));
    let r = reasons(good("bank-1"), &c);
    assert!(
        r[0].contains("editing a posted row") && r[0].contains("payment 501"),
        "{r:?}"
    );
    c.sent
        .insert("bank-1".into(), sent(OutboxState::Sent, "370.00"));
    let r = reasons(good("bank-1"), &c);
    assert!(r[0].contains("seen before with different values"), "{r:?}");
}
