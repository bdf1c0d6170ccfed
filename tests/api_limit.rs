//! Acceptance: the shared limiter keeps the achieved request rate at or below the
//! configured rate (a hard bound: load can only slow it down) and is not far below it; the
//! concurrency cap holds over all clones of a client. How close to the rate it gets (within
//! 5 % on a quiet machine) is a figure `benches/api_throughput.rs` measures and
//! docs/client.md reports: a timed test on a shared 2-core machine cannot hold it.

mod api_support;

use std::time::{Duration, Instant};

use api_support::*;
use tariscope_sync::api::{Format, Limiter, TariscopeClient};
use tariscope_sync::sim::{Fault, FaultPlan, WireVariant};

/// The limiter alone (no server in the way): 16 tasks sharing one budget. The lower bound
/// only catches a limiter that waits far too long (a wrong period or burst): other work on
/// the machine delays the tasks and lowers the achieved rate, never raises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_holds_the_configured_rate() {
    const RATE: f64 = 500.0;
    const CALLS: usize = 2000;
    let lim = Limiter::new(RATE, 16).unwrap();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..16 {
        let lim = lim.clone();
        workers.push(tokio::spawn(async move {
            for _ in (w..CALLS).step_by(16) {
                drop(lim.acquire().await);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let burst = f64::from(Limiter::burst_for(RATE).get());
    let achieved = CALLS as f64 / elapsed;
    let steady = (CALLS as f64 - burst) / elapsed;
    println!(
        "limiter alone: {RATE}/s configured, {CALLS} slots in {elapsed:.3} s: {achieved:.1}/s, steady {steady:.1}/s"
    );
    assert!(
        steady <= RATE,
        "steady-state rate {steady:.1}/s above {RATE}/s"
    );
    assert!(
        achieved >= 0.5 * RATE,
        "achieved {achieved:.1}/s: the limiter is far too slow for {RATE}/s"
    );
}

/// Through the client against the emulator. The upper bound is hard; the lower bound
/// only catches a broken limiter, because a debug-build emulator on a shared 2-core
/// machine may itself be slower than the rate (the release benchmark reports the
/// figure with a fast server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_calls_stay_at_or_below_the_configured_rate() {
    const RATE: f64 = 200.0;
    const CALLS: usize = 1000;
    let sim = start(sim_config(WireVariant::default())).await;
    let id = sim.state().subscribers[0].id;
    let mut cfg = client_config(&sim, Format::Json);
    cfg.rate_per_sec = RATE;
    cfg.concurrency = 16;
    let c = TariscopeClient::new(cfg).unwrap();
    c.subscriber_get(id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // let the bucket refill
    sim.reset_counters();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..16 {
        let c = c.clone();
        workers.push(tokio::spawn(async move {
            for _ in (w..CALLS).step_by(16) {
                c.subscriber_get(id).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(sim.request_count("subscriber.get"), CALLS as u64);
    let burst = f64::from(Limiter::burst_for(RATE).get());
    let achieved = CALLS as f64 / elapsed;
    let steady = (CALLS as f64 - burst) / elapsed;
    println!(
        "client limiter: configured {RATE}/s, {CALLS} calls in {elapsed:.3} s: achieved {achieved:.1}/s \
         ({:.2} % of configured), steady-state (after the {burst} burst) {steady:.1}/s",
        100.0 * achieved / RATE
    );
    assert!(
        steady <= RATE,
        "steady-state rate {steady:.1}/s above {RATE}/s"
    );
    assert!(
        achieved >= 0.5 * RATE,
        "achieved {achieved:.1}/s: the limiter is far too slow"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_holds_across_clones() {
    let sim = start(sim_config(WireVariant::default())).await;
    let id = sim.state().subscribers[0].id;
    let mut cfg = client_config(&sim, Format::Json);
    cfg.concurrency = 4;
    let c = TariscopeClient::new(cfg).unwrap();
    c.subscriber_get(id).await.unwrap();
    sim.set_faults(FaultPlan {
        global: Fault {
            latency: Duration::from_millis(50),
            ..Fault::default()
        },
        ..FaultPlan::default()
    });
    // 16 calls of 50 ms through 4 slots need at least 4 rounds (200 ms).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = c.clone();
        tasks.push(tokio::spawn(
            async move { c.subscriber_get(id).await.unwrap() },
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(195),
        "{:?}",
        started.elapsed()
    );
    sim.shutdown().await;
}

/// The fence (`api::Fence`) a leader installs: asked for writes only, after the limiter's
/// slot; a write goes out only before the deadline it answers, and is refused unsent when
/// it refuses or its deadline has passed by the time the request could go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_is_asked_for_writes_and_its_deadline_holds() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tariscope_sync::api::{ApiError, Fence};
    use tariscope_sync::model::NewSubscriber;

    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let new = |name: &str| NewSubscriber {
        fullname: name.into(),
        department_id: Some(snap.departments[0].id),
        ..NewSubscriber::default()
    };
    // Answers: 0 = a deadline ahead, 1 = refused, 2 = a deadline already passed.
    let mode = Arc::new(AtomicU32::new(0));
    let asked = Arc::new(AtomicU32::new(0));
    let fence = {
        let (mode, asked) = (mode.clone(), asked.clone());
        Fence::new(move || {
            asked.fetch_add(1, Ordering::SeqCst);
            let m = mode.load(Ordering::SeqCst);
            Box::pin(async move {
                match m {
                    0 => Ok(Instant::now() + Duration::from_secs(5)),
                    1 => Err("this daemon no longer leads".to_owned()),
                    _ => Ok(Instant::now() - Duration::from_millis(1)),
                }
            })
        })
    };
    let c = TariscopeClient::new(client_config(&sim, Format::Json))
        .unwrap()
        .with_fence(fence);
    c.subscriber_get(snap.subscribers[0].id).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0, "a read asked the fence");
    c.subscriber_create(&new("Ahead")).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(sim.request_count("subscriber.create"), 1);
    for m in [1, 2] {
        mode.store(m, Ordering::SeqCst);
        let e = c.subscriber_create(&new("Fenced")).await.unwrap_err();
        assert!(
            matches!(e, ApiError::Fenced { .. }) && e.to_string().contains("not sent"),
            "{e}"
        );
        assert!(!e.is_retryable() && !e.is_outcome_unknown(), "{e}");
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        3,
        "a refused write was retried"
    );
    assert_eq!(
        sim.request_count("subscriber.create"),
        1,
        "a fenced write went out"
    );
    sim.shutdown().await;
}
