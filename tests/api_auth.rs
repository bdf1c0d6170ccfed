//! Acceptance: the token manager against the emulator: single flight at expiry,
//! revocation, short lifetimes, a changed source IP, missing rights, bad credentials.

mod api_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_support::*;
use tariscope_sync::api::{ApiError, Format, Secret, TariscopeClient};
use tariscope_sync::sim::{SimConfig, SimHandle, SimUser, WireVariant};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn first_id(sim: &SimHandle) -> i64 {
    sim.state().subscribers[0].id
}

async fn burst(c: &TariscopeClient, id: i64, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.subscriber_get(id).await }));
    }
    for t in tasks {
        let got = t.await.unwrap().expect("call succeeds");
        assert_eq!(got.map(|s| s.id), Some(id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_at_expiry_cause_exactly_one_login() {
    let sim = start(SimConfig {
        token_ttl: Duration::from_secs(3),
        ..sim_config(WireVariant::default())
    })
    .await;
    let id = first_id(&sim);
    let mut cfg = client_config(&sim, Format::Json);
    cfg.token_margin = Duration::from_secs(1); // renew 2 s after login
    let c = TariscopeClient::new(cfg).unwrap();
    c.subscriber_get(id).await.unwrap();
    assert_eq!(sim.request_count("api.auth"), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    sim.reset_counters();
    burst(&c, id, 100).await;
    assert_eq!(
        sim.request_count("api.auth"),
        1,
        "exactly one login for 100 callers"
    );
    assert_eq!(
        sim.request_count("subscriber.get"),
        100,
        "no call needed a resend"
    );
    assert_eq!(c.stats().logins, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_cost_one_relogin_for_all_callers() {
    let sim = start(sim_config(WireVariant::default())).await;
    let id = first_id(&sim);
    let c = client(&sim, Format::Xml);
    burst(&c, id, 10).await;
    sim.revoke_tokens();
    sim.reset_counters();
    burst(&c, id, 50).await;
    assert_eq!(sim.request_count("api.auth"), 1);
    assert_eq!(c.stats().logins, 2);
    assert_eq!(c.stats().retries, 0, "a re-login is not a retry");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_token_lifetime_over_a_longer_run() {
    // 1 s tokens, no renewal margin: calls race the expiry and get 401s, which cost one
    // login each time; every call still succeeds.
    let sim = start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..sim_config(WireVariant::default())
    })
    .await;
    let id = first_id(&sim);
    let mut cfg = client_config(&sim, Format::Json);
    cfg.token_margin = Duration::ZERO;
    let c = TariscopeClient::new(cfg).unwrap();
    // Run until three tokens have expired (four logins), however slow the machine is.
    let started = Instant::now();
    let mut calls = 0;
    while sim.request_count("api.auth") < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no 4th login in 60 s of 1 s tokens"
        );
        burst(&c, id, 4).await;
        calls += 4;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let logins = sim.request_count("api.auth");
    // A token lives at least a few hundred ms (whole-second `exp`): a login per expiry, not
    // per call or per refused caller.
    assert!(
        (logins as f64) <= 2.0 * elapsed + 2.0,
        "{logins} logins in {elapsed:.1} s of 1 s tokens"
    );
    let gets = sim.request_count("subscriber.get") as usize;
    assert!(
        gets >= calls && gets <= calls + 4 * logins as usize,
        "{gets} requests for {calls} calls: at most one resend per caller per login"
    );
    sim.shutdown().await;
}

/// A TCP forwarder whose outbound source address can be switched, like a NAT whose
/// egress address changes. Switching closes the open connections.
struct Nat {
    addr: std::net::SocketAddr,
    egress: Arc<AtomicU8>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Nat {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let egress = Arc::new(AtomicU8::new(1));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let (e, g) = (egress.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let last = e.load(Ordering::SeqCst);
                let mut closed = g.subscribe();
                tokio::spawn(async move {
                    let sock = TcpSocket::new_v4().unwrap();
                    sock.bind((Ipv4Addr::new(127, 0, 0, last), 0).into())
                        .unwrap();
                    let mut outbound: TcpStream = sock.connect(target).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = closed.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            egress,
            generation,
        }
    }

    fn switch_to(&self, last_octet: u8) {
        self.egress.store(last_octet, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_source_ip_costs_one_relogin() {
    let sim = start(sim_config(WireVariant::default())).await;
    let id = first_id(&sim);
    let nat = Nat::start(sim.addr()).await;
    let mut cfg = client_config(&sim, Format::Json);
    cfg.base_url = format!("http://{}", nat.addr);
    let c = TariscopeClient::new(cfg).unwrap();
    burst(&c, id, 8).await;
    assert_eq!(sim.request_count("api.auth"), 1);
    nat.switch_to(3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.reset_counters();
    burst(&c, id, 20).await;
    assert_eq!(
        sim.request_count("api.auth"),
        1,
        "one re-login from the new address"
    );
    sim.shutdown().await;
}

/// A TCP forwarder that records the source address of every connection it accepts.
async fn peer_log(target: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<IpAddr>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, peer)) = listener.accept().await {
            seen.lock().unwrap().push(peer.ip());
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (addr, peers)
}

#[tokio::test]
async fn binding_a_local_address_works_end_to_end() {
    let sim = start(sim_config(WireVariant::default())).await;
    let id = first_id(&sim);
    let (addr, peers) = peer_log(sim.addr()).await;
    let mut cfg = client_config(&sim, Format::Json);
    cfg.base_url = format!("http://{addr}");
    cfg.local_address = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let c = TariscopeClient::new(cfg).unwrap();
    burst(&c, id, 5).await;
    assert_eq!(sim.request_count("api.auth"), 1);
    let peers = peers.lock().unwrap().clone();
    assert!(!peers.is_empty());
    assert!(
        peers.iter().all(|p| *p == Ipv4Addr::new(127, 0, 0, 2)),
        "every connection came from the bound address: {peers:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_right_gives_a_clear_error_and_no_retry_storm() {
    let users = vec![SimUser::with_rights(
        "clerk",
        "s3cret",
        &["subscriber.get", "claims"],
    )];
    let sim = start(SimConfig {
        users,
        ..sim_config(WireVariant::default())
    })
    .await;
    let snap = sim.state();
    let mut cfg = client_config(&sim, Format::Json);
    cfg.username = "clerk".into();
    cfg.password = Secret::new("s3cret");
    let c = TariscopeClient::new(cfg).unwrap();
    let err = c
        .account_summary(snap.subscribers[0].id, snap.end_date)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err:?}");
    assert!(
        msg.contains("accounts.summary") && msg.contains("method rights") && msg.contains("clerk"),
        "{msg}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        sim.request_count("accounts.summary"),
        2,
        "refused, re-login, refused again"
    );
    assert_eq!(sim.request_count("api.auth"), 2);
    for _ in 0..5 {
        let err = c
            .account_summary(snap.subscribers[0].id, snap.end_date)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Unauthorized { .. }));
    }
    assert_eq!(
        sim.request_count("accounts.summary"),
        7,
        "one request per later call"
    );
    assert_eq!(sim.request_count("api.auth"), 2, "no more logins");
    assert_eq!(c.stats().retries, 0);
    assert!(
        c.subscriber_get(snap.subscribers[0].id)
            .await
            .unwrap()
            .is_some()
    );
    let claims = c.claims().await.unwrap();
    assert_eq!(claims.len(), 2, "{claims:?}");
    // system_info falls back from a forbidden summary to the (forbidden) single methods,
    // then reports the summary's refusal.
    let err = c.system_info().await.unwrap_err();
    assert!(err.to_string().contains("tariscope.summary"), "{err}");
    assert_eq!(sim.request_count("tariscope.version"), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_reported_once_and_not_retried() {
    let sim = start(sim_config(WireVariant::default())).await;
    let mut cfg = client_config(&sim, Format::Json);
    cfg.password = Secret::new("Zq9-not-it");
    let c = TariscopeClient::new(cfg).unwrap();
    let err = c.subscriber_get(1).await.unwrap_err();
    assert!(
        matches!(err, ApiError::LoginRejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("password"));
    assert!(!err.to_string().contains("Zq9-not-it"));
    assert!(!format!("{err:?}").contains("Zq9-not-it"));
    assert!(!err.is_retryable());
    assert_eq!(sim.request_count("api.auth"), 1);
    assert_eq!(sim.request_count("subscriber.get"), 0);
    sim.shutdown().await;
}
