//! Embedded, numbered schema migrations applied on open.
//!
//! Owns: the list of migrations and `PRAGMA user_version` bookkeeping. Must not: edit a
//! released migration (add a new numbered file instead) or run anything but DDL.

use rusqlite::Connection;

use super::StoreError;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`; its file is `migrations/000n_*.sql`.
/// A new migration is appended at the end.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_mirror", include_str!("migrations/0001_mirror.sql")),
    ("0002_push", include_str!("migrations/0002_push.sql")),
    (
        "0003_rejected_detail",
        include_str!("migrations/0003_rejected_detail.sql"),
    ),
    (
        "0004_push_numbers",
        include_str!("migrations/0004_push_numbers.sql"),
    ),
    (
        "0005_summary_days",
        include_str!("migrations/0005_summary_days.sql"),
    ),
    (
        "0006_held_removals",
        include_str!("migrations/0006_held_removals.sql"),
    ),
    (
        "0007_payments",
        include_str!("migrations/0007_payments.sql"),
    ),
    (
        "0008_key_renames",
        include_str!("migrations/0008_key_renames.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Applies every migration newer than the file's `user_version`, each in its own transaction
/// (safe when several processes open the mirror at once).
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sql("reading the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let fail = |source| StoreError::Migration {
            version,
            name,
            source,
        };
        // IMMEDIATE: the write lock first, then the version again, so two processes opening
        // a new mirror at once apply each migration once (the second waits, then skips).
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let now: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version, name, "applied mirror migration");
    }
    Ok(SCHEMA_VERSION)
}
