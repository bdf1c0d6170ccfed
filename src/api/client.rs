//! [`TariscopeClient`]: the HTTP machinery every typed method goes through: profile
//! lookup, limiter, token, one re-login on 401/403, retries, spans, status mapping.
//! The typed methods themselves are in `methods.rs`.
//!
//! Owns: sending one API call and turning transport outcomes into [`ApiError`]s.
//! Must not: decode domain types (`decode.rs`), import `crate::sim`, or log a password
//! or a token (the `Authorization` header is marked sensitive; bodies are not logged).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::Instrument;

use super::auth::{Token, TokenManager};
use super::config::{ClientConfig, Format, Secret};
use super::encode::{self, Param};
use super::error::{ApiError, excerpt};
use super::limit::Limiter;
use super::profile::{ApiProfile, Encoding, MethodProfile};
use super::retry::{RetryPolicy, Verdict, classify, parse_retry_after};
use super::wire::{self, Record};

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
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    outcome_unknown: AtomicU64,
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
struct AttemptError {
    err: Box<ApiError>,
    sent: bool,
}

fn not_sent(err: ApiError) -> AttemptError {
    AttemptError {
        err: Box::new(err),
        sent: false,
    }
}

fn sent(err: ApiError) -> AttemptError {
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
    http: reqwest::Client,
    base_url: String,
    username: String,
    password: Secret,
    pub(crate) format: Format,
    pub(crate) profile: ApiProfile,
    retry: RetryPolicy,
    limiter: Limiter,
    tokens: TokenManager,
    counters: Counters,
    request_timeout: Duration,
    /// Method -> token generation with which it was refused even after a fresh login:
    /// later calls with that same token fail at the first refusal (no login storm).
    refused: Mutex<HashMap<String, u64>>,
}

const USER_AGENT: &str = concat!("tariscope-sync/", env!("CARGO_PKG_VERSION"));

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
            refused: Mutex::new(HashMap::new()),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
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
            let verdict = classify(&failure.err);
            if verdict == Verdict::RetryIdempotent && failure.sent && !mp.idempotent {
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
            if verdict == Verdict::Fatal {
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
        if inner.refused_with(method, token.generation) {
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
                refused.insert(method.to_owned(), fresh.generation);
            }
            return Err(not_sent(inner.unauthorized(method, &second)));
        }
        inner.finish(method, second, fresh.generation)
    }
}

fn is_refusal(status: u16) -> bool {
    status == 401 || status == 403
}

/// A raw HTTP answer.
struct Raw {
    status: u16,
    retry_after: Option<Duration>,
    body: Bytes,
}

impl Inner {
    fn method(&self, method: &str) -> Result<&MethodProfile, ApiError> {
        self.profile.method(method).ok_or_else(|| ApiError::Config {
            reason: format!("the API profile has no entry for {method}"),
            source: None,
        })
    }

    async fn token(&self) -> Result<Token, ApiError> {
        self.tokens.get(|| self.login()).await
    }

    fn refused_with(&self, method: &str, generation: u64) -> bool {
        self.refused
            .lock()
            .map(|r| r.get(method) == Some(&generation))
            .unwrap_or(false)
    }

    fn unauthorized(&self, method: &str, raw: &Raw) -> ApiError {
        ApiError::Unauthorized {
            method: method.to_owned(),
            username: self.username.clone(),
            status: raw.status,
            body_excerpt: excerpt(&raw.body, 200),
        }
    }

    /// Maps a non-refusal answer: 2xx and 404 are replies, the rest errors.
    fn finish(&self, method: &str, raw: Raw, generation: u64) -> Result<Reply, AttemptError> {
        if (200..300).contains(&raw.status) || raw.status == 404 {
            if let Ok(mut refused) = self.refused.lock()
                && refused.get(method).is_some_and(|g| *g == generation)
            {
                refused.remove(method);
            }
            return Ok(Reply {
                status: raw.status,
                body: raw.body,
            });
        }
        Err(sent(self.status_error(method, &raw)))
    }

    fn status_error(&self, method: &str, raw: &Raw) -> ApiError {
        let (code, message) = error_fields(&raw.body, self.format);
        ApiError::Status {
            method: method.to_owned(),
            status: raw.status,
            code,
            message,
            retry_after: raw.retry_after,
            body_excerpt: excerpt(&raw.body, 200),
        }
    }

    /// `POST /api/auth` (through the limiter); returns the token.
    async fn login(&self) -> Result<Secret, ApiError> {
        const METHOD: &str = "api.auth";
        let mp = self.method(METHOD)?;
        let params = vec![
            (
                mp.wire_name("username").to_owned(),
                Param::Text(self.username.clone()),
            ),
            (
                mp.wire_name("password").to_owned(),
                Param::Text(self.password.expose().to_owned()),
            ),
        ];
        let raw = self
            .send(METHOD, mp, &params, None, 1)
            .await
            .map_err(|f| *f.err)?;
        if matches!(raw.status, 400 | 401 | 403 | 404) {
            return Err(ApiError::LoginRejected {
                username: self.username.clone(),
                status: raw.status,
                body_excerpt: excerpt(&raw.body, 200),
            });
        }
        if !(200..300).contains(&raw.status) {
            return Err(self.status_error(METHOD, &raw));
        }
        let decode_err = |field: &str, reason: &str| ApiError::Decode {
            method: METHOD.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
            // The body holds the token: never excerpt it.
            excerpt: "[redacted]".to_owned(),
        };
        let value = wire::parse_body(&raw.body, self.format)
            .map_err(|e| decode_err(&e.field, &e.reason))?;
        let token = match wire::single(&value) {
            Some(v) if v.is_object() => Record::new(v)
                .text(&["token", "access_token", "accesstoken", "jwt"])
                .map_err(|e| decode_err(&e.field, &e.reason))?,
            Some(v) => wire::to_text(v).ok().flatten(),
            None => None,
        };
        match token.map(|t| t.trim().to_owned()) {
            Some(t) if !t.is_empty() => Ok(Secret::new(t)),
            _ => Err(decode_err("token", "no token in the /api/auth answer")),
        }
    }

    fn url(&self, mp: &MethodProfile) -> String {
        let path = match self.format {
            Format::Json => mp.path.clone(),
            Format::Xml if mp.path.ends_with('/') => format!("{}xml/", mp.path),
            Format::Xml => format!("{}/xml", mp.path),
        };
        format!("{}{}", self.base_url, path)
    }

    /// One HTTP request through the limiter, inside a span.
    async fn send(
        &self,
        method: &str,
        mp: &MethodProfile,
        params: &[(String, Param)],
        token: Option<&Token>,
        attempt: u32,
    ) -> Result<Raw, AttemptError> {
        let span = tracing::info_span!(
            "tariscope_request",
            method,
            attempt,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        async {
            let _slot = self.limiter.acquire().await;
            let started = Instant::now();
            let mut url = self.url(mp);
            let mut req;
            match mp.encoding {
                Encoding::Query => {
                    if !params.is_empty() {
                        url.push('?');
                        url.push_str(&encode::form(params));
                    }
                    req = self.http.request(mp.verb.as_http(), url);
                }
                Encoding::Json => {
                    req = self
                        .http
                        .request(mp.verb.as_http(), url)
                        .header(CONTENT_TYPE, "application/json; charset=utf-8")
                        .body(encode::json_object(params));
                }
                Encoding::Form => {
                    req = self
                        .http
                        .request(mp.verb.as_http(), url)
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(encode::form(params));
                }
            }
            req = req.header(
                ACCEPT,
                match self.format {
                    Format::Json => "application/json",
                    Format::Xml => "application/xml",
                },
            );
            if let Some(token) = token {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.value.expose()))
                    .map_err(|_| {
                        not_sent(ApiError::Config {
                            reason: "the server's token is not a valid header value".into(),
                            source: None,
                        })
                    })?;
                value.set_sensitive(true);
                req = req.header(AUTHORIZATION, value);
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.exchange(method, req).await;
            let span = tracing::Span::current();
            span.record("duration_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(raw) => {
                    span.record("status", raw.status);
                    tracing::debug!(status = raw.status, bytes = raw.body.len(), "answer");
                }
                Err(f) => tracing::debug!(error = %f.err, sent = f.sent, "request failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn exchange(
        &self,
        method: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Raw, AttemptError> {
        let map = |e: reqwest::Error| self.transport_error(method, e);
        let resp = req.send().await.map_err(map)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = resp.bytes().await.map_err(map)?;
        Ok(Raw {
            status,
            retry_after,
            body,
        })
    }

    fn transport_error(&self, method: &str, e: reqwest::Error) -> AttemptError {
        let method = method.to_owned();
        if e.is_connect() {
            return not_sent(ApiError::Connect {
                method,
                source: Box::new(e),
            });
        }
        if e.is_builder() {
            return not_sent(ApiError::Config {
                reason: format!("cannot build the request for {method}"),
                source: Some(Box::new(e)),
            });
        }
        let err = if e.is_timeout() {
            ApiError::Timeout {
                method,
                after: self.request_timeout,
                source: Box::new(e),
            }
        } else {
            ApiError::Transport {
                method,
                source: Box::new(e),
            }
        };
        sent(err)
    }
}

/// `(code, message)` of an error body, if it has them.
fn error_fields(body: &[u8], format: Format) -> (Option<String>, Option<String>) {
    let Ok(value) = wire::parse_body(body, format) else {
        return (None, None);
    };
    let Some(v) = wire::single(&value) else {
        return (None, None);
    };
    let rec = Record::new(v);
    let inner = rec
        .get(&["error"])
        .filter(|(_, v)| v.is_object())
        .map(|(_, v)| Record::new(v));
    let rec = inner.unwrap_or(rec);
    let text = |names: &[&str]| rec.text(names).ok().flatten();
    (
        text(&["error", "code", "errorcode"]),
        text(&[
            "message",
            "msg",
            "detail",
            "title",
            "errormessage",
            "description",
        ]),
    )
}
