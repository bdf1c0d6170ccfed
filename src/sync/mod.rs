//! The sync engine: pull jobs (mirror Tariscope into SQLite), the pure push planner
//! (`plan.rs`), the check every desired row passes (`validate.rs`), desired-state import
//! (`import.rs`) and the push executor (`push/`).
//!
//! Owns: what each job does, in terms of `remote::Remote` / `push::PushRemote` (Tariscope)
//! and `crate::store::Store` (the mirror). Must not: see reqwest or SQL, or read the clock or
//! the config directly (everything comes in `options::PullOptions` / `push::PushOptions`).
//! `adapter.rs` puts the real client behind the two remote traits.

pub mod adapter;
pub mod fake;
/// The subscriber fields (moved below the store into `model`; this path stays for callers).
pub use crate::model::fields;
pub mod import;
pub mod options;
pub mod outcome;
pub mod payments;
pub mod plan;
pub mod pull;
pub mod push;
pub mod remote;
pub mod validate;

pub use options::{Clock, Job, JobKind, Progress, PullOptions, Scope, SummariesMode};
pub use pull::{JobReport, SyncError, run_job};
pub use remote::{
    Remote, RemoteError, RemoteErrorKind, RemoteResult, SubscriberRecords, TariffFilter,
};
