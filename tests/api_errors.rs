//! Errors that name their cause: each way a connection or a request fails gives a message
//! that says what happened and what to check (issue: connection refused with the address
//! and the api.base_url hint, DNS, TLS certificate problems, which timeout and its value).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tariscope_sync::api::TariscopeClient;
use tariscope_sync::api::{ApiError, ClientConfig, ConnectCause, RetrySettings, Secret};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A client of `base_url` that tries `attempts` times, quickly.
fn config(base_url: &str, attempts: u32) -> ClientConfig {
    let mut c = ClientConfig::new(base_url, "demo", Secret::new("demo"));
    c.rate_per_sec = 0.0;
    c.retry = RetrySettings {
        max_attempts: attempts,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(20),
    };
    c
}

async fn fail(config: ClientConfig) -> ApiError {
    let client = TariscopeClient::new(config).expect("client builds");
    client.claims().await.expect_err("the call must fail")
}

fn cause(err: &ApiError) -> Option<&ConnectCause> {
    match err {
        ApiError::Connect { cause, .. } => Some(cause),
        ApiError::Exhausted { source, .. } => cause(source),
        _ => None,
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Accepts connections and never writes a byte (kept open until the test ends).
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// A TLS server presenting the fixture certificate (issued by the fixture CA for
/// `tariscope.test` only); it completes handshakes and answers nothing.
fn tls_server() -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_file(fixture("server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in l.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        return;
                    }
                }
                let mut buf = [0u8; 1024];
                let _ = rustls::Stream::new(&mut conn, &mut stream).read(&mut buf);
            });
        }
    });
    port
}

#[tokio::test]
async fn connection_refused_names_the_address_and_api_base_url() {
    let port = closed_port();
    let err = fail(config(&format!("http://127.0.0.1:{port}"), 3)).await;
    let msg = err.to_string();
    assert_eq!(cause(&err), Some(&ConnectCause::Refused), "{err:?}");
    assert!(
        msg.contains(&format!("connection refused by 127.0.0.1:{port}"))
            && msg.contains("api.base_url"),
        "{msg}"
    );
    assert!(msg.contains("gave up after 3 attempt(s)"), "{msg}");
}

#[tokio::test]
async fn an_unknown_host_is_a_dns_failure() {
    // `.invalid` never resolves (RFC 2606).
    let err = fail(config("http://tariscope.invalid:8085", 1)).await;
    let msg = err.to_string();
    assert_eq!(cause(&err), Some(&ConnectCause::Dns), "{err:?}");
    assert!(
        msg.contains("cannot resolve the host name of tariscope.invalid:8085 (DNS)"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_says_to_set_api_ca_file() {
    let port = tls_server();
    let err = fail(config(&format!("https://127.0.0.1:{port}"), 1)).await;
    let msg = err.to_string();
    assert!(matches!(cause(&err), Some(ConnectCause::Tls(_))), "{err:?}");
    assert!(
        msg.contains(&format!("TLS with 127.0.0.1:{port} failed"))
            && msg.contains("not signed by a CA this machine trusts")
            && msg.contains("api.ca_file"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_says_so() {
    let port = tls_server();
    let mut c = config(&format!("https://127.0.0.1:{port}"), 1);
    c.ca_file = Some(fixture("ca.pem"));
    let err = fail(c).await;
    let msg = err.to_string();
    assert!(matches!(cause(&err), Some(ConnectCause::Tls(_))), "{err:?}");
    assert!(
        msg.contains("not issued for the host in api.base_url"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_connect_timeout_names_the_setting_and_its_value() {
    // TLS waits for the server's hello, which never comes: the connect phase times out.
    let port = silent_server();
    let mut c = config(&format!("https://127.0.0.1:{port}"), 1);
    c.connect_timeout = Duration::from_secs(1);
    let err = fail(c).await;
    let msg = err.to_string();
    assert_eq!(
        cause(&err),
        Some(&ConnectCause::Timeout(Duration::from_secs(1))),
        "{err:?}"
    );
    assert!(
        msg.contains(&format!(
            "no connection to 127.0.0.1:{port} within 1 s (api.connect_timeout_secs)"
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn a_request_timeout_names_the_setting_and_its_value() {
    let port = silent_server();
    let mut c = config(&format!("http://127.0.0.1:{port}"), 1);
    c.request_timeout = Duration::from_secs(1);
    let err = fail(c).await;
    let msg = err.to_string();
    assert!(
        matches!(err, ApiError::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert!(
        msg.contains("no answer within 1 s (api.request_timeout_secs)"),
        "{msg}"
    );
}
