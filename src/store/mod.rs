//! The mirror: the product's public interface for every other system, in a SQLite file (the
//! embedded default) or a PostgreSQL database (`mirror.url`).
//!
//! Owns: the database file (created 0600, folder created if missing), the embedded
//! migrations, the one writer connection on its own thread, WAL checkpoints and the WAL's
//! size on another (`checkpoint`), grouped writes of the per-item jobs (`group`), read
//! connections (`readers`), and one file per table family (`subscribers` with `subscriber_columns` and
//! `subscriber_dns`, `accounts` with `summary_days`, `reference`, `runs`, `removals`, and the
//! push side's `desired`, `merge_base`, `rejected`, `outbox`, `server_traits`, and
//! `payments`: desired payments and their confirmation), with `bulk` (multi-row inserts),
//! `upsert` and `values` shared by them; `release_memory` frees the idle connections' page
//! caches between job runs. The table files speak `db::Conn`, one statement API over both
//! engines, so their SQL and row mapping are written once; `pg` holds what is PostgreSQL's
//! own: its schema and version, `mirror copy`, and the leader election, whose lock the
//! writer's session holds in a leader's store (`lead_postgres`; the writer confirms it and
//! refuses every write once it is lost). Must not: speak HTTP, read the clock (callers pass
//! timestamps), decide sync policy (that is `crate::sync`), or import the sync engine: what
//! both need (desired rows, fields, payments in canonical form) lives below both in
//! `crate::model` (checked by a test here). Its tests run on both engines
//! (`test_backends`: `tests/backends/mod.rs`).
//!
//! Storage conventions (documented for integrators in `docs/schema.md`): on SQLite money and
//! other decimals are TEXT in `rust_decimal` string form, never REAL; dates are `yyyy-mm-dd`;
//! timestamps are RFC 3339 UTC text. PostgreSQL has its native types for them, read back in
//! these forms.

mod accounts;
mod bulk;
mod checkpoint;
mod db;
mod desired;
mod error;
mod group;
mod merge_base;
mod migrate;
mod outbox;
mod payments;
pub mod pg;
mod readers;
mod reference;
mod rejected;
mod removals;
mod runs;
mod server_traits;
mod subscriber_columns;
mod subscriber_dns;
mod subscribers;
mod summary_days;
#[cfg(test)]
#[path = "../../tests/backends/mod.rs"]
mod test_backends;
mod upsert;
mod values;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::cell::RefCell;

use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

pub use accounts::{SummaryOrigin, charge_keys};
pub use checkpoint::DEFAULT_WARN_MIB;
pub use db::{Conn, DbError, OptionalExtension, Params, Row, Stmt, params, params_from_iter};
use db::{PgSession, Session};
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

use readers::{ReadSource, Readers};
use writer::{Guard, Writer};

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
    /// A leader's store: its election, and the token cancelled when its session lost the
    /// leader lock.
    guard: Option<Arc<Guard>>,
}

/// What `Store::lead_postgres` found.
pub enum Leadership {
    /// This process leads: its store's writes are fenced by the leader lock.
    Leader(Store),
    /// Another session leads (its name, `tariscope-sync <holder>`, when known).
    Standby { leader: Option<String> },
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
            writer: Writer::spawn(Session::Lite(conn), Some(checkpoints), None)?,
            readers: Some(Arc::new(Readers {
                source: ReadSource::Sqlite(path),
                idle: Mutex::new(Vec::new()),
            })),
            wal: Some(wal),
            guard: None,
        })
    }

    /// Opens the configured mirror: the PostgreSQL database `postgres` when set, else the
    /// SQLite file at `path`.
    pub fn open_configured(
        path: &Path,
        postgres: Option<&pg::Target>,
    ) -> Result<Store, StoreError> {
        match postgres {
            Some(target) => Store::open_postgres(target),
            None => Store::open(path),
        }
    }

    /// Opens the mirror in the PostgreSQL database `target`: connects and applies pending
    /// migrations. For commands that do not run jobs (`status`, `import`, ...).
    pub fn open_postgres(target: &pg::Target) -> Result<Store, StoreError> {
        let client = connect(target, |_| Ok(true))?.0;
        Store::postgres(target, client, None)
    }

    /// Opens the mirror in `target` as the leader of `election` (the daemons syncing one
    /// Tariscope), or finds who leads. A leader's writes go through the session that holds
    /// the leader lock, so once it is lost nothing more is written (`deposed`).
    pub fn lead_postgres(
        target: &pg::Target,
        election: &pg::leader::Election,
        holder: &str,
    ) -> Result<Leadership, StoreError> {
        let mut standby = None;
        let (client, leads) = connect(target, |client| {
            election.prepare(client, holder, target)?;
            Ok(match election.try_lead(client, target)? {
                pg::leader::Role::Leader => true,
                pg::leader::Role::Standby { leader } => {
                    standby = Some(leader);
                    false
                }
            })
        })?;
        if !leads {
            readers::close_off_runtime(client);
            return Ok(Leadership::Standby {
                leader: standby.flatten(),
            });
        }
        let guard = Guard {
            election: election.clone(),
            target: target.clone(),
            deposed: CancellationToken::new(),
        };
        let mut store = Store::postgres(target, client, Some(guard.clone()))?;
        store.guard = Some(Arc::new(guard));
        Ok(Leadership::Leader(store))
    }

    fn postgres(
        target: &pg::Target,
        client: postgres::Client,
        guard: Option<Guard>,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            writer: Writer::spawn(
                Session::Pg(Box::new(RefCell::new(PgSession::new(client)))),
                None,
                guard,
            )?,
            readers: Some(Arc::new(Readers {
                source: ReadSource::Postgres(Box::new(target.clone())),
                idle: Mutex::new(Vec::new()),
            })),
            wal: None,
            guard: None,
        })
    }

    /// Cancelled when this leader's session lost the leader lock (it writes nothing more);
    /// `None` for a store that does not lead.
    pub fn deposed(&self) -> Option<CancellationToken> {
        self.guard.as_ref().map(|g| g.deposed.clone())
    }

    /// For a leader's store: confirms, through its writer session, that it still holds the
    /// leader lock, and returns the instant until which a write may rely on that: no
    /// standby can lead before then, because the server ends a silent session only after
    /// two thirds of the takeover time (`pg::leader`) and this answer counts from before
    /// the question was asked. `None` for a store that takes part in no election. The
    /// fence of every Tariscope write (`api::Fence`).
    pub async fn confirm_leadership(&self) -> Result<Option<std::time::Instant>, StoreError> {
        let Some(guard) = self.guard.clone() else {
            return Ok(None);
        };
        let until = std::time::Instant::now() + guard.election.heartbeat_every();
        // A deposed writer refuses it like any write (`PgError::Deposed`).
        self.writer
            .call(move |conn| {
                guard
                    .confirm(conn)
                    .map_err(|e| StoreError::Postgres(Box::new(e)))
            })
            .await?;
        Ok(Some(until))
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
            writer: Writer::spawn(Session::Lite(conn), None, None)?,
            readers: None,
            wal: None,
            guard: None,
        })
    }

    /// Runs `f` on the writer thread inside a (group-committed) transaction. `f`'s writes are
    /// atomic: on `Err` they are rolled back. For store modules and tests; jobs use the typed
    /// methods.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.call(f).await
    }

    /// Runs `f` on a read connection (the writer for in-memory stores). Sees committed data.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(readers) = &self.readers else {
            return self.writer.call(f).await;
        };
        let readers = readers.clone();
        tokio::task::spawn_blocking(move || {
            let session = readers.take()?;
            let out = f(&session.conn());
            // A PostgreSQL session whose read failed may be broken: not kept.
            if out.is_ok() || !session.conn().is_postgres() {
                readers.give_back(session);
            }
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
                    for conn in idle.iter().filter_map(|s| s.conn().sqlite()) {
                        let _ = conn.execute_batch("PRAGMA shrink_memory");
                    }
                }
            })
            .await;
        }
        let _ = self
            .writer
            .call(|conn| match conn.sqlite() {
                Some(conn) => conn
                    .execute_batch("PRAGMA shrink_memory")
                    .map_err(StoreError::sql("releasing the page cache")),
                None => Ok(()),
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
    /// (SQLite `total_changes()`, counted likewise on PostgreSQL): lets tests prove a no-op
    /// pull writes nothing.
    pub async fn total_changes(&self) -> Result<u64, StoreError> {
        self.writer.call(|conn| Ok(conn.total_changes())).await
    }

    /// Whether the mirror is in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(
            self.readers.as_deref(),
            Some(Readers {
                source: ReadSource::Postgres(_),
                ..
            })
        )
    }

    /// The schema version of the open mirror (`PRAGMA user_version`; on PostgreSQL the
    /// `schema_version` table).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|conn| {
            let sql = if conn.is_postgres() {
                "SELECT CAST(max(version) AS bigint) FROM schema_version"
            } else {
                "PRAGMA user_version"
            };
            conn.query_row(sql, [], |r| r.get(0))
                .map_err(StoreError::sql("reading the schema version"))
        })
        .await
    }
}

/// Connects to `target`, applies pending migrations and runs `then` on the session, on a
/// thread of its own: the client blocks on a runtime of its own, which must not be started
/// inside the caller's.
fn connect(
    target: &pg::Target,
    then: impl FnOnce(&mut postgres::Client) -> Result<bool, pg::PgError> + Send,
) -> Result<(postgres::Client, bool), StoreError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = target.connect()?;
                pg::migrate(&mut client, target)?;
                let out = then(&mut client)?;
                Ok::<_, pg::PgError>((client, out))
            })
            .join()
            .map_err(|_| StoreError::Bug("connecting to PostgreSQL panicked".into()))
    })?
    .map_err(|e| StoreError::Postgres(Box::new(e)))
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
