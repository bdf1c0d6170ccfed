//! [`TariscopeClient`]: the call loop every typed method goes through: profile lookup,
//! token, one re-login on 401/403, retries with "outcome unknown" for non-idempotent
//! calls. One HTTP request is `http.rs`; the typed methods are `methods.rs`.
//!
//! Owns: the client's shared state and the attempt/retry loop of one API call.
//! Must not: decode domain types (`decode.rs`), import `crate::sim`, or log a password
//! or a token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::TokenManager;
use super::config::{ClientConfig, Format, Secret};
use super::encode::Param;
use super::error::ApiError;
use super::fence::Fence;
use super::limit::Limiter;
use super::profile::{ApiProfile, MethodProfile};
use super::retry::{RetryPolicy, Verdict, classify, outcome_unknown};

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (logins included).
    pub requests: u64,
    /// Attempts after the first, over all calls.
    pub retries: u64,
    /// Successful logins.
    pub logins: u64,
    /// Calls that ended "outcome unknown".
    pub outcome_unknown: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) outcome_unknown: AtomicU64,
}

/// A successful (2xx) or not-found (404) answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// 404, 204, or a 2xx with nothing in it.
    pub fn is_empty_result(&self) -> bool {
        self.status == 404 || self.status == 204 || self.body.iter().all(u8::is_ascii_whitespace)
    }
}

/// An attempt's failure, and whether the request may have reached the server.
pub(crate) struct AttemptError {
    pub err: Box<ApiError>,
    pub sent: bool,
}

pub(crate) fn not_sent(err: ApiError) -> AttemptError {
    AttemptError {
        err: Box::new(err),
        sent: false,
    }
}

pub(crate) fn sent(err: ApiError) -> AttemptError {
    AttemptError {
        err: Box::new(err),
        sent: true,
    }
}

/// The Tariscope API client. Cheap to clone; clones share the token, limiter and counters.
#[derive(Debug, Clone)]
pub struct TariscopeClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) format: Format,
    pub(crate) profile: ApiProfile,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Limiter,
    pub(crate) tokens: TokenManager,
    pub(crate) counters: Counters,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// `host:port` of the base URL, for connect errors.
    pub(crate) target: String,
    /// Method -> (token generation, status) with which it was refused even after a
    /// fresh login: later calls refused the same way with that same token fail at the
    /// first refusal (no login storm).
    pub(crate) refused: Mutex<HashMap<String, (u64, u16)>>,
    /// Asked right before each write request goes out (`fence.rs`).
    pub(crate) fence: Option<Fence>,
}

pub(crate) const USER_AGENT: &str = concat!("tariscope-sync/", env!("CARGO_PKG_VERSION"));

impl TariscopeClient {
    /// Builds the client (no network I/O yet; the first call logs in).
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| ApiError::Config {
            reason: format!("api.base_url {base_url:?} is not a URL (expected http://host:8085)"),
            source: Some(Box::new(e)),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::Config {
                reason: format!("api.base_url {base_url:?} must start with http:// or https://"),
                source: None,
            });
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .tcp_nodelay(true);
        if let Some(addr) = config.local_address {
            builder = builder.local_address(addr);
        }
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| ApiError::Config {
                reason: format!("cannot read api.ca_file {}", path.display()),
                source: Some(Box::new(e)),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ApiError::Config {
                    reason: format!(
                        "api.ca_file {} holds no valid PEM certificate",
                        path.display()
                    ),
                    source: Some(Box::new(e)),
                })?;
            if certs.is_empty() {
                return Err(ApiError::Config {
                    reason: format!("api.ca_file {} holds no PEM certificate", path.display()),
                    source: None,
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ApiError::Config {
            reason: "cannot build the HTTP client (TLS setup)".into(),
            source: Some(Box::new(e)),
        })?;
        let inner = Inner {
            http,
            base_url,
            username: config.username,
            password: config.password,
            format: config.format,
            retry: RetryPolicy::new(config.retry),
            limiter: Limiter::new(config.rate_per_sec, config.concurrency)?,
            tokens: TokenManager::new(config.token_lifetime, config.token_margin),
            profile: config.profile,
            counters: Counters::default(),
            request_timeout: config.request_timeout,
            connect_timeout: config.connect_timeout,
            target: format!(
                "{}:{}",
                parsed.host_str().unwrap_or_default(),
                parsed.port_or_known_default().unwrap_or_default()
            ),
            refused: Mutex::new(HashMap::new()),
            fence: None,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The client with `fence` asked before each write request (see `fence.rs`). Call it
    /// on a new client, before it is cloned.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.fence = Some(fence),
            None => panic!("with_fence on a client already shared"),
        }
        self
    }

    /// Counters since the client was built.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            logins: self.inner.tokens.logins(),
            outcome_unknown: c.outcome_unknown.load(Ordering::Relaxed),
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &ApiProfile {
        &self.inner.profile
    }

    /// Sends `method` with parameters under logical keys; retries per the policy.
    /// Returns 2xx and 404 answers; every other status is an error.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &[(&str, Param)],
    ) -> Result<Reply, ApiError> {
        let inner = &self.inner;
        let mp = inner.method(method)?;
        let wire_params: Vec<(String, Param)> = params
            .iter()
            .map(|(k, v)| (mp.wire_name(k).to_owned(), v.clone()))
            .collect();
        let started = Instant::now();
        let mut schedule = inner.retry.schedule();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(method, mp, &wire_params, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            if outcome_unknown(&failure.err, failure.sent, mp.idempotent) {
                inner
                    .counters
                    .outcome_unknown
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(method, attempt, error = %failure.err, "outcome unknown; not resending a non-idempotent call");
                return Err(ApiError::OutcomeUnknown {
                    method: method.to_owned(),
                    source: failure.err,
                });
            }
            if classify(&failure.err) == Verdict::Fatal {
                return Err(*failure.err);
            }
            let retry_after = match &*failure.err {
                ApiError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let Some(delay) =
                inner
                    .retry
                    .next_delay(schedule.next(), retry_after, started.elapsed())
            else {
                if attempt == 1 {
                    return Err(*failure.err);
                }
                return Err(ApiError::Exhausted {
                    method: method.to_owned(),
                    attempts: attempt,
                    elapsed: started.elapsed(),
                    source: failure.err,
                });
            };
            inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tariscope_sync_api_retries_total", "method" => method.to_owned())
                .increment(1);
            tracing::debug!(method, attempt, delay_ms = delay.as_millis() as u64, error = %failure.err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: token, send, and on 401/403 one re-login and one resend.
    async fn attempt(
        &self,
        method: &str,
        mp: &MethodProfile,
        params: &[(String, Param)],
        attempt: u32,
    ) -> Result<Reply, AttemptError> {
        let inner = &self.inner;
        let token = inner.token().await.map_err(not_sent)?;
        let first = inner
            .send(method, mp, params, Some(&token), attempt)
            .await?;
        if !is_refusal(first.status) {
            return inner.finish(method, first, token.generation);
        }
        if inner.refused_with(method, token.generation, first.status) {
            return Err(not_sent(inner.unauthorized(method, &first)));
        }
        tracing::debug!(
            method,
            status = first.status,
            "refused; logging in again once"
        );
        inner.tokens.invalidate(token.generation).await;
        let fresh = inner.token().await.map_err(not_sent)?;
        let second = inner
            .send(method, mp, params, Some(&fresh), attempt)
            .await?;
        if is_refusal(second.status) {
            if let Ok(mut refused) = inner.refused.lock() {
                refused.insert(method.to_owned(), (fresh.generation, second.status));
            }
            return Err(not_sent(inner.unauthorized(method, &second)));
        }
        inner.finish(method, second, fresh.generation)
    }
}

fn is_refusal(status: u16) -> bool {
    status == 401 || status == 403
}
