//! The summaries job's `active-days` mode: which subscribers may skip days, and one
//! subscriber's fetch-verify-derive-write.
//!
//! Owns: [`DayPlan`] (per run: the days with charges or payments in the mirror, the stored
//! rows of an incremental window's first day, and which subscribers' payments and charges
//! were pulled completely for the window) and [`active_item`]. A subscriber is covered when
//! the `ok` / `partial` runs of both the payments and the charges job that started after it
//! was first seen, minus the runs in which it failed, cover every day of the window; anyone
//! else is fetched every day. Must not: decide stretches (`stretches` does) or fetch a day
//! twice except a stored first day that did not connect.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;

use super::accounts::SubscriberDays;
use super::stretches::Stretches;
use super::{is_fatal, now};
use crate::model::{AccountSummary, SubscriberId};
use crate::store::{Checkpoint, LedgerRun, Mode, Store, StoreError, WriteGroup};
use crate::sync::options::{JobKind, Progress, PullOptions, SummariesMode};
use crate::sync::remote::Remote;

/// What one summaries item needs besides its subscriber.
pub(super) struct Ctx<'a, R> {
    pub remote: &'a R,
    /// The run's write group: every row goes through it, with its checkpoint.
    pub group: &'a WriteGroup,
    pub opts: &'a PullOptions,
    pub prefix: &'a str,
    pub to: NaiveDate,
    pub progress: &'a Progress,
}

impl<R> Ctx<'_, R> {
    /// The checkpoint saying `sub` is stored up to `day` (never "today": fetched again).
    pub(super) fn checkpoint(&self, sub: SubscriberId, day: NaiveDate) -> Option<Checkpoint> {
        (day < self.opts.today).then(|| Checkpoint {
            job: JobKind::Summaries.as_str().to_owned(),
            key: format!("{}{sub}", self.prefix),
            cursor: day.to_string(),
        })
    }
}

/// How a subscriber's days are chosen in one run.
pub(super) struct DayPlan {
    mode: SummariesMode,
    /// Incremental runs: the window's first day, whose stored rows may stand in for a fetch.
    stored_day: Option<NaiveDate>,
    active: HashMap<SubscriberId, BTreeSet<NaiveDate>>,
    stored: HashMap<SubscriberId, AccountSummary>,
    covered: HashSet<SubscriberId>,
}

/// A subscriber in `active-days` mode: its active days and its stored first day.
pub(super) struct ActiveDays {
    active: BTreeSet<NaiveDate>,
    stored: Option<AccountSummary>,
}

impl DayPlan {
    /// Reads what the run needs from the mirror (nothing in `every-day` mode).
    pub(super) async fn load(
        store: &Store,
        opts: &PullOptions,
        mode: Mode,
        (from, to): (NaiveDate, NaiveDate),
        subs: &[SubscriberId],
    ) -> Result<DayPlan, StoreError> {
        let mut plan = DayPlan {
            mode: opts.summaries_mode,
            stored_day: (mode == Mode::Incremental && from < to).then_some(from),
            active: HashMap::new(),
            stored: HashMap::new(),
            covered: HashSet::new(),
        };
        if plan.mode == SummariesMode::EveryDay {
            return Ok(plan);
        }
        plan.active = store.active_days(from, to).await?;
        if let Some(day) = plan.stored_day {
            plan.stored = store.summaries_on(day).await?;
        }
        let payments = store
            .ledger_runs(JobKind::Payments.as_str(), from, to)
            .await?;
        let charges = store
            .ledger_runs(JobKind::Charges.as_str(), from, to)
            .await?;
        let first_seen = store.subscribers_first_seen().await?;
        plan.covered = subs
            .iter()
            .copied()
            .filter(|s| {
                let seen = first_seen.get(s).map(String::as_str);
                covers(&payments, *s, seen, from, to) && covers(&charges, *s, seen, from, to)
            })
            .collect();
        Ok(plan)
    }

    /// `None`: fetch every day of `sub` from `start`.
    pub(super) fn active(&self, sub: SubscriberId, start: NaiveDate) -> Option<ActiveDays> {
        if self.mode == SummariesMode::EveryDay || !self.covered.contains(&sub) {
            return None;
        }
        Some(ActiveDays {
            active: self.active.get(&sub).cloned().unwrap_or_default(),
            stored: self
                .stored_day
                .filter(|d| *d == start)
                .and_then(|_| self.stored.get(&sub).cloned()),
        })
    }
}

/// Whether the runs in which `sub` took part and did not fail cover `from..=to`. A run
/// takes part when it started at or after `first_seen` (RFC 3339 UTC, comparable as text).
pub(super) fn covers(
    runs: &[LedgerRun],
    sub: SubscriberId,
    first_seen: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
) -> bool {
    let mut windows: Vec<(NaiveDate, NaiveDate)> = runs
        .iter()
        .filter(|r| !r.failed.contains(&sub))
        .filter(|r| first_seen.is_none_or(|f| r.started_at.as_str() >= f))
        .map(|r| (r.from, r.to))
        .collect();
    windows.sort_unstable();
    let mut need = from;
    for (f, t) in windows {
        if f > need {
            break;
        }
        if t >= need {
            match t.succ_opt() {
                Some(next) => need = next,
                None => return true,
            }
        }
    }
    need > to
}

/// One subscriber in `active-days` mode: fetch the first days, then what the stretches ask
/// for, then hand every fetched and derived row and the checkpoint to the run's write group
/// as one entry (so they commit in one transaction). A
/// failed day is an item error and leaves the days it cannot vouch for unwritten (the
/// checkpoint stops before them); an auth failure writes nothing.
pub(super) async fn active_item<R: Remote>(
    ctx: &Ctx<'_, R>,
    sub: SubscriberId,
    start: NaiveDate,
    how: ActiveDays,
) -> Result<SubscriberDays, StoreError> {
    let mut out = SubscriberDays::default();
    let (mut plan, first) = Stretches::new(start, ctx.to, &how.active, how.stored);
    let mut first = first.into_iter();
    let span = start.iter_days().take_while(|d| *d <= ctx.to).count() as u64;
    while let Some(day) = first.next().or_else(|| plan.next()) {
        match ctx.remote.account_summary(sub, day).await {
            Ok(mut s) => {
                s.subscriber_id = sub;
                s.date = day;
                plan.record(day, Some(s));
            }
            Err(e) if is_fatal(&e) => {
                out.fatal = Some((day, e));
                out.days = plan.days;
                return Ok(out);
            }
            Err(e) => {
                plan.record(day, None);
                out.failed.push((day, e));
            }
        }
    }
    let (rows, complete) = plan.rows();
    out.days = plan.days;
    let last = ctx.opts.today.pred_opt().unwrap_or(ctx.opts.today);
    let cp = complete
        .map(|c| c.min(last))
        .filter(|c| *c >= start)
        .and_then(|c| ctx.checkpoint(sub, c));
    if !rows.is_empty() || cp.is_some() {
        ctx.group.summaries(rows, cp, now(ctx.opts)).await?;
    }
    ctx.progress.add_done(span);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, n).unwrap()
    }

    fn run(from: u32, to: u32, started: &str, failed: &[SubscriberId]) -> LedgerRun {
        LedgerRun {
            started_at: started.to_owned(),
            from: day(from),
            to: day(to),
            failed: failed.iter().copied().collect(),
        }
    }

    #[test]
    fn coverage_needs_every_day_of_the_window_without_a_failure() {
        let t = "2026-01-20T06:00:00Z";
        let runs = [run(1, 10, t, &[]), run(8, 20, t, &[5])];
        assert!(
            covers(&runs, 4, None, day(2), day(20)),
            "overlapping windows join"
        );
        assert!(
            !covers(&runs, 5, None, day(2), day(20)),
            "failed in the second run"
        );
        assert!(
            covers(&runs, 5, None, day(2), day(10)),
            "the first run is enough"
        );
        assert!(
            !covers(&runs, 4, None, day(2), day(21)),
            "not run for the last day"
        );
        let gap = [run(1, 5, t, &[]), run(7, 20, t, &[])];
        assert!(
            !covers(&gap, 4, None, day(2), day(20)),
            "a day between runs"
        );
        assert!(!covers(&[], 4, None, day(2), day(2)), "never run");
        let later = "2026-01-21T06:00:00Z";
        assert!(
            !covers(&runs, 4, Some(later), day(2), day(20)),
            "first seen after the runs started"
        );
        assert!(covers(&runs, 4, Some(t), day(2), day(20)));
    }
}
