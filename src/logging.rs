//! Logging setup: `tracing` to stderr, pretty for terminals or JSON for containers.
//!
//! Owns: installing the global subscriber once. Must not: be called by library code other
//! than the binaries' entry points (tests install their own).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(level: &str, json: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        // Already installed (tests, demo inside another command): keep the existing one.
    }
}
