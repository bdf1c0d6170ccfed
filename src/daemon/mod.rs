//! Wiring: configuration in, a running daemon (or one pass of `--run-once`) out.
//!
//! Owns: opening the mirror and building the client from the validated [`Config`], the
//! daemon's main loop (scheduler, `/metrics` server, systemd notifications, watchdog,
//! shutdown), and `--run-once`. Must not: parse the command line or print (the binary and
//! `cmd` do), or read the clock or wait for signals itself: the [`Clock`] and the shutdown
//! future are injected so tests drive them.

mod ha;
pub mod jobs;
pub mod progress;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use ha::run_ha;
pub use jobs::{JobSummary, Jobs};

use crate::api::{Fence, TariscopeClient};
use crate::clock::Clock;
use crate::config::Config;
use crate::lock::{self, Holder, Wait};
use crate::notify::Notifier;
use crate::scheduler::{self, RunOutcome, ScheduledJob, SchedulerOptions};
use crate::serve::{self, Health};
use crate::store::{Leadership, Store, StoreError};
use crate::sync::Job;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything succeeded.
    Ok,
    /// 1: a runtime failure (API unreachable, mirror unusable, a job failed).
    Runtime,
    /// 2: partial failure: some items failed, the rest is done.
    Partial,
    /// 3: the configuration or the command line is invalid.
    Config,
    /// 75 (EX_TEMPFAIL): a selected job runs in another process; try again later.
    TempFail,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Runtime => 1,
            Exit::Partial => 2,
            Exit::Config => 3,
            Exit::TempFail => 75,
        }
    }

    /// The exit of a set of job outcomes: any failure → 1, else a job left to another
    /// process → 75, else any partial → 2.
    pub fn of(outcomes: impl IntoIterator<Item = RunOutcome>) -> Exit {
        outcomes
            .into_iter()
            .fold(Exit::Ok, |acc, o| match (acc, o) {
                (Exit::Runtime, _) | (_, RunOutcome::Failed) => Exit::Runtime,
                (Exit::TempFail, _) | (_, RunOutcome::Busy) => Exit::TempFail,
                (_, RunOutcome::Partial) => Exit::Partial,
                (acc, RunOutcome::Ok) => acc,
            })
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the mirror: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the API client: {0}")]
    Client(#[from] crate::api::ApiError),
    #[error(
        "cannot listen for the metrics endpoints on {addr}: {source} (change serve.listen, or leave it empty)"
    )]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// On a PostgreSQL mirror, another process leads for this Tariscope.
    #[error(
        "another tariscope-sync leads on the PostgreSQL mirror for {base_url} ({}) and runs the jobs; run this again when it has stopped, or leave the work to it",
        leader.as_deref().unwrap_or("its name is not known")
    )]
    NotLeader {
        base_url: String,
        leader: Option<String>,
    },
}

/// Opens the mirror and builds the client. On PostgreSQL this process must lead (jobs run
/// in one process per Tariscope at a time): `StartError::NotLeader` when another does.
pub fn open(config: &Config, clock: Clock) -> Result<Jobs, StartError> {
    let store = match &config.mirror.postgres {
        None => Store::open(&config.mirror.path)?,
        Some(target) => match Store::lead_postgres(target, &ha::election(config), &ha::holder())? {
            Leadership::Leader(store) => store,
            Leadership::Standby { leader } => {
                return Err(StartError::NotLeader {
                    base_url: config.api.base_url.clone(),
                    leader,
                });
            }
        },
    };
    with_store(config, clock, store)
}

/// The jobs over an open mirror.
fn with_store(config: &Config, clock: Clock, store: Store) -> Result<Jobs, StartError> {
    store.warn_wal_above(config.mirror.wal_warn_mib << 20);
    let mut client = TariscopeClient::new(config.client_config())?;
    if store.deposed().is_some() {
        client = client.with_fence(leader_fence(&store));
    }
    Ok(Jobs {
        config: config.clone(),
        client,
        store,
        clock,
        range: None,
        progress: Mutex::new(Vec::new()),
        last: Mutex::new(None),
        busy: Mutex::new(Vec::new()),
        ledger: Default::default(),
    })
}

/// The fence of a leader's Tariscope writes: each goes out only after its writer session
/// confirmed the leader lock, and only while that confirmation holds (a request that
/// waited in the client while this process was paused and a standby took over is refused,
/// not sent).
pub fn leader_fence(store: &Store) -> Fence {
    let store = store.clone();
    Fence::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.confirm_leadership().await {
                Ok(Some(until)) => Ok(until),
                Ok(None) => Err("the mirror takes part in no leader election".to_owned()),
                Err(e) => Err(format!("this daemon may no longer lead: {e}")),
            }
        })
    })
}

/// Marks runs left `running` by an interrupted process as failed (the jobs no other
/// process runs now: a running job's lock is held).
async fn close_interrupted_runs(jobs: &Jobs) -> Result<(), StoreError> {
    let me = Holder::this_process("daemon", jobs.clock.now());
    for job in Job::ALL {
        // On PostgreSQL this process leads: no other runs jobs (see `Jobs::run_locked`).
        if jobs.store.is_postgres() {
            jobs.close_running(job).await?;
        } else if let Ok(_held) =
            lock::try_acquire(&jobs.config.mirror.lock_base(), job.as_str(), &me)
        {
            jobs.close_running(job).await?;
        }
    }
    Ok(())
}

/// `--run-once`: the selected jobs once, in order, each under its lock (waiting for a job
/// another process runs as `wait` says; `on_wait` is told who holds it). Returns each
/// job's summary.
pub async fn run_once(
    jobs: &Jobs,
    selected: &[Job],
    stop: CancellationToken,
    wait: Wait,
    on_wait: &(dyn Fn(Job, Option<&Holder>) + Sync),
) -> Vec<JobSummary> {
    let mut out = Vec::new();
    for job in selected {
        if stop.is_cancelled() {
            break;
        }
        let summary = jobs
            .run_locked(*job, &stop, wait, "run-once", |h| on_wait(*job, h))
            .await;
        out.push(summary);
    }
    out
}

/// The last successful end time of each job, for catch-up.
async fn last_success(store: &Store, job: Job) -> Option<chrono::DateTime<chrono::Utc>> {
    let ok = store.last_ok_run(job.as_str()).await.ok()??;
    chrono::DateTime::parse_from_rfc3339(ok.ended_at.as_deref()?)
        .ok()
        .map(|t| t.to_utc())
}

/// The daemon: every enabled job on its schedule until `shutdown`. `listener` serves
/// `/metrics`, `/healthz`, `/readyz` (the caller binds `serve.listen`).
pub async fn run(
    jobs: Jobs,
    listener: Option<tokio::net::TcpListener>,
    notifier: Notifier,
    shutdown: impl Future<Output = ()>,
) -> Exit {
    let jobs = Arc::new(jobs);
    let health = Health::new(jobs.clock, 120);
    health.set_mirror_open(true);
    let server = serve_health(listener, &health);
    notifier.ready();
    let stopping = notifier.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.stopping();
    };
    let exit = lead(jobs, &health, &notifier, shutdown).await;
    server.stop().await;
    if exit == Exit::Ok {
        tracing::info!("daemon stopped");
    }
    exit
}

/// The metrics and health endpoints on `listener`, until stopped.
fn serve_health(listener: Option<tokio::net::TcpListener>, health: &Arc<Health>) -> Background {
    let health = health.clone();
    Background::spawn(|stop| {
        let server = listener.map(|l| {
            serve::serve(l, health, serve::install_metrics(), async move {
                stop.cancelled().await
            })
        });
        async move {
            if let Some(server) = server {
                server.await;
            }
        }
    })
}

/// Runs the jobs on their schedules until `shutdown` (the leader's part of the daemon).
async fn lead(
    jobs: Arc<Jobs>,
    health: &Arc<Health>,
    notifier: &Notifier,
    shutdown: impl Future<Output = ()>,
) -> Exit {
    if let Err(e) = close_interrupted_runs(&jobs).await {
        tracing::error!(error = %e, "the mirror is not usable");
        return Exit::Runtime;
    }
    match jobs.client.claims().await {
        Ok(_) => health.set_login_ok(true),
        Err(e) => {
            tracing::warn!(error = %e, "cannot log in to Tariscope yet; jobs will retry on schedule")
        }
    }
    let scheduled = scheduled_jobs(&jobs).await;
    tracing::info!(jobs = scheduled.len(), "daemon started");
    notifier.status(&format!(
        "{}running {} jobs",
        if jobs.store.is_postgres() {
            "leader: "
        } else {
            ""
        },
        scheduled.len()
    ));
    let ticker =
        Background::spawn(|stop| tick(jobs.clone(), health.clone(), notifier.clone(), stop));
    let options = SchedulerOptions {
        timezone: jobs.config.timezone,
        grace: jobs.config.shutdown_grace,
    };
    let finished = scheduler::run(scheduled, jobs.clone(), jobs.clock, options, shutdown).await;
    ticker.stop().await;
    if !finished {
        tracing::warn!(
            "some jobs did not finish within shutdown_grace_secs; they resume from their checkpoints"
        );
    }
    Exit::Ok
}

/// The enabled jobs with a schedule, as the scheduler takes them (the subscribers job
/// catches up first: the others need what it fetches).
async fn scheduled_jobs(jobs: &Jobs) -> Vec<ScheduledJob> {
    let mut scheduled = Vec::new();
    for job in jobs.config.select_jobs(&[]) {
        let Some(schedule) = jobs.config.jobs[&job].cron.clone() else {
            continue;
        };
        scheduled.push(ScheduledJob {
            name: job.as_str().to_string(),
            schedule,
            last_success: last_success(&jobs.store, job).await,
            catch_up_first: job == Job::Subscribers,
        });
    }
    scheduled
}

/// Every few seconds until `stop`: health, the systemd watchdog, and `STATUS=` with the
/// last run when it changed.
async fn tick(jobs: Arc<Jobs>, health: Arc<Health>, notifier: Notifier, stop: CancellationToken) {
    let every = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        health.tick();
        notifier.watchdog();
        let last = jobs.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(s) = last {
            let status = format!("last: {} {:?}: {}", s.job, s.outcome, s.detail);
            if status != last_status {
                notifier.status(&status);
                last_status = status;
            }
        }
        health.set_login_ok(jobs.client.stats().logins > 0);
    }
}

/// A task of the daemon's own (the metrics server, the ticker) that ends when told.
struct Background {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    fn spawn<F>(task: impl FnOnce(CancellationToken) -> F) -> Background
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(task(stop.clone()));
        Background { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_of_outcomes() {
        use RunOutcome::*;
        let exit = |o: &[RunOutcome]| Exit::of(o.iter().copied()).code();
        assert_eq!(exit(&[]), 0);
        assert_eq!(exit(&[Ok, Partial]), 2);
        assert_eq!(exit(&[Partial, Busy, Ok]), 75, "not run beats partly run");
        assert_eq!(exit(&[Busy, Failed]), 1, "a failure beats everything");
        assert_eq!(exit(&[Failed, Busy]), 1);
    }
}
