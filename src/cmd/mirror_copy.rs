//! `tariscope-sync mirror copy --to postgres://...`: the SQLite mirror copied into
//! PostgreSQL (issue 13, item 5).
//!
//! Owns: what the command prints, its exit code, and holding every job's lock while it
//! copies (so no job of a running daemon or a `--run-once` writes meanwhile: the copy is the
//! mirror as of one moment, and nothing written after it is lost by switching). Must not:
//! know the tables (that is `store::pg`).

use std::path::Path;

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::lock::{self, Holder};
use crate::store::Store;
use crate::store::pg::{self, PgError, Target};
use crate::sync::Job;
use crate::{errln, outln};

/// Copies `config.mirror.path` into `to`; exit 0, 3 for a bad URL, 75 when a job runs
/// elsewhere, 1 when the copy fails (nothing is kept then).
pub async fn run(
    config: &Config,
    to: &str,
    password_file: Option<&Path>,
    force: bool,
    out: &mut Out,
) -> Exit {
    let fail = |e: &dyn std::fmt::Display| errln!("tariscope-sync mirror copy: {e}");
    let target = match Target::parse(to, password_file) {
        Ok(t) => t,
        Err(e) => {
            fail(&e);
            return Exit::Config;
        }
    };
    let path = config.mirror.path.clone();
    if !path.exists() {
        fail(&format_args!(
            "there is no SQLite mirror at {} (mirror.path); nothing to copy",
            path.display()
        ));
        return Exit::Runtime;
    }
    let me = Holder::this_process("mirror-copy", Clock::system().now());
    let mut locks = Vec::new();
    for job in Job::ALL {
        match lock::try_acquire(&path, job.as_str(), &me) {
            Ok(l) => locks.push(l),
            Err(e @ lock::LockError::Busy { .. }) => {
                fail(&format_args!(
                    "{e}; stop the daemon (or wait for the run to end) and copy again"
                ));
                return Exit::TempFail;
            }
            Err(e) => {
                fail(&e);
                return Exit::Runtime;
            }
        }
    }
    // Brings the source to this build's schema, as every command does on open.
    if let Err(e) = Store::open(&path) {
        fail(&e);
        return Exit::Runtime;
    }
    outln!(
        out,
        "copying the mirror {} to PostgreSQL {} ...",
        path.display(),
        target.shown()
    );
    let copied = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || pg::copy_sqlite_mirror(&path, &target, force)).await
    };
    drop(locks);
    let report = match copied {
        Ok(Ok(r)) => r,
        Ok(Err(e @ PgError::NotEmpty { .. })) => {
            fail(&e);
            return Exit::Config;
        }
        Ok(Err(e)) => {
            fail(&e);
            return Exit::Runtime;
        }
        Err(e) => {
            fail(&format_args!("the copy task failed: {e}"));
            return Exit::Runtime;
        }
    };
    if report.replaced > 0 {
        outln!(
            out,
            "--force: replaced {} rows the target held",
            report.replaced
        );
    }
    outln!(out, "{:<20} {:>10}", "table", "rows");
    for (table, rows) in &report.tables {
        outln!(out, "{table:<20} {rows:>10}");
    }
    let total: u64 = report.tables.iter().map(|(_, n)| n).sum();
    outln!(
        out,
        "copied {total} rows in {} tables; every table's row count matches the SQLite mirror",
        report.tables.len()
    );
    Exit::Ok
}
