//! The operator endpoints: `/metrics` (Prometheus), `/healthz` and `/readyz`.
//!
//! Owns: the small HTTP server for those three paths, the health state the daemon updates,
//! and installing the Prometheus recorder with our histogram buckets.
//! Must not: do sync work or block; the listener and the shutdown signal come from the caller.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::clock::Clock;

/// What `/healthz` and `/readyz` report. Cheap to update from anywhere.
#[derive(Debug)]
pub struct Health {
    clock: Clock,
    /// Unix seconds of the main loop's last tick.
    last_tick: AtomicI64,
    /// The mirror is open and migrated.
    mirror_open: AtomicBool,
    /// The last login to Tariscope succeeded.
    login_ok: AtomicBool,
    /// A tick older than this many seconds makes `/healthz` fail.
    stale_after_secs: i64,
    /// On a PostgreSQL mirror: 1 leader, 2 standby (0: SQLite, no election).
    role: AtomicU8,
}

/// A daemon's part in the election on a PostgreSQL mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader = 1,
    Standby = 2,
}

impl Health {
    pub fn new(clock: Clock, stale_after_secs: i64) -> Arc<Self> {
        Arc::new(Self {
            clock,
            last_tick: AtomicI64::new(clock.now().timestamp()),
            mirror_open: AtomicBool::new(false),
            login_ok: AtomicBool::new(false),
            stale_after_secs,
            role: AtomicU8::new(0),
        })
    }

    pub fn tick(&self) {
        self.last_tick
            .store(self.clock.now().timestamp(), Ordering::Relaxed);
    }

    pub fn set_mirror_open(&self, open: bool) {
        self.mirror_open.store(open, Ordering::Relaxed);
    }

    pub fn set_login_ok(&self, ok: bool) {
        self.login_ok.store(ok, Ordering::Relaxed);
    }

    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    fn alive(&self) -> bool {
        self.clock.now().timestamp() - self.last_tick.load(Ordering::Relaxed)
            <= self.stale_after_secs
    }

    fn ready(&self) -> (bool, String) {
        let mirror = self.mirror_open.load(Ordering::Relaxed);
        let login = self.login_ok.load(Ordering::Relaxed);
        match self.role.load(Ordering::Relaxed) {
            0 => (
                mirror && login,
                format!("mirror_open={mirror} login_ok={login}\n"),
            ),
            // A standby is ready when it can reach the mirror: it runs no job, logs in
            // to nothing, and takes over when the leader is gone.
            2 => (mirror, format!("role=standby mirror_open={mirror}\n")),
            _ => (
                mirror && login,
                format!("role=leader mirror_open={mirror} login_ok={login}\n"),
            ),
        }
    }
}

/// Latency buckets in seconds, for every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            spawn_upkeep(handle.clone());
            crate::metric_names::describe();
            metrics::gauge!("tariscope_sync_build_info", "version" => env!("CARGO_PKG_VERSION"))
                .set(1.0);
            Some(handle)
        })
        .clone()
}

/// How often pending histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// `build_recorder` leaves histogram samples pending until a scrape renders them; with no one
/// scraping `/metrics` every API request's duration stayed in memory (the soak of issue 16
/// measured the daemon's memory rising with its request count). The exporter's own upkeep
/// task comes only with its HTTP listener, which we do not use (our endpoints share one
/// listener), so a thread does the upkeep for the life of the process.
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread; histograms grow until /metrics is scraped");
    }
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    continue;
                }
            },
        };
        let health = health.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = route(&req, &health, metrics.as_ref());
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn route(
    req: &Request<Incoming>,
    health: &Health,
    metrics: Option<&PrometheusHandle>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    match req.uri().path() {
        "/metrics" => match metrics {
            Some(h) => text(StatusCode::OK, h.render()),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics recorder not installed\n".into(),
            ),
        },
        "/healthz" if health.alive() => text(StatusCode::OK, "ok\n".into()),
        "/healthz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "main loop stalled\n".into(),
        ),
        "/readyz" => {
            let (ready, detail) = health.ready();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, detail)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Health::new(Clock::system(), 60);
        let handle = install_metrics();
        metrics::counter!("tariscope_sync_test_total").increment(3);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, health.clone(), handle, async {
            let _ = rx.await;
        }));
        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (503, "mirror_open=false login_ok=false\n")
        );
        health.set_mirror_open(true);
        health.set_login_ok(true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("tariscope_sync_test_total 3"), "{body}");
        assert!(body.contains("tariscope_sync_build_info"), "{body}");
        assert_eq!(get(addr, "/nope").await.0, 404);
        tx.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn healthz_fails_when_the_loop_stalls() {
        let health = Health::new(Clock::starting_at(chrono::Utc::now()), 60);
        assert!(health.alive());
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert!(!health.alive());
        health.tick();
        assert!(health.alive());
    }
}
