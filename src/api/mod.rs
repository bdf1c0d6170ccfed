//! The Tariscope API boundary (issue 3).
pub mod config;
pub mod error;
pub mod profile;
pub mod retry;
pub mod wire;
pub mod xml;
