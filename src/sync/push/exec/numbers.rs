//! `subscriber.dnadd` through the outbox, exactly once.
//!
//! Owns: recording the number's write, looking a number up before anything is resent, and
//! leaving an unknown outcome to a person where the server's records do not show numbers
//! (a resend could assign the number twice). Must not: decide which numbers to add (that
//! is `sync::plan`).

use serde_json::json;

use super::{Change, Exec};
use crate::model::NewDn;
use crate::store::{OutboxEntry, OutboxState};
use crate::sync::plan::DesiredDn;
use crate::sync::push::StepError;
use crate::sync::push::lookup::has_dn;
use crate::sync::push::remote::{PushRemote, WriteErrorKind};

impl<R: PushRemote> Exec<'_, R> {
    /// `subscriber.dnadd`, exactly once.
    pub async fn dnadd(&self, key: &str, id: i64, dn: &DesiredDn) -> Result<(), StepError> {
        let payload = json!({"subscriber_id": id, "pbx_id": dn.pbx_id, "dn": dn.dn}).to_string();
        let same = |e: &OutboxEntry| {
            serde_json::from_str::<serde_json::Value>(&e.payload)
                .is_ok_and(|p| p["pbx_id"] == json!(dn.pbx_id) && p["dn"] == json!(dn.dn))
        };
        if self.confirmed_before(key, id, &same).await? {
            // We put this number on this subscriber before, and the plan wants it again: the
            // mirror may not show our write yet (a run that died before recording it, a
            // read-back that failed), or an operator took it away. Only a look at the
            // subscriber tells; sending blind could assign it twice.
            match has_dn(self.remote, id, dn).await {
                Ok(Some(false)) => {}
                Ok(_) => return Ok(()),
                Err(err) => {
                    let why = format!(
                        "number {}/{} was assigned to subscriber {id} by an earlier run and the mirror does not show it; looking at the subscriber failed ({err}), the next run looks again",
                        dn.pbx_id, dn.dn
                    );
                    return Err(StepError::caused(why, Some(err)));
                }
            }
        }
        let mut e = self.entry(key, "dnadd", Some(id), payload, same).await?;
        if matches!(e.state, OutboxState::Sent | OutboxState::Ambiguous) {
            // A previous run may have sent it: look before sending again.
            match self.dn_present(&e, id, dn).await? {
                Some(true) => return Ok(()),
                Some(false) => {}
                None => return self.dn_unknowable(&e, id, dn).await,
            }
        }
        let request = NewDn {
            subscriber_id: id,
            dn: dn.dn.clone(),
            pbx_id: dn.pbx_id,
            from_date: dn.from_date,
            description: dn.description.clone(),
        };
        loop {
            self.spend_attempt(&mut e).await?;
            match self.remote.dnadd(&request).await {
                Ok(a) => {
                    let result = json!({"id": a.id, "subscriberid": a.subscriber_id, "dn": a.dn});
                    let to = Change::Done {
                        id: Some(id),
                        result,
                    };
                    return self.change(&e, to).await;
                }
                Err(err) if err.kind == WriteErrorKind::AlreadyExists => {
                    // "Already assigned": success if it is assigned to this subscriber.
                    return match self.dn_present(&e, id, dn).await? {
                        Some(false) => {
                            let why = format!("{err}: the number belongs to another subscriber");
                            self.fail(&e, why, Some(err)).await
                        }
                        _ => {
                            let to = Change::Done {
                                id: Some(id),
                                result: json!({"already_assigned": true}),
                            };
                            self.change(&e, to).await
                        }
                    };
                }
                Err(err) if err.kind == WriteErrorKind::OutcomeUnknown => {
                    let note = err.to_string();
                    self.change(&e, Change::Ambiguous { note }).await?;
                    match self.dn_present(&e, id, dn).await? {
                        Some(true) => return Ok(()),
                        Some(false) => {}
                        None => return self.dn_unknowable(&e, id, dn).await,
                    }
                }
                Err(err) => return self.failed_write(&e, err).await,
            }
        }
    }

    /// Whether an earlier `dnadd` of ours put this number on subscriber `id` (an entry
    /// `done` by Tariscope's answer or a look-up, not one closed as no longer needed).
    async fn confirmed_before(
        &self,
        key: &str,
        id: i64,
        same: &impl Fn(&OutboxEntry) -> bool,
    ) -> Result<bool, StepError> {
        let settled = |e: &OutboxEntry| {
            e.result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                .is_some_and(|r| r.get("settled").is_some())
        };
        Ok(self
            .store
            .outbox_of(key.to_string(), "dnadd")
            .await?
            .iter()
            .any(|e| {
                same(e)
                    && e.state == OutboxState::Done
                    && e.subscriber_id == Some(id)
                    && !settled(e)
            }))
    }

    /// Leaves a `dnadd` of unknown outcome for a person: the server's records do not show
    /// numbers, so nothing can tell whether it took, and a resend could assign the number
    /// twice on a server that accepts a repeated `dnadd`.
    async fn dn_unknowable(
        &self,
        e: &OutboxEntry,
        id: i64,
        dn: &DesiredDn,
    ) -> Result<(), StepError> {
        let why = format!(
            "the outcome of dnadd {}/{} to subscriber {id} is unknown and this server's subscriber records do not show numbers, so it cannot be looked up; it is not sent again (that could assign the number twice): check subscriber {id} in Tariscope, then set outbox row {} to state 'done' if it holds the number, or to 'failed' to have it sent again",
            dn.pbx_id, dn.dn, e.id
        );
        self.unsettled(e, why.clone(), why, None).await
    }

    async fn dn_present(
        &self,
        e: &OutboxEntry,
        id: i64,
        dn: &DesiredDn,
    ) -> Result<Option<bool>, StepError> {
        match has_dn(self.remote, id, dn).await {
            Ok(Some(true)) => {
                let to = Change::Done {
                    id: Some(id),
                    result: json!({"found_assigned": true}),
                };
                self.change(e, to).await?;
                Ok(Some(true))
            }
            Ok(other) => Ok(other),
            Err(err) => {
                let why = format!(
                    "outcome of dnadd unknown and the look-up failed ({err}); the next run looks again"
                );
                self.unsettled(e, format!("look-up failed: {err}"), why, Some(err))
                    .await
            }
        }
    }
}
