//! `tariscope-sync confirm-removals RUN`: apply the removals a pull run held back (issue 25).
//!
//! Owns: what the command prints and its exit code. Must not: decide which removals still
//! hold (that is `store::removals`).

use chrono::SecondsFormat;

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::store::Store;
use crate::{errln, outln};

/// Applies `run`'s held removals that still hold; exit 0, or 1 when the mirror fails or
/// does not know the run.
pub async fn run(config: &Config, run: i64, out: &mut Out) -> Exit {
    let store = match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            errln!("tariscope-sync confirm-removals: {e}");
            return Exit::Runtime;
        }
    };
    let now = Clock::system()
        .now()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    match store.confirm_removals(run, now).await {
        Ok(c) if c.held == 0 => {
            outln!(out, "run {run} ({}) held back no removals", c.job);
            Exit::Ok
        }
        Ok(c) => {
            outln!(
                out,
                "run {run} ({}): applied {} of {} held-back removals",
                c.job,
                c.applied,
                c.held
            );
            if c.stale > 0 {
                outln!(
                    out,
                    "{} no longer hold (a later run saw the rows again, or they are gone already): left alone",
                    c.stale
                );
            }
            Exit::Ok
        }
        Err(e) => {
            errln!("tariscope-sync confirm-removals: {e}");
            Exit::Runtime
        }
    }
}
