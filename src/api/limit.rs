//! [`Limiter`]: the process-wide request budget: a rate (`governor`, GCRA) and a cap on
//! requests in flight (a tokio semaphore). Every HTTP request the client sends, logins
//! included, passes through it.
//!
//! Owns: waiting for a slot. Must not: know methods, retries or HTTP.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// Shared by every clone of the client.
#[derive(Debug, Clone)]
pub struct Limiter {
    rate: Option<Arc<Gcra>>,
    slots: Arc<Semaphore>,
    concurrency: usize,
}

/// Held while a request is in flight.
#[derive(Debug)]
pub struct Slot {
    /// `None` only if the semaphore were closed, which this module never does.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// `rate_per_sec <= 0` or non-finite: no rate limit. The burst is 10 ms worth of
    /// requests (at least 1), so timer jitter does not eat into the rate while the
    /// long-run average stays at the configured rate.
    pub fn new(rate_per_sec: f64, concurrency: usize) -> Result<Self, ApiError> {
        if concurrency == 0 {
            return Err(ApiError::Config {
                reason: "api.concurrency must be at least 1".into(),
                source: None,
            });
        }
        let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
            let period = Duration::from_secs_f64(1.0 / rate_per_sec);
            let quota = Quota::with_period(period).ok_or_else(|| ApiError::Config {
                reason: format!("api.rate_per_sec = {rate_per_sec} is too high"),
                source: None,
            })?;
            let burst = Self::burst_for(rate_per_sec);
            Some(Arc::new(RateLimiter::direct(quota.allow_burst(burst))))
        } else {
            None
        };
        Ok(Self {
            rate,
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
        })
    }

    /// The burst allowed by [`Limiter::new`] for a rate.
    pub fn burst_for(rate_per_sec: f64) -> NonZeroU32 {
        let b = (rate_per_sec / 100.0).ceil().clamp(1.0, 1000.0) as u32;
        NonZeroU32::new(b).unwrap_or(NonZeroU32::MIN)
    }

    /// Waits for a concurrency slot, then for the rate budget.
    pub async fn acquire(&self) -> Slot {
        let permit = self.slots.clone().acquire_owned().await.ok();
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        Slot { _permit: permit }
    }

    /// False when there is no rate budget (rate 0): only the concurrency cap applies.
    pub fn is_rate_limited(&self) -> bool {
        self.rate.is_some()
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.concurrency - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn bad_config_is_rejected() {
        assert!(Limiter::new(10.0, 0).is_err());
        assert!(!Limiter::new(0.0, 1).unwrap().is_rate_limited());
        assert!(Limiter::new(1.0, 1).unwrap().is_rate_limited());
        assert!(Limiter::new(f64::NAN, 1).is_ok());
        assert_eq!(Limiter::burst_for(5.0).get(), 1);
        assert_eq!(Limiter::burst_for(1000.0).get(), 10);
    }

    #[tokio::test]
    async fn concurrency_is_capped() {
        let lim = Limiter::new(0.0, 3).unwrap();
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let lim = lim.clone();
            let peak = peak.clone();
            tasks.push(tokio::spawn(async move {
                let _slot = lim.acquire().await;
                peak.fetch_max(lim.in_flight(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(lim.in_flight(), 0);
    }

    #[tokio::test]
    async fn rate_is_not_exceeded() {
        // 100/s, burst 1: 21 acquisitions need at least 200 ms.
        let lim = Limiter::new(100.0, 4).unwrap();
        let start = Instant::now();
        for _ in 0..21 {
            drop(lim.acquire().await);
        }
        assert!(
            start.elapsed() >= Duration::from_millis(195),
            "{:?}",
            start.elapsed()
        );
    }
}
