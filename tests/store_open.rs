//! Store tests: opening, migrations, file creation and mode, the writer's transactions.

use rusqlite::Connection;
use tariscope_sync::store::Conn;
use tariscope_sync::store::{SCHEMA_VERSION, Store, StoreError};

const TABLES: &[&str] = &[
    "subscribers",
    "dns",
    "payments",
    "charges",
    "account_summaries",
    "tariff_plans",
    "tariffs",
    "services",
    "system_info",
    "subscriber_changes",
    "job_runs",
    "checkpoints",
    "item_errors",
];

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

/// An integer pragma as the writer connection has it.
async fn writer_pragma(store: &Store, name: &'static str) -> i64 {
    store
        .write(move |c| {
            c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(sql)
        })
        .await
        .unwrap()
}

async fn count(store: &Store, table: &'static str) -> i64 {
    store
        .read(move |c| {
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .map_err(sql)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn in_memory_store_applies_every_migration() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let found: Vec<String> = store
        .read(|c| {
            c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql)
        })
        .await
        .unwrap();
    for t in TABLES {
        assert!(found.iter().any(|f| f == t), "missing table {t}: {found:?}");
    }
}

#[tokio::test]
async fn file_store_creates_folder_and_0600_file_and_reopens_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/mirror.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|c| {
                c.execute("INSERT INTO checkpoints VALUES ('j', 'k', 'c', 't')", [])
                    .map_err(sql)
            })
            .await
            .unwrap();
        let mode: String = store
            .read(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(sql)
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(writer_pragma(&store, "foreign_keys").await, 1);
        assert_eq!(
            writer_pragma(&store, "synchronous").await,
            1,
            "synchronous must be NORMAL (1)"
        );
        assert_eq!(
            writer_pragma(&store, "temp_store").await,
            2,
            "statement journals must stay in memory (MEMORY = 2)"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mirror file mode {mode:o}");
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        count(&store, "checkpoints").await,
        1,
        "reopening must keep the data and not re-run migrations"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    match Store::open(&path) {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

/// The `checkpoints` keys, in order (the rows the write tests insert).
async fn checkpoint_keys(store: &Store) -> Vec<String> {
    store
        .read(|c| {
            c.prepare("SELECT key FROM checkpoints ORDER BY key")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_write_rolls_back_only_itself() {
    let store = Store::open_in_memory().unwrap();
    // Hold the writer thread inside a first write until the three below are queued, so the
    // writer takes them as one batch and group-commits them (each in its own savepoint).
    let (running, writer_busy) = tokio::sync::oneshot::channel::<()>();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let writer = store.clone();
    let blocker = tokio::spawn(async move {
        writer
            .write(move |_: &Conn| {
                running.send(()).unwrap();
                held.recv().unwrap();
                Ok(())
            })
            .await
    });
    writer_busy.await.unwrap();
    let insert = |key: &'static str| {
        move |c: &Conn| {
            c.execute("INSERT INTO checkpoints VALUES ('j', ?1, 'c', 't')", [key])
                .map_err(sql)
        }
    };
    // The middle one inserts a row and then fails on a duplicate key: only its own row is
    // rolled back.
    let a = store.write(insert("a"));
    let b = store.write(|c: &Conn| {
        c.execute("INSERT INTO checkpoints VALUES ('j', 'b', 'c', 't')", [])
            .and_then(|_| c.execute("INSERT INTO checkpoints VALUES ('j', 'b', 'c', 't')", []))
            .map_err(sql)
    });
    let c = store.write(insert("c"));
    let writes = async { tokio::join!(a, b, c) };
    tokio::pin!(writes);
    // One poll sends all three to the writer's queue (each `write` queues on its first poll).
    tokio::select! {
        biased;
        _ = &mut writes => panic!("the writes finished while the writer was held"),
        () = std::future::ready(()) => {}
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let (a, b, c) = writes.await;
    assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    assert!(matches!(b, Err(StoreError::Sql { .. })), "{b:?}");
    let keys = checkpoint_keys(&store).await;
    assert_eq!(keys, ["a", "c"]);
}

#[tokio::test]
async fn a_failed_write_alone_in_its_transaction_leaves_nothing() {
    let store = Store::open_in_memory().unwrap();
    // Awaited one by one, each write is alone in its transaction (no savepoint): a failure
    // rolls the whole transaction back, and the writer goes on.
    let failed = store
        .write(|c: &Conn| {
            c.execute("INSERT INTO checkpoints VALUES ('j', 'b', 'c', 't')", [])
                .and_then(|_| c.execute("INSERT INTO checkpoints VALUES ('j', 'b', 'c', 't')", []))
                .map_err(sql)
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Sql { .. })), "{failed:?}");
    let panicked = store
        .write(|c: &Conn| -> Result<(), StoreError> {
            c.execute("INSERT INTO checkpoints VALUES ('j', 'p', 'c', 't')", [])
                .map_err(sql)?;
            panic!("a bug in a write command")
        })
        .await;
    assert!(matches!(panicked, Err(StoreError::Bug(_))), "{panicked:?}");
    store
        .write(|c: &Conn| {
            c.execute("INSERT INTO checkpoints VALUES ('j', 'ok', 'c', 't')", [])
                .map_err(sql)
        })
        .await
        .unwrap();
    let keys = checkpoint_keys(&store).await;
    assert_eq!(keys, ["ok"]);
}

#[tokio::test]
async fn reads_on_a_file_store_see_committed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    for i in 0..3 {
        let key = format!("k{i}");
        store
            .write(move |c| {
                c.execute("INSERT INTO checkpoints VALUES ('j', ?1, 'c', 't')", [key])
                    .map_err(sql)
            })
            .await
            .unwrap();
        assert_eq!(count(&store, "checkpoints").await, i + 1);
    }
}

/// Commits reach the mirror file through the checkpoint thread; the writer's own
/// checkpoint only backs it up at a far larger WAL.
#[tokio::test]
async fn commits_are_checkpointed_into_the_mirror_file_off_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(writer_pragma(&store, "wal_autocheckpoint").await, 10_000);
    let before = std::fs::metadata(&path).unwrap().len();
    // ~2 MB: about 500 pages, half of SQLite's default threshold of 1,000.
    store
        .write(|c| {
            let value = "x".repeat(1000);
            for i in 0..2000 {
                c.execute(
                    "INSERT INTO checkpoints VALUES ('j', ?1, ?2, 't')",
                    tariscope_sync::store::params![format!("k{i}"), value],
                )
                .map_err(sql)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut size = before;
    while size < before + 2_000_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        size = std::fs::metadata(&path).unwrap().len();
    }
    assert!(
        size >= before + 2_000_000,
        "the mirror file stayed at {size} bytes (from {before}): the commit was not checkpointed"
    );
}

/// Issue 21: while a reader holds a snapshot the WAL cannot be reused and grows; once the
/// reader lets go, the checkpointer copies the frames back and cuts the WAL file down without
/// any further write (before, it stayed at its largest until the next write reset it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_shrinks_back_after_a_long_reader_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    let wal = dir.path().join("mirror.db-wal");
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let store = Store::open(&db).unwrap();
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM job_runs", [], |r| r.get(0))
        .unwrap();
    for i in 0..2_000 {
        store
            .write(move |c| {
                c.execute(
                    "INSERT INTO checkpoints (job, key, cursor, updated_at) VALUES ('t', ?1, ?2, 'now')",
                    tariscope_sync::store::params![i.to_string(), "x".repeat(2_000)],
                )
                .map_err(sql)
            })
            .await
            .unwrap();
    }
    let grown = size(&wal);
    assert!(grown > 8 << 20, "the WAL should have grown: {grown} bytes");
    let wal_state = store.wal().unwrap();
    assert_eq!(wal_state.bytes, grown);
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let start = std::time::Instant::now();
    while size(&wal) > 4 << 20 || store.wal().unwrap().lag_frames > 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the WAL stayed at {} bytes (lag {} frames) after the reader let go",
            size(&wal),
            store.wal().unwrap().lag_frames
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&store, "checkpoints").await, 2_000);
}
