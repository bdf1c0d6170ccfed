//! The push executor: turns the planner's steps into Tariscope writes, exactly once.
//!
//! Owns: one push run: read the three states from the mirror, check the desired rows
//! (`sync::validate`: a rejected row is recorded and not planned), plan (`sync::plan`), record
//! conflicts, run each desired row's steps in order (rows concurrently, through the shared
//! limiter inside the client), move the merge base only for what Tariscope confirmed, refresh
//! the mirror from read-backs, and record the run. Must not: see HTTP or SQL (it goes through
//! [`PushRemote`] and `Store`), or resend a write whose outcome is unknown before looking.
//!
//! A run is four steps ([`run_push`]): load and plan, record conflicts, execute rows (a
//! cancelled `stop` starts no new row), finish (the run's counts and outcome in `job_runs`).
//!
//! | file | owns |
//! |---|---|
//! | `remote.rs` | the [`PushRemote`] trait and [`WriteError`] |
//! | `load.rs` | checking desired rows, refreshing the mirror, planning |
//! | `rows.rs` | each row's steps in order, counting the writes it finished |
//! | `exec.rs` | create / dnadd / update through the outbox, with read-back checks |
//! | `lookup.rs` | settling an unknown outcome by looking the record up |
//! | `payments.rs` | desired payments, after the subscriber rows (issue 15) |

mod exec;
mod load;
mod lookup;
mod payments;
mod remote;
mod rows;

use chrono::SecondsFormat;
use tokio_util::sync::CancellationToken;

pub use exec::{Created, Ignored, PaymentOutcome, Updated, Verdict, judge, verify};
pub use payments::{PaymentPlan, PaymentReport, plan_payments};
pub use remote::{PushRemote, WriteError, WriteErrorKind, WriteResult};

use self::exec::Exec;
use self::rows::Rows;
use super::fields::Field;
use super::options::{Clock, Progress};
use super::outcome::Tally;
use super::plan::{Conflict, ConflictPolicy, Op, Resolution};
use super::validate::{self, TableRejection};
use crate::store::{Counts, Mode, Outcome, RunStart, Store, StoreError};

/// Settings of a push run.
#[derive(Clone)]
pub struct PushOptions {
    pub policy: ConflictPolicy,
    /// Field used to link unlinked rows and to find a create whose outcome is unknown.
    pub natural_key: Option<Field>,
    /// Sends per outbox entry before it becomes terminal.
    pub max_attempts: u32,
    /// Desired rows pushed at once.
    pub concurrency: usize,
    pub clock: Clock,
    pub payments: PaymentOptions,
}

/// Settings of the payment step of a push (`[payments]`).
#[derive(Debug, Clone)]
pub struct PaymentOptions {
    /// Whether the push posts desired payments.
    pub post: bool,
    /// Payments dated before this day are rejected.
    pub earliest_day: Option<chrono::NaiveDate>,
    /// Tariscope's time zone: a payment dated after its today is rejected.
    pub timezone: chrono_tz::Tz,
}

impl Default for PaymentOptions {
    fn default() -> Self {
        Self {
            post: true,
            earliest_day: None,
            timezone: chrono_tz::UTC,
        }
    }
}

/// Why a step of one row did not complete (the row's later steps are skipped).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A write or look-up failed; the message says what happens next, the source is the
    /// failed call when there was one.
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        source: Option<WriteError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StepError {
    fn new(message: impl Into<String>) -> Self {
        Self::caused(message, None)
    }

    fn caused(message: impl Into<String>, source: Option<WriteError>) -> Self {
        Self::Failed {
            message: message.into(),
            source,
        }
    }
}

/// What a push run did. The write counts are outbox entries the run finished (`done`), each
/// counted once: `created` the `create` entries (adopted ones included), `updated` the
/// `update` entries (follow-ups of creates included), `dns_added` the `dnadd` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    pub run_id: i64,
    pub outcome: Option<Outcome>,
    /// `subscriber.create` writes done, adopted ones included.
    pub created: u64,
    /// Of `created`: creates whose unknown outcome was settled by finding the subscriber.
    pub adopted: u64,
    /// Rows linked to an existing subscriber (no write).
    pub linked: u64,
    /// `subscriber.update` writes done.
    pub updated: u64,
    /// `subscriber.dnadd` writes done.
    pub dns_added: u64,
    /// Conflicts recorded by this plan (settled by policy or open).
    pub conflicts: u64,
    /// Rows with a failed step.
    pub failed: u64,
    /// Desired rows refused by `sync::validate` (not planned; listed in `rejected`).
    pub rejected: u64,
    /// Rows not started because the run was stopped (shutdown).
    pub not_started: u64,
    /// Fields the server accepted but did not take, per row: `key: message`.
    pub unverified: Vec<String>,
    /// The first errors, `key: message`.
    pub errors: Vec<String>,
    /// The payment step.
    pub payments: PaymentReport,
}

/// What a push would do now: the plan for the desired rows that pass `sync::validate`, and
/// the problems of those that do not (they are not planned).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub ops: Vec<Op>,
    pub rejected: Vec<TableRejection>,
    /// The payments a push would post, and those it would not.
    pub payments: PaymentPlan,
}

/// Plans from the mirror as it is now (what `tariscope-sync plan` prints).
pub async fn plan_now(store: &Store, opts: &PushOptions) -> Result<Planned, StoreError> {
    let checked = validate::check_rows(&store.desired_rows().await?);
    let mut planned = load::plan_checked(store, opts, checked).await?;
    planned.payments = plan_payments(store, opts).await?;
    Ok(planned)
}

fn now(opts: &PushOptions) -> String {
    opts.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs one push. `Err` only when the mirror fails; API failures are per row, in the report.
/// A cancelled `stop` starts no new row; the run then ends as interrupted.
pub async fn run_push<R: PushRemote>(
    remote: &R,
    store: &Store,
    opts: &PushOptions,
    progress: &Progress,
    stop: &CancellationToken,
) -> Result<PushReport, StoreError> {
    let run_id = store
        .start_run(RunStart {
            job: "push".into(),
            mode: Mode::Incremental,
            window: None,
            started_at: now(opts),
        })
        .await?;
    crate::logging::record_run_id(run_id);
    let loaded = load::load_and_plan(remote, store, opts, run_id, &now(opts)).await?;
    let conflicts = record_conflicts(store, &loaded.planned.ops, now(opts)).await?;
    let exec = Exec {
        remote,
        store,
        opts,
        run_id,
    };
    exec.settle_stale(&loaded.planned.ops, &loaded.rejected_keys)
        .await?;
    let rows = rows::execute_rows(&exec, loaded.planned.ops, progress, stop).await;
    // After the subscriber rows: a payment for a subscriber created now finds it linked.
    let payments = payments::post_payments(&exec, &now(opts), stop).await?;
    let report = PushReport {
        run_id,
        conflicts: conflicts as u64,
        rejected: loaded.rejected_keys.len() as u64,
        payments,
        ..PushReport::default()
    };
    finish(store, opts, report, rows).await
}

/// Replaces the conflicts table with the plan's; returns how many there are.
async fn record_conflicts(store: &Store, ops: &[Op], now: String) -> Result<usize, StoreError> {
    let conflicts: Vec<Conflict> = ops
        .iter()
        .filter_map(|o| match o {
            Op::Conflict(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    for c in conflicts
        .iter()
        .filter(|c| c.resolution != Resolution::KeepRemote)
    {
        tracing::warn!(key = %c.key, subject = %c.subject(), resolution = ?c.resolution, reason = %c.reason, "push conflict");
    }
    let n = conflicts.len();
    store.replace_conflicts(conflicts, now).await?;
    Ok(n)
}

/// Sums the rows, refreshes the mirror from their read-backs and records the run.
async fn finish(
    store: &Store,
    opts: &PushOptions,
    mut report: PushReport,
    rows: Rows,
) -> Result<PushReport, StoreError> {
    report.not_started = rows.not_started() as u64;
    let mut refreshed = Vec::new();
    let mut tally = Tally::default();
    for (key, r) in rows.results {
        report.created += r.created;
        report.adopted += r.adopted;
        report.linked += r.linked;
        report.updated += r.updated;
        report.dns_added += r.dns_added;
        refreshed.extend(r.refreshed);
        if let Some(msg) = r.unverified {
            tally.failure(key.clone(), msg.clone());
            report.unverified.push(format!("{key}: {msg}"));
        }
        if let Some(err) = r.error {
            if let StepError::Store(e) = err {
                return Err(e);
            }
            report.failed += 1;
            tally.failure(key.clone(), err.to_string());
            if report.errors.len() < 20 {
                report.errors.push(format!("{key}: {err}"));
            }
        }
    }
    load::refresh(store, refreshed, report.run_id, &now(opts)).await?;
    let pay = &report.payments;
    for (reference, e) in &pay.errors {
        tally.failure(format!("payment {reference}"), e.clone());
    }
    let problems = report.failed
        + report.unverified.len() as u64
        + report.rejected
        + pay.failed
        + pay.ambiguous
        + pay.rejected;
    let done = report.created + report.linked + report.updated + report.dns_added + pay.posted;
    let (mut outcome, mut error) = tally.outcome(done);
    if report.not_started > 0 || pay.not_started > 0 {
        outcome = Outcome::Failed;
        error = Some(format!(
            "interrupted by shutdown: {} of {} desired row(s) and {} payment(s) not started; the next push continues",
            report.not_started, rows.total, pay.not_started
        ));
    } else if report.rejected + pay.rejected > 0 && outcome == Outcome::Ok {
        outcome = Outcome::Partial;
        error = Some(format!(
            "{} desired row(s) and {} payment(s) rejected: see `tariscope-sync status`",
            report.rejected, pay.rejected
        ));
    } else if pay.ambiguous > 0 && outcome == Outcome::Ok {
        outcome = Outcome::Partial;
        error = Some(format!(
            "{} payment(s) ambiguous, waiting for a person: see `tariscope-sync status`, then `tariscope-sync resolve`",
            pay.ambiguous
        ));
    }
    let counts = Counts {
        fetched: 0,
        inserted: report.created,
        updated: report.updated,
        removed: 0,
        unchanged: 0,
        errors: problems,
        numbers: report.dns_added,
    };
    store
        .finish_run(report.run_id, outcome, counts, error, now(opts), None)
        .await?;
    report.outcome = Some(outcome);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_keep_the_failed_call_as_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let write = WriteError::with_source(WriteErrorKind::Unavailable, "503 after 5 tries", io);
        let step = StepError::caused("the next run retries it", Some(write));
        let chain: Vec<String> =
            std::iter::successors(Some(&step as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            chain,
            [
                "the next run retries it",
                "server unavailable: 503 after 5 tries",
                "reset by peer"
            ]
        );
    }
}
