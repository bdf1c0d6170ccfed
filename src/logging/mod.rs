//! Logging setup: `tracing` to stderr, pretty for terminals or JSON for containers
//! ([`json::FlatJson`]: span fields such as `job` and `run_id` as top-level keys).
//!
//! Owns: installing the global subscriber once. Must not: be called by library code other
//! than the binaries' entry points (tests install their own).

pub mod json;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

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
        builder
            .fmt_fields(JsonFields::new())
            .event_format(json::FlatJson)
            .try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        // Already installed (tests, demo inside another command): keep the existing one.
    }
}

/// Records the run id of the job running on this task into its `job` span (declared with an
/// empty `run_id` by `daemon::jobs`), so every later event of the run carries it. Called by
/// the pull and push code right after the store recorded the run; a no-op outside a job span.
pub fn record_run_id(run_id: i64) {
    tracing::Span::current().record("run_id", run_id);
}
