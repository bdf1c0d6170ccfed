//! The HTTP half of the client: one request through the limiter inside a span, the
//! login request, and the mapping of transport outcomes and error bodies.
//!
//! Owns: building the request (URL with the `/xml` suffix, query/JSON/form encoding,
//! headers with a sensitive `Authorization`), reading the answer, and `/api/auth`.
//! Must not: retry or re-login (that is `client.rs`), decode domain types, or log a
//! body, a password or a token.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::Instrument;

use super::auth::Token;
use super::client::{AttemptError, Inner, Reply, not_sent, sent};
use super::config::{Format, Secret};
use super::encode::{self, Param};
use super::error::{ApiError, ConnectCause, excerpt};
use super::profile::{Encoding, MethodProfile};
use super::retry::parse_retry_after;
use super::wire::{self, Record};

/// A raw HTTP answer.
pub(crate) struct Raw {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Inner {
    pub(crate) fn method(&self, method: &str) -> Result<&MethodProfile, ApiError> {
        self.profile.method(method).ok_or_else(|| ApiError::Config {
            reason: format!("the API profile has no entry for {method}"),
            source: None,
        })
    }

    pub(crate) async fn token(&self) -> Result<Token, ApiError> {
        self.tokens.get(|| self.login()).await
    }

    pub(crate) fn refused_with(&self, method: &str, generation: u64, status: u16) -> bool {
        self.refused
            .lock()
            .map(|r| r.get(method) == Some(&(generation, status)))
            .unwrap_or(false)
    }

    pub(crate) fn unauthorized(&self, method: &str, raw: &Raw) -> ApiError {
        ApiError::Unauthorized {
            method: method.to_owned(),
            username: self.username.clone(),
            status: raw.status,
            body_excerpt: excerpt(&raw.body, 200),
        }
    }

    /// Maps a non-refusal answer: 2xx and 404 are replies, the rest errors.
    pub(crate) fn finish(
        &self,
        method: &str,
        raw: Raw,
        generation: u64,
    ) -> Result<Reply, AttemptError> {
        if (200..300).contains(&raw.status) || raw.status == 404 {
            if let Ok(mut refused) = self.refused.lock()
                && refused.get(method).is_some_and(|(g, _)| *g == generation)
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

    pub(crate) fn status_error(&self, method: &str, raw: &Raw) -> ApiError {
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
    pub(crate) async fn login(&self) -> Result<Secret, ApiError> {
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

    pub(crate) fn url(&self, mp: &MethodProfile) -> String {
        let path = match self.format {
            Format::Json => mp.path.clone(),
            Format::Xml if mp.path.ends_with('/') => format!("{}xml/", mp.path),
            Format::Xml => format!("{}/xml", mp.path),
        };
        format!("{}{}", self.base_url, path)
    }

    /// One HTTP request through the limiter, inside a span.
    pub(crate) async fn send(
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
            // After the slot, which may have taken long: the check must be the last wait.
            let fenced_until = match &self.fence {
                Some(fence) if super::fence::is_write(method) => {
                    Some(fence.check().await.map_err(|reason| fenced(method, reason))?)
                }
                _ => None,
            };
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
                        .body(body(encode::json_object(params), fenced_until));
                }
                Encoding::Form => {
                    req = self
                        .http
                        .request(mp.verb.as_http(), url)
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body(encode::form(params), fenced_until));
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
            if let Some(late) = fenced_until.and_then(super::fence::Expired::past) {
                return Err(fenced(method, late.to_string()));
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.exchange(method, req).await.map_err(|f| {
                match super::fence::expired_in(&*f.err) {
                    Some(late) => fenced(method, late.to_string()),
                    None => f,
                }
            });
            let span = tracing::Span::current();
            span.record("duration_ms", started.elapsed().as_millis() as u64);
            let status = match &result {
                Ok(raw) => raw.status.to_string(),
                Err(_) => "error".to_string(),
            };
            metrics::counter!("tariscope_sync_api_requests_total", "method" => method.to_owned(), "status" => status).increment(1);
            metrics::histogram!("tariscope_sync_api_request_duration_seconds", "method" => method.to_owned())
                .record(started.elapsed().as_secs_f64());
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

    pub(crate) async fn exchange(
        &self,
        method: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Raw, AttemptError> {
        let map = |e: reqwest::Error| self.transport_error(method, e);
        let mut resp = req.send().await.map_err(map)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = read_body(&mut resp).await.map_err(map)?;
        Ok(Raw {
            status,
            retry_after,
            body,
        })
    }

    pub(crate) fn transport_error(&self, method: &str, e: reqwest::Error) -> AttemptError {
        let method = method.to_owned();
        if e.is_connect() {
            return not_sent(ApiError::Connect {
                method,
                target: self.target.clone(),
                cause: ConnectCause::of(&e, self.connect_timeout),
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

/// The whole body, in one buffer sized from `Content-Length` (reqwest's `bytes()` grows
/// its buffer as chunks come, holding up to twice a large list answer at once).
async fn read_body(resp: &mut reqwest::Response) -> Result<Bytes, reqwest::Error> {
    /// A `Content-Length` above this is not trusted for the first allocation.
    const MAX_PRESIZE: u64 = 256 << 20;
    let Some(first) = resp.chunk().await? else {
        return Ok(Bytes::new());
    };
    let Some(second) = resp.chunk().await? else {
        return Ok(first);
    };
    let announced = resp.content_length().unwrap_or(0).min(MAX_PRESIZE) as usize;
    let mut buf = bytes::BytesMut::with_capacity(announced.max(first.len() + second.len()));
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
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

/// A write the fence refused: not sent.
fn fenced(method: &str, reason: String) -> AttemptError {
    not_sent(ApiError::Fenced {
        method: method.to_owned(),
        reason,
    })
}

/// A request body; a fenced write's is checked against the fence's deadline once more when
/// the connection asks for it, right before it is written (`fence.rs`).
fn body(text: String, fenced_until: Option<Instant>) -> reqwest::Body {
    match fenced_until {
        None => text.into(),
        Some(until) => reqwest::Body::wrap(super::fence::FencedBody::new(text.into(), until)),
    }
}
