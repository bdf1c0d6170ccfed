//! The account jobs: `payments`, `charges` (per subscriber over a date window) and
//! `summaries` (per subscriber per day).
//!
//! Owns: choosing the window (incremental: from the end of the last successful incremental
//! window minus the lookback, to today; backfill: the explicit range), fanning out per
//! subscriber `concurrency` wide, and checkpointing so an interrupted run resumes where it
//! stopped. Every write carries the checkpoint it completes, in one transaction:
//! * payments / charges: key `<mode>:<from>..<to>/<subscriber>`, cursor `done`;
//! * summaries: key `<mode>:<from>/<subscriber>`, cursor = the last day stored without a
//!   gap since `from` (in `every-day` mode one subscriber's days are fetched in order, so a
//!   resumed run fetches again at most the day that was in flight; in `active-days` mode a
//!   subscriber's fetched and derived rows are written at once, see `summary_days`).
//!
//! Writes go through one `WriteGroup` per run, which commits what many items produced
//! together (thousands of rows or a quarter second at a time: few commits keep the WAL small
//! while an integrator holds a long read transaction).
//!
//! A successful run deletes its checkpoints. Must not: skip a failed item's checkpoint
//! gap (a failed day stops its subscriber's cursor; later days are stored but fetched
//! again on resume).

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};
use futures::StreamExt;

use super::summary_days::{Ctx, DayPlan, active_item};
use super::{JobReport, Run, SyncError, Verdict, interrupted, is_fatal, now};
use crate::model::SubscriberId;
use crate::store::{
    Checkpoint, Mode, Store, StoreError, SummaryDays, SummaryOrigin, UpsertCounts, WriteGroup,
};
use crate::sync::options::{JobKind, Progress, PullOptions};
use crate::sync::remote::{Remote, RemoteError, RemoteResult};

/// The window of a run and how it was chosen.
async fn window(
    job: JobKind,
    store: &Store,
    opts: &PullOptions,
) -> Result<(Mode, NaiveDate, NaiveDate), SyncError> {
    let invalid = |message: String| SyncError::Options { job, message };
    match (opts.from, opts.to) {
        (Some(from), Some(to)) if from <= to => Ok((Mode::Backfill, from, to)),
        (Some(from), Some(to)) => Err(invalid(format!(
            "the range starts ({from}) after it ends ({to})"
        ))),
        (Some(_), None) | (None, Some(_)) => {
            Err(invalid("a backfill needs both --from and --to".into()))
        }
        (None, None) => {
            let last = store
                .last_ok_window_end(job.as_str(), Mode::Incremental)
                .await
                .map_err(|source| SyncError::Store { job, source })?;
            // Summaries re-fetch the last day of the previous window (it may have been
            // "today" then, incomplete); payments and charges also look back.
            let back = match job {
                JobKind::Summaries => 0,
                _ => opts.lookback_days,
            };
            let from = match last {
                Some(end) => end.checked_sub_days(Days::new(u64::from(back))),
                None => opts
                    .today
                    .checked_sub_days(Days::new(u64::from(opts.initial_days))),
            }
            .unwrap_or(opts.today);
            Ok((Mode::Incremental, from.min(opts.today), opts.today))
        }
    }
}

fn mode_tag(mode: Mode) -> &'static str {
    match mode {
        Mode::Incremental => "inc",
        Mode::Backfill => "bf",
    }
}

async fn subscribers(
    job: JobKind,
    store: &Store,
    opts: &PullOptions,
) -> Result<Vec<SubscriberId>, SyncError> {
    match &opts.subscribers {
        Some(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            Ok(ids)
        }
        None => store
            .live_subscriber_ids()
            .await
            .map_err(|source| SyncError::Store { job, source }),
    }
}

/// What one subscriber's item produced.
enum Fetched {
    /// Rows fetched and handed to the run's write group.
    Stored {
        fetched: u64,
    },
    Failed(RemoteError),
}

/// `payments` or `charges`.
pub(super) async fn run_ledger<R: Remote>(
    job: JobKind,
    remote: &R,
    store: &Store,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<JobReport, SyncError> {
    let (mode, from, to) = window(job, store, opts).await?;
    let subs = subscribers(job, store, opts).await?;
    let mut run = Run::start(store, opts, progress, job, mode, Some((from, to))).await?;
    let prefix = format!("{}:{from}..{to}/", mode_tag(mode));
    let group = store.write_group();
    let verdict = ledger_body(&mut run, remote, subs, &prefix, progress, &group).await;
    let verdict = written(&mut run, verdict, &group).await;
    run.conclude(verdict, Some(finished_checkpoints(mode, prefix)))
        .await
}

async fn ledger_body<R: Remote>(
    run: &mut Run<'_>,
    remote: &R,
    subs: Vec<SubscriberId>,
    prefix: &str,
    progress: &Progress,
    group: &WriteGroup,
) -> Verdict {
    let (job, store, opts) = (run.job, run.store, run.opts);
    let (from, to) = run.window.unwrap_or((opts.today, opts.today));
    let done: HashSet<SubscriberId> = store
        .checkpoints(job.as_str(), prefix)
        .await
        .map_err(run.store_err())?
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(prefix)?.parse().ok())
        .collect();
    let todo: Vec<SubscriberId> = subs.iter().copied().filter(|s| !done.contains(s)).collect();
    progress.add_total(subs.len() as u64);
    progress.add_done((subs.len() - todo.len()) as u64);
    if !done.is_empty() {
        tracing::info!(job = %job, resumed = subs.len() - todo.len(), left = todo.len(), "resuming from checkpoints");
    }
    let (left, mut finished) = (todo.len(), 0);
    let mut items = futures::stream::iter(todo)
        // At shutdown no new subscriber starts; the ones in flight are written, each with
        // its checkpoint.
        .take_while(|_| std::future::ready(!opts.stop.is_cancelled()))
        .map(|sub| async move {
            let cp = Some(Checkpoint {
                job: job.as_str().to_owned(),
                key: format!("{prefix}{sub}"),
                cursor: "done".to_owned(),
            });
            let item = match job {
                JobKind::Charges => {
                    ledger_item(
                        remote.account_charges(sub, from, to),
                        |c| c.subscriber_id = sub,
                        |rows| group.charges(sub, rows, cp, now(opts)),
                    )
                    .await
                }
                _ => {
                    ledger_item(
                        remote.account_payments(sub, from, to),
                        |p| p.subscriber_id = sub,
                        |rows| group.payments(sub, rows, cp, now(opts)),
                    )
                    .await
                }
            };
            if !matches!(item, Ok(Fetched::Failed(_))) {
                progress.add_done(1);
            }
            (sub, item)
        })
        .buffer_unordered(opts.concurrency);
    while let Some((sub, item)) = items.next().await {
        finished += 1;
        match item.map_err(run.store_err())? {
            Fetched::Stored { fetched } => run.counts.fetched += fetched,
            Fetched::Failed(e) if is_fatal(&e) => {
                return Ok(Some(format!("subscriber {sub}: {e}")));
            }
            Fetched::Failed(e) => {
                progress.add_done(1);
                run.item_failed(format!("subscriber {sub}"), &e).await?;
            }
        }
    }
    Ok(if finished < left {
        interrupted(opts)
    } else {
        None
    })
}

/// One subscriber of a payments / charges run: `fetch` its rows, give each the
/// subscriber's id (`own`: the answers may omit it), and `write` them with the checkpoint.
async fn ledger_item<T, W>(
    fetch: impl Future<Output = RemoteResult<Vec<T>>>,
    own: impl FnMut(&mut T),
    write: impl FnOnce(Vec<T>) -> W,
) -> Result<Fetched, StoreError>
where
    W: Future<Output = Result<(), StoreError>>,
{
    let mut rows = match fetch.await {
        Ok(rows) => rows,
        Err(e) => return Ok(Fetched::Failed(e)),
    };
    rows.iter_mut().for_each(own);
    let fetched = rows.len() as u64;
    write(rows).await.map(|()| Fetched::Stored { fetched })
}

/// Writes what the run's group still holds (also after an early stop: what was fetched is
/// kept, with its checkpoints) and adds the counts of everything written to the run.
async fn written(run: &mut Run<'_>, verdict: Verdict, group: &WriteGroup) -> Verdict {
    match group.finish().await {
        Ok(counts) => {
            add(run, counts);
            verdict
        }
        // The first error is the one to report.
        Err(_) if verdict.is_err() => verdict,
        Err(e) => Err(run.store_err()(e)),
    }
}

/// The checkpoints a successful run deletes: a backfill its own, an incremental run every
/// incremental one (stale ones of older windows included).
fn finished_checkpoints(mode: Mode, prefix: String) -> String {
    match mode {
        Mode::Incremental => "inc:".to_owned(),
        Mode::Backfill => prefix,
    }
}

fn add(run: &mut Run<'_>, c: UpsertCounts) {
    run.counts.inserted += c.inserted;
    run.counts.updated += c.updated;
    run.counts.unchanged += c.unchanged;
}

/// One subscriber's days in a summaries run (its rows go to the run's write group).
#[derive(Default)]
pub(super) struct SubscriberDays {
    pub(super) days: SummaryDays,
    pub(super) failed: Vec<(NaiveDate, RemoteError)>,
    /// An auth failure stopped this subscriber (and the run).
    pub(super) fatal: Option<(NaiveDate, RemoteError)>,
    /// Shutdown stopped this subscriber before its last day.
    pub(super) stopped: bool,
}

/// `summaries`.
pub(super) async fn run_summaries<R: Remote>(
    remote: &R,
    store: &Store,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<JobReport, SyncError> {
    let job = JobKind::Summaries;
    let (mode, from, to) = window(job, store, opts).await?;
    let subs = subscribers(job, store, opts).await?;
    let mut run = Run::start(store, opts, progress, job, mode, Some((from, to))).await?;
    let prefix = format!("{}:{from}/", mode_tag(mode));
    let group = store.write_group();
    let verdict = summaries_body(&mut run, remote, subs, &prefix, progress, &group).await;
    let verdict = written(&mut run, verdict, &group).await;
    run.conclude(verdict, Some(finished_checkpoints(mode, prefix)))
        .await
}

fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

async fn summaries_body<R: Remote>(
    run: &mut Run<'_>,
    remote: &R,
    subs: Vec<SubscriberId>,
    prefix: &str,
    progress: &Progress,
    group: &WriteGroup,
) -> Verdict {
    let (job, store, opts) = (run.job, run.store, run.opts);
    let (from, to) = run.window.unwrap_or((opts.today, opts.today));
    run.days = Some(SummaryDays::default());
    let cursors: HashMap<SubscriberId, NaiveDate> = store
        .checkpoints(job.as_str(), prefix)
        .await
        .map_err(run.store_err())?
        .into_iter()
        .filter_map(|(key, cursor)| {
            Some((
                key.strip_prefix(prefix)?.parse().ok()?,
                cursor.parse().ok()?,
            ))
        })
        .collect();
    let plan = DayPlan::load(store, opts, run.mode, (from, to), &subs)
        .await
        .map_err(run.store_err())?;
    let span = days(from, to).count() as u64;
    progress.add_total(span * subs.len() as u64);
    let mut todo = Vec::with_capacity(subs.len());
    for sub in subs {
        let start = match cursors.get(&sub) {
            Some(done) => done.succ_opt().unwrap_or(*done),
            None => from,
        };
        let left = days(start.max(from), to).count() as u64;
        progress.add_done(span - left);
        if left > 0 {
            todo.push((sub, start.max(from)));
        }
    }
    let (left, mut finished) = (todo.len(), 0);
    let ctx = &Ctx {
        remote,
        group,
        opts,
        prefix,
        to,
        progress,
    };
    let plan = &plan;
    let mut items = futures::stream::iter(todo)
        // At shutdown no new subscriber starts; the ones in flight stop between days.
        .take_while(|_| std::future::ready(!opts.stop.is_cancelled()))
        .map(|(sub, start)| async move {
            let out = match plan.active(sub, start) {
                Some(how) => active_item(ctx, sub, start, how).await,
                None => every_day(ctx, sub, start).await,
            };
            out.map(|out| (sub, out))
        })
        .buffer_unordered(opts.concurrency);
    while let Some(item) = items.next().await {
        let (sub, out) = item.map_err(run.store_err())?;
        finished += usize::from(!out.stopped);
        run.counts.fetched += out.days.fetched;
        if let Some(d) = run.days.as_mut() {
            d.add(out.days);
        }
        for (day, e) in out.failed {
            run.item_failed(format!("subscriber {sub} day {day}"), &e)
                .await?;
        }
        if let Some((day, e)) = out.fatal {
            return Ok(Some(format!("subscriber {sub} day {day}: {e}")));
        }
    }
    Ok(if finished < left {
        interrupted(opts)
    } else {
        None
    })
}

/// One subscriber fetched every day from `start`, each day handed to the run's write group
/// with the checkpoint it completes (the group keeps one subscriber's days in order, so its
/// checkpoint only moves forward).
async fn every_day<R: Remote>(
    ctx: &Ctx<'_, R>,
    sub: SubscriberId,
    start: NaiveDate,
) -> Result<SubscriberDays, StoreError> {
    let mut out = SubscriberDays::default();
    out.days.every_day = 1;
    let mut gap = false;
    for day in days(start, ctx.to) {
        // At shutdown: stop between days (each day is queued with its checkpoint).
        if ctx.opts.stop.is_cancelled() {
            out.stopped = true;
            break;
        }
        match ctx.remote.account_summary(sub, day).await {
            Ok(mut s) => {
                s.subscriber_id = sub;
                s.date = day;
                out.days.fetched += 1;
                let cp = if gap { None } else { ctx.checkpoint(sub, day) };
                let rows = vec![(s, SummaryOrigin::Fetched)];
                ctx.group.summaries(rows, cp, now(ctx.opts)).await?;
            }
            Err(e) if is_fatal(&e) => {
                out.fatal = Some((day, e));
                break;
            }
            Err(e) => {
                gap = true;
                out.failed.push((day, e));
            }
        }
        ctx.progress.add_done(1);
    }
    Ok(out)
}
