//! Closing open outbox entries the plan no longer needs.
//!
//! Owns: recognising an open entry by its step (`key`, op, number) and marking it done with
//! a `settled` note when no step of the plan needs it (a `dnadd` that may have landed only
//! after a look-up says whether it did). Must not: send anything.

use std::collections::BTreeSet;

use serde_json::json;

use super::Exec;
use crate::store::{OutboxEntry, OutboxState, StoreError};
use crate::sync::plan::{DesiredDn, Op};
use crate::sync::push::lookup::has_dn;
use crate::sync::push::remote::PushRemote;

impl<R: PushRemote> Exec<'_, R> {
    /// Closes open outbox entries the plan no longer needs: their write took effect (the
    /// mirror shows it) before an interruption kept the entry from being marked done.
    /// Entries of rejected rows stay open: their row is not planned until it is fixed, and
    /// an entry whose outcome is unknown must still be looked up then.
    pub async fn settle_stale(
        &self,
        ops: &[Op],
        rejected: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let wanted: BTreeSet<(String, &'static str, String)> =
            ops.iter().filter_map(step_identity).collect();
        for e in self.store.outbox_open().await? {
            // Payments are settled by their own step (`push::payments`), never closed here.
            if e.op == "payment" || rejected.contains(&e.key) {
                continue;
            }
            let subject = match e.op.as_str() {
                "dnadd" => dn_subject(&e.payload),
                _ => String::new(),
            };
            let op: &'static str = match e.op.as_str() {
                "create" => "create",
                "update" => "update",
                _ => "dnadd",
            };
            if wanted.contains(&(e.key.clone(), op, subject)) {
                continue;
            }
            let note = if op == "dnadd"
                && matches!(e.state, OutboxState::Sent | OutboxState::Ambiguous)
            {
                // The row no longer wants the number, but the write may have landed: only a
                // look-up may close it. Until then it stays open, and the planner gives
                // the number to no one else (`PlanInput::unsettled_dns`).
                match self.unwanted_dn_landed(&e).await {
                    Some(true) => json!({"found_assigned": true}),
                    Some(false) => json!({"settled": "did not land; no longer wanted"}),
                    None if e.state == OutboxState::Sent => {
                        // Nobody would look at it again: a person must (`status` lists it).
                        let note = format!(
                            "the desired row no longer wants this number and whether this dnadd landed cannot be seen (this server's records do not show numbers): check subscriber {} in Tariscope, then set this outbox row to 'done' if it holds the number, or to 'failed' if not; until then the number is given to no other subscriber",
                            e.subscriber_id.unwrap_or_default()
                        );
                        self.store
                            .outbox_mark(
                                e.id,
                                OutboxState::Ambiguous,
                                false,
                                None,
                                Some(note),
                                None,
                                self.now(),
                            )
                            .await?;
                        continue;
                    }
                    None => continue,
                }
            } else {
                json!({"settled": "the plan no longer needs this write"})
            }
            .to_string();
            tracing::info!(key = %e.key, op, id = e.id, result = %note, "outbox entry no longer needed: closed");
            self.store
                .outbox_mark(
                    e.id,
                    OutboxState::Done,
                    false,
                    None,
                    None,
                    Some(note),
                    self.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Whether the number of an unsettled `dnadd` entry is on its subscriber now; `None`
    /// when nobody can tell (records without numbers, a failed read).
    async fn unwanted_dn_landed(&self, e: &OutboxEntry) -> Option<bool> {
        let p: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
        let dn = DesiredDn {
            pbx_id: p["pbx_id"].as_i64()?,
            dn: p["dn"].as_str()?.to_string(),
            from_date: None,
            description: None,
        };
        has_dn(self.remote, e.subscriber_id?, &dn).await.ok()?
    }
}

/// `(key, op, subject)` of a write step, as outbox entries are identified.
fn step_identity(op: &Op) -> Option<(String, &'static str, String)> {
    match op {
        Op::Create { key, .. } => Some((key.clone(), "create", String::new())),
        Op::Update { key, .. } => Some((key.clone(), "update", String::new())),
        Op::DnAdd { key, dn, .. } => {
            Some((key.clone(), "dnadd", format!("{}/{}", dn.pbx_id, dn.dn)))
        }
        _ => None,
    }
}

fn dn_subject(payload: &str) -> String {
    let p: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    format!("{}/{}", p["pbx_id"], p["dn"].as_str().unwrap_or_default())
}
