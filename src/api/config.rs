//! Client configuration: [`ClientConfig`], [`Secret`], [`Format`], [`RetrySettings`].
//!
//! Owns: the plain settings the client is built from, and the redaction of secrets.
//! Must not: parse TOML or environment layers (`crate::config` validates those and builds a
//! [`ClientConfig`] with `Config::client_config`), or do any network I/O.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ApiError;
use super::profile::ApiProfile;

/// A password or a token. `Debug` and `Display` print `[redacted]`; only
/// [`Secret::expose`] gives the value, and only the client's request builder calls it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads a secret from a file (e.g. a systemd credential or a Docker secret); a
    /// trailing newline is dropped.
    pub fn from_file(path: &Path) -> Result<Self, ApiError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApiError::Config {
            reason: format!(
                "cannot read the password file {}: check the path and that the daemon's user may read it",
                path.display()
            ),
            source: Some(Box::new(source)),
        })?;
        Ok(Self(text.trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// Reads a secret from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, ApiError> {
        std::env::var(var)
            .map(Self)
            .map_err(|source| ApiError::Config {
                reason: format!(
                    "the environment variable {var} holding the password is not set or not UTF-8"
                ),
                source: Some(Box::new(source)),
            })
    }

    /// The secret value. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Wire format of responses (`api.format`). XML is selected by the `/xml` path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Xml,
}

/// Retry budget of every call (see `retry.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time (with full jitter).
    pub initial_delay: Duration,
    /// Cap of one backoff delay (a longer `Retry-After` is still honoured).
    pub max_delay: Duration,
    /// No new attempt starts once this much time has passed since the first one.
    pub max_elapsed: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

/// Everything [`super::TariscopeClient::new`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port, no path: `http://127.0.0.1:8085`.
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    pub format: Format,
    pub connect_timeout: Duration,
    /// Whole request, from sending to the last body byte.
    pub request_timeout: Duration,
    /// Extra PEM CA certificate(s) trusted besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Source address to bind (the token is bound to the IP the server sees).
    pub local_address: Option<IpAddr>,
    /// Token lifetime assumed when the JWT carries no `exp` (the guide: 6 h).
    pub token_lifetime: Duration,
    /// Renew the token this long before it expires.
    pub token_margin: Duration,
    /// Requests per second over all callers; `0` or non-finite = unlimited.
    pub rate_per_sec: f64,
    /// Requests in flight at once over all callers (at least 1).
    pub concurrency: usize,
    pub retry: RetrySettings,
    pub profile: ApiProfile,
}

impl ClientConfig {
    /// Defaults: JSON, 5 s connect, 30 s request, 6 h token with a 5 min margin,
    /// 50 req/s, 8 in flight, [`RetrySettings::default`], the reference profile.
    pub fn new(base_url: impl Into<String>, username: impl Into<String>, password: Secret) -> Self {
        Self {
            base_url: base_url.into(),
            username: username.into(),
            password,
            format: Format::Json,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            ca_file: None,
            local_address: None,
            token_lifetime: Duration::from_secs(6 * 3600),
            token_margin: Duration::from_secs(300),
            rate_per_sec: 50.0,
            concurrency: 8,
            retry: RetrySettings::default(),
            profile: ApiProfile::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_everywhere() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        let cfg = ClientConfig::new("http://127.0.0.1:1", "demo", s.clone());
        let dbg = format!("{cfg:?} {cfg:#?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_from_file_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "pa ss\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "pa ss");
        let err = Secret::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("password file"), "{err}");
    }
}
