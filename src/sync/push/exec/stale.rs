//! Closing open outbox entries the plan no longer needs.
//!
//! Owns: recognising an open entry by its step (`key`, op, number) and marking it done with
//! a `settled` note when no step of the plan needs it. Must not: send anything.

use std::collections::BTreeSet;

use serde_json::json;

use super::Exec;
use crate::store::{OutboxState, StoreError};
use crate::sync::plan::Op;
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
            if rejected.contains(&e.key) {
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
            tracing::info!(key = %e.key, op, id = e.id, "outbox entry no longer needed: the mirror shows it applied");
            let note = json!({"settled": "the plan no longer needs this write"}).to_string();
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
