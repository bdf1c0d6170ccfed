//! The injected clock: wall-clock time derived from tokio's clock.
//!
//! Owns: answering "what time is it" so that tests can pause and advance time with
//! `tokio::time::pause()` / `advance()` and see schedules fire deterministically, or freeze
//! it at one instant ([`Clock::fixed`]) for timestamps a test compares.
//! Must not: be bypassed: daemon and sync code read time only through a [`Clock`] (the
//! scheduler, `/healthz`, pull and push all take one; there is no second clock type).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock time that advances with tokio's (possibly paused) clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: DateTime<Utc>,
    /// `None`: frozen at `wall_at_start` ([`Clock::fixed`]).
    instant_at_start: Option<Instant>,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self::starting_at(Utc::now())
    }

    /// A clock that reads `wall` now and advances with tokio's clock (tests).
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall_at_start: wall,
            instant_at_start: Some(Instant::now()),
        }
    }

    /// A clock that always reads `wall` (tests that compare stored timestamps).
    pub fn fixed(wall: DateTime<Utc>) -> Self {
        Self {
            wall_at_start: wall,
            instant_at_start: None,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let Some(start) = self.instant_at_start else {
            return self.wall_at_start;
        };
        let elapsed = Instant::now().saturating_duration_since(start);
        self.wall_at_start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }

    /// The tokio instant at which the wall clock reads `at` (now, if `at` is past).
    pub fn instant_at(&self, at: DateTime<Utc>) -> Instant {
        let ahead = (at - self.now()).to_std().unwrap_or(Duration::ZERO);
        Instant::now() + ahead
    }
}

impl Default for Clock {
    /// The real clock.
    fn default() -> Self {
        Self::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn advances_with_paused_tokio_time() {
        let start = DateTime::parse_from_rfc3339("2025-05-20T10:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::starting_at(start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
        let target = start + chrono::Duration::seconds(120);
        tokio::time::sleep_until(clock.instant_at(target)).await;
        assert_eq!(clock.now(), target);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_clock_does_not_move() {
        let start = DateTime::parse_from_rfc3339("2025-05-20T10:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::fixed(start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start);
    }
}
