//! The first step of a push run: from the mirror to a plan.
//!
//! Owns: checking the desired rows (`sync::validate`) and recording the rejected ones,
//! re-reading linked subscribers the mirror lacks, recording what read-backs show of the
//! server (`DnListing`), and planning (`sync::plan`) from the desired rows, the mirror, the
//! merge base (with the values our own writes sent that Tariscope shows, see
//! `take_landed_writes`) and the numbers our outbox confirmed. Must not: send a write.

use std::collections::{BTreeMap, BTreeSet};

use super::{Planned, PushOptions, PushRemote};
use crate::model::{DnListing, Subscriber};
use crate::store::{MergeBase, OutboxEntry, OutboxState, Store, StoreError};
use crate::sync::fields::Field;
use crate::sync::plan::{self, DesiredSubscriber, PlanInput, RemoteSubscriber};
use crate::sync::validate::{self, Checked, TableRejection};

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
    let tables = vec![validate::SUBSCRIBERS_TABLE, validate::DNS_TABLE];
    record_rejections(store, tables, &checked.rejected, now.to_string()).await?;
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
    let mut base = store.merge_base().await?;
    let mut writes = store.outbox_of_op("create").await?;
    writes.extend(store.outbox_of_op("update").await?);
    writes.sort_by_key(|e| e.id);
    let links: BTreeMap<&str, i64> = checked
        .valid
        .iter()
        .filter_map(|d| d.tariscope_id.map(|id| (d.key.as_str(), id)))
        .collect();
    take_landed_writes(&mut base, &writes, &links, &remote);
    let confirmed_dns = store.confirmed_dns().await?;
    let unsettled_dns = store.unsettled_dns().await?;
    let dn_listing = store.dn_listing().await?.map(|o| o.value);
    let ops = plan::plan(PlanInput {
        desired: &checked.valid,
        remote: &remote,
        base: &base.fields,
        dn_base: &base.dns,
        confirmed_dns: &confirmed_dns,
        unsettled_dns: &unsettled_dns,
        dn_listing,
        policy: opts.policy,
        natural_key: opts.natural_key,
    });
    Ok(Planned {
        ops,
        rejected: checked.rejected,
        payments: Default::default(),
    })
}

/// Records the rejections of rows read from `tables` (replacing those tables' earlier ones);
/// a rejection of a row as written is logged once, when new.
pub(super) async fn record_rejections(
    store: &Store,
    tables: Vec<&'static str>,
    rejected: &[TableRejection],
    now: String,
) -> Result<(), StoreError> {
    let rows = rejected
        .iter()
        .map(|r| (r.table, r.fingerprint.clone(), r.rejection.clone()))
        .collect();
    for r in store.replace_table_rejections(tables, rows, now).await? {
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

/// Our own writes are not an operator's edits: a field one of our `create` or `update`
/// entries sent (oldest first), on the subscriber the row is linked to, that Tariscope shows
/// with the sent value, is agreed: that value is its base. The base normally moves when the
/// write is confirmed; this covers the write whose answer was lost (the entry still open), a
/// read-back that failed after a create, and a run that died between the write and the base.
/// Without it the next plan sees the field "changed in Tariscope" since the old base and, if
/// the desired value moved on meanwhile, a conflict that `remote-wins` settles for our own
/// stale write, for good.
fn take_landed_writes(
    base: &mut MergeBase,
    writes: &[OutboxEntry],
    links: &BTreeMap<&str, i64>,
    remote: &BTreeMap<i64, RemoteSubscriber>,
) {
    for e in writes {
        if e.state == OutboxState::Pending
            || !matches!(e.op.as_str(), "create" | "update")
            || e.subscriber_id.is_none()
            || links.get(e.key.as_str()).copied() != e.subscriber_id
        {
            continue;
        }
        let Some(r) = e.subscriber_id.and_then(|id| remote.get(&id)) else {
            continue;
        };
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(&e.payload) else {
            continue;
        };
        for (name, value) in fields {
            let (Ok(field), Some(value)) = (name.parse::<Field>(), value.as_str()) else {
                continue;
            };
            if r.fields.get(&field).map(String::as_str) == Some(value) {
                base.fields
                    .entry(e.key.clone())
                    .or_default()
                    .insert(field, value.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::fields::Fields;

    fn entry(state: OutboxState, payload: &str) -> OutboxEntry {
        OutboxEntry {
            id: 1,
            key: "crm-1".into(),
            op: "update".into(),
            subscriber_id: Some(7),
            payload: payload.into(),
            state,
            attempts: 1,
            last_error: None,
            result: None,
        }
    }

    #[test]
    fn a_landed_write_whose_answer_was_lost_is_the_base() {
        let remote = BTreeMap::from([(
            7,
            RemoteSubscriber {
                id: 7,
                fields: Fields::from([
                    (Field::House, "12".to_string()),
                    (Field::Street, "Sadova".to_string()),
                ]),
                dns: BTreeSet::new(),
                removed: false,
            },
        )]);
        let old = Fields::from([
            (Field::House, "3".to_string()),
            (Field::Street, "Lvivska".to_string()),
        ]);
        let mut base = MergeBase::default();
        base.fields.insert("crm-1".into(), old.clone());
        let sent = r#"{"house": "12", "street": "Khreshchatyk"}"#;
        let links = BTreeMap::from([("crm-1", 7)]);
        // Unsent: nothing changes.
        take_landed_writes(
            &mut base,
            &[entry(OutboxState::Pending, sent)],
            &links,
            &remote,
        );
        assert_eq!(base.fields["crm-1"], old);
        // A row now linked elsewhere (the key was reused): nothing changes.
        let elsewhere = BTreeMap::from([("crm-1", 8)]);
        take_landed_writes(
            &mut base,
            &[entry(OutboxState::Failed, sent)],
            &elsewhere,
            &remote,
        );
        assert_eq!(base.fields["crm-1"], old);
        take_landed_writes(
            &mut base,
            &[entry(OutboxState::Failed, sent)],
            &links,
            &remote,
        );
        // `house` shows what we sent: it landed. `street` shows something else: an
        // operator's value (or ours did not land), the base stays.
        assert_eq!(base.fields["crm-1"][&Field::House], "12");
        assert_eq!(base.fields["crm-1"][&Field::Street], "Lvivska");
    }
}
