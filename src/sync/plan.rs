//! The push planner: a pure function from three observations to the work to do.
//!
//! Owns: deciding, for every desired subscriber, what to send to Tariscope (create, update,
//! dnadd), what to record (links, conflicts) and how the merge base moves. Must not: do I/O,
//! read a clock, or depend on anything but its inputs (planning twice gives the same plan).
//!
//! ## The three states
//! * **desired**: what local software wants (only managed fields: a NULL column is absent);
//! * **remote**: the mirror of Tariscope;
//! * **base**: per desired row and field, the local value last reconciled with Tariscope.
//!
//! Per managed field with desired `d`, remote `r` and base `b`:
//!
//! | case | action |
//! |---|---|
//! | `d == r` | nothing to send; if `b != d` the base advances to `d` |
//! | `b == d` (local unchanged) | nothing: a remote edit made by an operator stands |
//! | `b == r`, or no base and `r` empty (only local changed) | `subscriber.update` of the field |
//! | otherwise (both changed, or no base and `r` differs) | conflict, resolved by policy |
//!
//! Conflict policies: `remote-wins` keeps Tariscope's value and acknowledges the local one
//! (base := `d`, so it is not pushed later); `local-wins` pushes `d`; `manual` pushes nothing
//! and leaves the conflict open until the desired value is changed to agree.
//!
//! One deliberate difference from a textbook three-way merge (design.md §4 says "the base
//! advances" when only the remote changed): here the base does **not** move then. Moving it
//! would make the unchanged desired value look like a fresh local edit on the next run and
//! push it over the operator's change, unless the daemon also rewrote the integrator's row.
//! Keeping the base means an integrator that re-exports the same old value changes nothing.
//!
//! Unlinked desired rows are linked to an existing subscriber found by the natural key (one
//! match, not linked elsewhere), else created: `subscriber.create` with the fields it takes,
//! then `subscriber.dnadd` per number, then `subscriber.update` for the rest.
//!
//! ## Numbers
//! Which numbers a subscriber holds depends on what the server's records show
//! ([`DnListing`], observed by the runs, never configured): where they show a DN list, the
//! mirror's list is Tariscope's view and wins; where they do not (or no run has seen a record
//! yet), a number our own outbox confirmed (`done`: answered, "already assigned", found by a
//! look-up, or closed by a person) counts as held too, so it is never planned again.
//!
//! Numbers have a merge base like fields (the numbers both sides held when last
//! reconciled). A desired number that is held needs nothing; one that is not held and not in
//! the base is a local addition (`subscriber.dnadd`); one that is not held but **is** in the
//! base was removed in Tariscope by an operator: a conflict settled by the policy
//! (`remote-wins`: it stays removed; `manual`: listed until the desired row drops it;
//! `local-wins`: added again). The number base becomes the desired numbers that are held or
//! were in the base ([`Op::DnBase`]); each confirmed `dnadd` adds its number.

use std::collections::{BTreeMap, BTreeSet};

use super::fields::{Field, Fields};
use crate::model::DnListing;
pub use crate::model::desired::{
    Conflict, DesiredDn, DesiredSubscriber, DnKey, RemoteSubscriber, Resolution,
};

/// How a field changed on both sides is resolved (`push.conflict_policy`; the configuration
/// spells the choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    #[default]
    RemoteWins,
    LocalWins,
    Manual,
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub desired: &'a [DesiredSubscriber],
    pub remote: &'a BTreeMap<i64, RemoteSubscriber>,
    /// Merge base per desired key.
    pub base: &'a BTreeMap<String, Fields>,
    /// Merge base of numbers per desired key.
    pub dn_base: &'a BTreeMap<String, BTreeSet<DnKey>>,
    /// Numbers our own `dnadd` writes confirmed, per subscriber id (outbox `done`).
    pub confirmed_dns: &'a BTreeMap<i64, BTreeSet<DnKey>>,
    /// Numbers whose `dnadd` to a subscriber may have landed (outbox `sent` or `ambiguous`):
    /// no other subscriber is given them until that entry is settled.
    pub unsettled_dns: &'a BTreeMap<DnKey, i64>,
    /// What the server's subscriber records show (`None`: no run has seen one yet).
    pub dn_listing: Option<DnListing>,
    pub policy: ConflictPolicy,
    /// Field used to link unlinked rows to existing subscribers (`None`: always create).
    pub natural_key: Option<Field>,
}

/// One step of a plan. Steps of one desired key are in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `subscriber.create` with `fields`, then `update` of `follow_up` (fields create does
    /// not take), then `dnadd` for each of `dns`. The base becomes `fields ∪ follow_up`.
    Create {
        key: String,
        fields: Fields,
        follow_up: Fields,
        dns: Vec<DesiredDn>,
    },
    /// Adopt an existing subscriber found by the natural key; the base takes `agreed`.
    Link {
        key: String,
        id: i64,
        agreed: Fields,
    },
    /// `subscriber.update` of `changes`; on success the base takes them.
    Update {
        key: String,
        id: i64,
        changes: Fields,
    },
    /// Both sides already agree on these values: only the base moves.
    AdvanceBase {
        key: String,
        id: i64,
        fields: Fields,
    },
    /// The number base of `key` becomes `dns` (nothing is sent).
    DnBase { key: String, dns: BTreeSet<DnKey> },
    /// `subscriber.dnadd`.
    DnAdd { key: String, id: i64, dn: DesiredDn },
    /// Something the policy settled or a person must settle; recorded for `status`.
    Conflict(Conflict),
}

impl Op {
    /// True for steps that send a request to Tariscope.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. } | Op::Update { .. } | Op::DnAdd { .. }
        )
    }
}

/// Plans the push. Pure and deterministic: rows are visited in key order.
pub fn plan(input: PlanInput<'_>) -> Vec<Op> {
    let mut desired: Vec<&DesiredSubscriber> = input.desired.iter().collect();
    desired.sort_by(|a, b| a.key.cmp(&b.key));

    let held = held_dns(&input);
    let mut dn_owner: BTreeMap<&DnKey, Owner> = BTreeMap::new();
    for (dn, id) in input.unsettled_dns {
        dn_owner.insert(dn, Owner::Unsettled(*id));
    }
    for (id, dns) in &held {
        for dn in dns {
            dn_owner.insert(dn, Owner::Holds(*id));
        }
    }
    let linked: BTreeMap<i64, &str> = desired
        .iter()
        .filter_map(|d| d.tariscope_id.map(|id| (id, d.key.as_str())))
        .collect();

    let mut ops = Vec::new();
    let mut claimed_dns: BTreeSet<DnKey> = BTreeSet::new();
    let mut claimed_ids: BTreeMap<i64, &str> = BTreeMap::new();
    let empty = Fields::new();
    let no_dns = BTreeSet::new();
    for d in desired {
        let base = input.base.get(&d.key).unwrap_or(&empty);
        let id = match d.tariscope_id {
            Some(id) => id,
            None => match find_by_natural_key(&input, d, &linked, &claimed_ids) {
                Lookup::Found(id) => {
                    claimed_ids.insert(id, d.key.as_str());
                    id
                }
                Lookup::NotFound => {
                    plan_create(d, &dn_owner, &mut claimed_dns, &mut ops);
                    continue;
                }
                Lookup::Blocked(reason) => {
                    ops.push(blocked(d, None, reason));
                    continue;
                }
            },
        };
        let Some(remote) = input.remote.get(&id) else {
            ops.push(blocked(
                d,
                Some(id),
                format!(
                    "subscriber {id} (desired_subscribers.tariscope_id) is not in the mirror: if \
                     Tariscope has it, run the subscribers job or widen [scope]; if the push's \
                     read found none (a warning in its log), the link is wrong: correct or clear \
                     tariscope_id"
                ),
            ));
            continue;
        };
        if remote.removed {
            ops.push(blocked(
                d,
                Some(id),
                format!("subscriber {id} was removed in Tariscope"),
            ));
            continue;
        }
        let linking = d.tariscope_id.is_none();
        plan_fields(&input, d, id, remote, base, linking, &mut ops);
        let numbers = Numbers {
            id,
            held: held.get(&id).unwrap_or(&no_dns),
            base: input.dn_base.get(&d.key).unwrap_or(&no_dns),
            owner: &dn_owner,
            policy: input.policy,
        };
        numbers.plan(d, &mut claimed_dns, &mut ops);
    }
    ops
}

/// Who has a number, as far as the push can know.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// Held by this subscriber (the mirror's list, or our confirmed `dnadd`).
    Holds(i64),
    /// Our `dnadd` to this subscriber may have landed; nobody knows yet.
    Unsettled(i64),
}

/// The numbers each live subscriber holds, as far as the push can know (module docs).
fn held_dns(input: &PlanInput<'_>) -> BTreeMap<i64, BTreeSet<DnKey>> {
    let mut held: BTreeMap<i64, BTreeSet<DnKey>> = input
        .remote
        .values()
        .filter(|r| !r.removed)
        .map(|r| (r.id, r.dns.clone()))
        .collect();
    if input.dn_listing != Some(DnListing::Shown) {
        for (id, dns) in input.confirmed_dns {
            if let Some(h) = held.get_mut(id) {
                h.extend(dns.iter().cloned());
            }
        }
    }
    held
}

enum Lookup {
    Found(i64),
    NotFound,
    Blocked(String),
}

fn find_by_natural_key(
    input: &PlanInput<'_>,
    d: &DesiredSubscriber,
    linked: &BTreeMap<i64, &str>,
    claimed: &BTreeMap<i64, &str>,
) -> Lookup {
    let Some(field) = input.natural_key else {
        return Lookup::NotFound;
    };
    let Some(want) = d
        .fields
        .get(&field)
        .map(|v| normalise_key(v))
        .filter(|v| !v.is_empty())
    else {
        return Lookup::NotFound;
    };
    let matches: Vec<i64> = input
        .remote
        .values()
        .filter(|r| !r.removed)
        .filter(|r| {
            r.fields.get(&field).map(|v| normalise_key(v)).as_deref() == Some(want.as_str())
        })
        .map(|r| r.id)
        .collect();
    match matches.as_slice() {
        [] => Lookup::NotFound,
        [id] => match linked.get(id).or_else(|| claimed.get(id)) {
            Some(other) => Lookup::Blocked(format!(
                "{} {want:?} matches subscriber {id}, which is linked to desired row {other:?}",
                field.name()
            )),
            None => Lookup::Found(*id),
        },
        many => Lookup::Blocked(format!(
            "{} {want:?} matches {} subscribers ({many:?}): link the row by setting tariscope_id",
            field.name(),
            many.len()
        )),
    }
}

/// Natural keys compare trimmed and case-insensitively (e-mail addresses, codes).
fn normalise_key(v: &str) -> String {
    v.trim().to_lowercase()
}

fn plan_create(
    d: &DesiredSubscriber,
    dn_owner: &BTreeMap<&DnKey, Owner>,
    claimed: &mut BTreeSet<DnKey>,
    ops: &mut Vec<Op>,
) {
    let missing: Vec<&str> = [Field::Fullname, Field::DepartmentId]
        .into_iter()
        .filter(|f| d.fields.get(f).is_none_or(|v| v.trim().is_empty()))
        .map(Field::name)
        .collect();
    if !missing.is_empty() {
        ops.push(blocked(
            d,
            None,
            format!("cannot create: {} required", missing.join(" and ")),
        ));
        return;
    }
    let (fields, follow_up): (Fields, Fields) = d
        .fields
        .iter()
        .map(|(f, v)| (*f, v.clone()))
        .partition(|(f, _)| f.create_param().is_some());
    let mut dns = Vec::new();
    let mut conflicts = Vec::new();
    for dn in &d.dns {
        match dn_taken(dn, None, dn_owner, claimed) {
            Some(reason) => conflicts.push(blocked_dn(d, None, dn, reason)),
            None => {
                claimed.insert(dn.key());
                dns.push(dn.clone());
            }
        }
    }
    ops.push(Op::Create {
        key: d.key.clone(),
        fields,
        follow_up,
        dns,
    });
    ops.extend(conflicts);
}

fn plan_fields(
    input: &PlanInput<'_>,
    d: &DesiredSubscriber,
    id: i64,
    remote: &RemoteSubscriber,
    base: &Fields,
    linking: bool,
    ops: &mut Vec<Op>,
) {
    let mut agreed = Fields::new();
    let mut changes = Fields::new();
    let mut conflicts = Vec::new();
    for (&field, local) in &d.fields {
        let r = remote.fields.get(&field).cloned().unwrap_or_default();
        let b = base.get(&field);
        if *local == r {
            if b != Some(local) {
                agreed.insert(field, local.clone());
            }
            continue;
        }
        if b == Some(local) {
            continue;
        }
        if b == Some(&r) || (b.is_none() && r.is_empty()) {
            changes.insert(field, local.clone());
            continue;
        }
        let resolution = match input.policy {
            ConflictPolicy::RemoteWins => Resolution::KeepRemote,
            ConflictPolicy::LocalWins => {
                changes.insert(field, local.clone());
                Resolution::PushLocal
            }
            ConflictPolicy::Manual => Resolution::Manual,
        };
        conflicts.push(Op::Conflict(Conflict {
            key: d.key.clone(),
            id: Some(id),
            field: Some(field),
            dn: None,
            base: b.cloned(),
            local: Some(local.clone()),
            remote: Some(r),
            resolution,
            reason: if b.is_none() {
                "the field differs and was never reconciled".into()
            } else {
                "changed both locally and in Tariscope".into()
            },
        }));
    }
    if linking {
        ops.push(Op::Link {
            key: d.key.clone(),
            id,
            agreed,
        });
    } else if !agreed.is_empty() {
        ops.push(Op::AdvanceBase {
            key: d.key.clone(),
            id,
            fields: agreed,
        });
    }
    ops.extend(conflicts);
    if !changes.is_empty() {
        ops.push(Op::Update {
            key: d.key.clone(),
            id,
            changes,
        });
    }
}

/// The numbers of one linked desired row against what its subscriber holds.
struct Numbers<'p> {
    id: i64,
    held: &'p BTreeSet<DnKey>,
    base: &'p BTreeSet<DnKey>,
    owner: &'p BTreeMap<&'p DnKey, Owner>,
    policy: ConflictPolicy,
}

impl Numbers<'_> {
    fn plan(&self, d: &DesiredSubscriber, claimed: &mut BTreeSet<DnKey>, ops: &mut Vec<Op>) {
        let base: BTreeSet<DnKey> = d
            .dns
            .iter()
            .map(DesiredDn::key)
            .filter(|k| self.held.contains(k) || self.base.contains(k))
            .collect();
        if base != *self.base {
            ops.push(Op::DnBase {
                key: d.key.clone(),
                dns: base,
            });
        }
        for dn in &d.dns {
            self.plan_one(d, dn, claimed, ops);
        }
    }

    fn plan_one(
        &self,
        d: &DesiredSubscriber,
        dn: &DesiredDn,
        claimed: &mut BTreeSet<DnKey>,
        ops: &mut Vec<Op>,
    ) {
        let key = dn.key();
        if self.held.contains(&key) {
            claimed.insert(key);
            return;
        }
        if let Some(reason) = dn_taken(dn, Some(self.id), self.owner, claimed) {
            ops.push(blocked_dn(d, Some(self.id), dn, reason));
            return;
        }
        claimed.insert(key.clone());
        if self.base.contains(&key) {
            // Held when last reconciled, gone now: an operator removed it in Tariscope.
            let resolution = match self.policy {
                ConflictPolicy::RemoteWins => Resolution::KeepRemote,
                ConflictPolicy::LocalWins => Resolution::PushLocal,
                ConflictPolicy::Manual => Resolution::Manual,
            };
            ops.push(Op::Conflict(Conflict {
                key: d.key.clone(),
                id: Some(self.id),
                field: None,
                dn: Some(key),
                base: Some("assigned".into()),
                local: Some("assigned".into()),
                remote: Some("not assigned".into()),
                resolution,
                reason: "the number was removed in Tariscope after it was assigned; remove it from desired_dns to agree".into(),
            }));
            if resolution != Resolution::PushLocal {
                return;
            }
        }
        ops.push(Op::DnAdd {
            key: d.key.clone(),
            id: self.id,
            dn: dn.clone(),
        });
    }
}

fn dn_taken(
    dn: &DesiredDn,
    own: Option<i64>,
    dn_owner: &BTreeMap<&DnKey, Owner>,
    claimed: &BTreeSet<DnKey>,
) -> Option<String> {
    let key = dn.key();
    match dn_owner.get(&key) {
        Some(Owner::Holds(owner)) if Some(*owner) != own => {
            return Some(format!(
                "DN {} on PBX {} belongs to subscriber {owner} in Tariscope",
                dn.dn, dn.pbx_id
            ));
        }
        Some(Owner::Unsettled(owner)) if Some(*owner) != own => {
            return Some(format!(
                "DN {} on PBX {} may already be on subscriber {owner}: our dnadd of it there has an unknown outcome (outbox, `status`); once that entry is settled the number can go elsewhere",
                dn.dn, dn.pbx_id
            ));
        }
        _ => {}
    }
    claimed.contains(&key).then(|| {
        format!(
            "DN {} on PBX {} is wanted by more than one desired subscriber",
            dn.dn, dn.pbx_id
        )
    })
}

fn blocked_dn(d: &DesiredSubscriber, id: Option<i64>, dn: &DesiredDn, reason: String) -> Op {
    match blocked(d, id, reason) {
        Op::Conflict(c) => Op::Conflict(Conflict {
            dn: Some(dn.key()),
            ..c
        }),
        other => other,
    }
}

fn blocked(d: &DesiredSubscriber, id: Option<i64>, reason: String) -> Op {
    Op::Conflict(Conflict {
        key: d.key.clone(),
        id,
        field: None,
        dn: None,
        base: None,
        local: None,
        remote: None,
        resolution: Resolution::Blocked,
        reason,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
