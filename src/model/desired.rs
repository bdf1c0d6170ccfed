//! Desired state as the push side and the store both see it.
//!
//! Owns: what local software wants ([`DesiredSubscriber`], [`DesiredDn`]), the mirror's
//! view the planner compares it with ([`RemoteSubscriber`]), numbers ([`DnKey`]), recorded
//! conflicts, and an import file's parsed rows ([`ImportBatch`]). Plain data: the planner
//! (`sync::plan`) decides, the store (`store::desired`, `store::outbox`) keeps. Lives below
//! both so that the store never imports the sync engine.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::Rejection;
use super::fields::{Field, Fields};

/// A subscriber that local software wants to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSubscriber {
    /// The integrator's own key.
    pub key: String,
    /// The Tariscope id once linked or created.
    pub tariscope_id: Option<i64>,
    /// Managed fields only, canonical text (see `fields`).
    pub fields: Fields,
    pub dns: Vec<DesiredDn>,
}

/// A phone number a desired subscriber should hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DesiredDn {
    pub pbx_id: i64,
    pub dn: String,
    pub from_date: Option<NaiveDate>,
    pub description: Option<String>,
}

impl DesiredDn {
    pub fn key(&self) -> DnKey {
        DnKey {
            pbx_id: self.pbx_id,
            dn: self.dn.clone(),
        }
    }
}

/// A number on a PBX: unique in Tariscope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnKey {
    pub pbx_id: i64,
    pub dn: String,
}

/// A subscriber as the mirror knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteSubscriber {
    pub id: i64,
    /// Every field, canonical text (absent = empty).
    pub fields: Fields,
    pub dns: BTreeSet<DnKey>,
    /// Tombstoned: gone from Tariscope's lists.
    pub removed: bool,
}

/// How a recorded conflict was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Tariscope's value stays; the base takes the local value so it is not pushed later.
    KeepRemote,
    /// The local value is pushed (it is part of an `Update` in the same plan).
    PushLocal,
    /// Nothing is pushed; the conflict stays open.
    Manual,
    /// The row cannot be pushed until someone fixes what `reason` says.
    Blocked,
}

/// A recorded conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub key: String,
    pub id: Option<i64>,
    pub field: Option<Field>,
    /// The number concerned, for conflicts about a DN.
    pub dn: Option<DnKey>,
    pub base: Option<String>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub resolution: Resolution,
    pub reason: String,
}

impl Conflict {
    /// What the conflict is about, unique per desired key: the field name, `dn:PBX/DN`, or
    /// empty for the row as a whole.
    pub fn subject(&self) -> String {
        match (&self.field, &self.dn) {
            (Some(f), _) => f.name().to_string(),
            (None, Some(d)) => format!("dn:{}/{}", d.pbx_id, d.dn),
            (None, None) => String::new(),
        }
    }
}

/// The outcome of parsing one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportBatch {
    pub rows: Vec<DesiredSubscriber>,
    pub rejected: Vec<Rejection>,
}
