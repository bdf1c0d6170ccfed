//! Acceptance: neither the password nor a token appears in any log output at trace
//! level (every target: ours, reqwest, hyper, rustls), nor in `Debug` of the client or
//! its errors.

mod api_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use api_support::*;
use tariscope_sync::api::{Format, Secret, TariscopeClient};
use tariscope_sync::sim::{SimConfig, SimUser, WireVariant};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const PASSWORD: &str = "Pw-7f3c9e1d-secret";

#[tokio::test]
async fn no_password_or_token_in_trace_logs() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let users = vec![
        SimUser {
            username: "demo".into(),
            password: PASSWORD.into(),
            rights: None,
        },
        SimUser::with_rights("clerk", PASSWORD, &["claims"]),
    ];
    let sim = start(SimConfig {
        users,
        ..sim_config(WireVariant::default())
    })
    .await;
    let snap = sim.state();
    let mut tokens_seen = Vec::new();
    for format in [Format::Json, Format::Xml] {
        let mut cfg = client_config(&sim, format);
        cfg.password = Secret::new(PASSWORD);
        let c = TariscopeClient::new(cfg.clone()).unwrap();
        c.subscriber_get(snap.subscribers[0].id).await.unwrap();
        sim.revoke_tokens(); // forces a 401 and a re-login
        c.subscribers_by_node(snap.nodes[0].id).await.unwrap();
        let debug = format!("{c:?} {cfg:?}");
        assert!(!debug.contains(PASSWORD));
        assert!(!debug.contains("eyJ"), "a JWT in Debug output");
        tokens_seen.push(c.stats().logins);
        // A refused method and a rejected login produce errors; their text is logged too.
        let mut clerk = cfg.clone();
        clerk.username = "clerk".into();
        let err = TariscopeClient::new(clerk).unwrap().system_info().await;
        tracing::error!(?err, "system_info as clerk");
        let mut wrong = cfg.clone();
        wrong.password = Secret::new(format!("{PASSWORD}-wrong"));
        let err = TariscopeClient::new(wrong)
            .unwrap()
            .claims()
            .await
            .unwrap_err();
        tracing::error!(error = %err, debug = ?err, "login failure");
    }
    sim.shutdown().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("tariscope_request"),
        "the request spans were captured"
    );
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"));
    assert!(
        logs.lines().count() > 50,
        "trace output was captured: {} lines",
        logs.lines().count()
    );
    assert_eq!(tokens_seen, vec![2, 2]);
    assert!(!logs.contains(PASSWORD), "password leaked into logs");
    // Every JWT starts with the base64 of `{"` (the JSON header).
    assert!(!logs.contains("eyJ"), "a JWT leaked into logs");
    assert!(
        !logs.to_ascii_lowercase().contains("bearer e"),
        "an Authorization header leaked"
    );
}
