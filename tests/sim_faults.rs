//! Fault injection: latency, 500/503, 429 with Retry-After, connection dropped before
//! processing, connection dropped after a committed write, per-method overrides, rates,
//! and the control API for faults.

mod sim_support;

use std::time::{Duration, Instant};

use serde_json::json;
use sim_support::*;
use tariscope_sync::sim::{Fault, FaultPlan, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn error_statuses_and_retry_after() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let path = "/api/subscriber/get/?id=1234";
    for (fault, status, code) in [
        (Fault::error(500), 500, "internal_error"),
        (Fault::error(503), 503, "unavailable"),
        (Fault::rate_limited(7), 429, "too_many_requests"),
    ] {
        sim.set_method_fault("subscriber.get", fault);
        let r = api.get(path).await;
        assert_eq!((r.status, r.code().as_str()), (status, code));
        assert_eq!(r.retry_after.as_deref(), (status == 429).then_some("7"));
        let xml = api.get("/api/subscriber/get/xml/?id=1234").await;
        assert!(
            xml.body.contains(&format!("<code>{code}</code>")),
            "{}",
            xml.body
        );
    }
    // other methods are untouched by a per-method fault
    assert_eq!(api.get("/api/tariscope/version/").await.status, 200);
    sim.clear_faults();
    assert_eq!(api.get(path).await.status, 200);
    // faulted requests are counted: they reached routing
    assert_eq!(sim.request_count("subscriber.get"), 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_error_fault_does_not_process_the_write() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    sim.set_method_fault("accounts.payment", Fault::error(503));
    let before = sim.state().payments.len();
    let r = api
        .post_json(
            "/api/accounts/payment/",
            json!({"id": 1234, "paymentday": "2025-05-02", "payment": 5}),
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(sim.state().payments.len(), before);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    sim.set_faults(FaultPlan {
        global: Fault {
            latency: Duration::from_millis(150),
            latency_jitter: Duration::from_millis(20),
            ..Fault::default()
        },
        ..FaultPlan::default()
    });
    let t = Instant::now();
    assert_eq!(api.get("/api/subscriber/get/?id=1234").await.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_method_entry_replaces_the_global_fault() {
    let sim = start(SimConfig {
        faults: FaultPlan {
            global: Fault::error(503),
            methods: [("subscriber.get".to_owned(), Fault::default())]
                .into_iter()
                .collect(),
        },
        ..config()
    })
    .await;
    let anon = Api::anon(&sim, None);
    let r = anon
        .post_json("/api/auth", json!({"username": "demo", "password": "demo"}))
        .await;
    assert_eq!(
        r.status, 503,
        "faults start with the emulator and apply to api.auth too"
    );
    sim.set_method_fault("api.auth", Fault::default());
    let api = Api::demo(&sim).await;
    assert_eq!(api.get("/api/subscriber/get/?id=1234").await.status, 200);
    assert_eq!(api.get("/api/tariffs/plans/").await.status, 503);
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_before_closes_without_answer_and_without_processing() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    sim.set_method_fault("subscriber.create", Fault::drop_before());
    let before = sim.state().subscribers.len();
    let err = api
        .try_post_json(
            "/api/subscriber/create/",
            json!({"fullname": "Never Made", "departmentid": 1}),
        )
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");
    assert_eq!(
        sim.state().subscribers.len(),
        before,
        "the request was not processed"
    );
    assert_eq!(sim.request_count("subscriber.create"), 1);

    // at the socket level: the server closes the connection and sends nothing
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let token = api.token.clone().unwrap();
    let body = r#"{"fullname":"Raw","departmentid":1}"#;
    let req = format!(
        "POST /api/subscriber/create/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got.is_empty(),
        "no answer at all: {}",
        String::from_utf8_lossy(&got)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_after_commit_applies_the_write_then_closes() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    sim.set_method_fault("subscriber.create", Fault::drop_after_commit());
    sim.set_method_fault("accounts.payment", Fault::drop_after_commit());
    sim.set_method_fault("subscriber.dnadd", Fault::drop_after_commit());
    let err = api
        .try_post_json(
            "/api/subscriber/create/",
            json!({"fullname": "Ghost Writer", "departmentid": 1, "accountnumber": "GW-1"}),
        )
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");
    let state = sim.state();
    let created = state
        .subscribers
        .iter()
        .find(|s| s.fullname == "Ghost Writer")
        .expect("the write is in state");
    assert_eq!(created.account_number.as_deref(), Some("GW-1"));
    // a blind retry creates a conflict (account number) — the case the client must handle
    sim.clear_faults();
    let r = api
        .post_json(
            "/api/subscriber/create/",
            json!({"fullname": "Ghost Writer", "departmentid": 1, "accountnumber": "GW-1"}),
        )
        .await;
    assert_eq!(r.status, 409);
    // payments: a retry without a natural key creates a duplicate
    sim.set_method_fault("accounts.payment", Fault::drop_after_commit());
    let before = sim.state().payments.len();
    assert!(
        api.try_post_json(
            "/api/accounts/payment/",
            json!({"id": 1234, "paymentday": "2025-05-30", "payment": "99.99"})
        )
        .await
        .is_err()
    );
    assert_eq!(sim.state().payments.len(), before + 1);
    // dnadd
    sim.set_method_fault("subscriber.dnadd", Fault::drop_after_commit());
    let pbx = sim.state().subscriber(1234).unwrap().dns[0].pbx_id;
    assert!(
        api.try_post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": "7777777", "pbxid": pbx})
        )
        .await
        .is_err()
    );
    assert!(
        sim.state()
            .subscriber(1234)
            .unwrap()
            .dns
            .iter()
            .any(|d| d.dn == "7777777")
    );
    // control API shows it too
    let ctl = Api::anon(&sim, None);
    let dns = ctl.get("/_sim/dns").await.json();
    assert!(
        dns.as_array()
            .unwrap()
            .iter()
            .any(|d| d["dn"] == json!("7777777") && d["subscriber_id"] == json!(1234))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rates_are_probabilities() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    sim.set_method_fault(
        "tariscope.version",
        Fault {
            error_rate: 0.5,
            error_status: 500,
            ..Fault::default()
        },
    );
    let mut errors = 0;
    for _ in 0..200 {
        if api.get("/api/tariscope/version/").await.status == 500 {
            errors += 1;
        }
    }
    // P(outside 40..160) for Binomial(200, 0.5) is below 1e-17
    assert!((40..=160).contains(&errors), "{errors}");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_through_the_control_api() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let ctl = Api::anon(&sim, None);
    let plan = json!({"global": {"latency_ms": 1}, "methods": {"subscriber.get": {"rate_limit_rate": 1.0, "retry_after_secs": 3}}});
    let r = ctl
        .request(reqwest::Method::PUT, "/_sim/faults", Some(plan))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["global"]["latency_ms"], json!(1));
    let r = api.get("/api/subscriber/get/?id=1234").await;
    assert_eq!((r.status, r.retry_after.as_deref()), (429, Some("3")));
    let bad = ctl
        .request(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"global": {"nope": 1}})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        ctl.request(reqwest::Method::DELETE, "/_sim/faults", None)
            .await
            .status,
        200
    );
    assert_eq!(api.get("/api/subscriber/get/?id=1234").await.status, 200);
    sim.shutdown().await;
}
