//! Benchmark: summaries backfill of 2,000 subscribers x 30 days with `accounts.summary` at
//! 20 ms emulator latency and concurrency 32. The latency limit is
//! `subscribers * days * 20 ms / 32` (37.5 s); target: at least 90% of it.
//!
//! `cargo bench --bench pull_summaries` (env `BENCH_SUBSCRIBERS` default 2000,
//! `BENCH_DAYS` 30, `BENCH_CONCURRENCY` 32, `BENCH_LATENCY_MS` 20, `BENCH_JOB_WIDTH`).
//!
//! `BENCH_CONCURRENCY` is the client's in-flight cap (the shared limiter, which is what the
//! latency limit is about); `BENCH_JOB_WIDTH` (default: the same) is how many subscribers
//! the job works on at once. A job wider than the cap keeps requests queued at the limiter,
//! so a slot freed by an answer is taken at once instead of after the job's own turnaround.

#[path = "pull_support.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use tariscope_sync::store::{Outcome, Store};
use tariscope_sync::sync::{JobKind, Progress, PullOptions, Scope, run_job};

fn main() {
    let n = support::env_usize("BENCH_SUBSCRIBERS", 2_000);
    let days = support::env_usize("BENCH_DAYS", 30);
    let width = support::env_usize("BENCH_CONCURRENCY", 32);
    let latency = support::env_usize("BENCH_LATENCY_MS", 20);
    let job_width = support::env_usize("BENCH_JOB_WIDTH", width);
    let faults = format!(r#"{{"methods": {{"accounts.summary": {{"latency_ms": {latency}}}}}}}"#);
    let sim = support::Sim::start(
        &[
            "--subscribers",
            &n.to_string(),
            "--days",
            "60",
            "--end-date",
            "2026-03-01",
            "--log-format",
            "json",
        ],
        Some(&faults),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let remote = sim.remote(width);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mirror.db")).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut opts = PullOptions::new(to);
        opts.scope = Scope { nodes: vec![1, 2], departments: vec![] };
        let r = run_job(JobKind::Subscribers, &remote, &store, &opts, &Progress::new()).await.unwrap();
        assert_eq!(r.counts.inserted as usize, n);

        opts.from = Some(to - Days::new(days as u64 - 1));
        opts.to = Some(to);
        opts.concurrency = job_width;
        let t = Instant::now();
        let r = run_job(JobKind::Summaries, &remote, &store, &opts, &Progress::new()).await.unwrap();
        let wall = t.elapsed();
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.counts.fetched as usize, n * days);
        let limit = Duration::from_millis(latency as u64) * (n * days) as u32 / width as u32;
        println!(
            "summaries backfill: {n} x {days} = {} requests, client cap {width}, job width {job_width}: {:.2} s; latency limit {:.2} s; {:.1}% of the limit ({:.0} req/s)",
            n * days,
            wall.as_secs_f64(),
            limit.as_secs_f64(),
            100.0 * limit.as_secs_f64() / wall.as_secs_f64(),
            (n * days) as f64 / wall.as_secs_f64()
        );
    });
}
