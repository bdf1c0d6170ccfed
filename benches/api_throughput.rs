//! Benchmark: client throughput against the in-process emulator with a fixed 20 ms
//! latency and 32 requests in flight, as a fraction of the theoretical 32 / 0.020 s =
//! 1,600 requests/s; then the limiter's achieved rate against a fast server.
//!
//! Run: `cargo bench --bench api_throughput` (plain `main`, prints the figures).
//! Optional env: `SECS` (measurement seconds, default 5).

use std::time::{Duration, Instant};

use tariscope_sync::api::{ClientConfig, Format, Secret, TariscopeClient};
use tariscope_sync::sim::{DatasetConfig, Fault, FaultPlan, SimConfig, SimHandle};

fn client(sim: &SimHandle, format: Format, concurrency: usize, rate: f64) -> TariscopeClient {
    let mut c = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    c.format = format;
    c.concurrency = concurrency;
    c.rate_per_sec = rate;
    TariscopeClient::new(c).expect("client")
}

/// `workers` tasks calling `subscriber.get` until `secs` have passed; returns req/s.
async fn run(c: &TariscopeClient, id: i64, workers: usize, secs: f64) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                c.subscriber_get(id).await.expect("call");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    (total, total as f64 / started.elapsed().as_secs_f64())
}

fn main() {
    let secs: f64 = std::env::var("SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sim = SimHandle::start(SimConfig {
            dataset: DatasetConfig { subscribers: 200, days: 10, ..DatasetConfig::default() },
            ..SimConfig::default()
        })
        .await
        .expect("emulator");
        let id = sim.state().subscribers[0].id;
        {
            let c = client(&sim, Format::Json, 1, 0.0);
            c.subscriber_get(id).await.expect("call");
            let started = Instant::now();
            for _ in 0..200 {
                c.subscriber_get(id).await.expect("call");
            }
            println!(
                "one at a time, no added latency: {:.3} ms per call (round trip, both sides)",
                started.elapsed().as_secs_f64() * 1000.0 / 200.0
            );
        }
        // Capacity of this machine for client + emulator together, no added latency.
        let c = client(&sim, Format::Json, 32, 0.0);
        run(&c, id, 32, 0.5).await;
        let (n, cap) = run(&c, id, 32, secs.min(3.0)).await;
        println!(
            "capacity (no added latency, concurrency 32, client and emulator sharing the CPU): {n} calls, {cap:.1} req/s, at most {:.0} us of CPU per call (if both cores were ours)",
            2.0e6 / cap
        );
        sim.set_faults(FaultPlan {
            global: Fault { latency: Duration::from_millis(20), ..Fault::default() },
            ..FaultPlan::default()
        });
        {
            let c = client(&sim, Format::Json, 1, 0.0);
            c.subscriber_get(id).await.expect("call");
            let started = Instant::now();
            for _ in 0..50 {
                c.subscriber_get(id).await.expect("call");
            }
            println!(
                "one at a time, latency 20 ms: {:.2} ms per call",
                started.elapsed().as_secs_f64() * 1000.0 / 50.0
            );
        }
        for format in [Format::Json, Format::Xml] {
            let c = client(&sim, format, 32, 0.0);
            run(&c, id, 32, 0.5).await; // warm up: login, connections
            let (n, rate) = run(&c, id, 32, secs).await;
            println!(
                "throughput {format:?}: latency 20 ms, concurrency 32: {n} calls, {rate:.1} req/s = {:.1} % of 1600",
                100.0 * rate / 1600.0
            );
        }
        sim.clear_faults();
        let rate = 500.0;
        let c = client(&sim, Format::Json, 16, rate);
        run(&c, id, 16, 0.2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (n, achieved) = run(&c, id, 16, secs).await;
        println!(
            "limiter: configured {rate}/s, fast server, 16 workers: {n} calls, {achieved:.1} req/s = {:.2} % of configured",
            100.0 * achieved / rate
        );
        sim.shutdown().await;
    });
}
