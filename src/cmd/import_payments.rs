//! `tariscope-sync import-payments FILE`: desired payments from CSV or JSON into the mirror
//! (`desired_payments`), checked against what the mirror knows; posted by the next push.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::SecondsFormat;

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::records::{FileFormat, ReadOptions};
use crate::store::Store;
use crate::sync::payments::{PaymentContext, parse_payments};
use crate::{errln, outln};

/// The `rejected.source` of a payments file: the path, marked as payments.
pub fn source_of(file: &Path) -> String {
    format!("{} (payments)", file.display())
}

/// Imports `file`, read in `encoding` unless it has a BOM. Exit 0, or 2 when rows were
/// rejected (the valid ones are in).
pub async fn run(
    config: &Config,
    file: &Path,
    encoding: &'static encoding_rs::Encoding,
    out: &mut Out,
) -> Exit {
    let fail = |e: &dyn std::fmt::Display| {
        errln!("tariscope-sync import-payments: {}: {e}", file.display());
        Exit::Runtime
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot read it: {e}")),
    };
    let store = match Store::open(&config.mirror.path) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let clock = Clock::system();
    let loaded = async {
        let ctx =
            PaymentContext::load(&store, config.today(clock), config.payments.earliest_day).await?;
        let existing: BTreeMap<String, _> = store
            .desired_payment_rows()
            .await?
            .into_iter()
            .map(|r| (r.key.shown().unwrap_or_default(), r))
            .collect();
        Ok::<_, crate::store::StoreError>((ctx, existing))
    };
    let (ctx, existing) = match loaded.await {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let options = ReadOptions {
        format: FileFormat::from_path(file),
        encoding,
    };
    let batch = match parse_payments(&bytes, &options, &ctx, &existing) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let rejected = batch.rejected.clone();
    let now = clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let counts = match store
        .import_payments(
            batch.rows,
            batch.unchanged,
            batch.rejected,
            source_of(file),
            now,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(&e),
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
