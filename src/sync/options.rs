//! What a pull job is told: which job, which scope, which window, how wide, what time it is.
//!
//! Owns: [`Job`] (every job the daemon runs, by name), [`JobKind`] (the pull jobs), `Scope`,
//! `PullOptions` (with [`SummariesMode`]), and `Progress` (done / total counters the CLI draws a bar from). Must not:
//! read config files or the environment (`config` builds these), or read the time except
//! through the injected [`Clock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;

pub use crate::clock::Clock;
use crate::model::SubscriberId;
use crate::store::RemovalLimit;

/// Every job the daemon runs: the pull jobs and `push`. The names are those of
/// `[jobs.<name>]` in the configuration, `--jobs`, `job_runs.job` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    Reference,
    Subscribers,
    Payments,
    Charges,
    Summaries,
    Push,
}

impl Job {
    /// Every job, in the order `--run-once` runs them (pull before push).
    pub const ALL: [Job; 6] = [
        Job::Reference,
        Job::Subscribers,
        Job::Payments,
        Job::Charges,
        Job::Summaries,
        Job::Push,
    ];

    /// The name (see the type's doc).
    pub fn as_str(self) -> &'static str {
        match self.pull() {
            Some(k) => k.as_str(),
            None => "push",
        }
    }

    /// The pull job this is, or `None` for `push`.
    pub fn pull(self) -> Option<JobKind> {
        match self {
            Job::Reference => Some(JobKind::Reference),
            Job::Subscribers => Some(JobKind::Subscribers),
            Job::Payments => Some(JobKind::Payments),
            Job::Charges => Some(JobKind::Charges),
            Job::Summaries => Some(JobKind::Summaries),
            Job::Push => None,
        }
    }

    /// True for the jobs that read a date window and so take `--from/--to`.
    pub fn takes_range(self) -> bool {
        matches!(self, Job::Payments | Job::Charges | Job::Summaries)
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Job {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Job::ALL.iter().map(|j| j.as_str()).collect();
                format!("unknown job {s:?}: choose from {}", names.join(", "))
            })
    }
}

impl From<JobKind> for Job {
    fn from(k: JobKind) -> Job {
        match k {
            JobKind::Reference => Job::Reference,
            JobKind::Subscribers => Job::Subscribers,
            JobKind::Payments => Job::Payments,
            JobKind::Charges => Job::Charges,
            JobKind::Summaries => Job::Summaries,
        }
    }
}

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

/// `jobs.summaries.mode`: which days the summaries job asks `accounts.summary` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummariesMode {
    /// The first and last day of the window and every day with a charge or a payment in the
    /// mirror; the days between are derived and every stretch is verified (see
    /// `sync::pull::stretches`). A subscriber whose payments or charges of the window were
    /// not pulled completely is fetched every day.
    #[default]
    ActiveDays,
    /// Every day of the window, one request each.
    EveryDay,
}

impl SummariesMode {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SummariesMode::ActiveDays => "active-days",
            SummariesMode::EveryDay => "every-day",
        }
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
    /// Which days the `summaries` job fetches.
    pub summaries_mode: SummariesMode,
    /// Source of timestamps written to the mirror.
    pub clock: Clock,
    /// Subscribers and reference: how much one run may remove from one list's scope
    /// (`jobs.<job>.max_removals`); `None` (`--allow-mass-removal`): no limit.
    pub max_removals: Option<RemovalLimit>,
    /// Cancelled at shutdown: the job finishes the items in flight (each is written with its
    /// checkpoint), starts no more, and records the run as interrupted.
    pub stop: tokio_util::sync::CancellationToken,
}

impl PullOptions {
    /// Defaults for `today`: lookback 3 days, first window 30 days, concurrency 8, summaries
    /// in `active-days` mode, at most 10 % removed per list.
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
            summaries_mode: SummariesMode::default(),
            clock: Clock::system(),
            max_removals: Some(RemovalLimit::Share(10.0)),
            stop: tokio_util::sync::CancellationToken::new(),
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
            .field("summaries_mode", &self.summaries_mode)
            .field("clock", &self.clock)
            .field("stopped", &self.stop.is_cancelled())
            .finish()
    }
}

/// Items done / total of a running job, readable from another task (the progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    /// Calls to Tariscope answered in this run (`sync::outcome` decides with it).
    answered: AtomicU64,
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

    /// Calls to Tariscope answered in this run.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub(crate) fn add_answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
        self.answered.store(0, Ordering::Relaxed);
    }

    pub(crate) fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}
