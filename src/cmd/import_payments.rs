//! `tariscope-sync import-payments FILE`: desired payments from CSV or JSON into the mirror
//! (`desired_payments`), checked against what the mirror knows; posted by the next push.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::SecondsFormat;
use encoding_rs::Encoding;

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::model::Rejection;
use crate::records::{FileFormat, ReadOptions};
use crate::store::{ImportCounts, Store};
use crate::sync::payments::{PaymentContext, parse_payments};
use crate::{errln, outln};

/// The `rejected.source` of a payments file: the path, marked as payments.
pub fn source_of(file: &Path) -> String {
    format!("{} (payments)", file.display())
}

/// Reads, checks and writes the file; `Err` says why nothing was imported.
async fn import(
    config: &Config,
    file: &Path,
    options: ReadOptions,
) -> Result<(ImportCounts, Vec<Rejection>), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read it: {e}"))?;
    let store = Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref())
        .map_err(|e| text(&e))?;
    let clock = Clock::system();
    let today = config.today(clock);
    let ctx = PaymentContext::load(&store, today, config.payments.earliest_day)
        .await
        .map_err(|e| text(&e))?;
    let existing: BTreeMap<String, _> = store
        .desired_payment_rows()
        .await
        .map_err(|e| text(&e))?
        .into_iter()
        .map(|r| (r.key.shown().unwrap_or_default(), r))
        .collect();
    let batch = parse_payments(&bytes, &options, &ctx, &existing).map_err(|e| text(&e))?;
    let rejected = batch.rejected.clone();
    let now = clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let counts = store
        .import_payments(
            batch.rows,
            batch.unchanged,
            batch.rejected,
            source_of(file),
            now,
        )
        .await
        .map_err(|e| text(&e))?;
    Ok((counts, rejected))
}

/// Imports `file`, read in `encoding` (a BOM wins) as its name says (`.json`, else CSV).
/// Exit 0, or 2 when rows were rejected (the valid ones are in).
pub async fn run(config: &Config, file: &Path, encoding: &'static Encoding, out: &mut Out) -> Exit {
    let format = FileFormat::from_path(file);
    let options = ReadOptions { format, encoding };
    let (counts, rejected) = match import(config, file, options).await {
        Ok(done) => done,
        Err(e) => {
            errln!("tariscope-sync import-payments: {}: {e}", file.display());
            return Exit::Runtime;
        }
    };
    outln!(
        out,
        "imported payments from {}: {} new, {} unchanged, {} rejected",
        file.display(),
        counts.inserted,
        counts.unchanged,
        counts.rejected
    );
    for r in &rejected {
        outln!(out, "  rejected row {}: {}", r.row, r.reason);
    }
    if rejected.is_empty() {
        Exit::Ok
    } else {
        Exit::Partial
    }
}
