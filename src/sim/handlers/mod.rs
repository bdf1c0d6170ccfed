//! The API method handlers, grouped by family.
//!
//! Owns: nothing but the module list. Must not: render, check auth or apply faults (the
//! dispatcher does).

pub mod accounts;
pub mod reference;
pub mod sql;
pub mod subscribers;
