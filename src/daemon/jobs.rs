//! The jobs the daemon runs, by name: pull jobs and push, behind one [`JobRunner`].
//!
//! Owns: turning the configuration into per-job options, running one job by name,
//! recording metrics for it, and remembering the last outcome (for systemd `STATUS=`).
//! Must not: schedule (that is `scheduler`) or print (the CLI does).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::api::TariscopeClient;
use crate::clock::Clock;
use crate::config::Config;
use crate::scheduler::{JobRunner, RunOutcome};
use crate::store::{Outcome, Store};
use crate::sync::push::{PushOptions, run_push};
use crate::sync::{Job, Progress, PullOptions, run_job};

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

    /// Runs one job once. `stop` asks a running job to finish its batch; pull jobs commit a
    /// checkpoint per batch, so stopping between batches loses nothing.
    pub async fn run_named(&self, job: Job, stop: &CancellationToken) -> JobSummary {
        let progress = self.progress_of(job);
        let started = Instant::now();
        // run_id: recorded by the job when it records its run (`record_run_id`).
        let span = tracing::info_span!("job", job = job.as_str(), run_id = tracing::field::Empty);
        let _enter = span.enter();
        tracing::info!("job started");
        let _watch = super::progress::watch(
            job,
            progress.clone(),
            std::time::Duration::from_secs(self.config.log.progress_secs),
        );
        let summary = if job == Job::Push {
            match run_push(&self.client, &self.store, &self.push_options(), &progress).await {
                Ok(r) => JobSummary {
                    job,
                    outcome: outcome(r.outcome.unwrap_or(Outcome::Failed)),
                    items: progress.done(),
                    detail: format!(
                        "created {} (adopted {}), linked {}, updated {}, numbers {}, conflicts {}, failed {}, rejected {}{}",
                        r.created,
                        r.adopted,
                        r.linked,
                        r.updated,
                        r.dns_added,
                        r.conflicts,
                        r.failed,
                        r.rejected,
                        r.errors
                            .first()
                            .or(r.unverified.first())
                            .map(|e| format!("; first problem: {e}"))
                            .unwrap_or_default()
                    ),
                },
                Err(e) => failed(job, format!("{e}")),
            }
        } else if let Some(k) = job.pull() {
            let opts = self.pull_options(job);
            let run = run_job(k, &self.client, &self.store, &opts, &progress);
            let report = tokio::select! {
                r = run => r,
                _ = stop.cancelled() => {
                    tracing::info!("stopping: the job ends after its last committed batch");
                    if let Err(e) = self.close_running(job).await {
                        tracing::warn!(error = %e, "cannot record the interrupted run");
                    }
                    return failed(job, "stopped by shutdown; the next run resumes from the checkpoint".into());
                }
            };
            match report {
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
                    ),
                },
                Err(e) => failed(job, e.to_string()),
            }
        } else {
            failed(job, format!("{job} is neither push nor a pull job"))
        };
        let secs = started.elapsed().as_secs_f64();
        self.export_gauges().await;
        let label = match summary.outcome {
            RunOutcome::Ok => "ok",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
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
        summary
    }
}

impl Jobs {
    /// Records runs of `job` left `running` (interrupted by shutdown or a crash) as failed, so
    /// `status` tells the truth; the job resumes from its checkpoints.
    pub async fn close_running(&self, job: Job) -> Result<(), crate::store::StoreError> {
        let now = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for run in self
            .store
            .job_runs(job.as_str())
            .await?
            .into_iter()
            .filter(|r| r.outcome == Outcome::Running)
        {
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
        if let Ok(conflicts) = self.store.conflicts().await {
            let open = conflicts
                .iter()
                .filter(|c| c.resolution == "manual" || c.resolution == "blocked")
                .count();
            metrics::gauge!("tariscope_sync_open_conflicts").set(open as f64);
        }
    }
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

impl JobRunner for Jobs {
    async fn run(&self, job: &str, stop: CancellationToken) -> RunOutcome {
        match job.parse::<Job>() {
            Ok(job) => self.run_named(job, &stop).await.outcome,
            Err(e) => {
                tracing::error!("{e}");
                RunOutcome::Failed
            }
        }
    }
}
