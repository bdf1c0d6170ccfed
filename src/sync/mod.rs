//! The sync engine: pull jobs now; the pure push planner (`plan.rs`) and the push executor
//! (`push.rs`) come with the push issue.
//!
//! Owns: what each job does, in terms of `remote::Remote` (reads from Tariscope) and
//! `crate::store::Store` (the mirror). Must not: see reqwest or SQL, or read the clock or
//! the config directly (everything comes in `options::PullOptions`).

pub mod api_remote;
pub mod fake;
pub mod options;
pub mod pull;
pub mod remote;

pub use api_remote::ApiRemote;
pub use options::{Clock, FixedClock, JobKind, Progress, PullOptions, Scope, SystemClock};
pub use pull::{JobReport, SyncError, run_job};
pub use remote::{Remote, RemoteError, RemoteErrorKind, RemoteResult, TariffFilter};
