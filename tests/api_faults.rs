//! Acceptance: retries under injected faults, `Retry-After`, the attempt bound, and
//! exactly-once behaviour of non-idempotent calls ("outcome unknown").

mod api_support;

use std::time::{Duration, Instant};

use api_support::*;
use tariscope_sync::api::{ApiError, Format, RetrySettings, TariscopeClient};
use tariscope_sync::model::{NewDn, NewPayment, NewSubscriber, PaymentType};
use tariscope_sync::sim::{Fault, FaultPlan, WireVariant};

fn new_subscriber(dep: i64, name: &str) -> NewSubscriber {
    NewSubscriber {
        fullname: name.into(),
        department_id: Some(dep),
        ..NewSubscriber::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_survive_503s_and_429s_within_the_attempt_bound() {
    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let mut cfg = client_config(&sim, Format::Json);
    cfg.retry = RetrySettings {
        max_attempts: 10,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(40),
    };
    let c = TariscopeClient::new(cfg).unwrap();
    c.subscriber_get(snap.subscribers[0].id).await.unwrap(); // log in before the faults
    sim.reset_counters();
    sim.set_faults(FaultPlan {
        global: Fault {
            error_rate: 0.2,
            error_status: 503,
            rate_limit_rate: 0.05,
            retry_after_secs: 1,
            ..Fault::default()
        },
        ..FaultPlan::default()
    });
    let ids: Vec<i64> = snap
        .subscribers
        .iter()
        .map(|s| s.id)
        .cycle()
        .take(200)
        .collect();
    let before = c.stats();
    let mut tasks = Vec::new();
    for id in ids.clone() {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.subscriber_get(id).await }));
    }
    for (t, id) in tasks.into_iter().zip(ids) {
        let got = t.await.unwrap().expect("idempotent call succeeds");
        assert_eq!(got.map(|s| s.id), Some(id));
    }
    let retries = c.stats().retries - before.retries;
    let sent = sim.request_count("subscriber.get");
    assert_eq!(sent, 200 + retries, "every attempt reached the server");
    assert!(retries >= 20, "faults were injected: {retries} retries");
    assert!(sent <= 200 * 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let sim = start(sim_config(WireVariant::default())).await;
    let id = sim.state().subscribers[0].id;
    let c = client(&sim, Format::Json); // backoff 5..50 ms, 4 attempts
    c.subscriber_get(id).await.unwrap();
    sim.reset_counters();
    sim.set_method_fault("subscriber.get", Fault::rate_limited(1));
    let started = Instant::now();
    let call = {
        let c = c.clone();
        tokio::spawn(async move { c.subscriber_get(id).await })
    };
    // Heal the server once the 429 went out (polled: a loaded machine may take longer
    // than any fixed sleep to send it), well before its 1 s Retry-After ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.request_count("subscriber.get") < 1 {
        assert!(
            Instant::now() < deadline,
            "the call never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sim.clear_faults();
    let got = call.await.unwrap().expect("succeeds after Retry-After");
    assert!(got.is_some());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(990), "waited {waited:?}");
    assert_eq!(
        sim.request_count("subscriber.get"),
        2,
        "one 429, then one success"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn attempts_never_exceed_the_maximum() {
    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let c = client(&sim, Format::Json); // max_attempts 4
    c.subscriber_get(snap.subscribers[0].id).await.unwrap();
    sim.reset_counters();
    sim.set_faults(FaultPlan {
        global: Fault::error(503),
        ..FaultPlan::default()
    });
    let err = c.subscriber_get(snap.subscribers[0].id).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Exhausted { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable(), "a later run may succeed");
    assert_eq!(sim.request_count("subscriber.get"), 4);
    // 503 means "not processed": even a create may be retried, and nothing is created.
    let err = c
        .subscriber_create(&new_subscriber(snap.departments[0].id, "X"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Exhausted { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(!err.is_outcome_unknown());
    assert_eq!(sim.request_count("subscriber.create"), 4);
    assert_eq!(sim.state().subscribers.len(), snap.subscribers.len());
    // A 500 on a read is retried too (only non-idempotent calls stop at it).
    sim.set_faults(FaultPlan {
        global: Fault::error(500),
        ..FaultPlan::default()
    });
    sim.reset_counters();
    let err = c.subscriber_get(snap.subscribers[0].id).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Exhausted { attempts: 4, .. }),
        "{err:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_after_commit_writes_are_outcome_unknown_and_never_duplicated() {
    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let c = client(&sim, Format::Json);
    c.claims().await.unwrap();
    let dep = snap.departments[0].id;

    sim.set_method_fault("subscriber.create", Fault::drop_after_commit());
    let err = c
        .subscriber_create(&new_subscriber(dep, "Exactly Once"))
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("look the record up"), "{err}");
    let after = sim.state();
    let created: Vec<_> = after
        .subscribers
        .iter()
        .filter(|s| s.fullname == "Exactly Once")
        .collect();
    assert_eq!(created.len(), 1, "exactly one create reached the state");
    assert_eq!(sim.request_count("subscriber.create"), 1, "not resent");
    assert_eq!(c.stats().outcome_unknown, 1);
    let new_id = created[0].id;

    sim.set_method_fault("subscriber.dnadd", Fault::drop_after_commit());
    let err = c
        .subscriber_dnadd(&NewDn {
            subscriber_id: new_id,
            dn: "5550001".into(),
            pbx_id: snap
                .pbxs
                .iter()
                .find(|p| p.node_id == created[0].node_id)
                .unwrap()
                .id,
            from_date: None,
            description: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(sim.state().subscriber(new_id).unwrap().dns.len(), 1);
    assert_eq!(sim.request_count("subscriber.dnadd"), 1);

    sim.set_method_fault("accounts.payment", Fault::drop_after_commit());
    let payments = sim.state().payments.len();
    let err = c
        .account_payment(&NewPayment {
            subscriber_id: new_id,
            payment_day: snap.end_date,
            amount: "370.00".parse().unwrap(),
            payment_type: PaymentType::Cash,
            bank: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(sim.state().payments.len(), payments + 1);
    assert_eq!(sim.request_count("accounts.payment"), 1);

    // An idempotent read under the same fault is simply retried.
    sim.set_method_fault("subscriber.get", Fault::drop_after_commit());
    sim.reset_counters();
    let err = c.subscriber_get(new_id).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Exhausted { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(sim.request_count("subscriber.get"), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_500_or_a_timeout_on_a_write_is_outcome_unknown() {
    let sim = start(sim_config(WireVariant::default())).await;
    let snap = sim.state();
    let c = client(&sim, Format::Json);
    c.claims().await.unwrap();
    sim.set_method_fault("subscriber.create", Fault::error(500));
    let err = c
        .subscriber_create(&new_subscriber(snap.departments[0].id, "A"))
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(err.status(), Some(500));
    // Only the slow write meets a short timeout (a loaded machine may be slow to log in or
    // to answer the 500 above, never 10 s slow): a client of its own, logged in first.
    let mut cfg = client_config(&sim, Format::Json);
    cfg.request_timeout = Duration::from_secs(1);
    let slow = TariscopeClient::new(cfg).unwrap();
    slow.claims().await.unwrap();
    sim.set_method_fault(
        "subscriber.create",
        Fault {
            latency: Duration::from_secs(10),
            ..Fault::default()
        },
    );
    let err = slow
        .subscriber_create(&new_subscriber(snap.departments[0].id, "B"))
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(
        matches!(&err, ApiError::OutcomeUnknown { source, .. } if matches!(**source, ApiError::Timeout { .. }))
    );
    assert_eq!(sim.request_count("subscriber.create"), 2);
    sim.shutdown().await;
}
