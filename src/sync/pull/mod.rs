//! The pull jobs' entry point and the run bookkeeping they share.
//!
//! Owns: `run_job`, `JobReport`, `SyncError`, and `Run` (records the run in `job_runs`,
//! item errors in `item_errors`, and its outcome: `failed` when the job could not go on,
//! otherwise `sync::outcome`'s rule over the failed items and the answered calls). Must not: write
//! mirror rows itself (the per-job files call the store), or read the clock except through
//! `PullOptions::clock`.

mod accounts;
mod reference;
mod stretches;
mod subscribers;
mod summary_days;

use chrono::{NaiveDate, SecondsFormat};

use super::options::{JobKind, Progress, PullOptions};
use super::outcome::{Answered, Tally};
use super::remote::{Remote, RemoteError, RemoteErrorKind};
use crate::store::{Counts, HeldBack, Mode, Outcome, RunStart, Store, StoreError, SummaryDays};

/// Why a job could not run or could not record its run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The options make no sense for this job; fix the config or the command line.
    #[error("invalid options for the {job} job: {message}")]
    Options { job: JobKind, message: String },
    /// The mirror failed; the run is recorded as failed if the mirror still allows it.
    #[error("the mirror failed during the {job} job: {source}")]
    Store {
        job: JobKind,
        #[source]
        source: StoreError,
    },
}

/// What a run did: the same facts as its `job_runs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub run_id: i64,
    pub job: JobKind,
    pub mode: Mode,
    pub outcome: Outcome,
    pub counts: Counts,
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// For `failed`: why; for `partial`: how many items failed and the first error.
    pub error: Option<String>,
    /// `summaries`: the days fetched, derived and bisected (also in `job_runs.days_*`).
    pub days: Option<SummaryDays>,
}

/// Runs one pull job once: records the run, fetches through `remote`, writes to `store`,
/// updates `progress`. Returns the report for `ok`, `partial` and `failed` runs alike;
/// `Err` only for invalid options or a mirror failure.
pub async fn run_job<R: Remote>(
    job: JobKind,
    remote: &R,
    store: &Store,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<JobReport, SyncError> {
    progress.reset();
    if opts.concurrency == 0 {
        return Err(SyncError::Options {
            job,
            message: "concurrency must be at least 1".into(),
        });
    }
    let remote = &Answered::new(remote, progress);
    match job {
        JobKind::Subscribers => subscribers::run(remote, store, opts, progress).await,
        JobKind::Payments | JobKind::Charges => {
            accounts::run_ledger(job, remote, store, opts, progress).await
        }
        JobKind::Summaries => accounts::run_summaries(remote, store, opts, progress).await,
        JobKind::Reference => reference::run(remote, store, opts, progress).await,
    }
}

/// A job body's verdict: `Ok(None)` done (ok or partial by item errors), `Ok(Some(why))`
/// stopped early (failed), `Err` the mirror failed.
type Verdict = Result<Option<String>, SyncError>;

/// Why a run that `PullOptions::stop` ended early is `failed` (its checkpoints are kept).
pub const INTERRUPTED: &str =
    "interrupted by shutdown at a safe point; the next run resumes from the checkpoint";

/// The verdict of a body that stopped between items when asked to.
fn interrupted(opts: &PullOptions) -> Option<String> {
    opts.stop.is_cancelled().then(|| INTERRUPTED.to_owned())
}

/// One recorded run.
struct Run<'a> {
    store: &'a Store,
    opts: &'a PullOptions,
    progress: &'a Progress,
    id: i64,
    job: JobKind,
    mode: Mode,
    window: Option<(NaiveDate, NaiveDate)>,
    counts: Counts,
    tally: Tally,
    /// Removals held back as over `max_removals` (the run is `partial`).
    held: Vec<HeldBack>,
    /// `summaries`: recorded with the run's end.
    days: Option<SummaryDays>,
}

impl<'a> Run<'a> {
    async fn start(
        store: &'a Store,
        opts: &'a PullOptions,
        progress: &'a Progress,
        job: JobKind,
        mode: Mode,
        window: Option<(NaiveDate, NaiveDate)>,
    ) -> Result<Run<'a>, SyncError> {
        let id = store
            .start_run(RunStart {
                job: job.as_str().to_owned(),
                mode,
                window,
                started_at: now(opts),
            })
            .await
            .map_err(|source| SyncError::Store { job, source })?;
        crate::logging::record_run_id(id);
        tracing::info!(job = %job, run_id = id, mode = mode.as_str(), ?window, "pull job started");
        Ok(Run {
            store,
            opts,
            progress,
            id,
            job,
            mode,
            window,
            counts: Counts::default(),
            tally: Tally::default(),
            held: Vec::new(),
            days: None,
        })
    }

    fn store_err(&self) -> impl FnOnce(StoreError) -> SyncError + use<> {
        let job = self.job;
        move |source| SyncError::Store { job, source }
    }

    /// Records that `item` failed; the run will be `partial`.
    async fn item_failed(&mut self, item: String, err: &RemoteError) -> Result<(), SyncError> {
        tracing::warn!(job = %self.job, run_id = self.id, item, error = %err, "pull item failed");
        self.counts.errors += 1;
        self.tally.failure(item.clone(), err.to_string());
        self.store
            .record_item_error(self.id, item, err.to_string(), now(self.opts))
            .await
            .map_err(self.store_err())
    }

    /// Notes removals held back as over the limit: logged now, the run ends `partial`.
    fn held_back(&mut self, held: HeldBack) {
        tracing::warn!(job = %self.job, run_id = self.id, held = held.held, of = held.of, scope = %held.scope, "{}", self.held_message(&held));
        self.held.push(held);
    }

    /// "held back N removals of M (X %) in node K: confirm with ... or raise ...".
    fn held_message(&self, held: &HeldBack) -> String {
        format!(
            "{}: confirm with `tariscope-sync confirm-removals {}` or raise jobs.{}.max_removals",
            held.describe(),
            self.id,
            self.job
        )
    }

    /// Records the end of the run. `clear` is the checkpoint key prefix to delete when the
    /// run is `ok`.
    async fn conclude(
        self,
        verdict: Verdict,
        clear: Option<String>,
    ) -> Result<JobReport, SyncError> {
        let (outcome, error, failure) = match verdict {
            Ok(None) => {
                let (outcome, error) = self.tally.outcome(self.progress.answered());
                match self.held.first() {
                    Some(first) if outcome != Outcome::Failed => {
                        let mut why = self.held_message(first);
                        if self.held.len() > 1 {
                            why.push_str(&format!(" (and {} more scopes)", self.held.len() - 1));
                        }
                        if let Some(e) = error {
                            why = format!("{why}; {e}");
                        }
                        (Outcome::Partial, Some(why), None)
                    }
                    _ => (outcome, error, None),
                }
            }
            Ok(Some(why)) => (Outcome::Failed, Some(why), None),
            Err(e) => (Outcome::Failed, Some(e.to_string()), Some(e)),
        };
        let clear = clear
            .filter(|_| outcome == Outcome::Ok)
            .map(|prefix| (self.job.as_str().to_owned(), prefix));
        let recorded = self
            .store
            .finish_run(
                self.id,
                outcome,
                self.counts,
                error.clone(),
                now(self.opts),
                clear,
            )
            .await
            .map_err(self.store_err());
        let held: u64 = self.held.iter().map(|h| h.held).sum();
        metrics::gauge!("tariscope_sync_held_removals", "job" => self.job.as_str())
            .set(held as f64);
        let recorded = match (recorded, self.days) {
            (Ok(()), Some(days)) => self
                .store
                .record_summary_days(self.id, days)
                .await
                .map_err(self.store_err()),
            (recorded, _) => recorded,
        };
        if let Some(d) = self.days {
            tracing::info!(job = %self.job, run_id = self.id, days_fetched = d.fetched, days_derived = d.derived, days_bisected = d.bisected, stretches_bisected = d.stretches, every_day_subscribers = d.every_day, "summary days");
        }
        tracing::info!(job = %self.job, run_id = self.id, outcome = outcome.as_str(), counts = ?self.counts, error = error.as_deref(), "pull job finished");
        if let Some(e) = failure {
            return Err(e);
        }
        recorded?;
        Ok(JobReport {
            run_id: self.id,
            job: self.job,
            mode: self.mode,
            outcome,
            counts: self.counts,
            window: self.window,
            error,
            days: self.days,
        })
    }
}

/// "Now" from the injected clock, as stored (RFC 3339 UTC, seconds).
fn now(opts: &PullOptions) -> String {
    opts.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An auth failure stops the run: every further call would fail the same way.
fn is_fatal(err: &RemoteError) -> bool {
    err.kind == RemoteErrorKind::Auth
}
