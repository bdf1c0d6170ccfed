//! [`ApiError`]: every way a Tariscope call can fail, each variant telling the operator
//! what to do.
//!
//! Owns: the error type and its small queries (`is_outcome_unknown`, `is_not_found`).
//! Must not: decide retryability (that is [`super::retry::classify`], the one function
//! that does; `is_retryable` only delegates to it).

use std::time::Duration;

pub use super::cause::ConnectCause;
use super::cause::seconds;

/// A boxed source error that keeps the chain for the operator.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client configuration cannot be used.
    #[error("invalid API client configuration: {reason}")]
    Config {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },

    /// No TCP/TLS connection could be made; the request never left this host.
    #[error("{method}: {}", cause.describe(target))]
    Connect {
        method: String,
        /// `host:port` of `api.base_url`.
        target: String,
        /// Refused, DNS, TLS (with the certificate problem) or a connect timeout.
        cause: ConnectCause,
        #[source]
        source: BoxError,
    },

    /// The request was sent but no whole answer came within `api.request_timeout_secs`.
    #[error(
        "{method}: no answer within {} (api.request_timeout_secs); the server may be overloaded: raise api.request_timeout_secs if this persists",
        seconds(*after)
    )]
    Timeout {
        method: String,
        after: Duration,
        #[source]
        source: BoxError,
    },

    /// The connection broke after the request was sent (reset, closed, truncated body).
    #[error(
        "{method}: the connection broke during the request; check the server and any proxy in between"
    )]
    Transport {
        method: String,
        #[source]
        source: BoxError,
    },

    /// The server answered with an HTTP error status.
    #[error("{method}: the server answered HTTP {status}{}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_else(|| format!("; body: {body_excerpt:?}")))]
    Status {
        method: String,
        status: u16,
        /// The error code of the body (`{"error": ...}`), if any.
        code: Option<String>,
        /// The message of the body, if any.
        message: Option<String>,
        /// `Retry-After`, if the server sent one.
        retry_after: Option<Duration>,
        body_excerpt: String,
    },

    /// `/api/auth` refused the configured user.
    #[error(
        "login as {username:?} refused (HTTP {status}): check api.username and the password (file, environment variable or config) and that the API user exists in Tariscope; body: {body_excerpt:?}"
    )]
    LoginRejected {
        username: String,
        status: u16,
        body_excerpt: String,
    },

    /// The call was refused twice (before and after a fresh login).
    #[error(
        "{method}: refused with HTTP {status} even with a fresh token: check the credentials of {username:?} and its method rights for {method} in Tariscope (Integration > Tariscope API > API Users > Method Rights)"
    )]
    Unauthorized {
        method: String,
        username: String,
        status: u16,
        body_excerpt: String,
    },

    /// The response could not be decoded.
    #[error(
        "{method}: cannot decode the response ({field}: {reason}); the server's format may differ from the profile (see docs/client.md); body starts: {excerpt:?}"
    )]
    Decode {
        method: String,
        field: String,
        reason: String,
        excerpt: String,
    },

    /// A non-idempotent call whose request may have reached the server failed; it was
    /// not resent. Look the record up before sending it again.
    #[error(
        "{method}: outcome unknown, the request may have been applied; look the record up before resending"
    )]
    OutcomeUnknown {
        method: String,
        #[source]
        source: Box<ApiError>,
    },

    /// The write was not sent: the fence installed by the caller refused it (a daemon that
    /// no longer leads its standby pair). The new leader sends it after a look-up.
    #[error(
        "{method}: not sent, because {reason}; the daemon that leads now looks the record up and sends it if needed"
    )]
    Fenced { method: String, reason: String },

    /// Retries were exhausted (attempts or elapsed time). The message leads with the last
    /// attempt's cause, and is the same for every call that fails the same way (no elapsed
    /// time in it), so a run can say "all items failed with" it once.
    #[error("{source} (gave up after {attempts} attempt(s))")]
    Exhausted {
        method: String,
        attempts: u32,
        elapsed: Duration,
        #[source]
        source: Box<ApiError>,
    },
}

impl ApiError {
    /// True for a non-idempotent write whose request may have reached the server.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// True when retrying the same call later may succeed. Delegates to the one
    /// classification function, [`super::retry::classify`].
    pub fn is_retryable(&self) -> bool {
        super::retry::classify(self).is_retryable()
    }

    /// True when the server said the record (or path) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 404,
            Self::Exhausted { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. }
            | Self::LoginRejected { status, .. }
            | Self::Unauthorized { status, .. } => Some(*status),
            Self::Exhausted { source, .. } | Self::OutcomeUnknown { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// At most `max` characters of `body`, for error messages (never holds a secret: bodies
/// of `/api/auth` are not excerpted).
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_tell_the_operator_what_to_do() {
        let e = ApiError::Unauthorized {
            method: "sql".into(),
            username: "demo".into(),
            status: 403,
            body_excerpt: String::new(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("sql") && msg.contains("method rights"),
            "{msg}"
        );
        let e = ApiError::Status {
            method: "subscriber.get".into(),
            status: 404,
            code: Some("not_found".into()),
            message: Some("no subscriber 9".into()),
            retry_after: None,
            body_excerpt: String::new(),
        };
        assert!(e.is_not_found());
        assert_eq!(e.status(), Some(404));
        assert!(e.to_string().contains("no subscriber 9"));
    }

    #[test]
    fn excerpt_is_bounded_and_utf8_safe() {
        assert_eq!(excerpt("ééé".as_bytes(), 2), "éé…");
        assert_eq!(excerpt(b"ab", 5), "ab");
        assert_eq!(excerpt(&[0xff, b'a'], 5), "\u{fffd}a");
    }
}
