//! `accounts.payment` through the outbox, exactly once, without any help from the server.
//!
//! Owns: the snapshot before sending (the subscriber's payments of that day and amount,
//! committed with the entry before the request goes out), settling an unknown outcome against
//! it ([`judge`]: one new unclaimed payment landed, none did not, anything else is
//! `ambiguous` and waits for a person, never resent), and the read-back of a returned
//! `paymentid`. Must not: decide which payments to post (`push::payments`) or resend while an
//! entry is ambiguous.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::json;

use super::{Change, Exec};
use crate::model::{NewPayment, Payment, PaymentType};
use crate::store::{OutboxEntry, OutboxState, PostedPayment};
use crate::sync::payments::{SentPayment, ValidPayment};
use crate::sync::push::StepError;
use crate::sync::push::remote::{PushRemote, WriteErrorKind};

/// How posting one payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Confirmed in Tariscope: `found` when a look-up (not an answer) showed it landed.
    Posted { payment_id: i64, found: bool },
    /// Left for a person (`tariscope-sync resolve`); nothing is sent.
    Ambiguous,
}

/// What the subscriber's payments of the day say about a send of unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one matching payment more than before, claimed by no other entry.
    Landed(i64),
    /// The same unclaimed payments as before: it did not land.
    Absent,
    /// Fewer, or several new ones: only a person can tell.
    Ambiguous,
}

/// Judges `now` (matching payment ids listed after the send) against `before` (the snapshot)
/// and `claimed` (ids other outbox entries confirmed as theirs).
pub fn judge(before: &BTreeSet<i64>, now: &BTreeSet<i64>, claimed: &BTreeSet<i64>) -> Verdict {
    if !before.is_subset(now) {
        return Verdict::Ambiguous;
    }
    let new: Vec<i64> = now
        .difference(before)
        .filter(|id| !claimed.contains(id))
        .copied()
        .collect();
    match new.as_slice() {
        [] => Verdict::Absent,
        [id] => Verdict::Landed(*id),
        _ => Verdict::Ambiguous,
    }
}

fn matching(listed: &[Payment], amount: Decimal) -> BTreeSet<i64> {
    listed
        .iter()
        .filter(|p| p.amount == Some(amount))
        .map(|p| p.payment_id)
        .collect()
}

fn ids(set: &BTreeSet<i64>) -> String {
    let list: Vec<String> = set.iter().map(i64::to_string).collect();
    format!("[{}]", list.join(", "))
}

fn request(p: &ValidPayment, id: i64) -> NewPayment {
    NewPayment {
        subscriber_id: id,
        payment_day: p.row.day,
        amount: p.row.amount,
        payment_type: PaymentType::from_code(p.row.kind),
        bank: p.row.bank.clone(),
    }
}

impl<R: PushRemote> Exec<'_, R> {
    /// Posts `p` to subscriber `id`, exactly once.
    pub async fn payment(&self, p: &ValidPayment, id: i64) -> Result<PaymentOutcome, StepError> {
        let key = p.row.reference.as_str();
        let payload = SentPayment::payload(&p.row, id);
        self.supersede(key, &payload).await?;
        let same = |e: &OutboxEntry| e.payload == payload;
        let mut e = self
            .entry(key, "payment", Some(id), payload.clone(), same)
            .await?;
        let req = request(p, id);
        let before = match e.state {
            OutboxState::Ambiguous => return Ok(PaymentOutcome::Ambiguous),
            OutboxState::Sent => {
                // A previous run may have sent it: look before sending again.
                let Some(before) = self.store.outbox_snapshot(e.id).await? else {
                    return self
                        .ambiguous(
                            &e,
                            &req,
                            "it was sent without a snapshot to compare with".into(),
                        )
                        .await;
                };
                match self.settle_payment(&e, &req, &before).await? {
                    Some(done) => return Ok(done),
                    None => before,
                }
            }
            _ => self.snapshot(&e, &req).await?,
        };
        loop {
            self.spend_attempt(&mut e).await?;
            match self.remote.payment(&req).await {
                Ok(answer) => return self.read_back_payment(&e, &req, answer.payment_id).await,
                Err(err)
                    if matches!(
                        err.kind,
                        WriteErrorKind::OutcomeUnknown | WriteErrorKind::AlreadyExists
                    ) =>
                {
                    let note = format!("{err}; looking up the subscriber's payments of the day");
                    self.change(&e, Change::Unsettled { note }).await?;
                    if let Some(done) = self.settle_payment(&e, &req, &before).await? {
                        return Ok(done);
                    }
                    tracing::info!(
                        reference = key,
                        "payment certainly absent after an unknown outcome; sending again"
                    );
                }
                Err(err) => return self.failed_write(&e, err).await,
            }
        }
    }

    /// Closes open entries of `key` that were never sent (or certainly did not land) and
    /// carry other values: the row changed before they went out.
    async fn supersede(&self, key: &str, payload: &str) -> Result<(), StepError> {
        for old in self.store.outbox_of(key.to_string(), "payment").await? {
            if matches!(old.state, OutboxState::Pending | OutboxState::Failed)
                && old.payload != payload
            {
                let why =
                    "superseded: the desired row changed before this payment was sent".to_string();
                self.change(
                    &old,
                    Change::Terminal {
                        why,
                        result: Some(json!({"superseded": true})),
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Lists the subscriber's payments of the day and records the matching ones with the
    /// entry (before anything is sent); returns them.
    async fn snapshot(
        &self,
        e: &OutboxEntry,
        req: &NewPayment,
    ) -> Result<BTreeSet<i64>, StepError> {
        let listed = self
            .remote
            .payments_on(req.subscriber_id, req.payment_day)
            .await
            .map_err(|err| {
                let why = format!("cannot list subscriber {}'s payments of {} before sending ({err}); nothing was sent, the next run tries again", req.subscriber_id, req.payment_day);
                StepError::caused(why, Some(err))
            })?;
        let before = matching(&listed, req.amount);
        let snapshot = json!({"ids": before, "taken_at": self.now()}).to_string();
        self.store.outbox_set_snapshot(e.id, snapshot).await?;
        Ok(before)
    }

    /// Settles an unknown outcome against the snapshot: `Some` when done or ambiguous, `None`
    /// when it certainly did not land (send again).
    async fn settle_payment(
        &self,
        e: &OutboxEntry,
        req: &NewPayment,
        before: &BTreeSet<i64>,
    ) -> Result<Option<PaymentOutcome>, StepError> {
        let listed = match self
            .remote
            .payments_on(req.subscriber_id, req.payment_day)
            .await
        {
            Ok(l) => l,
            Err(err) => {
                let note = format!(
                    "outcome unknown and the look-up failed ({err}); the next run looks again before sending anything"
                );
                self.change(e, Change::Unsettled { note: note.clone() })
                    .await?;
                return Err(StepError::caused(note, Some(err)));
            }
        };
        let now = matching(&listed, req.amount);
        let claimed = self
            .store
            .claimed_payment_ids(req.subscriber_id, e.id)
            .await?;
        match judge(before, &now, &claimed) {
            Verdict::Landed(pid) => {
                tracing::info!(reference = %e.key, payment_id = pid, "a look-up found the payment the unknown-outcome send made");
                let found = listed.iter().find(|p| p.payment_id == pid).cloned();
                self.posted(e, req, pid, found, "look-up").await?;
                Ok(Some(PaymentOutcome::Posted {
                    payment_id: pid,
                    found: true,
                }))
            }
            Verdict::Absent => Ok(None),
            Verdict::Ambiguous => {
                let facts = format!(
                    "before sending, {} payment(s) of {} on that day {}; now {} {} (confirmed for other references: {})",
                    before.len(),
                    req.amount,
                    ids(before),
                    now.len(),
                    ids(&now),
                    ids(&claimed.intersection(&now).copied().collect()),
                );
                self.ambiguous(e, req, facts).await
            }
        }
    }

    /// Leaves the entry for a person, with the facts and what to do.
    async fn ambiguous<T: From<PaymentOutcome>>(
        &self,
        e: &OutboxEntry,
        req: &NewPayment,
        facts: String,
    ) -> Result<T, StepError> {
        let note = format!(
            "outcome unknown and not settled by Tariscope's records: {facts}. It is not sent again. Check subscriber {}'s payments of {} in Tariscope, then run `tariscope-sync resolve {} --landed PAYMENTID` (the payment that is this one) or `tariscope-sync resolve {} --not-landed` (to have it sent)",
            req.subscriber_id, req.payment_day, e.key, e.key
        );
        tracing::warn!(reference = %e.key, %note, "payment ambiguous: waits for a person");
        self.change(e, Change::Ambiguous { note }).await?;
        Ok(PaymentOutcome::Ambiguous.into())
    }

    /// Confirms a returned `paymentid` with `accounts.payments paymentid=N`.
    async fn read_back_payment(
        &self,
        e: &OutboxEntry,
        req: &NewPayment,
        pid: i64,
    ) -> Result<PaymentOutcome, StepError> {
        match self.remote.payment_by_id(req.subscriber_id, pid).await {
            Ok(Some(p))
                if p.amount.is_none_or(|a| a == req.amount)
                    && p.payment_day.is_none_or(|d| d == req.payment_day) =>
            {
                self.posted(e, req, pid, Some(p), "answer").await?;
                Ok(PaymentOutcome::Posted {
                    payment_id: pid,
                    found: false,
                })
            }
            Ok(Some(p)) => {
                let facts = format!(
                    "Tariscope answered payment {pid}, which reads back as {} on {}",
                    p.amount.map(|a| a.to_string()).unwrap_or_default(),
                    p.payment_day.map(|d| d.to_string()).unwrap_or_default()
                );
                self.ambiguous(e, req, facts).await
            }
            Ok(None) => {
                let facts = format!(
                    "Tariscope answered payment {pid}, but accounts.payments paymentid={pid} does not find it"
                );
                self.ambiguous(e, req, facts).await
            }
            Err(err) => {
                let note = format!(
                    "Tariscope answered payment {pid}; its read-back failed ({err}); the next run looks again before sending anything"
                );
                self.change(e, Change::Unsettled { note: note.clone() })
                    .await?;
                Err(StepError::caused(note, Some(err)))
            }
        }
    }

    /// Records a confirmed payment: entry done, `paymentid` on the desired row, the mirror
    /// row naming the reference (one transaction).
    async fn posted(
        &self,
        e: &OutboxEntry,
        req: &NewPayment,
        pid: i64,
        read: Option<Payment>,
        how: &str,
    ) -> Result<(), StepError> {
        let read = read.unwrap_or(Payment {
            payment_id: pid,
            subscriber_id: req.subscriber_id,
            payment_day: Some(req.payment_day),
            amount: Some(req.amount),
            payment_type: Some(req.payment_type),
            bank: req.bank.clone(),
        });
        let posted = PostedPayment {
            entry_id: e.id,
            reference: e.key.clone(),
            payment: Payment {
                payment_day: read.payment_day.or(Some(req.payment_day)),
                amount: read.amount.or(Some(req.amount)),
                payment_type: read.payment_type.or(Some(req.payment_type)),
                bank: read.bank.or(req.bank.clone()),
                ..read
            },
            result: json!({"paymentid": pid, "by": how}).to_string(),
        };
        self.store.payment_posted(posted, self.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn judging_an_unknown_outcome() {
        type Case = (&'static [i64], &'static [i64], &'static [i64], Verdict);
        let cases: &[Case] = &[
            // (before, now, claimed by other entries, verdict)
            (&[], &[], &[], Verdict::Absent),
            (&[4], &[4], &[], Verdict::Absent),
            (&[], &[9], &[], Verdict::Landed(9)),
            (&[4], &[4, 9], &[], Verdict::Landed(9)),
            (&[], &[8, 9], &[8], Verdict::Landed(9)),
            (&[], &[8], &[8], Verdict::Absent),
            (&[], &[8, 9], &[], Verdict::Ambiguous),
            (&[4], &[], &[], Verdict::Ambiguous),
            (&[4], &[9], &[], Verdict::Ambiguous),
        ];
        for (before, now, claimed, want) in cases {
            let got = judge(&set(before), &set(now), &set(claimed));
            assert_eq!(
                &got, want,
                "before {before:?}, now {now:?}, claimed {claimed:?}"
            );
        }
    }
}
