//! `tariscope-sync import FILE`: desired subscribers from CSV or JSON into the mirror.

use std::path::Path;

use chrono::SecondsFormat;

use crate::config::Config;
use crate::daemon::Exit;
use crate::store::Store;
use crate::sync::import::{Format, parse};

pub async fn run(config: &Config, file: &Path) -> Exit {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tariscope-sync import: cannot read {}: {e}", file.display());
            return Exit::Runtime;
        }
    };
    let batch = match parse(&text, Format::from_path(file)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tariscope-sync import: {}: {e}", file.display());
            return Exit::Runtime;
        }
    };
    let store = match Store::open(&config.mirror.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tariscope-sync import: {e}");
            return Exit::Runtime;
        }
    };
    let source = file.display().to_string();
    let rejected = batch.rejected.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    match store.import_desired(batch, source, now).await {
        Ok(c) => {
            println!(
                "imported {}: {} new, {} changed, {} unchanged, {} rejected",
                file.display(),
                c.inserted,
                c.updated,
                c.unchanged,
                c.rejected
            );
            for r in &rejected {
                println!(
                    "  rejected row {} (key {}): {}",
                    r.row,
                    r.key.as_deref().unwrap_or("-"),
                    r.reason
                );
            }
            if rejected.is_empty() {
                Exit::Ok
            } else {
                Exit::Partial
            }
        }
        Err(e) => {
            eprintln!("tariscope-sync import: {e}");
            Exit::Runtime
        }
    }
}
