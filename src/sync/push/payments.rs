//! The last step of a push run: desired payments into Tariscope, each reference once.
//!
//! Owns: checking `desired_payments` (`sync::payments`) and recording the rejected rows,
//! leaving out what is posted, waiting (its subscriber is not linked yet) or ambiguous, and
//! posting the rest: subscribers concurrently, one subscriber's payments one at a time (a
//! snapshot and a look-up must not see another of our payments in flight; entries sent by an
//! earlier run are settled first). Must not: send outside `exec`, or post a payment whose
//! subscriber the same run has not linked (it runs after the subscriber rows).

use std::collections::BTreeMap;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::exec::{Exec, PaymentOutcome};
use super::load;
use super::{PushOptions, PushRemote, StepError};
use crate::store::{OutboxState, Store, StoreError};
use crate::sync::payments::{
    CheckedPayments, PAYMENTS_TABLE, PaymentContext, Target, ValidPayment, check_rows,
};

/// What the payment step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentReport {
    /// Payments confirmed in Tariscope by this run.
    pub posted: u64,
    /// Of `posted`: found by a look-up after an unknown outcome.
    pub found: u64,
    /// Payments waiting for a person (`tariscope-sync resolve`), this run's and earlier ones.
    pub ambiguous: u64,
    /// Payments whose `subscriber_key` row is not linked yet.
    pub waiting: u64,
    /// Rows refused by the check (listed in `rejected`).
    pub rejected: u64,
    /// Payments whose step failed (retried by the next run).
    pub failed: u64,
    /// Not started because the run was stopped.
    pub not_started: u64,
    /// The first errors, `reference: message`.
    pub errors: Vec<(String, String)>,
}

/// What a push would do with desired payments now (for `plan`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentPlan {
    /// Payments a push would post: (reference, subscriber id, the row).
    pub post: Vec<(i64, ValidPayment)>,
    /// Payments waiting for their `subscriber_key` row to be linked.
    pub waiting: Vec<ValidPayment>,
    /// References waiting for a person.
    pub ambiguous: Vec<String>,
    pub checked: CheckedPayments,
}

/// Checks the desired payments against the mirror and our outbox, and sorts them.
pub async fn plan_payments(store: &Store, opts: &PushOptions) -> Result<PaymentPlan, StoreError> {
    let p = &opts.payments;
    let today = opts.clock.now().with_timezone(&p.timezone).date_naive();
    let ctx = PaymentContext::load(store, today, p.earliest_day).await?;
    let checked = check_rows(&store.desired_payment_rows().await?, &ctx);
    let mut plan = PaymentPlan::default();
    for v in &checked.valid {
        match (ctx.sent.get(&v.row.reference).map(|s| s.state), &v.target) {
            (Some(OutboxState::Done), _) => {}
            (Some(OutboxState::Ambiguous), _) => plan.ambiguous.push(v.row.reference.clone()),
            (_, Target::Waiting(_)) => plan.waiting.push(v.clone()),
            (Some(OutboxState::Sent), Target::Subscriber(id)) => {
                // Settled first: before anything else of this subscriber is sent.
                plan.post.insert(0, (*id, v.clone()))
            }
            (_, Target::Subscriber(id)) => plan.post.push((*id, v.clone())),
        }
    }
    plan.checked = checked;
    Ok(plan)
}

/// Posts the desired payments; `Err` only when the mirror fails.
pub(super) async fn post_payments<R: PushRemote>(
    exec: &Exec<'_, R>,
    now: &str,
    stop: &CancellationToken,
) -> Result<PaymentReport, StoreError> {
    if !exec.opts.payments.post {
        return Ok(PaymentReport::default());
    }
    let plan = plan_payments(exec.store, exec.opts).await?;
    let tables = vec![PAYMENTS_TABLE];
    load::record_rejections(exec.store, tables, &plan.checked.rejected, now.into()).await?;
    close_orphaned(exec.store, &plan.checked, now).await?;
    let mut report = PaymentReport {
        rejected: plan
            .checked
            .rejected
            .iter()
            .filter_map(|r| r.rejection.key.as_ref())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64,
        waiting: plan.waiting.len() as u64,
        ambiguous: plan.ambiguous.len() as u64,
        ..PaymentReport::default()
    };
    let mut by_subscriber: BTreeMap<i64, Vec<ValidPayment>> = BTreeMap::new();
    for (id, v) in plan.post {
        by_subscriber.entry(id).or_default().push(v);
    }
    let total: usize = by_subscriber.values().map(Vec::len).sum();
    let results: Vec<(String, Result<PaymentOutcome, StepError>)> =
        futures::stream::iter(by_subscriber)
            .take_while(|_| std::future::ready(!stop.is_cancelled()))
            .map(|(id, list)| async move {
                let mut out = Vec::new();
                let mut blocked = false;
                for v in list {
                    let r = if blocked {
                        // Its snapshot could not tell our unsettled payment from this one.
                        Err(StepError::new(
                            "not sent: an earlier payment of this subscriber did not settle; the next run tries again",
                        ))
                    } else {
                        exec.payment(&v, id).await
                    };
                    blocked = blocked || r.is_err();
                    out.push((v.row.reference, r));
                }
                out
            })
            .buffer_unordered(exec.opts.concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
    report.not_started = (total - results.len()) as u64;
    for (reference, r) in results {
        match r {
            Ok(PaymentOutcome::Posted { found, .. }) => {
                report.posted += 1;
                report.found += u64::from(found);
            }
            Ok(PaymentOutcome::Ambiguous) => report.ambiguous += 1,
            Err(StepError::Store(e)) => return Err(e),
            Err(e) => {
                report.failed += 1;
                if report.errors.len() < 20 {
                    report.errors.push((reference, e.to_string()));
                }
            }
        }
    }
    Ok(report)
}

/// Open payment entries this push will not take up, because their `desired_payments` row is
/// now rejected (its subscriber row deleted, the row edited, ...) or gone: each would stay
/// open for ever. One never sent, or refused before Tariscope processed it (`pending`,
/// `failed`), ends `terminal` with the reason (a row fixed later is posted under its
/// reference by a later push). One that may have landed (`sent`) is left to a person as
/// `ambiguous`, never sent again by itself: `status` lists it, `resolve` settles it.
async fn close_orphaned(
    store: &Store,
    checked: &CheckedPayments,
    now: &str,
) -> Result<(), StoreError> {
    let valid: std::collections::BTreeSet<&str> = checked
        .valid
        .iter()
        .map(|v| v.row.reference.as_str())
        .collect();
    let why = |reference: &str| {
        checked
            .rejected
            .iter()
            .find(|r| r.rejection.key.as_deref() == Some(reference))
            .map(|r| {
                format!(
                    "its desired_payments row is rejected ({})",
                    r.rejection.reason
                )
            })
            .unwrap_or_else(|| "its desired_payments row no longer exists".to_string())
    };
    for e in store.outbox_of_op("payment").await? {
        if valid.contains(e.key.as_str()) {
            continue;
        }
        let (state, note) = match e.state {
            OutboxState::Pending | OutboxState::Failed => (
                OutboxState::Terminal,
                format!(
                    "not posted: {}; nothing of it reached Tariscope; a corrected row is posted under this reference by a later push",
                    why(&e.key)
                ),
            ),
            OutboxState::Sent => (
                OutboxState::Ambiguous,
                format!(
                    "{}, and this payment may have landed (its answer was lost): check subscriber {}'s payments in Tariscope, then `tariscope-sync resolve {} --landed PAYMENTID` or `--not-landed`",
                    why(&e.key),
                    e.subscriber_id.unwrap_or_default(),
                    e.key
                ),
            ),
            _ => continue,
        };
        tracing::warn!(reference = %e.key, id = e.id, state = state.as_str(), "{note}");
        store
            .outbox_mark(e.id, state, false, None, Some(note), None, now.to_string())
            .await?;
    }
    Ok(())
}
