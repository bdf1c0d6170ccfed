//! The command line (clap). Flags here change how the program runs; what the pipeline does
//! lives in the configuration file.
//!
//! Must not: load configuration or do any work (that is `main` and the library).

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

pub use crate::config::LogFormat;
use crate::sync::Job;

/// Sync daemon between the Tariscope 4.6 API and a local SQLite mirror.
///
/// Without a command it runs the daemon: every enabled job on its cron schedule.
/// Exit codes: 0 ok, 1 runtime failure, 2 partial failure (some items failed),
/// 3 configuration or command-line error, 75 a job runs in another process (--no-wait, --wait).
#[derive(Debug, Parser)]
#[command(name = "tariscope-sync", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./tariscope-sync.toml, then /etc/tariscope-sync/config.toml).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter such as info or tariscope_sync=debug (overrides log.level).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Run the selected jobs once and exit, instead of scheduling them.
    #[arg(long)]
    pub run_once: bool,

    /// Jobs to run with --run-once (comma-separated; default: every enabled job): reference,
    /// subscribers, payments, charges, summaries, push.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "JOB,...",
        requires = "run_once"
    )]
    pub jobs: Vec<Job>,

    /// First day of a backfill for payments, charges and summaries (yyyy-mm-dd).
    #[arg(long, value_name = "DATE", requires = "run_once")]
    pub from: Option<NaiveDate>,

    /// Last day of a backfill, inclusive (yyyy-mm-dd; default: today).
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<NaiveDate>,

    /// With --run-once: no limit on removals (jobs.<job>.max_removals) for this run, for an
    /// operator who knows the lists really shrank.
    #[arg(long, requires = "run_once")]
    pub allow_mass_removal: bool,

    /// With --run-once: wait at most SECS for a job another process is running on the same
    /// mirror (default: wait until it is free), then exit 75.
    #[arg(
        long,
        value_name = "SECS",
        requires = "run_once",
        conflicts_with = "no_wait"
    )]
    pub wait: Option<u64>,

    /// With --run-once: do not wait for a job another process is running on the same mirror;
    /// exit 75 (EX_TEMPFAIL) at once, saying who runs it.
    #[arg(long, requires = "run_once")]
    pub no_wait: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// How `--run-once` waits for a job another process runs.
    pub fn lock_wait(&self) -> crate::lock::Wait {
        use crate::lock::Wait;
        match (self.no_wait, self.wait) {
            (true, _) => Wait::No,
            (false, Some(secs)) => Wait::Up(std::time::Duration::from_secs(secs)),
            (false, None) => Wait::Forever,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, list every problem, and exit 0 or 3.
    CheckConfig,
    /// Show per job the last run, outcome, counts, age and next run; the outbox; conflicts;
    /// rejected import rows.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Dry run of a push: what would be created, updated and attached (sends nothing).
    Plan {
        /// How many operations to list in detail.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Load desired subscribers and numbers from a CSV or JSON file (see docs/schema.md).
    /// CSV: the separator (`;`, `,` or tab) is found from the header line.
    Import {
        /// The file (`.json` is read as JSON, anything else as CSV).
        file: PathBuf,
        /// Text encoding of a file without a BOM: utf-8, windows-1251 (1C, client-bank
        /// exports), koi8-u, utf-16le, ... (a UTF-8 or UTF-16 BOM always wins).
        #[arg(long, value_name = "ENCODING", default_value = "utf-8", value_parser = encoding)]
        encoding: &'static encoding_rs::Encoding,
    },
    /// Load desired payments from a CSV or JSON file into `desired_payments` (docs/schema.md);
    /// the next push posts each reference exactly once.
    ImportPayments {
        /// The file (`.json` is read as JSON, anything else as CSV).
        file: PathBuf,
        /// Text encoding of a file without a BOM (as for `import`).
        #[arg(long, value_name = "ENCODING", default_value = "utf-8", value_parser = encoding)]
        encoding: &'static encoding_rs::Encoding,
    },
    /// Settle a payment the push left ambiguous (status lists them with the facts): after
    /// checking the subscriber's payments of that day in Tariscope, say which payment is this
    /// one, or that it did not land (the next push then sends it).
    #[command(group = clap::ArgGroup::new("verdict").required(true))]
    Resolve {
        /// The payment's reference (`desired_payments.reference`).
        reference: String,
        /// It landed: Tariscope's payment id of it.
        #[arg(long, value_name = "PAYMENTID", group = "verdict")]
        landed: Option<i64>,
        /// It did not land: the next push sends it (after a new snapshot).
        #[arg(long, group = "verdict")]
        not_landed: bool,
    },
    /// Check connectivity, credentials, method rights, server version and the mirror.
    Doctor,
    /// Apply the removals pull run RUN held back as over jobs.<job>.max_removals (those
    /// that still hold), writing the change log as a normal pull would.
    ConfirmRemovals {
        /// The run id `status` and the log name.
        run: i64,
    },
    /// The mirror itself: `mirror copy --to postgres://...` copies it into PostgreSQL.
    Mirror {
        #[command(subcommand)]
        action: MirrorAction,
    },
    /// Start the emulator in-process, sync it into a SQLite file, push a few subscribers, and
    /// show the result.
    Demo {
        /// Folder for the demo's config and mirror.
        #[arg(long, default_value = "tariscope-demo")]
        dir: PathBuf,
        /// Subscribers in the emulated dataset.
        #[arg(long, default_value_t = 300)]
        subscribers: usize,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

/// What `mirror` does.
#[derive(Debug, Subcommand)]
pub enum MirrorAction {
    /// Copy the SQLite mirror (`mirror.path`) into a PostgreSQL database, every table
    /// (outbox, merge base and checkpoints included), in native types, in one transaction;
    /// verifies every table's row count. Takes every job's lock, so no job runs meanwhile.
    Copy {
        /// The target: postgres://user[:password]@host[:port]/database.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Read the password from this file instead of the URL (keeps it out of `ps`).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Replace what the target's mirror tables hold (otherwise a non-empty target is
        /// refused).
        #[arg(long)]
        force: bool,
    },
}

fn encoding(label: &str) -> Result<&'static encoding_rs::Encoding, String> {
    crate::records::encoding_for_label(label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backfill_flags_need_run_once() {
        assert!(Cli::try_parse_from(["t", "--from", "2025-01-01"]).is_err());
        let c = Cli::try_parse_from([
            "t",
            "--run-once",
            "--jobs",
            "payments,charges",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-31",
        ])
        .unwrap();
        assert_eq!(c.jobs, vec![Job::Payments, Job::Charges]);
        let bad = Cli::try_parse_from(["t", "--run-once", "--jobs", "payments,bogus"]);
        let err = bad.unwrap_err().to_string();
        assert!(err.contains("unknown job \"bogus\""), "{err}");
        assert_eq!(c.to, NaiveDate::from_ymd_opt(2025, 1, 31));
    }

    #[test]
    fn wait_flags() {
        use crate::lock::Wait;
        let wait = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.lock_wait());
        assert_eq!(wait(&["t", "--run-once"]).unwrap(), Wait::Forever);
        assert_eq!(wait(&["t", "--run-once", "--no-wait"]).unwrap(), Wait::No);
        assert_eq!(
            wait(&["t", "--run-once", "--wait", "30"]).unwrap(),
            Wait::Up(std::time::Duration::from_secs(30))
        );
        assert!(wait(&["t", "--no-wait"]).is_err(), "needs --run-once");
        assert!(wait(&["t", "--run-once", "--no-wait", "--wait", "3"]).is_err());
    }
}
