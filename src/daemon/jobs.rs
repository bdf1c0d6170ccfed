//! The jobs the daemon runs, by name: pull jobs and push, behind one [`JobRunner`].
//!
//! Owns: turning the configuration into per-job options, running one job by name,
//! recording metrics for it, and remembering the last outcome (for systemd `STATUS=`).
//! Must not: schedule (that is `scheduler`) or print (the CLI does).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::TariscopeClient;
use crate::clock::Clock;
use crate::config::Config;
use crate::lock::{self, Holder, LockError, Wait};
use crate::scheduler::{JobRunner, RunOutcome};
use crate::store::{Outcome, Store, SummaryDays};
use crate::sync::push::{PushOptions, run_push};
use crate::sync::{Job, JobKind, Progress, PullOptions, run_job};

/// A finished run, as the CLI and the notifier report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub job: Job,
    pub outcome: RunOutcome,
    /// Items done (records for pulls, desired rows for push).
    pub items: u64,
    pub detail: String,
}

/// Runs jobs by name against one client and one mirror.
pub struct Jobs {
    pub config: Config,
    pub client: TariscopeClient,
    pub store: Store,
    pub clock: Clock,
    /// Backfill range for payments, charges and summaries (`--from/--to`).
    pub range: Option<(NaiveDate, Option<NaiveDate>)>,
    /// Progress per job, for progress bars.
    pub progress: Mutex<Vec<(Job, Arc<Progress>)>>,
    /// The last run's summary (for `STATUS=`).
    pub last: Mutex<Option<JobSummary>>,
    /// Jobs the daemon found running in another process (logged once until free again).
    pub busy: Mutex<Vec<Job>>,
    /// Payments and charges runs in progress: the summaries job waits for them.
    pub ledger: LedgerGate,
}

/// Payments and charges runs in progress. The summaries job starts only when none is, so
/// that the days it reads from the mirror are those the ledger jobs finished (issue 14;
/// subscribers whose ledger pull of the window is incomplete are fetched every day anyway).
pub struct LedgerGate(tokio::sync::watch::Sender<u32>);

impl Default for LedgerGate {
    fn default() -> Self {
        LedgerGate(tokio::sync::watch::channel(0).0)
    }
}

impl LedgerGate {
    /// Marks a ledger run in progress until the pass is dropped.
    fn enter(&self) -> LedgerPass<'_> {
        self.0.send_modify(|n| *n += 1);
        LedgerPass(self)
    }

    /// Waits until no ledger run is in progress.
    async fn idle(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

struct LedgerPass<'a>(&'a LedgerGate);

impl Drop for LedgerPass<'_> {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Jobs {
    /// The progress counter of `job` (created on first use).
    pub fn progress_of(&self, job: Job) -> Arc<Progress> {
        let mut list = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = list.iter().find(|(n, _)| *n == job) {
            return p.clone();
        }
        let p = Progress::new();
        list.push((job, p.clone()));
        p
    }

    fn today(&self) -> NaiveDate {
        self.clock
            .now()
            .with_timezone(&self.config.timezone)
            .date_naive()
    }

    pub fn pull_options(&self, job: Job) -> PullOptions {
        let settings = &self.config.jobs[&job];
        let mut o = PullOptions::new(self.today());
        o.scope = self.config.scope.clone();
        o.lookback_days = settings.lookback_days;
        o.concurrency = settings.concurrency;
        o.max_removals = settings.max_removals;
        o.summaries_mode = self.config.summaries_mode;
        o.clock = self.clock;
        if let Some((from, to)) = self.range {
            o.from = Some(from);
            o.to = Some(to.unwrap_or_else(|| self.today()));
        }
        o
    }

    pub fn push_options(&self) -> PushOptions {
        self.config.push_options(self.clock)
    }

    /// Runs `job` once unless another process runs it: takes the job's lock beside the
    /// SQLite mirror (waiting as `wait` says, calling `on_wait` with the holder once if it
    /// waits; on PostgreSQL the leader lock this process holds stands for it),
    /// closes runs of the job left `running` by a crashed process, runs it, and releases
    /// the lock. A job another process runs is `Busy`. `mode` says who holds the lock
    /// (`daemon`, `run-once`).
    pub async fn run_locked(
        &self,
        job: Job,
        stop: &CancellationToken,
        wait: Wait,
        mode: &str,
        on_wait: impl FnOnce(Option<&Holder>),
    ) -> JobSummary {
        let me = Holder::this_process(mode, self.clock.now());
        let path = &self.config.mirror.lock_base();
        // On PostgreSQL only the leader runs jobs (`daemon::ha`): its leader lock keeps
        // every other process, on any host, from running them. A file lock would outlive a
        // paused leader and keep the new one from working.
        let held = if self.store.is_postgres() {
            None
        } else {
            match lock::acquire(path, job.as_str(), &me, wait, stop, on_wait).await {
                Ok(held) => Some(held),
                Err(e @ LockError::Busy { .. }) => {
                    return JobSummary {
                        job,
                        outcome: RunOutcome::Busy,
                        items: 0,
                        detail: e.to_string(),
                    };
                }
                Err(e) => return failed(job, e.to_string()),
            }
        };
        if let Err(e) = self.close_running(job).await {
            tracing::warn!(job = job.as_str(), error = %e, "cannot close interrupted runs");
        }
        let summary = self.run_named(job, stop).await;
        drop(held);
        summary
    }

    /// Runs one job once, without its lock (callers take it: [`Jobs::run_locked`]). `stop`
    /// asks a running job to finish its batch: a pull job finishes the items in flight (each
    /// written with its checkpoint), starts no more and records its run as interrupted, so
    /// stopping loses nothing.
    pub async fn run_named(&self, job: Job, stop: &CancellationToken) -> JobSummary {
        // run_id: recorded by the job when it records its run (`record_run_id`).
        let span = tracing::info_span!("job", job = job.as_str(), run_id = tracing::field::Empty);
        async {
            let started = Instant::now();
            tracing::info!("job started");
            let progress = self.progress_of(job);
            let _watch = super::progress::watch(
                job,
                progress.clone(),
                std::time::Duration::from_secs(self.config.log.progress_secs),
            );
            let summary = match (job, job.pull()) {
                (Job::Push, _) => self.push(stop, &progress).await,
                (_, Some(kind)) => self.pull(job, kind, stop, &progress).await,
                (_, None) => failed(job, format!("{job} is neither push nor a pull job")),
            };
            self.record(&summary, started.elapsed().as_secs_f64()).await;
            summary
        }
        .instrument(span)
        .await
    }

    /// The push job, summarised; `stop` ends it between rows.
    async fn push(&self, stop: &CancellationToken, progress: &Progress) -> JobSummary {
        let job = Job::Push;
        match run_push(
            &self.client,
            &self.store,
            &self.push_options(),
            progress,
            stop,
        )
        .await
        {
            Ok(r) => JobSummary {
                job,
                outcome: outcome(r.outcome.unwrap_or(Outcome::Failed)),
                items: progress.done(),
                detail: format!(
                    "created {} (adopted {}), linked {}, updated {}, numbers {}, conflicts {}, failed {}, rejected {}; {}{}",
                    r.created,
                    r.adopted,
                    r.linked,
                    r.updated,
                    r.dns_added,
                    r.conflicts,
                    r.failed,
                    r.rejected,
                    payments_detail(&r.payments),
                    r.errors
                        .first()
                        .or(r.unverified.first())
                        .map(|e| format!("; first problem: {e}"))
                        .unwrap_or_default()
                ),
            },
            Err(e) => failed(job, format!("{e}")),
        }
    }

    /// A pull job, summarised; `stop` ends it between items (see [`PullOptions::stop`]).
    async fn pull(
        &self,
        job: Job,
        kind: JobKind,
        stop: &CancellationToken,
        progress: &Progress,
    ) -> JobSummary {
        let _ledger = matches!(job, Job::Payments | Job::Charges).then(|| self.ledger.enter());
        if job == Job::Summaries && *self.ledger.0.borrow() > 0 {
            tracing::info!("waiting for the payments and charges runs in progress");
            tokio::select! {
                _ = self.ledger.idle() => {}
                _ = stop.cancelled() => return failed(job, "stopped by shutdown before it started".into()),
            }
        }
        let mut opts = self.pull_options(job);
        opts.stop = stop.clone();
        match run_job(kind, &self.client, &self.store, &opts, progress).await {
            Ok(r) => JobSummary {
                job,
                outcome: outcome(r.outcome),
                items: r.counts.fetched,
                detail: format!(
                    "fetched {}, inserted {}, updated {}, removed {}, unchanged {}, errors {}{}",
                    r.counts.fetched,
                    r.counts.inserted,
                    r.counts.updated,
                    r.counts.removed,
                    r.counts.unchanged,
                    r.counts.errors,
                    r.error.map(|e| format!("; {e}")).unwrap_or_default()
                ) + &r.days.map(summary_days).unwrap_or_default(),
            },
            Err(e) => failed(job, e.to_string()),
        }
    }

    /// Metrics and the log line of a finished run; remembers it for `STATUS=`.
    async fn record(&self, summary: &JobSummary, secs: f64) {
        let job = summary.job;
        self.export_gauges().await;
        let label = match summary.outcome {
            RunOutcome::Ok => "ok",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed | RunOutcome::Busy => "failed",
        };
        metrics::counter!("tariscope_sync_job_runs_total", "job" => job.to_string(), "outcome" => label).increment(1);
        metrics::histogram!("tariscope_sync_job_duration_seconds", "job" => job.to_string())
            .record(secs);
        metrics::counter!("tariscope_sync_records_total", "job" => job.to_string())
            .increment(summary.items);
        if summary.outcome == RunOutcome::Ok {
            metrics::gauge!("tariscope_sync_last_success_timestamp_seconds", "job" => job.to_string())
                .set(self.clock.now().timestamp() as f64);
        }
        match summary.outcome {
            RunOutcome::Ok => tracing::info!(secs, detail = %summary.detail, "job finished"),
            _ => {
                tracing::warn!(secs, outcome = label, detail = %summary.detail, "job finished with problems")
            }
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
        self.store.release_memory().await;
        crate::memory::release_free_memory();
    }
}

impl Jobs {
    /// Records runs of `job` left `running` (interrupted by shutdown or a crash) as failed, so
    /// `status` tells the truth; the job resumes from its checkpoints. Only while holding
    /// the job's lock (or knowing no other process runs it).
    pub async fn close_running(&self, job: Job) -> Result<(), crate::store::StoreError> {
        let now = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for run in self.store.runs_left_running(job.as_str()).await? {
            let why = "interrupted (shutdown or crash); the next run resumes from the checkpoint"
                .to_string();
            self.store
                .finish_run(
                    run.id,
                    Outcome::Failed,
                    run.counts,
                    Some(why),
                    now.clone(),
                    None,
                )
                .await?;
        }
        Ok(())
    }

    /// Gauges read from the mirror and the client after each run.
    async fn export_gauges(&self) {
        let stats = self.client.stats();
        metrics::counter!("tariscope_sync_api_logins_total").absolute(stats.logins);
        metrics::counter!("tariscope_sync_api_outcome_unknown_total")
            .absolute(stats.outcome_unknown);
        if let Ok(open) = self.store.outbox_open().await {
            metrics::gauge!("tariscope_sync_outbox_depth").set(open.len() as f64);
        }
        if let Ok(p) = self.store.payment_states().await {
            for (state, n, amount) in p.states {
                metrics::gauge!("tariscope_sync_desired_payments", "state" => state).set(n as f64);
                // A gauge is a float: the exact amounts are in the mirror and `status`.
                let amount = amount.to_string().parse::<f64>().unwrap_or(f64::NAN);
                metrics::gauge!("tariscope_sync_desired_payments_amount", "state" => state)
                    .set(amount);
            }
        }
        if let Ok(conflicts) = self.store.conflicts().await {
            let open = conflicts
                .iter()
                .filter(|c| c.resolution == "manual" || c.resolution == "blocked")
                .count();
            metrics::gauge!("tariscope_sync_open_conflicts").set(open as f64);
        }
    }
}

/// A push run's payment step: counted in the metrics, and as text for the run's detail.
fn payments_detail(p: &crate::sync::push::PaymentReport) -> String {
    metrics::counter!("tariscope_sync_payments_posted_total").increment(p.posted);
    let first = p
        .errors
        .first()
        .map(|(r, e)| format!(" (first: payment {r}: {e})"))
        .unwrap_or_default();
    format!(
        "payments posted {} (found by look-up {}), ambiguous {}, waiting {}, rejected {}, failed {}{first}",
        p.posted, p.found, p.ambiguous, p.waiting, p.rejected, p.failed
    )
}

/// The summaries job's day counts: into the metrics, and as text for the run's detail.
fn summary_days(d: SummaryDays) -> String {
    for (origin, n) in [("fetched", d.fetched), ("derived", d.derived)] {
        metrics::counter!("tariscope_sync_balance_dates_total", "origin" => origin).increment(n);
    }
    metrics::counter!("tariscope_sync_balance_dates_bisected_total").increment(d.bisected);
    metrics::counter!("tariscope_sync_balance_stretches_bisected_total").increment(d.stretches);
    metrics::counter!("tariscope_sync_balance_fallback_subscribers_total").increment(d.every_day);
    format!(
        "; days fetched {}, derived {}, bisected {} ({} stretches), subscribers fetched every day {}",
        d.fetched, d.derived, d.bisected, d.stretches, d.every_day
    )
}

fn outcome(o: Outcome) -> RunOutcome {
    match o {
        Outcome::Ok => RunOutcome::Ok,
        Outcome::Partial => RunOutcome::Partial,
        Outcome::Failed | Outcome::Running => RunOutcome::Failed,
    }
}

fn failed(job: Job, detail: String) -> JobSummary {
    JobSummary {
        job,
        outcome: RunOutcome::Failed,
        items: 0,
        detail,
    }
}

impl Jobs {
    /// Logs a job the daemon skips because another process runs it, once until it is free.
    fn note_busy(&self, summary: &JobSummary) {
        if summary.outcome == RunOutcome::Busy {
            metrics::counter!("tariscope_sync_job_skipped_total", "job" => summary.job.to_string())
                .increment(1);
        }
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let known = busy.iter().position(|j| *j == summary.job);
        match (summary.outcome, known) {
            (RunOutcome::Busy, None) => {
                busy.push(summary.job);
                tracing::warn!(
                    job = summary.job.as_str(),
                    "skipping this tick: {}; later ticks are skipped quietly until it is free",
                    summary.detail
                );
            }
            (RunOutcome::Busy, Some(_)) => {
                tracing::debug!(
                    job = summary.job.as_str(),
                    "skipping this tick: {}",
                    summary.detail
                );
            }
            (_, Some(i)) => {
                busy.remove(i);
                tracing::info!(
                    job = summary.job.as_str(),
                    "the job ran here again: the other process no longer runs it"
                );
            }
            (_, None) => {}
        }
    }
}

impl JobRunner for Jobs {
    async fn run(&self, job: &str, stop: CancellationToken) -> RunOutcome {
        match job.parse::<Job>() {
            Ok(job) => {
                let summary = self
                    .run_locked(job, &stop, Wait::No, "daemon", |_| {})
                    .await;
                self.note_busy(&summary);
                summary.outcome
            }
            Err(e) => {
                tracing::error!("{e}");
                RunOutcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LedgerGate;

    #[tokio::test]
    async fn summaries_wait_until_no_ledger_run_is_in_progress() {
        let gate = LedgerGate::default();
        gate.idle().await;
        let payments = gate.enter();
        let charges = gate.enter();
        let idle = gate.idle();
        tokio::pin!(idle);
        drop(payments);
        tokio::select! {
            biased;
            _ = &mut idle => panic!("went ahead while charges was running"),
            _ = tokio::task::yield_now() => {}
        }
        drop(charges);
        idle.await;
    }
}
