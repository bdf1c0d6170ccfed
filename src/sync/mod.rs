//! The sync engine: pull jobs (mirror Tariscope into SQLite) and push (desired state back to
//! Tariscope). Must not see reqwest or SQL directly.

pub mod fields;
pub mod import;
pub mod plan;
