//! Benchmark: the WAL during a summaries backfill, with and without an integrator's reader
//! holding a snapshot for the whole run (issue 21).
//!
//! `cargo bench --bench pull_wal_growth` (env `BENCH_SUBSCRIBERS` default 20000, `BENCH_DAYS` 2,
//! `BENCH_CONCURRENCY` 32, `BENCH_READER` 1 = hold `BEGIN; SELECT count(*) FROM subscribers`
//! open for the whole backfill, 0 = no reader). Prints the wall time, the data the run adds
//! (growth of the database file once everything is checkpointed), the largest WAL seen (sampled
//! every 20 ms) and the WAL a few seconds after the reader let go.

#[path = "pull_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use tariscope_sync::store::{Outcome, Store};
use tariscope_sync::sync::{JobKind, Progress, PullOptions, Scope, run_job};

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let n = support::env_usize("BENCH_SUBSCRIBERS", 20_000);
    let days = support::env_usize("BENCH_DAYS", 2);
    let width = support::env_usize("BENCH_CONCURRENCY", 32);
    let reader = support::env_usize("BENCH_READER", 1) == 1;
    let sim = support::Sim::start(
        &[
            "--subscribers",
            &n.to_string(),
            "--days",
            "60",
            "--end-date",
            "2026-03-01",
        ],
        None,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("mirror.db");
    let wal: PathBuf = dir.path().join("mirror.db-wal");
    rt.block_on(async {
        let remote = sim.remote(width);
        let store = Store::open(&db).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut opts = PullOptions::new(to);
        opts.scope = Scope { nodes: vec![1, 2], departments: vec![] };
        let r = run_job(JobKind::Subscribers, &remote, &store, &opts, &Progress::new()).await.unwrap();
        assert_eq!(r.counts.inserted as usize, n);
        let side = rusqlite::Connection::open(&db).unwrap();
        side.busy_timeout(Duration::from_secs(30)).unwrap();
        side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let db_before = size(&db);

        // The integrator: a snapshot held from before the backfill to after it.
        let hold = reader.then(|| {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("BEGIN").unwrap();
            let _: i64 = c.query_row("SELECT count(*) FROM subscribers", [], |r| r.get(0)).unwrap();
            c
        });
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop, wal) = (peak.clone(), stop.clone(), wal.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(size(&wal), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };

        opts.from = Some(to - Days::new(days as u64 - 1));
        opts.to = Some(to);
        opts.concurrency = width;
        let t = Instant::now();
        let r = run_job(JobKind::Summaries, &remote, &store, &opts, &Progress::new()).await.unwrap();
        let wall = t.elapsed();
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.counts.fetched as usize, n * days);
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let wal_end = size(&wal);
        if let Some(c) = hold {
            c.execute_batch("COMMIT").unwrap();
        }
        // Up to 10 s for the daemon's own checkpoints to shrink the WAL.
        let released = Instant::now();
        while size(&wal) > 4 << 20 && released.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let wal_after = size(&wal);
        let shrink = released.elapsed();
        side.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let added = size(&db).saturating_sub(db_before);
        let peak = peak.load(Ordering::Relaxed).max(wal_end);
        println!(
            "summaries backfill {n} x {days} = {} rows, reader {}: {:.2} s; data added {:.1} MiB; WAL peak {:.1} MiB ({:.2}x the data); WAL at the end {:.1} MiB; {:.1} MiB {:.1} s after the reader let go",
            n * days,
            if reader { "held" } else { "none" },
            wall.as_secs_f64(),
            mib(added),
            mib(peak),
            peak as f64 / added.max(1) as f64,
            mib(wal_end),
            mib(wal_after),
            shrink.as_secs_f64(),
        );
    });
}
