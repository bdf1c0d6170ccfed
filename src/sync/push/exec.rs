//! The three writes, each wrapped in the outbox so it happens exactly once.
//!
//! Owns: recording the intent before sending, the state moves of the outbox entry, the
//! look-up that settles an unknown outcome before anything is resent, the attempt limit,
//! and reading back what was written to check every pushed field took.
//! Must not: plan (that is `sync::plan`) or decide the order of steps (that is `push::mod`).

use chrono::SecondsFormat;
use serde_json::json;

use super::lookup::{Found, find_created, has_dn};
use super::remote::{PushRemote, WriteError, WriteErrorKind};
use super::{PushOptions, StepError};
use crate::model::{NewDn, Subscriber};
use std::collections::BTreeSet;

use crate::store::{OutboxEntry, OutboxState, Store, StoreError};
use crate::sync::fields::{Field, Fields, fields_of, new_subscriber, patch};
use crate::sync::plan::DesiredDn;
use crate::sync::plan::Op;

/// A field that did not take the pushed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub field: Field,
    pub pushed: String,
    pub found: String,
}

/// Shared state of one push run.
pub(super) struct Exec<'a, R> {
    pub remote: &'a R,
    pub store: &'a Store,
    pub opts: &'a PushOptions,
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

/// What `subscriber.update` changed, by its read-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub took: Fields,
    pub ignored: Vec<Ignored>,
}

impl Updated {
    /// The write is done (its entry too): every field took.
    pub fn is_done(&self) -> bool {
        self.ignored.is_empty()
    }
}

/// A state change of an outbox entry.
enum Change {
    /// About to send: one more attempt.
    Sending,
    Done {
        id: Option<i64>,
        result: serde_json::Value,
    },
    /// The outcome is unknown; `note` says why.
    Ambiguous { note: String },
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
    fn now(&self) -> String {
        self.opts
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Writes one state change of entry `e`.
    async fn change(&self, e: &OutboxEntry, to: Change) -> Result<(), StepError> {
        let (state, attempt, id, error, result) = match to {
            Change::Sending => (OutboxState::Sent, true, None, None, None),
            Change::Done { id, result } => (OutboxState::Done, false, id, None, Some(result)),
            Change::Ambiguous { note } => (OutboxState::Ambiguous, false, None, Some(note), None),
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
    async fn entry(
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
    async fn unsettled<T>(
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
    async fn spend_attempt(&self, e: &mut OutboxEntry) -> Result<(), StepError> {
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
    async fn failed_write<T>(&self, e: &OutboxEntry, err: WriteError) -> Result<T, StepError> {
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
    async fn fail<T>(
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

    /// `subscriber.dnadd`, exactly once.
    pub async fn dnadd(&self, key: &str, id: i64, dn: &DesiredDn) -> Result<(), StepError> {
        let payload = json!({"subscriber_id": id, "pbx_id": dn.pbx_id, "dn": dn.dn}).to_string();
        let same = |e: &OutboxEntry| {
            serde_json::from_str::<serde_json::Value>(&e.payload)
                .is_ok_and(|p| p["pbx_id"] == json!(dn.pbx_id) && p["dn"] == json!(dn.dn))
        };
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

/// Splits `pushed` into fields the record shows and fields it does not.
pub fn verify(record: &Subscriber, pushed: &Fields) -> (Fields, Vec<Ignored>) {
    let now = fields_of(record);
    let mut took = Fields::new();
    let mut ignored = Vec::new();
    for (f, v) in pushed {
        let found = now.get(f).cloned().unwrap_or_default();
        if found == *v {
            took.insert(*f, v.clone());
        } else {
            ignored.push(Ignored {
                field: *f,
                pushed: v.clone(),
                found,
            });
        }
    }
    (took, ignored)
}

pub fn ignored_message(ignored: &[Ignored]) -> String {
    let list = ignored
        .iter()
        .map(|i| {
            format!(
                "{} (pushed {:?}, server has {:?})",
                i.field.name(),
                i.pushed,
                i.found
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "the server accepted the write but these fields did not take: {list}; it may know them by other names: map them in [api.profile.methods.\"subscriber.update\"] (docs/client.md)"
    )
}
