//! Shutdown keeps the promise of `Jobs::run_named` (issue 17): `stop` asks a running pull job
//! to finish the items in flight and start no more. Against a slow emulator: the job returns
//! at a safe point, its run is recorded as interrupted with counts that match what it
//! wrote, everything written is covered by its checkpoints, and the next run fetches only
//! the rest. And the job's span covers the job only: other tasks' events never carry it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tariscope_sync::clock::Clock;
use tariscope_sync::daemon::{self, JobSummary, Jobs};
use tariscope_sync::scheduler::RunOutcome;
use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle};
use tariscope_sync::store::Outcome;
use tariscope_sync::sync::Job;
use tokio_util::sync::CancellationToken;

const SUBSCRIBERS: usize = 12;
const DAYS: i64 = 20;

/// The tests of this file run one at a time: the span test installs a thread-local log
/// subscriber, and tracing caches a call site's interest when it is first hit, so a job
/// running at the same moment in another test's thread could leave the span test's call
/// sites switched off (seen as a log without a single job event).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup(dir: &std::path::Path) -> (SimHandle, Jobs) {
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed: 17,
            nodes: 1,
            departments_per_node: 1,
            subscribers: SUBSCRIBERS,
            days: 30,
            end_date: None,
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0.0\n\
             [retry]\nmax_attempts = 1\n\
             [mirror]\npath = \"{}\"\n\
             [scope]\nnodes = [1]\n\
             [serve]\nlisten = \"\"\n\
             [jobs.summaries]\nconcurrency = 2\n",
            sim.base_url(),
            dir.join("mirror.db").display()
        ),
    )
    .unwrap();
    let (config, _) = tariscope_sync::config::load(Some(&path), &HashMap::new()).unwrap();
    let jobs = daemon::open(&config, Clock::system()).unwrap();
    (sim, jobs)
}

/// Pulls the subscribers, then starts a backfill of `job` over the DAYS days ending two days
/// ago (so every written day is checkpointed) with `method` answering slowly, stops it once
/// `method` was asked `asked` times, and returns the job's summary. `latency` must leave the
/// rest of the job far longer than a loaded machine takes to notice and send the stop.
async fn stop_a_backfill(
    sim: &SimHandle,
    mut jobs: Jobs,
    job: Job,
    method: &str,
    asked: u64,
    latency: Duration,
) -> (Arc<Jobs>, JobSummary) {
    let never = CancellationToken::new();
    let first = jobs.run_named(Job::Subscribers, &never).await;
    assert_eq!(first.outcome, RunOutcome::Ok, "{first:?}");
    let to = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    jobs.range = Some((to - chrono::Duration::days(DAYS - 1), Some(to)));
    sim.set_method_fault(
        method,
        Fault {
            latency,
            ..Fault::default()
        },
    );
    let jobs = Arc::new(jobs);
    let stop = CancellationToken::new();
    let running = {
        let (jobs, stop) = (jobs.clone(), stop.clone());
        tokio::spawn(async move { jobs.run_named(job, &stop).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.request_count(method) < asked {
        assert!(Instant::now() < deadline, "the backfill never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(summary.outcome, RunOutcome::Failed, "{summary:?}");
    assert!(summary.detail.contains("interrupted"), "{summary:?}");
    let runs = jobs.store.job_runs(job.as_str()).await.unwrap();
    assert_eq!(runs[0].outcome, Outcome::Failed, "{runs:?}");
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted"),
        "recorded as interrupted: {runs:?}"
    );
    sim.clear_faults();
    (jobs, summary)
}

async fn rows(jobs: &Jobs, table: &str) -> u64 {
    jobs.store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == table)
        .unwrap()
        .1 as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pull_ends_at_a_safe_point_recorded_as_interrupted() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (sim, jobs) = setup(dir.path()).await;
    let (jobs, _) = stop_a_backfill(
        &sim,
        jobs,
        Job::Summaries,
        "accounts.summary",
        20,
        Duration::from_millis(30),
    )
    .await;
    let total = SUBSCRIBERS as u64 * DAYS as u64;
    let runs = jobs.store.job_runs("summaries").await.unwrap();
    let rows = rows(&jobs, "account_summaries").await;
    assert!(
        rows > 0 && rows < total,
        "stopped part-way: {rows} of {total}"
    );
    assert_eq!(
        (runs[0].counts.fetched, runs[0].counts.inserted),
        (rows, rows),
        "the interrupted run's record matches what it wrote: {runs:?}"
    );

    // Resuming fetches exactly the days no checkpoint covers.
    sim.reset_counters();
    let second = jobs
        .run_named(Job::Summaries, &CancellationToken::new())
        .await;
    assert_eq!(second.outcome, RunOutcome::Ok, "{second:?}");
    assert_eq!(sim.request_count("accounts.summary"), total - rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_payments_pull_keeps_what_it_wrote_and_resumes_after_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (sim, jobs) = setup(dir.path()).await;
    let (jobs, _) = stop_a_backfill(
        &sim,
        jobs,
        Job::Payments,
        "accounts.payments",
        3,
        Duration::from_millis(400),
    )
    .await;
    let asked = sim.request_count("accounts.payments");
    assert!(asked < SUBSCRIBERS as u64, "stopped part-way: {asked}");
    let runs = jobs.store.job_runs("payments").await.unwrap();
    assert_eq!(
        runs[0].counts.fetched,
        rows(&jobs, "payments").await,
        "{runs:?}"
    );

    sim.reset_counters();
    let second = jobs
        .run_named(Job::Payments, &CancellationToken::new())
        .await;
    assert_eq!(second.outcome, RunOutcome::Ok, "{second:?}");
    assert_eq!(
        sim.request_count("accounts.payments"),
        SUBSCRIBERS as u64 - asked,
        "resumed after the subscribers the stopped run finished"
    );
}

/// One thread: while the job waits for Tariscope, the other task runs on the same thread.
#[tokio::test(flavor = "current_thread")]
async fn other_tasks_events_do_not_carry_the_job_span() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let logs = tempfile::tempdir().unwrap();
    let log_file = logs.path().join("log.txt");
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(
            std::fs::File::create(&log_file).unwrap(),
        ))
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let (sim, jobs) = setup(dir.path()).await;
    sim.set_method_fault(
        "subscriber.list.node",
        Fault {
            latency: Duration::from_millis(50),
            ..Fault::default()
        },
    );
    let other = tokio::spawn(async {
        loop {
            tracing::info!("other task tick");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let summary = jobs
        .run_named(Job::Subscribers, &CancellationToken::new())
        .await;
    other.abort();
    assert_eq!(summary.outcome, RunOutcome::Ok, "{summary:?}");
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("job{job=\"subscribers\"}: ") && log.contains("other task tick"),
        "{log}"
    );
    let leaked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("other task tick") && l.contains("job{"))
        .collect();
    assert!(
        leaked.is_empty(),
        "another task's events carry the job span: {leaked:?}"
    );
}
