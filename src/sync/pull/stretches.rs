//! The pure part of the summaries job's `active-days` mode: which days of one subscriber's
//! window to fetch, whether the stretches between fetched days connect, and the rows.
//!
//! Owns: the rule. Fetch the first day of the window, its last day and every day with a
//! charge or a payment in the mirror. Between two fetched days a < b with nothing booked in
//! between, the balance cannot have moved: `start_debt(b)` must equal `end_debt(a)`, and the
//! days between are derived (start = end = `end_debt(a)`, charge 0, payment 0). A stretch that
//! does not connect hides a change neither list shows; it is bisected (its midpoint fetched,
//! then each half checked again) until every part connects or its days are adjacent. An
//! incremental run may start from the stored row of its first day instead of fetching it; a
//! stored row that does not connect to the day after it is fetched again. Must not: do
//! I/O (the job fetches and writes) or guess across a day whose fetch failed (the days
//! between it and its neighbours are left unwritten).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use crate::model::AccountSummary;
use crate::store::{SummaryDays, SummaryOrigin};

/// What is known of one day.
#[derive(Debug, Clone)]
enum Known {
    /// Answered in this run.
    Fetched(AccountSummary),
    /// The mirror's row, not fetched in this run (only ever the window's first day).
    Stored(AccountSummary),
    /// The fetch failed.
    Failed,
}

impl Known {
    fn summary(&self) -> Option<&AccountSummary> {
        match self {
            Known::Fetched(s) | Known::Stored(s) => Some(s),
            Known::Failed => None,
        }
    }
}

/// One subscriber's window in `active-days` mode.
#[derive(Debug)]
pub(super) struct Stretches {
    from: NaiveDate,
    to: NaiveDate,
    known: BTreeMap<NaiveDate, Known>,
    /// Days fetched to bisect a stretch.
    bisection: BTreeSet<NaiveDate>,
    /// The counts of this window (`every_day` stays 0).
    pub(super) days: SummaryDays,
}

/// Whether the balance at the end of `a` is the balance at the start of `b`.
fn connects(a: &AccountSummary, b: &AccountSummary) -> bool {
    matches!((a.end_debt, b.start_debt), (Some(x), Some(y)) if x == y)
}

impl Stretches {
    /// The window `from..=to` with the days that had a charge or a payment (`active`, any
    /// days outside the window are ignored), and the mirror's row of `from` when it may stand
    /// in for a fetch (`None`: fetch `from`).
    pub(super) fn new(
        from: NaiveDate,
        to: NaiveDate,
        active: &BTreeSet<NaiveDate>,
        stored_from: Option<AccountSummary>,
    ) -> (Stretches, Vec<NaiveDate>) {
        let mut first: BTreeSet<NaiveDate> = active.range(from..=to).copied().collect();
        first.insert(to);
        let mut known = BTreeMap::new();
        match stored_from {
            Some(s) if !first.contains(&from) => {
                known.insert(from, Known::Stored(s));
            }
            _ => {
                first.insert(from);
            }
        }
        let s = Stretches {
            from,
            to,
            known,
            bisection: BTreeSet::new(),
            days: SummaryDays::default(),
        };
        (s, first.into_iter().collect())
    }

    /// Records the answer for `day` (`None`: the fetch failed).
    pub(super) fn record(&mut self, day: NaiveDate, answer: Option<AccountSummary>) {
        let known = match answer {
            Some(s) => {
                self.days.fetched += 1;
                if self.bisection.contains(&day) {
                    self.days.bisected += 1;
                }
                Known::Fetched(s)
            }
            None => Known::Failed,
        };
        self.known.insert(day, known);
    }

    /// The next day to fetch so that every stretch connects, or `None` when none is left.
    /// Call after the first days were recorded, and again after each `record`.
    pub(super) fn next(&mut self) -> Option<NaiveDate> {
        let open =
            self.known
                .iter()
                .zip(self.known.iter().skip(1))
                .find_map(|((&a, ka), (&b, kb))| {
                    let (sa, sb) = (ka.summary()?, kb.summary()?);
                    let between = b.signed_duration_since(a).num_days() > 1;
                    let stored = matches!(ka, Known::Stored(_));
                    // Adjacent fetched days have nothing between them to derive; a stored day
                    // that does not connect to the next day is stale.
                    (!connects(sa, sb) && (between || stored)).then_some((a, b, between))
                })?;
        match open {
            (a, b, true) => Some(self.bisect(a, b)),
            (a, _, false) => Some(a),
        }
    }

    fn bisect(&mut self, a: NaiveDate, b: NaiveDate) -> NaiveDate {
        if !self.bisection.contains(&a) && !self.bisection.contains(&b) {
            self.days.stretches += 1;
        }
        let half = b.signed_duration_since(a).num_days() / 2;
        let mid = a + Days::new(u64::try_from(half).unwrap_or(1));
        self.bisection.insert(mid);
        mid
    }

    /// The rows to write: every fetched day and every derived day, in date order, and the
    /// last day up to which the window is complete without a gap (`None`: not even `from`).
    pub(super) fn rows(&mut self) -> (Vec<(AccountSummary, SummaryOrigin)>, Option<NaiveDate>) {
        let mut rows = Vec::new();
        // Days written now, or stored and confirmed.
        let mut done = BTreeSet::new();
        let days: Vec<(&NaiveDate, &Known)> = self.known.iter().collect();
        for (i, &(&a, ka)) in days.iter().enumerate() {
            let next = days.get(i + 1).copied();
            match ka {
                Known::Fetched(s) => {
                    rows.push((s.clone(), SummaryOrigin::Fetched));
                    done.insert(a);
                }
                // Still stored only when it connects to the next day (else it was fetched
                // again), or when the next day's fetch failed (then it is not confirmed).
                Known::Stored(_) if next.is_some_and(|(_, kb)| kb.summary().is_some()) => {
                    done.insert(a);
                }
                Known::Stored(_) | Known::Failed => {}
            }
            let Some((&b, kb)) = next else { continue };
            let (Some(sa), Some(sb)) = (ka.summary(), kb.summary()) else {
                continue;
            };
            if !connects(sa, sb) {
                continue;
            }
            for d in a.iter_days().skip(1).take_while(|d| *d < b) {
                rows.push((derived(sa, d), SummaryOrigin::Derived));
                done.insert(d);
            }
        }
        self.days.derived += rows
            .iter()
            .filter(|(_, o)| *o == SummaryOrigin::Derived)
            .count() as u64;
        let complete = self
            .from
            .iter_days()
            .take_while(|d| *d <= self.to && done.contains(d))
            .last();
        (rows, complete)
    }
}

/// The row of an inactive day after `base`: the balance stays, nothing was charged or paid.
fn derived(base: &AccountSummary, day: NaiveDate) -> AccountSummary {
    AccountSummary {
        subscriber_id: base.subscriber_id,
        date: day,
        start_debt: base.end_debt,
        end_debt: base.end_debt,
        charge: Some(Decimal::ZERO),
        payment: Some(Decimal::ZERO),
    }
}

#[cfg(test)]
#[path = "stretches_tests.rs"]
mod tests;
