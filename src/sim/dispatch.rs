//! One API request from routing to response: count, faults, verb check, parameters,
//! authentication and rights, the handler, rendering.
//!
//! Owns: the request pipeline order (documented in `docs/sim.md`) and the connection-drop
//! signal. Must not: hold business rules of methods (`handlers`) or the control API.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;

use super::config::{Fault, SimUser};
use super::error::ApiError;
use super::handlers::{accounts, reference, sql, subscribers};
use super::params::Params;
use super::routes::{Route, Verb, route};
use super::state::Shared;
use super::value::{Format, Val, render, render_error};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Returned to hyper to close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct Dropped;

pub type HttpResponse = Response<Full<Bytes>>;

/// Build a response with a body and content type.
pub fn respond(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An API error as a response.
pub fn error_response(e: &ApiError, format: Format) -> HttpResponse {
    let mut resp = respond(
        e.status,
        format.content_type(),
        render_error(e.code, &e.message, format),
    );
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn chance(shared: &Shared, rate: f64) -> bool {
    rate > 0.0 && (rate >= 1.0 || shared.fault_draw(|rng| rng.random_bool(rate)))
}

/// How much of an injected delay the blocking pool waits (see `precise_sleep`).
const FINE_SLEEP: Duration = Duration::from_millis(3);
/// How much of it the request's task yields instead of sleeping.
const SPIN: Duration = Duration::from_micros(400);

/// Wait `delay` with a precision of a few microseconds.
///
/// Written by hand because no timer crate does this: tokio's timer wheel has a 1 ms
/// resolution, rounds every deadline up and parks in whole milliseconds, so
/// `tokio::time::sleep(20 ms)` returns after 21–22 ms, which would make "latency 20 ms" a
/// 5–10 % slower server than asked for; a thread sleep (nanosleep) overshoots by 100–200 µs
/// on these virtual machines. So the coarse part of the wait stays on the timer wheel, the
/// next few milliseconds are a thread sleep on the blocking pool, and for the last 400 µs
/// the task yields to the runtime until the deadline (other tasks run meanwhile, and the
/// worker is awake when the answer is due). Cost: up to ~0.4 ms of CPU per delayed
/// request, and a blocking thread held for ~3 ms.
async fn precise_sleep(delay: Duration) {
    let deadline = std::time::Instant::now() + delay;
    if let Some(coarse) = delay.checked_sub(FINE_SLEEP) {
        tokio::time::sleep(coarse).await;
    }
    if std::time::Instant::now() >= deadline {
        return;
    }
    // A join error means the runtime is shutting down; the wait is moot then.
    let _ = tokio::task::spawn_blocking(move || {
        let rest = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(sleep) = rest.checked_sub(SPIN) {
            std::thread::sleep(sleep);
        }
    })
    .await;
    while std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Latency, drop-before, 429 and 5xx, in that order. `Err(None)` = drop the connection.
async fn pre_faults(shared: &Shared, f: &Fault) -> Result<(), Option<ApiError>> {
    let mut delay = f.latency;
    if !f.latency_jitter.is_zero() {
        let jitter = u64::try_from(f.latency_jitter.as_micros()).unwrap_or(u64::MAX);
        delay += Duration::from_micros(shared.fault_draw(|rng| rng.random_range(0..=jitter)));
    }
    if !delay.is_zero() {
        precise_sleep(delay).await;
    }
    if chance(shared, f.drop_before_rate) {
        return Err(None);
    }
    if chance(shared, f.rate_limit_rate) {
        return Err(Some(ApiError::too_many(f.retry_after_secs)));
    }
    if chance(shared, f.error_rate) {
        return Err(Some(ApiError::injected(f.error_status)));
    }
    Ok(())
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Handle one `/api/...` request.
pub async fn api(
    shared: &Shared,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, Dropped> {
    let Some(r) = route(req.uri().path()) else {
        let format = if req.uri().path().trim_end_matches('/').ends_with("/xml") {
            Format::Xml
        } else {
            Format::Json
        };
        let e = ApiError::not_found(format!("no API method at {}", req.uri().path()));
        return Ok(error_response(&e, format));
    };
    let n = shared.count(r.index);
    let format = if r.xml { Format::Xml } else { Format::Json };
    let fault = shared.fault_for(r.name()).filter(|f| f.applies_to(n));
    if let Some(f) = &fault {
        match pre_faults(shared, f).await {
            Ok(()) => {}
            Err(None) => return Err(Dropped),
            Err(Some(e)) => return Ok(error_response(&e, format)),
        }
    }
    let result = serve(shared, peer, r, format, req).await;
    if fault.is_some_and(|f| chance(shared, f.drop_after_commit_rate)) {
        return Err(Dropped);
    }
    Ok(match result {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(
                method = r.name(),
                status = e.status,
                code = e.code,
                "API error"
            );
            error_response(&e, format)
        }
    })
}

async fn serve(
    shared: &Shared,
    peer: IpAddr,
    r: Route,
    format: Format,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let verb_ok = match r.verb() {
        Verb::Get => req.method() == Method::GET || req.method() == Method::HEAD,
        Verb::Post => req.method() == Method::POST,
    };
    if !verb_ok {
        return Err(ApiError::method_not_allowed(r.name(), r.verb().as_str()));
    }
    let mut params = Params::from_query(req.uri().query())?;
    let token = bearer(&req).map(str::to_owned);
    if r.verb() == Verb::Post {
        // Read the body before any auth answer so the connection stays reusable.
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::invalid(format!("could not read the body: {e}")))?
            .to_bytes();
        params.add_body(content_type.as_deref(), &body)?;
    }
    let user = if r.index == 0 {
        None
    } else {
        let token = token.ok_or_else(ApiError::token_missing)?;
        let claims = shared.signer.verify(&token, peer)?;
        let user = shared
            .user(&claims.sub)
            .ok_or_else(ApiError::token_invalid)?;
        if !user.may(r.name()) {
            return Err(ApiError::forbidden(&user.username, r.name()));
        }
        Some(user)
    };
    if let Some(text) = reference::system_text(r.name(), shared.wire.system_fields) {
        return Ok(respond(200, "text/plain; charset=utf-8", text));
    }
    let body = run(shared, peer, r, user, &params, format)?;
    Ok(respond(200, format.content_type(), body))
}

fn run(
    shared: &Shared,
    peer: IpAddr,
    r: Route,
    user: Option<&SimUser>,
    p: &Params,
    format: Format,
) -> Result<String, ApiError> {
    let wire = &shared.wire;
    let out = |v: Val<'_>| render(v, wire, format);
    let full = subscribers::Shape::full(wire);
    let listed = subscribers::Shape::listed(wire);
    let name = r.name();
    Ok(match name {
        "api.auth" => {
            let username = p.required_text("username")?;
            let password = p.raw("password").and_then(|v| match v {
                super::params::PVal::Text(t) => Some(t.as_str()),
                super::params::PVal::Null => None,
            });
            let user = shared
                .user(username)
                .filter(|u| Some(u.password.as_str()) == password)
                .ok_or_else(ApiError::credentials)?;
            let token = shared.signer.issue(&user.username, peer);
            tracing::debug!(user = %user.username, %peer, "token issued");
            out(Val::Obj(vec![("token", Val::owned(token))]))
        }
        "subscriber.get" => out(subscribers::get(&shared.read(), p, full)?),
        "subscriber.list.department" => {
            out(subscribers::list_department(&shared.read(), p, listed)?)
        }
        "subscriber.list.node" => out(subscribers::list_node(&shared.read(), p, listed)?),
        "subscriber.update" => out(subscribers::update(&mut shared.write(), p, full)?),
        "subscriber.create" => out(subscribers::create(&mut shared.write(), p)?),
        "subscriber.dnadd" => out(subscribers::dnadd(
            &mut shared.write(),
            p,
            chrono::Utc::now().date_naive(),
            wire.accept_duplicate_dns,
        )?),
        "accounts.summary" => out(accounts::summary(&shared.read(), p)?),
        "accounts.charges" => out(accounts::charges(&shared.read(), p)?),
        "accounts.payment" => out(accounts::payment(&mut shared.write(), p)?),
        "accounts.payments" => out(accounts::payments(&shared.read(), p)?),
        "tariffs.plans" => out(reference::plans(&shared.read())),
        "tariffs.details" => out(reference::details(&shared.read(), p)?),
        "tariffs.time" => out(reference::time(&shared.read(), p)?),
        "services.list" => out(reference::services(&shared.read())),
        "claims" => out(reference::claims(user.ok_or_else(ApiError::token_missing)?)),
        "sql" => out(sql::run(&shared.sql, &shared.read(), p)?),
        system => out(reference::system(
            &shared.read(),
            system,
            wire.system_fields,
        )),
    })
}
