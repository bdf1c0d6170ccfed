//! The scheduler: runs each job on its cron schedule, never overlapping itself, catching up
//! once after downtime, and stopping cleanly on shutdown.
//!
//! Owns: next-fire-time arithmetic (cron in the configured time zone), the per-job loop,
//! skipped-tick accounting, catch-up at start, and the grace period at shutdown.
//! Must not: know what a job does (a [`JobRunner`] runs it) or read the system clock
//! (the [`Clock`] is injected so tests drive time with `tokio::time::pause`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Ok,
    /// Some items failed.
    Partial,
    Failed,
    /// Not run: another process runs this job on the same mirror (see `lock`).
    Busy,
}

/// Runs a job by name. `stop` is cancelled at shutdown: finish the current batch, commit,
/// and return.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: &str, stop: CancellationToken) -> impl Future<Output = RunOutcome> + Send;
}

/// A job as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub name: String,
    pub schedule: cron::Schedule,
    /// End of the last successful run, from the mirror's run records (`None`: never ran).
    pub last_success: Option<DateTime<Utc>>,
    /// Catch up on this job before the others start theirs (they need what it fetches).
    pub catch_up_first: bool,
}

/// The first fire time of `schedule` strictly after `after`, evaluated in `tz`.
pub fn next_fire(schedule: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// True when a run is due at start: never ran, or a scheduled time passed since the last
/// success (the daemon was down through at least one period).
pub fn needs_catch_up(job: &ScheduledJob, tz: Tz, now: DateTime<Utc>) -> bool {
    match job.last_success {
        None => true,
        Some(last) => next_fire(&job.schedule, tz, last).is_some_and(|t| t <= now),
    }
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub timezone: Tz,
    /// How long running jobs get to finish after shutdown before they are abandoned.
    pub grace: Duration,
}

/// Runs every job on its schedule until `shutdown` resolves (first catching up on jobs whose
/// last success is older than one period: `catch_up_first` ones in order, then the rest
/// together); then stops starting runs, tells
/// running ones to stop and waits for them up to the grace period. Returns `true` when every
/// running job finished within the grace period.
pub async fn run<R: JobRunner>(
    jobs: Vec<ScheduledJob>,
    runner: Arc<R>,
    clock: Clock,
    options: SchedulerOptions,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let tz = options.timezone;
    {
        // Jobs marked `catch_up_first` catch up one after the other before the rest start
        // (the account jobs and push need the subscribers in the mirror); the others catch
        // up concurrently in their own loops.
        let (runner, stop) = (runner.clone(), stop.clone());
        tasks.spawn(async move {
            for job in jobs.iter().filter(|j| j.catch_up_first) {
                if stop.is_cancelled() {
                    return;
                }
                if needs_catch_up(job, tz, clock.now()) {
                    tracing::info!(job = %job.name, last_success = ?job.last_success, "catching up: a scheduled run was missed");
                    run_one(job, &runner, clock, tz, &stop).await;
                }
            }
            let mut loops = JoinSet::new();
            for job in jobs {
                loops.spawn(job_loop(job, runner.clone(), clock, tz, stop.clone()));
            }
            while loops.join_next().await.is_some() {}
        });
    }
    shutdown.await;
    tracing::info!(
        grace_secs = options.grace.as_secs(),
        "shutdown: no new job runs; waiting for running ones"
    );
    stop.cancel();
    let drained = tokio::time::timeout(options.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over: abandoning jobs still running");
        tasks.abort_all();
        return false;
    }
    true
}

async fn job_loop<R: JobRunner>(
    job: ScheduledJob,
    runner: Arc<R>,
    clock: Clock,
    tz: Tz,
    stop: CancellationToken,
) {
    let name = job.name.as_str();
    if !job.catch_up_first && needs_catch_up(&job, tz, clock.now()) {
        tracing::info!(job = name, last_success = ?job.last_success, "catching up: a scheduled run was missed");
        run_one(&job, &runner, clock, tz, &stop).await;
    }
    loop {
        let Some(next) = next_fire(&job.schedule, tz, clock.now()) else {
            tracing::warn!(job = name, "schedule has no future fire time; job stops");
            return;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(clock.instant_at(next)) => {}
        }
        if stop.is_cancelled() {
            return;
        }
        run_one(&job, &runner, clock, tz, &stop).await;
    }
}

async fn run_one<R: JobRunner>(
    job: &ScheduledJob,
    runner: &Arc<R>,
    clock: Clock,
    tz: Tz,
    stop: &CancellationToken,
) {
    let started = clock.now();
    let outcome = runner.run(&job.name, stop.clone()).await;
    let ended = clock.now();
    // The loop awaits the run, so a job never overlaps itself; ticks that fell inside the
    // run are skipped, and said so.
    let skipped = job
        .schedule
        .after(&started.with_timezone(&tz))
        .take_while(|t| t.with_timezone(&Utc) < ended)
        .count();
    if skipped > 0 {
        tracing::warn!(job = %job.name, skipped, "run outlasted its period; skipped ticks (no overlap)");
    }
    tracing::debug!(job = %job.name, ?outcome, secs = (ended - started).num_seconds(), "job run ended");
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
