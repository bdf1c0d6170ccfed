//! Benchmark: a summaries backfill of 2,000 subscribers x 30 days with `accounts.summary` at
//! 20 ms emulator latency and concurrency 32, in both `jobs.summaries.mode`s:
//! * `every-day`: one request per subscriber and day. The latency limit is
//!   `subscribers * days * 20 ms / 32` (37.5 s); target: at least 90% of it.
//! * `active-days` (issue 14): the first and last day and the days with a charge or a
//!   payment, the rest derived; target: requests and wall time at most 35 % of `every-day`'s,
//!   with an equal mirror (checked here, all columns but `origin`).
//!
//! Both mirrors first get the subscribers, payments and charges of the window (not timed).
//!
//! `cargo bench --bench pull_summaries` (env `BENCH_SUBSCRIBERS` default 2000,
//! `BENCH_DAYS` 30, `BENCH_CONCURRENCY` 32, `BENCH_LATENCY_MS` 20, `BENCH_JOB_WIDTH`;
//! `BENCH_HIDDEN_ADJUSTMENTS=1` starts the emulator with `--hidden-adjustments`).
//!
//! `BENCH_CONCURRENCY` is the client's in-flight cap (the shared limiter, which is what the
//! latency limit is about); `BENCH_JOB_WIDTH` (default: the same) is how many subscribers
//! the job works on at once. A job wider than the cap keeps requests queued at the limiter,
//! so a slot freed by an answer is taken at once instead of after the job's own turnaround.

#[path = "pull_support.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use tariscope_sync::store::{Outcome, Store, StoreError};
use tariscope_sync::sync::{JobKind, Progress, PullOptions, Scope, SummariesMode, run_job};

/// Every column of `account_summaries` but `origin` and the timestamp, sorted.
async fn rows(store: &Store) -> Vec<String> {
    store
        .read(|c| {
            c.prepare(
                "SELECT subscriber_id || ' ' || date || ' ' || quote(start_debt) || ' ' ||
                     quote(end_debt) || ' ' || quote(charge) || ' ' || quote(payment)
                 FROM account_summaries ORDER BY subscriber_id, date",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|source| StoreError::Sql {
                context: "bench",
                source,
            })
        })
        .await
        .unwrap()
}

fn main() {
    let n = support::env_usize("BENCH_SUBSCRIBERS", 2_000);
    let days = support::env_usize("BENCH_DAYS", 30);
    let width = support::env_usize("BENCH_CONCURRENCY", 32);
    let latency = support::env_usize("BENCH_LATENCY_MS", 20);
    let job_width = support::env_usize("BENCH_JOB_WIDTH", width);
    let adjustments = std::env::var("BENCH_HIDDEN_ADJUSTMENTS").is_ok_and(|v| v == "1");
    let faults = format!(r#"{{"methods": {{"accounts.summary": {{"latency_ms": {latency}}}}}}}"#);
    let n_text = n.to_string();
    let mut args = vec![
        "--subscribers",
        &n_text,
        "--days",
        "60",
        "--end-date",
        "2026-03-01",
        "--log-format",
        "json",
    ];
    if adjustments {
        args.push("--hidden-adjustments");
    }
    let sim = support::Sim::start(&args, Some(&faults));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let remote = sim.remote(width);
        let dir = tempfile::tempdir().unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let from = to - Days::new(days as u64 - 1);
        let mut results = Vec::new();
        for mode in [SummariesMode::EveryDay, SummariesMode::ActiveDays] {
            let store = Store::open(dir.path().join(format!("{}.db", mode.as_str()))).unwrap();
            let mut opts = PullOptions::new(to);
            opts.scope = Scope { nodes: vec![1, 2], departments: vec![] };
            let r = run_job(JobKind::Subscribers, &remote, &store, &opts, &Progress::new()).await.unwrap();
            assert_eq!(r.counts.inserted as usize, n);
            opts.from = Some(from);
            opts.to = Some(to);
            opts.concurrency = job_width;
            opts.summaries_mode = mode;
            for job in [JobKind::Payments, JobKind::Charges] {
                let r = run_job(job, &remote, &store, &opts, &Progress::new()).await.unwrap();
                assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            }
            let t = Instant::now();
            let r = run_job(JobKind::Summaries, &remote, &store, &opts, &Progress::new()).await.unwrap();
            let wall = t.elapsed();
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            let d = r.days.unwrap();
            assert_eq!((d.fetched + d.derived) as usize, n * days);
            results.push((mode, d, wall, rows(&store).await));
        }
        assert!(results[0].3 == results[1].3, "active-days wrote other rows than every-day");
        let limit = Duration::from_millis(latency as u64) * (n * days) as u32 / width as u32;
        let (every_requests, every_wall) = (results[0].1.fetched, results[0].2);
        println!("summaries backfill: {n} subscribers x {days} days, client cap {width}, job width {job_width}, latency {latency} ms{}; mirrors equal", if adjustments { ", hidden adjustments" } else { "" });
        println!("{:<12} {:>9} {:>8} {:>9} {:>10} {:>10} {:>12}", "mode", "requests", "derived", "bisected", "wall s", "req/s", "vs every-day");
        for (mode, d, wall, _) in &results {
            println!(
                "{:<12} {:>9} {:>8} {:>9} {:>10.2} {:>10.0} {:>5.1} % req, {:.1} % wall",
                mode.as_str(),
                d.fetched,
                d.derived,
                d.bisected,
                wall.as_secs_f64(),
                d.fetched as f64 / wall.as_secs_f64(),
                100.0 * d.fetched as f64 / every_requests as f64,
                100.0 * wall.as_secs_f64() / every_wall.as_secs_f64(),
            );
        }
        println!(
            "every-day against its latency limit {:.2} s: {:.1}%",
            limit.as_secs_f64(),
            100.0 * limit.as_secs_f64() / every_wall.as_secs_f64()
        );
    });
}
