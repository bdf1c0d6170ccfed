//! The push executor: turns the planner's steps into Tariscope writes, exactly once.
//!
//! Owns: one push run: read the three states from the mirror, check the desired rows
//! (`sync::validate`: a rejected row is recorded and not planned), plan (`sync::plan`), record
//! conflicts, run each desired row's steps in order (rows concurrently, through the shared
//! limiter inside the client), move the merge base only for what Tariscope confirmed, refresh
//! the mirror from read-backs, and record the run. Must not: see HTTP or SQL (it goes through
//! [`PushRemote`] and `Store`), or resend a write whose outcome is unknown before looking.
//!
//! | file | owns |
//! |---|---|
//! | `remote.rs` | the [`PushRemote`] trait and [`WriteError`] |
//! | `exec.rs` | create / dnadd / update through the outbox, with read-back checks |
//! | `lookup.rs` | settling an unknown outcome by looking the record up |

mod exec;
mod lookup;
mod remote;

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use futures::StreamExt;

pub use exec::{Ignored, verify};
pub use remote::{PushRemote, WriteError, WriteErrorKind, WriteResult};

use self::exec::Exec;
use super::fields::{Field, Fields};
use super::options::{Clock, Progress};
use super::outcome::Tally;
use super::plan::{self, ConflictPolicy, Op, PlanInput, Resolution};
use super::validate::{self, Checked, TableRejection};
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
}

/// Why a step of one row did not complete (the row's later steps are skipped).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a push run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    pub run_id: i64,
    pub outcome: Option<Outcome>,
    pub created: u64,
    /// Creates whose unknown outcome was settled by finding the subscriber.
    pub adopted: u64,
    pub linked: u64,
    pub updated: u64,
    pub dns_added: u64,
    /// Conflicts recorded by this plan (settled by policy or open).
    pub conflicts: u64,
    /// Rows with a failed step.
    pub failed: u64,
    /// Desired rows refused by `sync::validate` (not planned; listed in `rejected`).
    pub rejected: u64,
    /// Fields the server accepted but did not take, per row: `key: message`.
    pub unverified: Vec<String>,
    /// The first errors, `key: message`.
    pub errors: Vec<String>,
}

/// What a push would do now: the plan for the desired rows that pass `sync::validate`, and
/// the problems of those that do not (they are not planned).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub ops: Vec<Op>,
    pub rejected: Vec<TableRejection>,
}

/// Plans from the mirror as it is now (what `tariscope-sync plan` prints).
pub async fn plan_now(store: &Store, opts: &PushOptions) -> Result<Planned, StoreError> {
    let checked = validate::check_rows(&store.desired_rows().await?);
    plan_checked(store, opts, checked).await
}

async fn plan_checked(
    store: &Store,
    opts: &PushOptions,
    checked: Checked,
) -> Result<Planned, StoreError> {
    let remote = store.remote_for_plan().await?;
    let base = store.merge_base().await?;
    let ops = plan::plan(PlanInput {
        desired: &checked.valid,
        remote: &remote,
        base: &base,
        policy: opts.policy,
        natural_key: opts.natural_key,
    });
    Ok(Planned {
        ops,
        rejected: checked.rejected,
    })
}

/// Records the rejected rows (a rejection of a row as written is logged once, when new).
async fn record_rejections(
    store: &Store,
    checked: &Checked,
    now: String,
) -> Result<(), StoreError> {
    let rows = checked
        .rejected
        .iter()
        .map(|r| (r.table, r.fingerprint.clone(), r.rejection.clone()))
        .collect();
    let new = store
        .replace_table_rejections(
            vec![validate::SUBSCRIBERS_TABLE, validate::DNS_TABLE],
            rows,
            now,
        )
        .await?;
    for r in new {
        tracing::warn!(key = r.key.as_deref().unwrap_or("-"), reason = %r.reason, "desired row rejected: not pushed until it is fixed");
    }
    Ok(())
}

/// Runs one push. `Err` only when the mirror fails; API failures are per row, in the report.
pub async fn run_push<R: PushRemote>(
    remote: &R,
    store: &Store,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<PushReport, StoreError> {
    let now = || opts.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let run_id = store
        .start_run(RunStart {
            job: "push".into(),
            mode: Mode::Incremental,
            window: None,
            started_at: now(),
        })
        .await?;
    crate::logging::record_run_id(run_id);
    let checked = validate::check_rows(&store.desired_rows().await?);
    record_rejections(store, &checked, now()).await?;
    refresh_missing(remote, store, &checked.valid, run_id, &now()).await?;
    let rejected_keys = checked.rejected_keys();
    let ops = plan_checked(store, opts, checked).await?.ops;
    let conflicts: Vec<_> = ops
        .iter()
        .filter_map(|o| {
            if let Op::Conflict(c) = o {
                Some(c.clone())
            } else {
                None
            }
        })
        .collect();
    store.replace_conflicts(conflicts.clone(), now()).await?;
    for c in conflicts
        .iter()
        .filter(|c| c.resolution != Resolution::KeepRemote)
    {
        tracing::warn!(key = %c.key, subject = %c.subject(), resolution = ?c.resolution, reason = %c.reason, "push conflict");
    }

    let exec = Exec {
        remote,
        store,
        opts,
    };
    exec.settle_stale(&ops, &rejected_keys).await?;
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op_key(&op).to_string()).or_default().push(op);
    }
    progress.reset();
    progress.add_total(by_key.len() as u64);
    let exec = Exec {
        remote,
        store,
        opts,
    };
    let results: Vec<(String, RowResult)> = futures::stream::iter(by_key)
        .map(|(key, steps)| {
            let exec = &exec;
            async move {
                let r = run_row(exec, &key, steps).await;
                progress.add_done(1);
                (key, r)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;

    let mut report = PushReport {
        run_id,
        conflicts: conflicts.len() as u64,
        rejected: rejected_keys.len() as u64,
        ..Default::default()
    };
    let mut refreshed = Vec::new();
    let mut tally = Tally::default();
    for (key, r) in results {
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
            progress.add_error();
            tally.failure(key.clone(), err.to_string());
            if report.errors.len() < 20 {
                report.errors.push(format!("{key}: {err}"));
            }
        }
    }
    if !refreshed.is_empty() {
        store.apply_subscribers(run_id, refreshed, now()).await?;
    }
    let problems = report.failed + report.unverified.len() as u64 + report.rejected;
    let writes = report.created + report.adopted + report.linked + report.updated;
    let (mut outcome, mut error) = tally.outcome(writes + report.dns_added);
    if report.rejected > 0 && outcome == Outcome::Ok {
        outcome = Outcome::Partial;
        error = Some(format!(
            "{} desired row(s) rejected: see `tariscope-sync status`",
            report.rejected
        ));
    }
    let counts = Counts {
        fetched: 0,
        inserted: report.created + report.adopted,
        updated: report.updated + report.linked + report.dns_added,
        removed: 0,
        unchanged: 0,
        errors: problems,
    };
    store
        .finish_run(run_id, outcome, counts, error, now(), None)
        .await?;
    report.outcome = Some(outcome);
    Ok(report)
}

/// Reads linked subscribers the mirror does not have or has tombstoned, so the plan sees
/// what Tariscope holds: one created by a run interrupted before it refreshed the mirror, one
/// linked by hand, or one outside the pull scope (the subscribers job tombstones what its
/// lists do not show; Tariscope still has it, so it is restored here, and only a subscriber
/// Tariscope no longer has stays removed).
async fn refresh_missing<R: PushRemote>(
    remote: &R,
    store: &Store,
    desired: &[plan::DesiredSubscriber],
    run_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    let mirror = store.remote_for_plan().await?;
    let missing: Vec<i64> = desired
        .iter()
        .filter_map(|d| d.tariscope_id)
        .filter(|id| mirror.get(id).is_none_or(|r| r.removed))
        .collect();
    let mut found = Vec::new();
    for id in missing {
        match remote.get(id).await {
            Ok(Some(s)) => found.push(s),
            Ok(None) => tracing::warn!(
                id,
                "a desired row is linked to a subscriber Tariscope does not have"
            ),
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot read a linked subscriber; the plan will skip it")
            }
        }
    }
    if !found.is_empty() {
        store
            .apply_subscribers(run_id, found, now.to_string())
            .await?;
    }
    Ok(())
}

fn op_key(op: &Op) -> &str {
    match op {
        Op::Create { key, .. }
        | Op::Link { key, .. }
        | Op::Update { key, .. }
        | Op::AdvanceBase { key, .. }
        | Op::DnAdd { key, .. } => key,
        Op::Conflict(c) => &c.key,
    }
}

#[derive(Default)]
struct RowResult {
    created: u64,
    adopted: u64,
    linked: u64,
    updated: u64,
    dns_added: u64,
    /// Records read back from Tariscope, to refresh the mirror with.
    refreshed: Vec<crate::model::Subscriber>,
    unverified: Option<String>,
    error: Option<StepError>,
}

/// Runs one desired row's steps in order; stops at the first failure.
async fn run_row<R: PushRemote>(exec: &Exec<'_, R>, key: &str, steps: Vec<Op>) -> RowResult {
    let mut r = RowResult::default();
    if let Err(e) = run_steps(exec, key, steps, &mut r).await {
        r.error = Some(e);
    }
    r
}

async fn run_steps<R: PushRemote>(
    exec: &Exec<'_, R>,
    key: &str,
    steps: Vec<Op>,
    r: &mut RowResult,
) -> Result<(), StepError> {
    let store = exec.store;
    let now = || {
        exec.opts
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let mut touched = None;
    let mut ignored_all = Vec::new();
    for step in steps {
        match step {
            Op::Conflict(c) => {
                if let (Resolution::KeepRemote, Some(f), Some(v)) = (c.resolution, c.field, c.local)
                {
                    store
                        .set_base(key.into(), Fields::from([(f, v)]), now())
                        .await?;
                }
            }
            Op::AdvanceBase { fields, .. } => store.set_base(key.into(), fields, now()).await?,
            Op::Link { id, agreed, .. } => {
                store.link_desired(key.into(), id).await?;
                store.set_base(key.into(), agreed, now()).await?;
                r.linked += 1;
            }
            Op::Create {
                fields,
                follow_up,
                dns,
                ..
            } => {
                let (id, adopted) = exec.create(key, &fields).await?;
                store.link_desired(key.into(), id).await?;
                if adopted {
                    r.adopted += 1
                } else {
                    r.created += 1
                }
                let (_, took, ignored) = exec.read_created(id, &fields).await?;
                store.set_base(key.into(), took, now()).await?;
                ignored_all.extend(ignored);
                touched = Some(id);
                for dn in &dns {
                    exec.dnadd(key, id, dn).await?;
                    r.dns_added += 1;
                }
                if !follow_up.is_empty() {
                    let (took, ignored) = exec.update(key, id, &follow_up).await?;
                    store.set_base(key.into(), took, now()).await?;
                    ignored_all.extend(ignored);
                }
            }
            Op::Update { id, changes, .. } => {
                let (took, ignored) = exec.update(key, id, &changes).await?;
                store.set_base(key.into(), took, now()).await?;
                ignored_all.extend(ignored);
                r.updated += 1;
                touched = Some(id);
            }
            Op::DnAdd { id, dn, .. } => {
                exec.dnadd(key, id, &dn).await?;
                r.dns_added += 1;
                touched = Some(id);
            }
        }
    }
    if !ignored_all.is_empty() {
        r.unverified = Some(exec::ignored_message(&ignored_all));
    }
    if let Some(id) = touched {
        // Refresh the mirror so the next plan sees what Tariscope now holds.
        if let Ok(Some(s)) = exec.remote.get(id).await {
            r.refreshed.push(s);
        }
    }
    Ok(())
}
