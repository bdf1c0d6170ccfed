//! [`Fence`]: the last check before a write leaves this process.
//!
//! Owns: the hook a caller installs on the client ([`TariscopeClient::with_fence`]) and
//! the list of methods it guards. A daemon sharing a PostgreSQL mirror with a standby
//! installs one that confirms it still leads (issue 13). The client asks it after the
//! limiter granted the request its slot; its answer is a deadline, and the client checks
//! the deadline once more as the last step before handing the request to the connection.
//! A request that waited in the limiter, or whose confirmation was answered, while this
//! process was paused (SIGSTOP, a frozen VM) and a standby took over is then refused
//! ([`ApiError::Fenced`]) instead of reaching Tariscope: the pause outlasts the deadline.
//! What remains unfenced is a pause that starts inside the HTTP stack, after that last
//! check and before the socket write.
//!
//! Must not: know what it confirms (the store does; this module stays below `crate::store`).
//!
//! [`TariscopeClient::with_fence`]: super::TariscopeClient::with_fence
//! [`ApiError::Fenced`]: super::ApiError::Fenced

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// The methods that change Tariscope's data: the ones a deposed leader must not send.
/// (`sql` may run anything, so it counts as a write.)
pub const WRITE_METHODS: &[&str] = &[
    "subscriber.create",
    "subscriber.update",
    "subscriber.dnadd",
    "accounts.payment",
    "sql",
];

/// Whether `method` changes Tariscope's data.
pub fn is_write(method: &str) -> bool {
    WRITE_METHODS.contains(&method)
}

/// What a fence check resolves to: the instant until which the write may go out, or the
/// reason it must not.
pub type FenceCheck = Pin<Box<dyn Future<Output = Result<Instant, String>> + Send>>;

/// Asked before every write request; `Ok(until)` lets it go out if it does before `until`.
#[derive(Clone)]
pub struct Fence(Arc<dyn Fn() -> FenceCheck + Send + Sync>);

impl Fence {
    /// A fence asking `check` before each write.
    pub fn new(check: impl Fn() -> FenceCheck + Send + Sync + 'static) -> Fence {
        Fence(Arc::new(check))
    }

    /// Asks it.
    pub(crate) async fn check(&self) -> Result<Instant, String> {
        (self.0)().await
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::profile::{ApiProfile, Verb};

    /// Every method of the reference profile sent with POST changes data except the login:
    /// a write added to the profile without being added here would go out unfenced.
    #[test]
    fn every_posted_method_but_the_login_is_a_write() {
        let profile = ApiProfile::default();
        let posted: Vec<&str> = profile
            .methods
            .iter()
            .filter(|(_, m)| m.verb == Verb::Post)
            .map(|(name, _)| name.as_str())
            .filter(|name| *name != "api.auth")
            .collect();
        assert!(!posted.is_empty());
        for name in &posted {
            assert!(is_write(name), "{name} is posted but not fenced");
        }
        for name in WRITE_METHODS {
            assert!(
                profile.method(name).is_some(),
                "{name} is not in the profile"
            );
        }
    }
}
