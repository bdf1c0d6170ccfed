//! The third step of a push run: each desired row's steps, in order, through the outbox.
//!
//! Owns: grouping the plan's steps by desired row, running rows concurrently (the limiter
//! inside the client bounds the load) and starting no new row once `stop` is cancelled,
//! running one row's steps in order (stopping at its first failure), moving the merge base
//! only for what Tariscope confirmed, and counting each outbox write the row finished
//! exactly once. Must not: plan, or send a write outside `exec`.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::exec::{self, Created, Exec};
use super::{PushRemote, StepError};
use crate::model::{DnAssignment, DnListing, Subscriber};
use crate::store::StoreError;
use crate::sync::fields::Fields;
use crate::sync::options::Progress;
use crate::sync::plan::{DesiredDn, Op, Resolution};

/// What one desired row did. Counts are outbox writes this run finished (`done`).
#[derive(Debug, Default)]
pub(super) struct RowResult {
    /// `subscriber.create` writes done, adopted ones included.
    pub created: u64,
    /// Of `created`: found by a look-up after an unknown outcome.
    pub adopted: u64,
    /// Rows linked to an existing subscriber (no write).
    pub linked: u64,
    /// `subscriber.update` writes done (follow-ups of a create included).
    pub updated: u64,
    /// `subscriber.dnadd` writes done.
    pub dns_added: u64,
    /// Records read back from Tariscope, to refresh the mirror with.
    pub refreshed: Vec<Subscriber>,
    pub unverified: Option<String>,
    pub error: Option<StepError>,
}

/// The rows of a run: each row's result by key, and how many rows there were.
pub(super) struct Rows {
    pub results: Vec<(String, RowResult)>,
    pub total: usize,
}

impl Rows {
    /// Rows not started because `stop` was cancelled.
    pub fn not_started(&self) -> usize {
        self.total - self.results.len()
    }
}

fn op_key(op: &Op) -> &str {
    match op {
        Op::Create { key, .. }
        | Op::Link { key, .. }
        | Op::Update { key, .. }
        | Op::AdvanceBase { key, .. }
        | Op::DnBase { key, .. }
        | Op::DnAdd { key, .. } => key,
        Op::Conflict(c) => &c.key,
    }
}

/// Runs every row's steps; starts no new row once `stop` is cancelled (rows under way finish
/// their steps: a row is the safe point).
pub(super) async fn execute_rows<R: PushRemote>(
    exec: &Exec<'_, R>,
    ops: Vec<Op>,
    progress: &Progress,
    stop: &CancellationToken,
) -> Rows {
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op_key(&op).to_string()).or_default().push(op);
    }
    let total = by_key.len();
    progress.reset();
    progress.add_total(total as u64);
    let results = futures::stream::iter(by_key)
        .take_while(|_| std::future::ready(!stop.is_cancelled()))
        .map(|(key, steps)| async move {
            let r = run_row(exec, &key, steps).await;
            progress.add_done(1);
            if r.error.is_some() {
                progress.add_error();
            }
            (key, r)
        })
        .buffer_unordered(exec.opts.concurrency.max(1))
        .collect()
        .await;
    Rows { results, total }
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
            Op::DnBase { dns, .. } => store.set_dn_base(key.into(), dns, now()).await?,
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
                let created = exec.create(key, &fields).await?;
                let id = created.id();
                store.link_desired(key.into(), id).await?;
                match created {
                    Created::New(_) => r.created += 1,
                    Created::Adopted(_) => {
                        r.created += 1;
                        r.adopted += 1;
                    }
                    Created::Before(_) => r.linked += 1,
                }
                let (_, took, ignored) = exec.read_created(id, &fields).await?;
                store.set_base(key.into(), took, now()).await?;
                ignored_all.extend(ignored);
                touched = Some(id);
                // The fields first: a number whose outcome a person must settle (records
                // without numbers) stops the row, and must not hold its fields back.
                if !follow_up.is_empty() {
                    let u = exec.update(key, id, &follow_up).await?;
                    r.updated += u64::from(u.is_done());
                    store.set_base(key.into(), u.took, now()).await?;
                    ignored_all.extend(u.ignored);
                }
                for dn in &dns {
                    exec.dnadd(key, id, dn).await?;
                    store.add_dn_base(key.into(), dn.key(), now()).await?;
                    show_in_mirror(exec, id, dn, now()).await?;
                    r.dns_added += 1;
                }
            }
            Op::Update { id, changes, .. } => {
                let u = exec.update(key, id, &changes).await?;
                r.updated += u64::from(u.is_done());
                store.set_base(key.into(), u.took, now()).await?;
                ignored_all.extend(u.ignored);
                touched = Some(id);
            }
            Op::DnAdd { id, dn, .. } => {
                exec.dnadd(key, id, &dn).await?;
                store.add_dn_base(key.into(), dn.key(), now()).await?;
                show_in_mirror(exec, id, &dn, now()).await?;
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

/// After a confirmed `dnadd`, on a server whose records show numbers: the mirror shows the
/// number at once (`Store::add_confirmed_dn`), not only after the row's read-back or the
/// next pull, so no later plan mistakes our own number for one an operator removed.
async fn show_in_mirror<R: PushRemote>(
    exec: &Exec<'_, R>,
    id: i64,
    dn: &DesiredDn,
    now: String,
) -> Result<(), StoreError> {
    if exec.store.dn_listing().await?.map(|o| o.value) != Some(DnListing::Shown) {
        return Ok(());
    }
    let shown = DnAssignment {
        id: None,
        subscriber_id: id,
        pbx_id: Some(dn.pbx_id),
        dn: dn.dn.clone(),
        from_date: dn.from_date,
        description: dn.description.clone(),
    };
    exec.store.add_confirmed_dn(exec.run_id, shown, now).await?;
    Ok(())
}
