//! The commands of the `tariscope-sync` binary other than the daemon itself.
//!
//! Owns: what each command prints (this is the only library code that writes to stdout) and
//! its exit code. Must not: hold sync logic (it calls `daemon`, `store`, `sync`).

pub mod demo;
pub mod doctor;
pub mod import;
pub mod plan;
pub mod status;

/// Prints the end-of-run table of `--run-once` and `demo`.
pub fn print_summaries(summaries: &[crate::daemon::JobSummary]) {
    println!("{:<12} {:<8} detail", "job", "outcome");
    for s in summaries {
        println!(
            "{:<12} {:<8} {}",
            s.job.as_str(),
            format!("{:?}", s.outcome).to_lowercase(),
            s.detail
        );
    }
}
