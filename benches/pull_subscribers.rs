//! Benchmark: pull-and-diff of 100,000 subscribers (full records) from `tariscope-sim` into
//! an empty file mirror, then a no-op re-pull. Targets (issue 4): >= 100,000 records/s end to
//! end, peak RSS < 150 MB, no-op re-pull < 2 s of CPU.
//!
//! `cargo bench --bench pull_subscribers` (env `BENCH_SUBSCRIBERS`, default 100000;
//! `BENCH_FAKE=1` pulls from the in-memory `FakeRemote` instead, to measure the jobs and the
//! store without HTTP and decoding). Last, it times SQLite alone inserting the same rows
//! into the same schema (`INSERT ... SELECT`): the floor under any first pull.
//!
//! `BENCH_MIRROR=postgres` (issue 13) then pulls the same into a PostgreSQL mirror in a
//! throwaway local cluster (tests/pg_support: `fsync=off`), in the same run, and prints its
//! rate beside SQLite's and the rows the no-op re-pull wrote there.

#[path = "pull_support.rs"]
mod support;

#[path = "../tests/deploy_support/mod.rs"]
mod deploy_support;
#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::time::Instant;

use chrono::NaiveDate;
use tariscope_sync::store::{Outcome, Store};
use tariscope_sync::sync::fake::{FakeData, FakeRemote};
use tariscope_sync::sync::{JobKind, Progress, PullOptions, Remote, Scope, run_job};

fn main() {
    let n = support::env_usize("BENCH_SUBSCRIBERS", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("BENCH_FAKE").is_ok() {
        let remote = FakeRemote::new(FakeData::seeded(
            n,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        ));
        println!("source: FakeRemote (no HTTP, no decoding)");
        rt.block_on(bench(&remote, n));
        return;
    }
    let sim = support::Sim::start(
        &[
            "--subscribers",
            &n.to_string(),
            "--nodes",
            "2",
            "--days",
            "1",
            "--end-date",
            "2026-03-01",
            "--log-format",
            "json",
        ],
        None,
    );
    println!("source: tariscope-sim child process, real client");
    rt.block_on(bench(&sim.remote(8), n));
}

async fn bench<R: Remote>(remote: &R, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    let sqlite = pull_into(remote, n, Store::open(&path).unwrap(), "SQLite").await;
    println!(
        "SQLite alone: copying the rows of the first pull table to table into the same schema (same indexes, one transaction) takes {:.2} s",
        sqlite_floor(&path).as_secs_f64()
    );
    if std::env::var("BENCH_MIRROR").as_deref() == Ok("postgres") {
        // Blocking: the cluster's tools and the client's own runtime.
        let (cluster, url) = tokio::task::block_in_place(|| {
            let cluster = pg_support::PgCluster::start().expect("a throwaway PostgreSQL cluster");
            let url = cluster.database();
            (cluster, url)
        });
        let target = tariscope_sync::store::pg::Target::parse(&url, None).unwrap();
        let store = Store::open_postgres(&target).unwrap();
        let postgres = pull_into(remote, n, store, "PostgreSQL").await;
        println!(
            "PostgreSQL first pull: {postgres:.0} records/s = {:.0} % of SQLite's {sqlite:.0} in this run",
            100.0 * postgres / sqlite
        );
        tokio::task::block_in_place(|| drop(cluster));
    }
}

/// A first pull and a no-op re-pull of the `n` subscribers into `store`; the first pull's
/// records per second.
async fn pull_into<R: Remote>(remote: &R, n: usize, store: Store, label: &str) -> f64 {
    println!("mirror: {label}");
    {
        let mut opts = PullOptions::new(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        // Node ids of the generated dataset: 1..=nodes.
        opts.scope = Scope {
            nodes: vec![1, 2],
            departments: vec![],
        };
        opts.batch_size = support::env_usize("BENCH_BATCH", opts.batch_size);
        let rss_before = support::peak_rss_mib();

        let (cpu, t) = (support::cpu_time(), Instant::now());
        let writer = support::thread_cpu("mirror-writer");
        let r = run_job(
            JobKind::Subscribers,
            remote,
            &store,
            &opts,
            &Progress::new(),
        )
        .await
        .unwrap();
        let (wall, cpu) = (t.elapsed(), support::cpu_time() - cpu);
        let writer = support::thread_cpu("mirror-writer") - writer;
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.counts.inserted as usize, n, "{r:?}");
        println!(
            "full pull: {n} subscribers in {:.2} s wall, {:.2} s CPU ({:.2} s of it the mirror's writer thread) = {:.0} records/s",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            writer.as_secs_f64(),
            n as f64 / wall.as_secs_f64()
        );
        let rate = n as f64 / wall.as_secs_f64();
        let changes = store.total_changes().await.unwrap();

        let (cpu, t) = (support::cpu_time(), Instant::now());
        let r = run_job(
            JobKind::Subscribers,
            remote,
            &store,
            &opts,
            &Progress::new(),
        )
        .await
        .unwrap();
        let (wall, cpu) = (t.elapsed(), support::cpu_time() - cpu);
        assert_eq!(r.counts.unchanged as usize, n, "{r:?}");
        let wrote = store.total_changes().await.unwrap() - changes;
        println!(
            "no-op re-pull: {:.2} s wall, {:.2} s CPU ({} unchanged; {wrote} rows written, the run's own bookkeeping)",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            r.counts.unchanged
        );
        println!(
            "peak RSS: {:.1} MiB (before the pulls: {rss_before:.1} MiB)",
            support::peak_rss_mib()
        );
        drop(store);
        rate
    }
}

/// What SQLite itself needs to insert the rows a first pull writes (subscribers, DNs, change
/// log) into tables with the mirror's definitions and indexes: `INSERT ... SELECT` from the
/// pulled tables in one transaction, so no HTTP, no decoding and no Rust per row. No first
/// pull into this schema can write faster than this on the machine at hand.
fn sqlite_floor(path: &std::path::Path) -> std::time::Duration {
    const TABLES: [&str; 3] = ["subscribers", "dns", "subscriber_changes"];
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
    )
    .unwrap();
    for table in TABLES {
        let definitions: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY type = 'index'")
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for sql in definitions {
            let sql = sql
                .replacen(
                    &format!("CREATE TABLE {table} ("),
                    &format!("CREATE TABLE floor_{table} ("),
                    1,
                )
                .replacen("CREATE INDEX ", "CREATE INDEX floor_", 1)
                .replacen(
                    &format!(" ON {table} ("),
                    &format!(" ON floor_{table} ("),
                    1,
                );
            conn.execute_batch(&sql).unwrap();
        }
    }
    let t = Instant::now();
    conn.execute_batch("BEGIN").unwrap();
    for table in TABLES {
        conn.execute_batch(&format!("INSERT INTO floor_{table} SELECT * FROM {table}"))
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    t.elapsed()
}
