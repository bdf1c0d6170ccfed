//! The HTTP/1.1 server (hyper, keep-alive) and `SimHandle`, the in-process handle tests
//! use to change faults and inspect state.
//!
//! Owns: accepting connections, per-connection service, graceful shutdown.
//! Must not: hold request logic (that is `dispatch` and `control`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::{Fault, FaultPlan, SimConfig};
use super::control;
use super::data::SimSnapshot;
use super::dispatch::{self, Dropped, HttpResponse};
use super::state::Shared;

/// A running emulator. Dropping it stops the server (`shutdown` also waits for it).
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
    /// Closed (all senders dropped) once every connection task has ended.
    done: mpsc::Receiver<()>,
}

async fn handle(
    shared: Arc<Shared>,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, Dropped> {
    if req.uri().path().starts_with("/_sim/") || req.uri().path() == "/_sim" {
        return Ok(control::handle(&shared, req).await);
    }
    dispatch::api(&shared, peer, req).await
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    alive: mpsc::Sender<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ip = peer.ip().to_canonical();
        let shared = shared.clone();
        let cancel = cancel.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), ip, req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                }
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
            drop(alive);
        });
    }
}

impl SimHandle {
    /// Start on `127.0.0.1:0` (a free port).
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, config).await
    }

    /// Start on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, config: SimConfig) -> std::io::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let cancel = CancellationToken::new();
        let (alive, done) = mpsc::channel(1);
        tokio::spawn(accept_loop(listener, shared.clone(), cancel.clone(), alive));
        tracing::info!(%addr, "tariscope-sim listening");
        Ok(SimHandle {
            shared,
            addr,
            cancel,
            done,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.set_faults(plan);
    }

    pub fn set_method_fault(&self, method: &str, fault: Fault) {
        self.shared.set_method_fault(method, fault);
    }

    pub fn clear_faults(&self) {
        self.shared.set_faults(FaultPlan::default());
    }

    /// Variant switch: `subscriber.create` accepts an account number already taken (as a
    /// server without that check would), instead of refusing it.
    pub fn set_accept_duplicate_accounts(&self, on: bool) {
        self.shared.write().accept_duplicate_accounts = on;
    }

    /// Every issued token becomes invalid (`token_invalid`), as after a server restart.
    pub fn revoke_tokens(&self) {
        self.shared.signer.rotate();
    }

    /// Requests that reached routing for this API method name (e.g. `api.auth`).
    pub fn request_count(&self, method: &str) -> u64 {
        self.shared.request_count(method)
    }

    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// A clone of the data.
    pub fn state(&self) -> SimSnapshot {
        self.shared.snapshot()
    }

    /// An operator edits one field of a subscriber in the Tariscope UI (record field name,
    /// e.g. `street`, `House`, `accountId`, `departmentid`; `None` clears). False when the
    /// subscriber or field is unknown or the value does not parse.
    pub fn operator_update(&self, id: i64, field: &str, value: Option<&str>) -> bool {
        match self.shared.operator_update(id, &[(field, value)]) {
            Ok(()) => true,
            Err(m) => {
                tracing::debug!(id, field, reason = ?m, "operator update refused");
                false
            }
        }
    }

    /// An operator removes a subscriber: it disappears from lists and `subscriber.get`.
    pub fn operator_remove(&self, id: i64) -> bool {
        self.shared.operator_remove(id)
    }

    /// An operator takes number `dn` on PBX `pbx_id` away from subscriber `id`. False when
    /// the subscriber does not hold it.
    pub fn operator_remove_dn(&self, id: i64, pbx_id: i64, dn: &str) -> bool {
        self.shared.operator_remove_dn(id, pbx_id, dn)
    }

    /// An operator records a payment by hand in Tariscope (as `accounts.payment` would, but
    /// not through the API: no fault, no request count). Returns the new payment id, `None`
    /// when the subscriber does not exist.
    pub fn operator_post_payment(
        &self,
        subscriber_id: i64,
        day: chrono::NaiveDate,
        amount: rust_decimal::Decimal,
        payment_type: i64,
        bank: Option<&str>,
    ) -> Option<i64> {
        self.shared
            .write()
            .add_payment(
                subscriber_id,
                day,
                amount,
                payment_type,
                bank.map(String::from),
            )
            .ok()
    }

    /// Makes fault injection draw from a generator seeded with `seed`: requests that arrive
    /// in the same order meet the same faults (the seeded simulation's replay).
    pub fn seed_faults(&self, seed: u64) {
        self.shared.seed_faults(seed);
    }

    /// Stop accepting, let open connections finish (bounded), and return.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.done.recv()).await;
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
