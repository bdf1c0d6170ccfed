//! [`Fence`]: the last check before a write leaves this process.
//!
//! Owns: the hook a caller installs on the client ([`TariscopeClient::with_fence`]) and
//! the list of methods it guards. A daemon sharing a PostgreSQL mirror with a standby
//! installs one that confirms it still leads (issue 13). The client asks it after the
//! limiter granted the request its slot; its answer is a deadline, and the client checks
//! the deadline before handing the request to the connection and, for a body, once more
//! when the connection asks for the body ([`FencedBody`]), in the same step that writes it
//! out. A body refused there leaves the server an incomplete request (its `Content-Length`
//! unmet), which no server acts on.
//! A request that waited in the limiter, or whose confirmation was answered, while this
//! process was paused (SIGSTOP, a frozen VM) and a standby took over is then refused
//! ([`ApiError::Fenced`]) instead of reaching Tariscope: the pause outlasts the deadline.
//! What remains unfenced is a pause that starts between that last check and the socket
//! write, inside one poll of the connection.
//!
//! Must not: know what it confirms (the store does; this module stays below `crate::store`).
//!
//! [`TariscopeClient::with_fence`]: super::TariscopeClient::with_fence
//! [`ApiError::Fenced`]: super::ApiError::Fenced

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

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

/// A fenced write's body: handed to the connection only before the fence's deadline. Its
/// length is exact, so it goes out with a `Content-Length` as a plain body does.
///
/// Written by hand: it is the one place that checks the clock as the body is written.
pub(crate) struct FencedBody {
    data: Option<Bytes>,
    len: u64,
    until: Instant,
}

impl FencedBody {
    pub(crate) fn new(data: Bytes, until: Instant) -> FencedBody {
        FencedBody {
            len: data.len() as u64,
            data: Some(data),
            until,
        }
    }
}

impl http_body::Body for FencedBody {
    type Data = Bytes;
    type Error = Expired;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Expired>>> {
        let Some(data) = self.data.take() else {
            return Poll::Ready(None);
        };
        if let Some(late) = Expired::past(self.until) {
            return Poll::Ready(Some(Err(late)));
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// The fence's deadline passed before the request could go out (by how much).
#[derive(Debug)]
pub(crate) struct Expired(std::time::Duration);

impl Expired {
    /// How late it is now for a write that had to go out by `until`; `None` while in time.
    pub(crate) fn past(until: Instant) -> Option<Expired> {
        let now = Instant::now();
        (now > until).then(|| Expired(now - until))
    }
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its fence's confirmation ran out {:?} before the request could go out (was this process paused?)",
            self.0
        )
    }
}

impl std::error::Error for Expired {}

/// The [`Expired`] somewhere in `err`'s sources, if a fenced body failed.
pub(crate) fn expired_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Expired> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(expired) = e.downcast_ref::<Expired>() {
            return Some(expired);
        }
        cause = e.source();
    }
    None
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

#[cfg(test)]
mod body_tests {
    use std::time::Duration;

    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    /// Before the deadline the body is its bytes, of exact length (sent with a
    /// `Content-Length`); after it, the first poll fails and says by how much it was late.
    #[tokio::test]
    async fn a_fenced_body_goes_out_only_before_its_deadline() {
        let ahead = FencedBody::new(
            Bytes::from_static(b"{\"a\":1}"),
            Instant::now() + Duration::from_secs(5),
        );
        assert_eq!(ahead.size_hint().exact(), Some(7));
        let bytes = ahead.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":1}");

        let late = FencedBody::new(
            Bytes::from_static(b"{}"),
            Instant::now() - Duration::from_millis(5),
        );
        let err = late.collect().await.unwrap_err();
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        let found = expired_in(&*boxed).expect("the expiry is found in the chain");
        assert!(found.to_string().contains("ran out"), "{found}");
    }
}
