//! [`RetryPolicy`] and the one place that classifies errors: [`classify`] (may it be
//! retried?), [`outcome_unknown`] (may a non-idempotent write have taken effect?) and
//! [`kind`] (what a failure means for the caller: the sync engine's read and write error
//! kinds are derived from it, never from status codes of their own).
//!
//! Owns: those three decisions, and the delay before the next attempt (exponential from
//! `backon`, full jitter, a cap, `Retry-After` honoured, bounded by maximum attempts and
//! maximum elapsed time). Must not: send requests (the client's call loop does) or know
//! method names beyond the `idempotent` flag it is given.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;

use super::config::RetrySettings;
use super::error::ApiError;

/// What may be done after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request provably did not take effect (no connection, or the server refused
    /// it before acting: 408, 429, 503, 401/403 handled by the token manager). Any call
    /// may be retried.
    RetryAny,
    /// Transient, but the request may have taken effect (timeout after sending, broken
    /// connection, 500/502/504...): only idempotent calls may be retried; a
    /// non-idempotent call ends with "outcome unknown".
    RetryIdempotent,
    /// Retrying cannot help (other 4xx, decode errors, configuration, auth refused).
    Fatal,
}

impl Verdict {
    /// Retryable for an idempotent call.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Fatal)
    }
}

/// The one classification of errors: retry connect errors, timeouts, 408, 429 and 5xx
/// except 501; never other 4xx or decode errors.
pub fn classify(err: &ApiError) -> Verdict {
    match err {
        ApiError::Connect { .. } => Verdict::RetryAny,
        ApiError::Timeout { .. } | ApiError::Transport { .. } => Verdict::RetryIdempotent,
        ApiError::Status { status, .. } => classify_status(*status),
        ApiError::Exhausted { source, .. } => classify(source),
        ApiError::OutcomeUnknown { .. }
        | ApiError::Config { .. }
        | ApiError::LoginRejected { .. }
        | ApiError::Unauthorized { .. }
        | ApiError::Fenced { .. }
        | ApiError::Decode { .. } => Verdict::Fatal,
    }
}

/// The status-code part of [`classify`].
pub fn classify_status(status: u16) -> Verdict {
    match status {
        408 | 429 | 503 => Verdict::RetryAny,
        501 => Verdict::Fatal,
        500..=599 => Verdict::RetryIdempotent,
        _ => Verdict::Fatal,
    }
}

/// The outcome-unknown rule: a failed call of a non-idempotent method whose request may
/// have reached the server (`sent`) and whose failure does not prove the server refused it
/// (a transient failure after sending, or a 2xx answer that cannot be read) may have taken
/// effect. It is never resent blindly: the caller looks the record up first.
pub fn outcome_unknown(err: &ApiError, sent: bool, idempotent: bool) -> bool {
    if idempotent || !sent {
        return false;
    }
    match err {
        ApiError::Decode { .. } => true,
        other => classify(other) == Verdict::RetryIdempotent,
    }
}

/// What a final failure means for the caller (after the client's retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-idempotent write may have taken effect ([`outcome_unknown`]).
    OutcomeUnknown,
    /// Login refused, or a call refused even with a fresh token (credentials, rights).
    Auth,
    /// HTTP 404: the record or path does not exist.
    NotFound,
    /// HTTP 409: the record (an account number, a DN) exists already.
    AlreadyExists,
    /// Another 4xx: the server refused the request as it stands.
    Rejected,
    /// The answer could not be decoded.
    BadData,
    /// Transient trouble ([`classify`] would retry it) that outlasted the retries.
    Transient,
    /// The client's own configuration, or its fence refused a write (not sent).
    Config,
}

/// The [`Kind`] of a final error.
pub fn kind(err: &ApiError) -> Kind {
    match err {
        ApiError::OutcomeUnknown { .. } => Kind::OutcomeUnknown,
        ApiError::LoginRejected { .. } | ApiError::Unauthorized { .. } => Kind::Auth,
        ApiError::Decode { .. } => Kind::BadData,
        ApiError::Config { .. } | ApiError::Fenced { .. } => Kind::Config,
        ApiError::Exhausted { source, .. } => kind(source),
        ApiError::Connect { .. } | ApiError::Timeout { .. } | ApiError::Transport { .. } => {
            Kind::Transient
        }
        ApiError::Status { status, .. } => match (*status, classify_status(*status)) {
            (404, _) => Kind::NotFound,
            (409, _) => Kind::AlreadyExists,
            (_, v) if v.is_retryable() => Kind::Transient,
            _ => Kind::Rejected,
        },
    }
}

/// The retry budget of one call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    pub fn new(settings: RetrySettings) -> Self {
        Self { settings }
    }

    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts.max(1)
    }

    /// The exponential delays (no jitter yet), from `backon`.
    pub fn schedule(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.settings.initial_delay)
            .with_max_delay(self.settings.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts().saturating_sub(1) as usize)
            .build()
    }

    /// The wait before the next attempt, or `None` to give up: the backoff step with full
    /// jitter, raised to `Retry-After` if the server asked for longer, and refused if it
    /// would end past `max_elapsed`.
    pub fn next_delay(
        &self,
        step: Option<Duration>,
        retry_after: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        let step = step?;
        let jittered = if step.is_zero() {
            step
        } else {
            rand::rng().random_range(Duration::ZERO..=step)
        };
        let delay = match retry_after {
            Some(ra) => ra.max(jittered),
            None => jittered,
        };
        (elapsed + delay <= self.settings.max_elapsed).then_some(delay)
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(24 * 3600)));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ApiError {
        ApiError::Status {
            method: "m".into(),
            status: code,
            code: None,
            message: None,
            retry_after: None,
            body_excerpt: String::new(),
        }
    }

    #[test]
    fn status_table() {
        let cases = [
            (400, Verdict::Fatal),
            (401, Verdict::Fatal),
            (403, Verdict::Fatal),
            (404, Verdict::Fatal),
            (405, Verdict::Fatal),
            (408, Verdict::RetryAny),
            (409, Verdict::Fatal),
            (422, Verdict::Fatal),
            (429, Verdict::RetryAny),
            (500, Verdict::RetryIdempotent),
            (501, Verdict::Fatal),
            (502, Verdict::RetryIdempotent),
            (503, Verdict::RetryAny),
            (504, Verdict::RetryIdempotent),
            (599, Verdict::RetryIdempotent),
        ];
        for (code, want) in cases {
            assert_eq!(classify(&status(code)), want, "{code}");
            assert_eq!(
                status(code).is_retryable(),
                want != Verdict::Fatal,
                "{code}"
            );
        }
    }

    #[test]
    fn error_kind_table() {
        let boxed = || -> crate::api::error::BoxError { "x".into() };
        let cases = [
            (
                ApiError::Connect {
                    method: "m".into(),
                    target: "127.0.0.1:1".into(),
                    cause: crate::api::ConnectCause::Refused,
                    source: boxed(),
                },
                Verdict::RetryAny,
            ),
            (
                ApiError::Timeout {
                    method: "m".into(),
                    after: Duration::from_secs(1),
                    source: boxed(),
                },
                Verdict::RetryIdempotent,
            ),
            (
                ApiError::Transport {
                    method: "m".into(),
                    source: boxed(),
                },
                Verdict::RetryIdempotent,
            ),
            (
                ApiError::Decode {
                    method: "m".into(),
                    field: "f".into(),
                    reason: "r".into(),
                    excerpt: String::new(),
                },
                Verdict::Fatal,
            ),
            (
                ApiError::OutcomeUnknown {
                    method: "m".into(),
                    source: Box::new(status(502)),
                },
                Verdict::Fatal,
            ),
            (
                ApiError::Exhausted {
                    method: "m".into(),
                    attempts: 3,
                    elapsed: Duration::ZERO,
                    source: Box::new(status(503)),
                },
                Verdict::RetryAny,
            ),
            (
                ApiError::Unauthorized {
                    method: "m".into(),
                    username: "u".into(),
                    status: 403,
                    body_excerpt: String::new(),
                },
                Verdict::Fatal,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(classify(&err), want, "{err:?}");
        }
    }

    #[test]
    fn outcome_unknown_only_for_a_sent_non_idempotent_call_not_refused() {
        let timeout = || ApiError::Timeout {
            method: "m".into(),
            after: Duration::from_secs(1),
            source: "x".into(),
        };
        let decode = ApiError::Decode {
            method: "m".into(),
            field: "id".into(),
            reason: "r".into(),
            excerpt: String::new(),
        };
        // (error, sent, idempotent) -> unknown?
        let cases = [
            (timeout(), true, false, true),
            (timeout(), true, true, false),
            (timeout(), false, false, false),
            (status(502), true, false, true),
            (status(503), true, false, false),
            (status(429), true, false, false),
            (status(400), true, false, false),
            (decode, true, false, true),
        ];
        for (err, sent, idempotent, want) in cases {
            assert_eq!(
                outcome_unknown(&err, sent, idempotent),
                want,
                "{err:?} sent={sent} idempotent={idempotent}"
            );
        }
    }

    #[test]
    fn kinds_of_final_errors() {
        let exhausted = |e: ApiError| ApiError::Exhausted {
            method: "m".into(),
            attempts: 5,
            elapsed: Duration::ZERO,
            source: Box::new(e),
        };
        let cases = [
            (status(404), Kind::NotFound),
            (status(409), Kind::AlreadyExists),
            (status(400), Kind::Rejected),
            (status(422), Kind::Rejected),
            (status(501), Kind::Rejected),
            (status(500), Kind::Transient),
            (exhausted(status(429)), Kind::Transient),
            (exhausted(status(408)), Kind::Transient),
            (exhausted(status(404)), Kind::NotFound),
            (
                ApiError::LoginRejected {
                    username: "u".into(),
                    status: 401,
                    body_excerpt: String::new(),
                },
                Kind::Auth,
            ),
            (
                ApiError::OutcomeUnknown {
                    method: "m".into(),
                    source: Box::new(status(502)),
                },
                Kind::OutcomeUnknown,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(kind(&err), want, "{err:?}");
        }
    }

    #[test]
    fn schedule_is_exponential_capped_and_bounded() {
        let p = RetryPolicy::new(RetrySettings {
            max_attempts: 6,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            max_elapsed: Duration::from_secs(60),
        });
        let steps: Vec<u128> = p.schedule().map(|d| d.as_millis()).collect();
        assert_eq!(steps, vec![100, 200, 400, 500, 500]);
        let one = RetryPolicy::new(RetrySettings {
            max_attempts: 1,
            ..RetrySettings::default()
        });
        assert_eq!(one.schedule().count(), 0);
    }

    #[test]
    fn delays_jitter_within_the_step_and_honour_retry_after_and_elapsed() {
        let p = RetryPolicy::new(RetrySettings {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
        });
        for _ in 0..200 {
            let d = p
                .next_delay(Some(Duration::from_millis(400)), None, Duration::ZERO)
                .unwrap();
            assert!(d <= Duration::from_millis(400));
            let d = p
                .next_delay(
                    Some(Duration::from_millis(400)),
                    Some(Duration::from_secs(2)),
                    Duration::ZERO,
                )
                .unwrap();
            assert_eq!(d, Duration::from_secs(2));
        }
        assert_eq!(p.next_delay(None, None, Duration::ZERO), None);
        assert_eq!(
            p.next_delay(
                Some(Duration::from_millis(1)),
                Some(Duration::from_secs(3)),
                Duration::from_secs(8)
            ),
            None
        );
    }

    #[test]
    fn retry_after_formats() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
