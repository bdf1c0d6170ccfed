//! API errors as the reference wire profile defines them (status + `error` code +
//! English message).
//!
//! Owns: `ApiError` and its constructors, one per row of the profile's error table.
//! Must not: render bodies (that is `value`) or know HTTP types beyond the status number.

use super::dataset::WriteError;

/// An error answer of an API method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` seconds (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_parameter", message)
    }

    pub fn credentials() -> Self {
        Self::new(401, "invalid_credentials", "unknown user or wrong password")
    }

    pub fn token_missing() -> Self {
        Self::new(
            401,
            "token_missing",
            "no Authorization: Bearer token; log in at /api/auth",
        )
    }

    pub fn token_invalid() -> Self {
        Self::new(
            401,
            "token_invalid",
            "the token does not verify; log in again at /api/auth",
        )
    }

    pub fn token_expired() -> Self {
        Self::new(
            401,
            "token_expired",
            "the token has expired; log in again at /api/auth",
        )
    }

    pub fn token_ip() -> Self {
        Self::new(
            401,
            "token_ip_mismatch",
            "the token was issued to another IP address; log in again from this one",
        )
    }

    pub fn forbidden(user: &str, method: &str) -> Self {
        Self::new(
            403,
            "forbidden",
            format!("user {user} has no right to {method}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn method_not_allowed(method: &str, verb: &str) -> Self {
        Self::new(405, "method_not_allowed", format!("{method} takes {verb}"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    pub fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(429, "too_many_requests", "too many requests; retry later")
        }
    }

    pub fn injected(status: u16) -> Self {
        if status == 500 {
            Self::new(500, "internal_error", "internal server error (injected)")
        } else {
            Self::new(503, "unavailable", "service unavailable (injected)")
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound(m) => Self::not_found(m),
            WriteError::Invalid(m) => Self::invalid(m),
            WriteError::Conflict(m) => Self::conflict(m),
        }
    }
}
