//! The SQLite mirror: the product's public interface for every other system.
//!
//! Owns: the database file (created 0600, folder created if missing), the embedded
//! migrations, the one writer connection on its own thread, WAL checkpoints and the WAL's
//! size on another (`checkpoint`), grouped writes of the per-item jobs (`group`), read
//! connections, and one file per table family (`subscribers` with `subscriber_columns` and
//! `subscriber_dns`, `accounts` with `summary_days`, `reference`, `runs`, `removals`, and the
//! push side's `desired`, `merge_base`, `rejected`, `outbox`, `server_traits`, and
//! `payments`: desired payments and their confirmation), with `bulk` (multi-row inserts),
//! `upsert` and `values` shared by them; `release_memory` frees the idle connections' page
//! caches between job runs; `pg` holds the PostgreSQL schema, `mirror copy` and the leader
//! election (the daemon does not run on PostgreSQL yet). Must not: speak HTTP, read the
//! clock (callers pass timestamps), decide sync policy (that is `crate::sync`), or import
//! the sync engine: what both need (desired rows, fields, payments in canonical form) lives
//! below both in `crate::model` (checked by a test here).
//!
//! Storage conventions (documented for integrators in `docs/schema.md`): money and other
//! decimals are TEXT in `rust_decimal` string form, never REAL; dates are `yyyy-mm-dd`;
//! timestamps are RFC 3339 UTC text.

mod accounts;
mod bulk;
mod checkpoint;
mod desired;
mod error;
mod group;
mod merge_base;
mod migrate;
mod outbox;
mod payments;
pub mod pg;
mod reference;
mod rejected;
mod removals;
mod runs;
mod server_traits;
mod subscriber_columns;
mod subscriber_dns;
mod subscribers;
mod summary_days;
mod upsert;
mod values;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use accounts::{SummaryOrigin, charge_keys};
pub use checkpoint::DEFAULT_WARN_MIB;
pub use desired::ImportCounts;
pub use error::StoreError;
pub use group::WriteGroup;
pub use merge_base::MergeBase;
pub use migrate::SCHEMA_VERSION;
pub use outbox::{OutboxEntry, OutboxState, StoredConflict};
pub use payments::{Payers, PaymentStates, PostedPayment};
pub use reference::ReferenceCounts;
pub use rejected::StoredRejection;
pub use removals::{Confirmed, HeldBack, ListScope, RemovalLimit};
pub use runs::{Checkpoint, Counts, JobRun, Mode, Outcome, RunStart};
pub use server_traits::Observed;
pub use subscribers::{ApplyCounts, Removals, content_hash};
pub use summary_days::{LedgerRun, SummaryDays};
pub use upsert::UpsertCounts;

use writer::Writer;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle to the mirror. Cheap to clone; every clone talks to the same writer thread.
#[derive(Clone)]
pub struct Store {
    /// The single writer (also serves reads for in-memory stores).
    writer: Writer,
    /// Read connections of a file store; `None` for an in-memory store.
    readers: Option<Arc<Readers>>,
    /// The WAL of a file store, as the checkpointer sees it.
    wal: Option<Arc<checkpoint::Wal>>,
}

/// The WAL of a file mirror: what `status`, `doctor` and `/metrics` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalState {
    /// Size of the `-wal` file now.
    pub bytes: u64,
    /// Frames not yet copied into the database file at the last checkpoint (a reader holding
    /// an old snapshot keeps them there).
    pub lag_frames: u64,
}

/// A small pool of read-only connections to the mirror file.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(StoreError::sql("setting the busy timeout"))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.len() < 4 {
            idle.push(conn);
        }
    }
}

impl Store {
    /// Opens (creating if needed) the mirror at `path`: creates the folder, creates the file
    /// with mode 0600, sets WAL / `synchronous=NORMAL` / `foreign_keys=ON` / busy timeout,
    /// applies pending migrations and starts the writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_file(&path)?;
        let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        configure(&conn, true)?;
        migrate::migrate(&mut conn)?;
        let (checkpoints, wal) = checkpoint::start(&conn, &path)?;
        Ok(Store {
            writer: Writer::spawn(conn, Some(checkpoints))?,
            readers: Some(Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            })),
            wal: Some(wal),
        })
    }

    /// Opens a private in-memory mirror (tests). One connection serves reads and writes.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        configure(&conn, false)?;
        migrate::migrate(&mut conn)?;
        Ok(Store {
            writer: Writer::spawn(conn, None)?,
            readers: None,
            wal: None,
        })
    }

    /// Runs `f` on the writer thread inside a (group-committed) transaction. `f`'s writes are
    /// atomic: on `Err` they are rolled back. For store modules and tests; jobs use the typed
    /// methods.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.call(f).await
    }

    /// Runs `f` on a read connection (the writer for in-memory stores). Sees committed data.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(readers) = &self.readers else {
            return self.writer.call(f).await;
        };
        let readers = readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let out = f(&conn);
            readers.give_back(conn);
            out
        })
        .await
        .map_err(|e| StoreError::ReadTask(e.to_string()))?
    }

    /// Frees the page caches of the idle connections (`PRAGMA shrink_memory`): between job
    /// runs a daemon need not keep what the last run read (every connection would otherwise
    /// hold up to its `cache_size` of pages, in whichever allocator arena its thread used).
    /// Pages are read back from the OS cache on demand. Best effort: errors are ignored.
    pub async fn release_memory(&self) {
        if let Some(readers) = &self.readers {
            let readers = readers.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(idle) = readers.idle.lock() {
                    for conn in idle.iter() {
                        let _ = conn.execute_batch("PRAGMA shrink_memory");
                    }
                }
            })
            .await;
        }
        let _ = self
            .writer
            .call(|conn| {
                conn.execute_batch("PRAGMA shrink_memory")
                    .map_err(StoreError::sql("releasing the page cache"))
            })
            .await;
    }

    /// The WAL's size and checkpoint lag; `None` for an in-memory store.
    pub fn wal(&self) -> Option<WalState> {
        self.wal.as_ref().map(|w| WalState {
            bytes: w.bytes(),
            lag_frames: w.lag_frames(),
        })
    }

    /// Warn (once, and again each time it doubles) when the WAL passes `bytes` because
    /// checkpoints cannot complete (`mirror.wal_warn_mib`); 0 never warns.
    pub fn warn_wal_above(&self, bytes: u64) {
        if let Some(w) = &self.wal {
            w.warn_above(bytes);
        }
    }

    /// Rows inserted, updated or deleted through the writer connection since it opened
    /// (SQLite `total_changes()`): lets tests prove a no-op pull writes nothing.
    pub async fn total_changes(&self) -> Result<u64, StoreError> {
        self.writer.call(|conn| Ok(conn.total_changes())).await
    }

    /// The schema version of the open mirror (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|conn| {
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(StoreError::sql("reading the schema version"))
        })
        .await
    }
}

/// Creates the folder and an empty file with mode 0600 if the file does not exist yet.
fn create_file(path: &Path) -> Result<(), StoreError> {
    let fail = |source| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop).map_err(fail)
}

/// `PRAGMA journal_mode = WAL`, tried again while another process opening the same new
/// mirror holds it: SQLite answers "database is locked" here without waiting.
fn switch_to_wal(conn: &Connection) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.map_err(StoreError::sql("switching to WAL")),
        }
    }
}

fn configure(conn: &Connection, wal: bool) -> Result<(), StoreError> {
    // First: another process opening the mirror at the same moment holds its lock briefly.
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sql("setting the busy timeout"))?;
    if wal {
        let mode = switch_to_wal(conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "the mirror could not switch to WAL journal mode");
        }
    }
    // A 16 MiB page cache (default 2 MiB): bulk pulls touch several indexes per row.
    // Temporary data in memory: every multi-row INSERT of a bulk pull opens a statement
    // journal, which SQLite otherwise keeps in a temporary file; written to disk, it was
    // a quarter of the writer thread's time on a first pull of 100,000 subscribers.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;",
    )
    .map_err(StoreError::sql("setting connection pragmas"))?;
    Ok(())
}

/// A connection brought to this build's schema (tests of other store modules).
#[cfg(test)]
pub(crate) fn migrate_for_tests(conn: &mut Connection) {
    migrate::migrate(conn).unwrap();
}

#[cfg(test)]
mod layering_tests {
    /// The store speaks `crate::model` types only: no file of it (tests included) imports the
    /// sync engine, so a second storage backend needs nothing from above it.
    #[test]
    fn the_store_never_imports_the_sync_engine() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let needle = ["crate", "::sync"].concat();
        let mut offenders = Vec::new();
        let mut folders = vec![dir];
        let mut files = Vec::new();
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.iter().any(|f| f.ends_with("pg/mod.rs")), "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if !code.starts_with("//") && code.contains(&needle) {
                    offenders.push(format!("{}:{}: {code}", path.display(), n + 1));
                }
            }
        }
        assert!(offenders.is_empty(), "store imports sync: {offenders:#?}");
    }
}
