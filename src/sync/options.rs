//! What a pull job is told: which job, which scope, which window, how wide, what time it is.
//!
//! Owns: `JobKind`, `Scope`, `PullOptions`, the injected `Clock`, and `Progress` (done /
//! total counters the CLI draws a bar from). Must not: read config files or the environment
//! (the daemon builds these from `Config`), or read the clock anywhere but `SystemClock`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::SubscriberId;

/// The pull jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Subscribers,
    Payments,
    Charges,
    Summaries,
    Reference,
}

impl JobKind {
    /// Every pull job, in the order a full run-once should take them.
    pub const ALL: [JobKind; 5] = [
        JobKind::Reference,
        JobKind::Subscribers,
        JobKind::Payments,
        JobKind::Charges,
        JobKind::Summaries,
    ];

    /// The name in `job_runs.job`, `checkpoints.job`, config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Subscribers => "subscribers",
            JobKind::Payments => "payments",
            JobKind::Charges => "charges",
            JobKind::Summaries => "summaries",
            JobKind::Reference => "reference",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which subscribers the daemon mirrors: every subscriber of these nodes and departments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub nodes: Vec<i64>,
    pub departments: Vec<i64>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.departments.is_empty()
    }
}

/// The source of "now" for timestamps written to the mirror.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Options of one job run.
#[derive(Clone)]
pub struct PullOptions {
    /// Nodes and departments to mirror (the `subscribers` job; must not be empty for it).
    pub scope: Scope,
    /// Payments and charges: incremental windows start this many days before the end of the
    /// last successful window, to catch late-booked records.
    pub lookback_days: u32,
    /// Length of the first incremental window, when no run succeeded yet.
    pub initial_days: u32,
    /// Backfill range (both or neither): `from..=to`. `None`: incremental.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The Tariscope calendar date of "today" (end of incremental windows).
    pub today: NaiveDate,
    /// Per-subscriber fetches in flight at once (the client's limiter still applies).
    pub concurrency: usize,
    /// Account jobs: these subscribers instead of every live subscriber of the mirror.
    pub subscribers: Option<Vec<SubscriberId>>,
    /// Subscribers written per transaction by the `subscribers` job.
    pub batch_size: usize,
    /// Source of timestamps written to the mirror.
    pub clock: Arc<dyn Clock>,
}

impl PullOptions {
    /// Defaults for `today`: lookback 3 days, first window 30 days, concurrency 8.
    pub fn new(today: NaiveDate) -> PullOptions {
        PullOptions {
            scope: Scope::default(),
            lookback_days: 3,
            initial_days: 30,
            from: None,
            to: None,
            today,
            concurrency: 8,
            subscribers: None,
            batch_size: 5_000,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("scope", &self.scope)
            .field("lookback_days", &self.lookback_days)
            .field("initial_days", &self.initial_days)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("today", &self.today)
            .field("concurrency", &self.concurrency)
            .field("subscribers", &self.subscribers.as_ref().map(Vec::len))
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// Items done / total of a running job, readable from another task (the progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
    }

    pub(crate) fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}
