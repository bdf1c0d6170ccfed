//! `tariscope-sync import FILE`: desired subscribers from CSV or JSON into the mirror.

use std::path::Path;

use chrono::SecondsFormat;

use super::out::Out;
use crate::config::Config;
use crate::daemon::Exit;
use crate::records::{FileFormat, ReadOptions};
use crate::store::Store;
use crate::sync::import::parse_bytes;
use crate::{errln, outln};

/// Imports `file`, read in `encoding` unless it has a BOM.
pub async fn run(
    config: &Config,
    file: &Path,
    encoding: &'static encoding_rs::Encoding,
    out: &mut Out,
) -> Exit {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            errln!("tariscope-sync import: cannot read {}: {e}", file.display());
            return Exit::Runtime;
        }
    };
    let options = ReadOptions {
        format: FileFormat::from_path(file),
        encoding,
    };
    let batch = match parse_bytes(&bytes, &options) {
        Ok(b) => b,
        Err(e) => {
            errln!("tariscope-sync import: {}: {e}", file.display());
            return Exit::Runtime;
        }
    };
    let store = match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            errln!("tariscope-sync import: {e}");
            return Exit::Runtime;
        }
    };
    let source = file.display().to_string();
    let rejected = batch.rejected.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    match store.import_desired(batch, source, now).await {
        Ok(c) => {
            outln!(
                out,
                "imported {}: {} new, {} changed, {} unchanged, {} rejected",
                file.display(),
                c.inserted,
                c.updated,
                c.unchanged,
                c.rejected
            );
            for r in &rejected {
                let key = r.key.as_deref().unwrap_or("-");
                // The reason names the key too (for `status`); here the line already does.
                let reason = r
                    .reason
                    .strip_prefix(&format!("{key}: "))
                    .unwrap_or(&r.reason);
                outln!(out, "  rejected row {} (key {key}): {reason}", r.row);
            }
            if rejected.is_empty() {
                Exit::Ok
            } else {
                Exit::Partial
            }
        }
        Err(e) => {
            errln!("tariscope-sync import: {e}");
            Exit::Runtime
        }
    }
}
