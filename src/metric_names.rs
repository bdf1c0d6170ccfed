//! Every metric the daemon exports, with its type and help text: the one catalogue.
//!
//! Owns: the names (`tariscope_sync_*`, units in the name: `_seconds`, `_total`), what each
//! means, and describing them to the recorder (`# HELP` lines on `/metrics`). Must not: record
//! values (the code that counts does, under these names). A metric recorded anywhere in
//! `src/` must be listed here: a test scans the sources, and `tests/metrics_lint.rs` runs
//! `promtool check metrics` on a live `/metrics`.

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// `(name, type, help)` of every metric.
pub const CATALOGUE: &[(&str, Kind, &str)] = &[
    (
        "tariscope_sync_leader",
        Kind::Gauge,
        "1 while this daemon leads (runs the jobs) on a PostgreSQL mirror, 0 while it stands by.",
    ),
    (
        "tariscope_sync_takeovers_total",
        Kind::Counter,
        "Times this daemon became the leader on a PostgreSQL mirror.",
    ),
    (
        "tariscope_sync_held_removals",
        Kind::Gauge,
        "Removals the job's last run held back as over jobs.<job>.max_removals, by job (confirm with confirm-removals RUN).",
    ),
    (
        "tariscope_sync_mirror_wal_bytes",
        Kind::Gauge,
        "Size of the mirror's WAL file; it grows while a reader holds an old snapshot.",
    ),
    (
        "tariscope_sync_mirror_wal_checkpoint_lag_frames",
        Kind::Gauge,
        "WAL frames not yet copied into the mirror file at the last checkpoint (a reader holding an old snapshot keeps them).",
    ),
    (
        "tariscope_sync_build_info",
        Kind::Gauge,
        "Always 1; the version label is the daemon's version.",
    ),
    (
        "tariscope_sync_job_runs_total",
        Kind::Counter,
        "Job runs finished, by job and outcome (ok, partial, failed).",
    ),
    (
        "tariscope_sync_job_skipped_total",
        Kind::Counter,
        "Scheduled runs the daemon skipped because another process was running the job on the same mirror, by job.",
    ),
    (
        "tariscope_sync_job_duration_seconds",
        Kind::Histogram,
        "Wall-clock duration of job runs, by job.",
    ),
    (
        "tariscope_sync_records_total",
        Kind::Counter,
        "Items a job run handled: records fetched by pull jobs, desired rows by push.",
    ),
    (
        "tariscope_sync_balance_dates_total",
        Kind::Counter,
        "Account summary days written by the summaries job, by origin: fetched (one accounts.summary request each) or derived from the fetched days around them.",
    ),
    (
        "tariscope_sync_balance_dates_bisected_total",
        Kind::Counter,
        "Account summary days fetched to bisect a stretch whose balances did not connect (counted in the fetched days too).",
    ),
    (
        "tariscope_sync_balance_stretches_bisected_total",
        Kind::Counter,
        "Stretches between fetched summary days whose balances did not connect (a change neither payments nor charges show), each bisected until every part connected.",
    ),
    (
        "tariscope_sync_balance_fallback_subscribers_total",
        Kind::Counter,
        "Subscribers whose summaries were fetched every day of a run's window (their payments or charges of the window were not pulled completely, or jobs.summaries.mode is every-day).",
    ),
    (
        "tariscope_sync_last_success_timestamp_seconds",
        Kind::Gauge,
        "Unix time at which the job last finished with outcome ok.",
    ),
    (
        "tariscope_sync_outbox_depth",
        Kind::Gauge,
        "Outbox entries (push writes) not yet done: pending, sent, ambiguous, failed.",
    ),
    (
        "tariscope_sync_payments_posted_total",
        Kind::Counter,
        "Desired payments a push confirmed in Tariscope (accounts.payment answered and read back, or found by a look-up after an unknown outcome), each reference once.",
    ),
    (
        "tariscope_sync_desired_payments",
        Kind::Gauge,
        "Rows of desired_payments by state: posted, pending (not posted yet, waiting included), ambiguous (waiting for a person: tariscope-sync resolve), rejected.",
    ),
    (
        "tariscope_sync_desired_payments_amount",
        Kind::Gauge,
        "Sum of the amounts of desired_payments rows by state (posted, pending, ambiguous, rejected), in Tariscope's currency; a rejected row whose amount is not a number is not summed.",
    ),
    (
        "tariscope_sync_open_conflicts",
        Kind::Gauge,
        "Push conflicts waiting for a person (manual or blocked).",
    ),
    (
        "tariscope_sync_api_requests_total",
        Kind::Counter,
        "HTTP requests sent to Tariscope (logins included), by API method and HTTP status (error: no answer).",
    ),
    (
        "tariscope_sync_api_request_duration_seconds",
        Kind::Histogram,
        "Duration of HTTP requests to Tariscope, by API method.",
    ),
    (
        "tariscope_sync_api_retries_total",
        Kind::Counter,
        "Attempts after the first, by API method.",
    ),
    (
        "tariscope_sync_api_logins_total",
        Kind::Counter,
        "Successful logins to Tariscope's /api/auth.",
    ),
    (
        "tariscope_sync_api_outcome_unknown_total",
        Kind::Counter,
        "Writes whose outcome was unknown (looked up, never resent blindly).",
    ),
    (
        "tariscope_sync_job_running",
        Kind::Gauge,
        "1 while the job runs, 0 otherwise, by job.",
    ),
    (
        "tariscope_sync_job_items_done",
        Kind::Gauge,
        "Items the running (or last) run of the job has done so far, by job.",
    ),
    (
        "tariscope_sync_job_items_expected",
        Kind::Gauge,
        "Items the running (or last) run of the job expects to do, by job (grows as it learns).",
    ),
    (
        "tariscope_sync_job_item_errors",
        Kind::Gauge,
        "Items that failed so far in the running (or last) run of the job, by job.",
    ),
    (
        "tariscope_sync_job_items_per_second",
        Kind::Gauge,
        "Average items per second of the running (or last) run of the job, by job.",
    ),
    (
        "tariscope_sync_job_eta_seconds",
        Kind::Gauge,
        "Estimated seconds until the running job is done at its rate so far (0: not running or unknown), by job.",
    ),
];

/// Sends every description to the installed recorder.
pub fn describe() {
    for (name, kind, help) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names recorded with `metrics::counter!` / `gauge!` / `histogram!` in `src/`.
    fn recorded_names() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for macro_ in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                    for (at, _) in text.match_indices(&format!("metrics::{macro_}")) {
                        let rest = &text[at + "metrics::".len() + macro_.len()..];
                        let name = rest.split('"').next().unwrap_or_default();
                        out.push((name.to_string(), path.display().to_string()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_recorded_metric_is_in_the_catalogue_with_a_conventional_name() {
        let found = recorded_names();
        assert!(found.len() >= CATALOGUE.len(), "{found:?}");
        for (name, file) in &found {
            if name.ends_with("_test_total") {
                continue;
            }
            assert!(
                CATALOGUE.iter().any(|(n, _, _)| n == name),
                "{name} (recorded in {file}) is not in src/metric_names.rs"
            );
        }
        for (name, kind, help) in CATALOGUE {
            assert!(name.starts_with("tariscope_sync_"), "{name}");
            assert_eq!(*kind == Kind::Counter, name.ends_with("_total"), "{name}");
            assert!(!help.is_empty() && help.ends_with('.'), "{name}");
        }
    }
}
