//! [`TokenManager`]: caches the JWT from `/api/auth`, renews it before it expires, and
//! makes N concurrent callers at expiry cause exactly one login (single flight).
//!
//! Owns: token lifetime maths (JWT `exp`, else login time + the configured lifetime,
//! minus a margin), the cache and its invalidation by generation. Must not: send HTTP
//! itself (the client passes the login future) or ever log or print a token.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::Secret;
use super::error::ApiError;

/// A token and the generation it belongs to (each login makes a new generation).
#[derive(Debug, Clone)]
pub struct Token {
    pub value: Secret,
    pub generation: u64,
}

#[derive(Debug)]
struct Cached {
    token: Token,
    renew_at: Instant,
}

/// The token cache shared by every clone of the client.
#[derive(Debug)]
pub struct TokenManager {
    state: Mutex<Option<Cached>>,
    generation: AtomicU64,
    default_lifetime: Duration,
    margin: Duration,
}

impl TokenManager {
    pub fn new(default_lifetime: Duration, margin: Duration) -> Self {
        Self {
            state: Mutex::new(None),
            generation: AtomicU64::new(0),
            default_lifetime,
            margin,
        }
    }

    /// A valid token, logging in with `login` if there is none or it is due for
    /// renewal. Concurrent callers wait for the one login in progress.
    pub async fn get<F, Fut>(&self, login: F) -> Result<Token, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Secret, ApiError>>,
    {
        let mut guard = self.state.lock().await;
        if let Some(cached) = guard.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let started = Instant::now();
        let value = login().await?;
        let lifetime = token_lifetime(value.expose(), self.default_lifetime, unix_now());
        let renew_at = started + renew_after(lifetime, self.margin);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let token = Token { value, generation };
        tracing::debug!(
            generation,
            lifetime_s = lifetime.as_secs(),
            "obtained a Tariscope API token"
        );
        *guard = Some(Cached {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// Forgets the token of `generation` (refused by the server: expired, revoked,
    /// bound to another IP). A newer token is kept.
    pub async fn invalidate(&self, generation: u64) {
        let mut guard = self.state.lock().await;
        if guard
            .as_ref()
            .is_some_and(|c| c.token.generation == generation)
        {
            *guard = None;
        }
    }

    /// Number of logins so far.
    pub fn logins(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How long before expiry to renew: the margin, but at most half the lifetime (a margin
/// longer than a short token's life would otherwise log in on every call).
pub fn renew_after(lifetime: Duration, margin: Duration) -> Duration {
    lifetime.saturating_sub(margin.min(lifetime / 2))
}

/// The lifetime of a token: from the JWT's `exp` and `iat` if it has both (immune to
/// clock skew), from `exp` and the local clock if it has only `exp`, else `default`.
pub fn token_lifetime(token: &str, default: Duration, now_unix: i64) -> Duration {
    let Some(claims) = jwt_claims(token) else {
        return default;
    };
    let num = |k: &str| {
        claims.get(k).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let secs = match (num("exp"), num("iat")) {
        (Some(exp), Some(iat)) if exp > iat => exp - iat,
        (Some(exp), _) => exp - now_unix,
        _ => return default,
    };
    Duration::from_secs(secs.max(0) as u64)
}

/// The claims of a JWT (payload segment, base64url, JSON object), if it is one.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"HS256"}"#),
            e.encode(claims)
        )
    }

    #[test]
    fn lifetime_table() {
        let six_h = Duration::from_secs(6 * 3600);
        let now = 1_700_000_000;
        let cases = [
            (jwt(r#"{"iat":1000,"exp":4600}"#), 3600),
            (jwt(&format!(r#"{{"exp":{}}}"#, now + 120)), 120),
            (jwt(&format!(r#"{{"exp":"{}"}}"#, now + 60)), 60),
            (jwt(&format!(r#"{{"exp":{}}}"#, now - 10)), 0),
            (jwt(r#"{"sub":"demo"}"#), six_h.as_secs()),
            ("not-a-jwt".to_owned(), six_h.as_secs()),
            ("a.%%%.c".to_owned(), six_h.as_secs()),
            (jwt("[1,2]"), six_h.as_secs()),
        ];
        for (token, want) in cases {
            assert_eq!(
                token_lifetime(&token, six_h, now).as_secs(),
                want,
                "{token}"
            );
        }
    }

    #[test]
    fn renewal_margin_is_bounded_by_half_the_lifetime() {
        let s = Duration::from_secs;
        assert_eq!(renew_after(s(6 * 3600), s(300)), s(6 * 3600 - 300));
        assert_eq!(renew_after(s(4), s(300)), s(2));
        assert_eq!(renew_after(s(0), s(300)), s(0));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_login() {
        let tm = Arc::new(TokenManager::new(
            Duration::from_secs(3600),
            Duration::from_secs(60),
        ));
        let logins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let tm = tm.clone();
            let logins = logins.clone();
            tasks.push(tokio::spawn(async move {
                tm.get(|| async {
                    logins.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Secret::new("t1"))
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().generation, 1);
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        assert_eq!(tm.logins(), 1);
    }

    /// On tokio's paused clock: renewal is due exactly at login + lifetime - margin.
    #[tokio::test(start_paused = true)]
    async fn renews_before_expiry_and_after_invalidation() {
        // Renewal due 600 ms after login (1 s lifetime, 400 ms margin).
        let tm = TokenManager::new(Duration::from_millis(1000), Duration::from_millis(400));
        let login = |v: &'static str| move || async move { Ok(Secret::new(v)) };
        assert_eq!(tm.get(login("a")).await.unwrap().generation, 1);
        tokio::time::advance(Duration::from_millis(599)).await;
        assert_eq!(tm.get(login("b")).await.unwrap().value.expose(), "a");
        tokio::time::advance(Duration::from_millis(1)).await;
        let t = tm.get(login("c")).await.unwrap();
        assert_eq!((t.value.expose(), t.generation), ("c", 2));
        tm.invalidate(1).await; // stale generation: kept
        assert_eq!(tm.get(login("d")).await.unwrap().generation, 2);
        tm.invalidate(2).await;
        assert_eq!(tm.get(login("e")).await.unwrap().value.expose(), "e");
        let failing = || async {
            Err::<Secret, _>(ApiError::Config {
                reason: "x".into(),
                source: None,
            })
        };
        tm.invalidate(3).await;
        assert!(tm.get(failing).await.is_err());
        assert_eq!(tm.get(login("f")).await.unwrap().generation, 4);
    }
}
