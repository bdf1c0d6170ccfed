use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::Stretches;
use crate::model::AccountSummary;
use crate::store::SummaryOrigin;

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(n)
}

/// A server's ledger: `(day, cents, kind)`, kind 0 charge, 1 payment, 2 an adjustment no
/// list shows (booked into the day's end balance).
#[derive(Debug, Clone)]
struct Ledger(Vec<(u64, i64, u8)>);

impl Ledger {
    fn summary(&self, n: u64) -> AccountSummary {
        let cents = |pred: &dyn Fn(u64, u8) -> bool| -> i64 {
            self.0
                .iter()
                .filter(|(d, _, k)| pred(*d, *k))
                .map(|(_, c, k)| if *k == 1 { -c } else { *c })
                .sum()
        };
        let start = 10_000 + cents(&|d, _| d < n);
        let charge = cents(&|d, k| d == n && k == 0);
        let paid = -cents(&|d, k| d == n && k == 1);
        let adj = cents(&|d, k| d == n && k == 2);
        AccountSummary {
            subscriber_id: 7,
            date: day(n),
            start_debt: Some(Decimal::new(start, 2)),
            end_debt: Some(Decimal::new(start + charge - paid + adj, 2)),
            charge: Some(Decimal::new(charge, 2)),
            payment: Some(Decimal::new(paid, 2)),
        }
    }

    fn active(&self) -> BTreeSet<NaiveDate> {
        self.0
            .iter()
            .filter(|(_, _, k)| *k < 2)
            .map(|(d, _, _)| day(*d))
            .collect()
    }
}

/// Runs the rule against `ledger` over days `from..=to`; `fails` are days whose fetch fails.
/// Returns the rows as text, the completion day and the fetched days in order.
fn run(
    ledger: &Ledger,
    from: u64,
    to: u64,
    stored: bool,
    fails: &[u64],
) -> (Stretches, Vec<String>, Option<NaiveDate>, Vec<NaiveDate>) {
    let stored = stored.then(|| ledger.summary(from));
    let (mut s, first) = Stretches::new(day(from), day(to), &ledger.active(), stored);
    let mut fetched = Vec::new();
    let fetch = |s: &mut Stretches, fetched: &mut Vec<NaiveDate>, d: NaiveDate| {
        assert!(!fetched.contains(&d), "{d} fetched twice");
        fetched.push(d);
        let n = u64::try_from((d - day(0)).num_days()).unwrap();
        let answer = (!fails.contains(&n)).then(|| ledger.summary(n));
        s.record(d, answer);
    };
    for d in first {
        fetch(&mut s, &mut fetched, d);
    }
    while let Some(d) = s.next() {
        fetch(&mut s, &mut fetched, d);
    }
    let (rows, complete) = s.rows();
    let text = rows.iter().map(|(r, _)| text(r)).collect();
    (s, text, complete, fetched)
}

fn text(s: &AccountSummary) -> String {
    let d = |v: Option<Decimal>| v.map(|v| v.normalize().to_string()).unwrap_or_default();
    format!(
        "{}|{}|{}|{}|{}",
        s.date,
        d(s.start_debt),
        d(s.end_debt),
        d(s.charge),
        d(s.payment)
    )
}

fn every_day(ledger: &Ledger, from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|n| text(&ledger.summary(n))).collect()
}

#[test]
fn a_quiet_window_costs_two_requests_and_derives_the_rest() {
    let ledger = Ledger(vec![]);
    let (s, rows, complete, fetched) = run(&ledger, 0, 9, false, &[]);
    assert_eq!(fetched, vec![day(0), day(9)]);
    assert_eq!(rows, every_day(&ledger, 0, 9));
    assert_eq!(complete, Some(day(9)));
    assert_eq!(
        (s.days.fetched, s.days.derived, s.days.stretches),
        (2, 8, 0)
    );
}

#[test]
fn active_days_are_fetched_and_the_stretches_between_derived() {
    let ledger = Ledger(vec![(3, 1250, 0), (3, 500, 1), (6, 9000, 1), (8, 70, 0)]);
    let (s, rows, _, fetched) = run(&ledger, 0, 9, false, &[]);
    assert_eq!(fetched, [0, 3, 6, 8, 9].map(day));
    assert_eq!(rows, every_day(&ledger, 0, 9));
    assert_eq!((s.days.derived, s.days.bisected), (5, 0));
}

#[test]
fn an_unlisted_adjustment_is_found_by_bisection() {
    let ledger = Ledger(vec![(21, 4_000, 2)]);
    let (s, rows, _, fetched) = run(&ledger, 0, 29, false, &[]);
    assert_eq!(rows, every_day(&ledger, 0, 29));
    // Midpoint first (14), then only the half that does not connect.
    assert_eq!(fetched[2], day(14));
    assert!(fetched.contains(&day(21)), "{fetched:?}");
    assert!(fetched.len() <= 2 + 5, "{fetched:?}: about log2(28) extra");
    assert_eq!(s.days.stretches, 1);
    assert_eq!(s.days.bisected as usize, fetched.len() - 2);
}

#[test]
fn a_stored_first_day_stands_in_when_it_connects_and_is_fetched_again_when_not() {
    let quiet = Ledger(vec![]);
    let (_, rows, complete, fetched) = run(&quiet, 4, 5, true, &[]);
    assert_eq!(fetched, vec![day(5)], "one request");
    assert_eq!(
        rows,
        every_day(&quiet, 5, 5),
        "the stored row is not written again"
    );
    assert_eq!(complete, Some(day(5)));

    // Something moved the balance at the end of day 4 after it was stored.
    let moved = Ledger(vec![(4, 300, 2)]);
    let stale = Stretches::new(day(4), day(5), &BTreeSet::new(), Some(quiet.summary(4)));
    let (mut s, first) = stale;
    assert_eq!(first, vec![day(5)]);
    s.record(day(5), Some(moved.summary(5)));
    assert_eq!(
        s.next(),
        Some(day(4)),
        "the stale stored row is fetched again"
    );
    s.record(day(4), Some(moved.summary(4)));
    assert_eq!(s.next(), None);
    let (rows, _) = s.rows();
    let text: Vec<String> = rows.iter().map(|(r, _)| text(r)).collect();
    assert_eq!(text, every_day(&moved, 4, 5));
}

#[test]
fn a_failed_day_leaves_its_stretches_unwritten_and_stops_completion() {
    let ledger = Ledger(vec![(5, 100, 0)]);
    let (_, rows, complete, _) = run(&ledger, 0, 9, false, &[5]);
    // Days 1-4 and 6-8 cannot be checked against day 5; 0 and 9 are written.
    assert_eq!(
        rows,
        vec![text(&ledger.summary(0)), text(&ledger.summary(9))]
    );
    assert_eq!(complete, Some(day(0)));
}

#[test]
fn derived_rows_are_marked() {
    let ledger = Ledger(vec![]);
    let (mut s, first) = Stretches::new(day(0), day(2), &BTreeSet::new(), None);
    for d in first {
        s.record(d, Some(ledger.summary((d - day(0)).num_days() as u64)));
    }
    assert_eq!(s.next(), None);
    let origins: Vec<SummaryOrigin> = s.rows().0.into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        origins,
        [
            SummaryOrigin::Fetched,
            SummaryOrigin::Derived,
            SummaryOrigin::Fetched
        ]
    );
}

proptest! {
    #[test]
    fn active_days_equal_every_day(
        events in proptest::collection::vec((0u64..40, -5_000i64..5_000, 0u8..3), 0..12),
        from in 0u64..10,
        len in 0u64..30,
        stored in any::<bool>(),
    ) {
        // Adjustments that cancel out within one stretch are invisible by design: keep every
        // amount positive.
        let events: Vec<_> = events.into_iter().map(|(d, c, k)| (d, c.abs() + 1, k)).collect();
        let ledger = Ledger(events);
        let to = from + len;
        let (_, rows, complete, _) = run(&ledger, from, to, stored, &[]);
        let mut want = every_day(&ledger, from, to);
        if stored && !ledger.active().contains(&day(from)) && from != to {
            want.remove(0);
        }
        prop_assert_eq!(rows, want);
        prop_assert_eq!(complete, Some(day(to)));
    }
}
