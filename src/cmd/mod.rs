//! The commands of the `tariscope-sync` binary other than the daemon itself.
//!
//! Owns: what each command prints (this is the only library code that writes to stdout) and
//! its exit code. Must not: hold sync logic (it calls `daemon`, `store`, `sync`).

pub mod confirm_removals;
pub mod demo;
pub mod doctor;
pub mod import;
pub mod import_payments;
pub mod mirror_copy;
pub mod out;
pub mod plan;
pub mod resolve;
pub mod run_once;
pub mod status;

use crate::outln;
use out::Out;

/// Prints the end-of-run table of `--run-once` and `demo`.
pub fn print_summaries(out: &mut Out, summaries: &[crate::daemon::JobSummary]) {
    outln!(out, "{:<12} {:<8} detail", "job", "outcome");
    for s in summaries {
        outln!(
            out,
            "{:<12} {:<8} {}",
            s.job.as_str(),
            format!("{:?}", s.outcome).to_lowercase(),
            s.detail
        );
    }
}
