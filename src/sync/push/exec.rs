//! The three writes, each wrapped in the outbox so it happens exactly once.
//!
//! Owns: recording the intent before sending, the state moves of the outbox entry (named
//! [`Change`]s), the look-up that settles an unknown outcome before anything is resent, the
//! attempt limit, `subscriber.create` and `subscriber.update` with its read-back.
//! Must not: plan (that is `sync::plan`) or decide the order of steps (that is `push::rows`).
//!
//! | file | owns |
//! |---|---|
//! | `numbers.rs` | `subscriber.dnadd` through the outbox |
//! | `payment.rs` | `accounts.payment` through the outbox: snapshot, look-up, read-back |
//! | `stale.rs` | closing open entries the plan no longer needs |
//! | `verify.rs` | comparing a read-back with what was pushed |

use chrono::SecondsFormat;
use serde_json::json;

mod numbers;
mod payment;
mod stale;
mod verify;

use super::lookup::{Found, find_created};
use super::remote::{PushRemote, WriteError, WriteErrorKind};
use super::{PushOptions, StepError};
use crate::model::Subscriber;
use crate::store::{OutboxEntry, OutboxState, Store};
use crate::sync::fields::{Fields, new_subscriber, patch};

pub use payment::{PaymentOutcome, Verdict, judge};
pub use verify::{Ignored, Updated, ignored_message, verify};

/// Shared state of one push run.
pub(super) struct Exec<'a, R> {
    pub remote: &'a R,
    pub store: &'a Store,
    pub opts: &'a PushOptions,
    /// The push run (changes it shows in the mirror are logged under it).
    pub run_id: i64,
}

/// How `subscriber.create` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This run created it.
    New(i64),
    /// A create whose outcome was unknown had made it; a look-up found it.
    Adopted(i64),
    /// An earlier run created it (its entry is done) and was interrupted before linking.
    Before(i64),
}

impl Created {
    pub fn id(self) -> i64 {
        match self {
            Self::New(id) | Self::Adopted(id) | Self::Before(id) => id,
        }
    }
}

/// A state change of an outbox entry.
pub(super) enum Change {
    /// About to send: one more attempt.
    Sending,
    Done {
        id: Option<i64>,
        result: serde_json::Value,
    },
    /// The outcome is unknown; `note` says why.
    Ambiguous { note: String },
    /// Still `sent` (the request may have landed): the next run looks before sending.
    Unsettled { note: String },
    /// Retried by a later run (terminal once the entry has used its attempts).
    Failed { error: String },
    /// Needs a person.
    Terminal {
        why: String,
        result: Option<serde_json::Value>,
    },
}

fn fields_json(fields: &Fields) -> String {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(f, v)| (f.name().to_string(), json!(v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl<'a, R: PushRemote> Exec<'a, R> {
    pub(super) fn now(&self) -> String {
        self.opts
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Writes one state change of entry `e`.
    pub(super) async fn change(&self, e: &OutboxEntry, to: Change) -> Result<(), StepError> {
        let (state, attempt, id, error, result) = match to {
            Change::Sending => (OutboxState::Sent, true, None, None, None),
            Change::Done { id, result } => (OutboxState::Done, false, id, None, Some(result)),
            Change::Ambiguous { note } => (OutboxState::Ambiguous, false, None, Some(note), None),
            Change::Unsettled { note } => (OutboxState::Sent, false, None, Some(note), None),
            Change::Failed { error } => {
                let state = if e.attempts >= self.opts.max_attempts {
                    OutboxState::Terminal
                } else {
                    OutboxState::Failed
                };
                (state, false, None, Some(error), None)
            }
            Change::Terminal { why, result } => {
                (OutboxState::Terminal, false, None, Some(why), result)
            }
        };
        let result = result.map(|r| r.to_string());
        self.store
            .outbox_mark(e.id, state, attempt, id, error, result, self.now())
            .await?;
        Ok(())
    }

    /// The open entry for this step, or a new pending one.
    pub(super) async fn entry(
        &self,
        key: &str,
        op: &'static str,
        id: Option<i64>,
        payload: String,
        same: impl Fn(&OutboxEntry) -> bool,
    ) -> Result<OutboxEntry, StepError> {
        let mine: Vec<OutboxEntry> = self
            .store
            .outbox_of(key.to_string(), op)
            .await?
            .into_iter()
            .filter(|e| same(e))
            .collect();
        if let Some(e) = mine.iter().find(|e| e.state.is_open()) {
            return Ok(e.clone());
        }
        if let Some(last) = mine
            .last()
            .filter(|e| is_refusal(e) && e.payload == payload)
        {
            return Err(StepError::new(format!(
                "Tariscope refused this write before (outbox entry {}: {}); it is not sent again until the desired row changes",
                last.id,
                last.last_error.as_deref().unwrap_or("no message")
            )));
        }
        let now = self.now();
        let new_id = self
            .store
            .outbox_insert(key.to_string(), op, id, payload.clone(), now)
            .await?;
        Ok(OutboxEntry {
            id: new_id,
            key: key.to_string(),
            op: op.to_string(),
            subscriber_id: id,
            payload,
            state: OutboxState::Pending,
            attempts: 0,
            last_error: None,
            result: None,
        })
    }

    /// Leaves the entry ambiguous after a failed look-up and fails the step; the next run
    /// looks again before sending anything.
    pub(super) async fn unsettled<T>(
        &self,
        e: &OutboxEntry,
        note: String,
        error: String,
        cause: Option<WriteError>,
    ) -> Result<T, StepError> {
        self.change(e, Change::Ambiguous { note }).await?;
        Err(StepError::caused(error, cause))
    }

    /// Gives up when the entry has used its attempts.
    pub(super) async fn spend_attempt(&self, e: &mut OutboxEntry) -> Result<(), StepError> {
        if e.attempts >= self.opts.max_attempts {
            let why = format!(
                "gave up after {} attempts (last error: {}); fix the cause, then set the outbox row's state to 'failed' and attempts to 0 to retry",
                e.attempts,
                e.last_error.as_deref().unwrap_or("none")
            );
            let to = Change::Terminal {
                why: why.clone(),
                result: None,
            };
            self.change(e, to).await?;
            return Err(StepError::new(why));
        }
        e.attempts += 1;
        self.change(e, Change::Sending).await
    }

    /// Ends the step after a failed write: a refusal (4xx) ends the entry at once, as
    /// terminal (every row is checked before it is planned, so a refusal reports a defect in
    /// that check or in the API profile, and it will not change by itself); anything else is
    /// retried by later runs.
    pub(super) async fn failed_write<T>(
        &self,
        e: &OutboxEntry,
        err: WriteError,
    ) -> Result<T, StepError> {
        if err.kind != WriteErrorKind::Rejected {
            return self.fail(e, err.to_string(), Some(err)).await;
        }
        let why = format!(
            "Tariscope refused a write that passed our checks ({err}); nothing is resent for this row as it stands: correct the desired row, or if it is right, report this (a gap in the check or the API profile)"
        );
        let to = Change::Terminal {
            why: why.clone(),
            result: Some(json!({"refused": err.message})),
        };
        self.change(e, to).await?;
        Err(StepError::caused(why, Some(err)))
    }

    /// Fails the step; the entry is retried by later runs (terminal once it has used its
    /// attempts).
    pub(super) async fn fail<T>(
        &self,
        e: &OutboxEntry,
        error: String,
        cause: Option<WriteError>,
    ) -> Result<T, StepError> {
        let to = Change::Failed {
            error: error.clone(),
        };
        self.change(e, to).await?;
        Err(StepError::caused(error, cause))
    }

    /// `subscriber.create`, exactly once.
    pub async fn create(&self, key: &str, fields: &Fields) -> Result<Created, StepError> {
        let latest = self.store.outbox_latest(key.to_string(), "create").await?;
        if let Some((OutboxState::Done, Some(id))) = latest.map(|d| (d.state, d.subscriber_id)) {
            // Created by an earlier run that was interrupted before it linked the row.
            return Ok(Created::Before(id));
        }
        let mut e = self
            .entry(key, "create", None, fields_json(fields), |_| true)
            .await?;
        if matches!(e.state, OutboxState::Sent | OutboxState::Ambiguous) {
            // A previous run may have sent it: look before sending again.
            if let Some(id) = self.settle_create(&e, fields).await? {
                return Ok(Created::Adopted(id));
            }
        }
        let request = new_subscriber(fields);
        loop {
            self.spend_attempt(&mut e).await?;
            match self.remote.create(&request).await {
                Ok(c) => {
                    let result = json!({"id": c.id, "accountnumber": c.account_number, "fullname": c.fullname});
                    let to = Change::Done {
                        id: Some(c.id),
                        result,
                    };
                    self.change(&e, to).await?;
                    return Ok(Created::New(c.id));
                }
                Err(err)
                    if matches!(
                        err.kind,
                        WriteErrorKind::OutcomeUnknown | WriteErrorKind::AlreadyExists
                    ) =>
                {
                    let note = err.to_string();
                    self.change(&e, Change::Ambiguous { note }).await?;
                    if let Some(id) = self.settle_create(&e, fields).await? {
                        return Ok(Created::Adopted(id));
                    }
                    if err.kind == WriteErrorKind::AlreadyExists {
                        let why = format!("{err}; no matching subscriber found to adopt");
                        return self.fail(&e, why, Some(err)).await;
                    }
                    tracing::info!(
                        key,
                        "create certainly absent after an unknown outcome; sending again"
                    );
                }
                Err(err) => return self.failed_write(&e, err).await,
            }
        }
    }

    /// Looks the subscriber up; adopts it (entry done) or says it is certainly absent.
    async fn settle_create(
        &self,
        e: &OutboxEntry,
        fields: &Fields,
    ) -> Result<Option<i64>, StepError> {
        let created_at = self.entry_created_at(e).await?;
        let known = self.store.known_subscriber_ids(created_at).await?;
        match find_created(self.remote, fields, self.opts.natural_key, &known).await {
            Ok(Found::Present(id)) => {
                tracing::info!(key = %e.key, id, "adopted a subscriber the unknown-outcome create had made");
                let to = Change::Done {
                    id: Some(id),
                    result: json!({"adopted": id}),
                };
                self.change(e, to).await?;
                Ok(Some(id))
            }
            Ok(Found::Absent) => Ok(None),
            Err(err) => {
                let why = format!(
                    "outcome of create unknown and the look-up failed ({err}); the next run looks again"
                );
                self.unsettled(e, format!("look-up failed: {err}"), why, Some(err))
                    .await
            }
        }
    }

    async fn entry_created_at(&self, e: &OutboxEntry) -> Result<String, StepError> {
        Ok(self
            .store
            .outbox_created_at(e.id)
            .await?
            .unwrap_or_else(|| self.now()))
    }

    /// `subscriber.update` of `changes`, then a read-back: the fields that took and those
    /// the server ignored (the entry is done only when none was ignored).
    pub async fn update(&self, key: &str, id: i64, changes: &Fields) -> Result<Updated, StepError> {
        let mut e = self
            .entry(key, "update", Some(id), fields_json(changes), |_| true)
            .await?;
        let request = patch(id, changes);
        loop {
            self.spend_attempt(&mut e).await?;
            let answer = match self.remote.update(&request).await {
                Ok(Some(s)) => s,
                Ok(None) => match self.read_back(&e, id).await? {
                    Some(s) => s,
                    None => {
                        let why = format!("subscriber {id} not found after the update");
                        return self.fail(&e, why, None).await;
                    }
                },
                Err(err) if err.kind == WriteErrorKind::OutcomeUnknown => {
                    match self.read_back(&e, id).await? {
                        Some(s) if verify(&s, changes).1.is_empty() => s,
                        _ => continue,
                    }
                }
                Err(err) => return self.failed_write(&e, err).await,
            };
            let (took, ignored) = verify(&answer, changes);
            if ignored.is_empty() {
                let to = Change::Done {
                    id: Some(id),
                    result: json!({"verified": took.len()}),
                };
                self.change(&e, to).await?;
            } else {
                // The row goes on (its report says which fields did not take); the entry is
                // retried by a later run.
                let error = ignored_message(&ignored);
                self.change(&e, Change::Failed { error }).await?;
            }
            return Ok(Updated { took, ignored });
        }
    }

    async fn read_back(&self, e: &OutboxEntry, id: i64) -> Result<Option<Subscriber>, StepError> {
        match self.remote.get(id).await {
            Ok(s) => Ok(s),
            Err(err) => {
                let why = format!(
                    "could not read subscriber {id} back ({err}); the next run checks again"
                );
                self.unsettled(e, format!("read-back failed: {err}"), why, Some(err))
                    .await
            }
        }
    }

    /// Reads `id` back (after a create) and checks the create fields.
    pub async fn read_created(
        &self,
        id: i64,
        sent: &Fields,
    ) -> Result<(Option<Subscriber>, Fields, Vec<Ignored>), StepError> {
        let s = self.remote.get(id).await.map_err(|e| {
            let why = format!("reading subscriber {id} back after create: {e}");
            StepError::caused(why, Some(e))
        })?;
        Ok(match s {
            Some(s) => {
                let (took, ignored) = verify(&s, sent);
                (Some(s), took, ignored)
            }
            None => (None, Fields::new(), Vec::new()),
        })
    }
}

/// A terminal entry Tariscope refused: its write is not sent again as it stands.
fn is_refusal(e: &OutboxEntry) -> bool {
    e.state == OutboxState::Terminal
        && e.result
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .is_some_and(|r| r.get("refused").is_some())
}
