//! The first step of a push run: from the mirror to a plan.
//!
//! Owns: checking the desired rows (`sync::validate`) and recording the rejected ones,
//! re-reading linked subscribers the mirror lacks, recording what read-backs show of the
//! server (`DnListing`), and planning (`sync::plan`) from the desired rows, the mirror, the
//! merge base and the numbers our outbox confirmed. Must not: send a write.

use std::collections::BTreeSet;

use super::{Planned, PushOptions, PushRemote};
use crate::model::{DnListing, Subscriber};
use crate::store::{Store, StoreError};
use crate::sync::plan::{self, DesiredSubscriber, PlanInput};
use crate::sync::validate::{self, Checked};

/// A plan and the keys of the rejected desired rows.
pub(super) struct Loaded {
    pub planned: Planned,
    pub rejected_keys: BTreeSet<String>,
}

/// Checks the desired rows, records the rejected ones, reads missing linked subscribers,
/// and plans.
pub(super) async fn load_and_plan<R: PushRemote>(
    remote: &R,
    store: &Store,
    opts: &PushOptions,
    run_id: i64,
    now: &str,
) -> Result<Loaded, StoreError> {
    let checked = validate::check_rows(&store.desired_rows().await?);
    record_rejections(store, &checked, now.to_string()).await?;
    refresh_missing(remote, store, &checked.valid, run_id, now).await?;
    let rejected_keys = checked.rejected_keys();
    let planned = plan_checked(store, opts, checked).await?;
    Ok(Loaded {
        planned,
        rejected_keys,
    })
}

/// Plans the desired rows that passed the check from the mirror as it is now.
pub(super) async fn plan_checked(
    store: &Store,
    opts: &PushOptions,
    checked: Checked,
) -> Result<Planned, StoreError> {
    let remote = store.remote_for_plan().await?;
    let base = store.merge_base().await?;
    let confirmed_dns = store.confirmed_dns().await?;
    let dn_listing = store.dn_listing().await?.map(|o| o.value);
    let ops = plan::plan(PlanInput {
        desired: &checked.valid,
        remote: &remote,
        base: &base.fields,
        dn_base: &base.dns,
        confirmed_dns: &confirmed_dns,
        dn_listing,
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

/// Reads linked subscribers the mirror does not have or has tombstoned, so the plan sees
/// what Tariscope holds: one created by a run interrupted before it refreshed the mirror, one
/// linked by hand, or one outside the pull scope (the subscribers job tombstones what its
/// lists do not show; Tariscope still has it, so it is restored here, and only a subscriber
/// Tariscope no longer has stays removed).
async fn refresh_missing<R: PushRemote>(
    remote: &R,
    store: &Store,
    desired: &[DesiredSubscriber],
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
    refresh(store, found, run_id, now).await
}

/// Writes records read from Tariscope into the mirror, and what they show of the server.
pub(super) async fn refresh(
    store: &Store,
    records: Vec<Subscriber>,
    run_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    if let Some(listing) = DnListing::of(&records) {
        let source = format!("push run {run_id}");
        store
            .record_dn_listing(listing, source, now.to_string())
            .await?;
    }
    store
        .apply_subscribers(run_id, records, now.to_string())
        .await
        .map(drop)
}
