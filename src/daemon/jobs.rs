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
use crate::sync::{JobKind, Progress, PullOptions, Scope, run_job};

/// A finished run, as the CLI and the notifier report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub job: String,
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
    /// Progress per job name, for progress bars.
    pub progress: Mutex<Vec<(String, Arc<Progress>)>>,
    /// The last run's summary (for `STATUS=`).
    pub last: Mutex<Option<JobSummary>>,
}

fn kind(name: &str) -> Option<JobKind> {
    JobKind::ALL.into_iter().find(|k| k.as_str() == name)
}

impl Jobs {
    /// The progress counter of `job` (created on first use).
    pub fn progress_of(&self, job: &str) -> Arc<Progress> {
        let mut list = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = list.iter().find(|(n, _)| n == job) {
            return p.clone();
        }
        let p = Progress::new();
        list.push((job.to_string(), p.clone()));
        p
    }

    fn today(&self) -> NaiveDate {
        self.clock
            .now()
            .with_timezone(&self.config.timezone)
            .date_naive()
    }

    pub fn pull_options(&self, job: &str) -> PullOptions {
        let settings = &self.config.jobs[job];
        let mut o = PullOptions::new(self.today());
        o.scope = Scope {
            nodes: self.config.scope.nodes.clone(),
            departments: self.config.scope.departments.clone(),
        };
        o.lookback_days = settings.lookback_days;
        o.concurrency = settings.concurrency;
        o.clock = Arc::new(self.clock);
        if let Some((from, to)) = self.range {
            o.from = Some(from);
            o.to = Some(to.unwrap_or_else(|| self.today()));
        }
        o
    }

    pub fn push_options(&self) -> PushOptions {
        push_options(&self.config, self.clock)
    }

    /// Runs one job once. `stop` asks a running job to finish its batch; pull jobs commit a
    /// checkpoint per batch, so stopping between batches loses nothing.
    pub async fn run_named(&self, job: &str, stop: &CancellationToken) -> JobSummary {
        let progress = self.progress_of(job);
        let started = Instant::now();
        let span = tracing::info_span!("job", job);
        let _enter = span.enter();
        tracing::info!("job started");
        let summary = if job == "push" {
            match run_push(&self.client, &self.store, &self.push_options(), &progress).await {
                Ok(r) => JobSummary {
                    job: job.into(),
                    outcome: outcome(r.outcome.unwrap_or(Outcome::Failed)),
                    items: progress.done(),
                    detail: format!(
                        "created {} (adopted {}), linked {}, updated {}, numbers {}, conflicts {}, failed {}{}",
                        r.created,
                        r.adopted,
                        r.linked,
                        r.updated,
                        r.dns_added,
                        r.conflicts,
                        r.failed,
                        r.errors
                            .first()
                            .or(r.unverified.first())
                            .map(|e| format!("; first problem: {e}"))
                            .unwrap_or_default()
                    ),
                },
                Err(e) => failed(job, format!("{e}")),
            }
        } else if let Some(k) = kind(job) {
            let opts = self.pull_options(job);
            let run = run_job(k, &self.client, &self.store, &opts, &progress);
            let report = tokio::select! {
                r = run => r,
                _ = stop.cancelled() => {
                    tracing::info!("stopping: the job ends after its last committed batch");
                    return failed(job, "stopped by shutdown; the next run resumes from the checkpoint".into());
                }
            };
            match report {
                Ok(r) => JobSummary {
                    job: job.into(),
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
            failed(job, format!("unknown job {job:?}"))
        };
        let secs = started.elapsed().as_secs_f64();
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

/// Push settings from the configuration.
pub fn push_options(config: &Config, clock: Clock) -> PushOptions {
    use crate::sync::fields::Field;
    let natural_key = match config.push.natural_key.as_str() {
        "account_number" => Some(Field::AccountId),
        "contract_number" => Some(Field::ContractId),
        "email" => Some(Field::Email),
        "edrpou" => Some(Field::Edrpou),
        "personal_code" => Some(Field::PersonalCode),
        _ => None,
    };
    PushOptions {
        policy: config.push.conflict_policy.parse().unwrap_or_default(),
        natural_key,
        max_attempts: config.push.max_attempts,
        concurrency: config.jobs["push"].concurrency,
        clock: Arc::new(clock),
    }
}

fn outcome(o: Outcome) -> RunOutcome {
    match o {
        Outcome::Ok => RunOutcome::Ok,
        Outcome::Partial => RunOutcome::Partial,
        Outcome::Failed | Outcome::Running => RunOutcome::Failed,
    }
}

fn failed(job: &str, detail: String) -> JobSummary {
    JobSummary {
        job: job.into(),
        outcome: RunOutcome::Failed,
        items: 0,
        detail,
    }
}

impl JobRunner for Jobs {
    async fn run(&self, job: &str, stop: CancellationToken) -> RunOutcome {
        self.run_named(job, &stop).await.outcome
    }
}
