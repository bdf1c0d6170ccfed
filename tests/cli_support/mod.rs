//! Shared helpers of the tests that run the real `tariscope-sync` binary.
#![allow(dead_code)]

use std::process::Output;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tariscope-sync");

/// stdout then stderr, for assertion messages and searches.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
