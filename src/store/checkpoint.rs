//! WAL checkpoints off the writer thread, and watching the WAL's size.
//!
//! Owns: a thread with its own connection that copies committed WAL frames back into the
//! mirror file (`PRAGMA wal_checkpoint(PASSIVE)`) each time the writer reports a commit;
//! the writer's own automatic checkpoint threshold, raised to a backstop; giving the WAL's
//! disk space back (the writer's `journal_size_limit`, and a `TRUNCATE` checkpoint when
//! the writer is idle and nothing is left to copy); the WAL gauges (`Wal`, and the
//! `tariscope_sync_mirror_wal_*` metrics); and the warning when the WAL grows past
//! `mirror.wal_warn_mib` because checkpoints cannot complete. Must not: write rows, or make
//! the writer wait (a passive checkpoint never blocks it, a commit only leaves a note in a
//! one-slot channel, and the truncating checkpoint does not wait for locks).
//!
//! Why: SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on
//! the writer thread, and on a first pull of 100,000 subscribers it was ~15 % of that
//! thread's time. Litestream takes checkpoints out of the writer's path the same way. Should
//! this thread stop or fall behind, the writer checkpoints by itself once the WAL reaches
//! `BACKSTOP_PAGES`.
//!
//! A reader that holds a read transaction (an integrator's report, a BI tool, an open
//! `BEGIN` in a shell) pins its snapshot: frames committed after it cannot be copied back,
//! and the WAL grows with every commit until the reader lets go. Then the next checkpoint
//! (at most `IDLE_CHECK` later, even when nothing is written) copies them and truncates the
//! WAL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// WAL size (pages) at which the writer checkpoints by itself (SQLite's default: 1,000).
const BACKSTOP_PAGES: u32 = 10_000;
/// The WAL file is cut back to this size when it is reset (`journal_size_limit`), and the
/// idle checkpoint truncates a WAL larger than this.
pub(crate) const SHRINK_BYTES: u64 = 4 << 20;
/// How often the checkpointer looks again while the WAL is larger than `SHRINK_BYTES` or
/// holds frames it could not copy, when no commit wakes it.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// The default of `mirror.wal_warn_mib`.
pub const DEFAULT_WARN_MIB: u64 = 1024;

/// The WAL as the checkpointer last saw it, and the warning threshold. Shared with `Store`.
#[derive(Debug)]
pub(crate) struct Wal {
    path: PathBuf,
    /// Frames in the WAL not yet copied into the database file, at the last checkpoint.
    lag_frames: AtomicU64,
    /// Warn when the WAL passes this many bytes and frames are left behind; 0: never.
    warn_bytes: AtomicU64,
}

impl Wal {
    fn new(db: &Path) -> Wal {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        Wal {
            path: PathBuf::from(path),
            lag_frames: AtomicU64::new(0),
            warn_bytes: AtomicU64::new(DEFAULT_WARN_MIB << 20),
        }
    }

    /// The WAL file's size now (0 when there is none).
    pub(crate) fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    pub(crate) fn lag_frames(&self) -> u64 {
        self.lag_frames.load(Ordering::Relaxed)
    }

    pub(crate) fn warn_above(&self, bytes: u64) {
        self.warn_bytes.store(bytes, Ordering::Relaxed);
    }
}

/// The writer's side: tells the checkpointer that something was committed.
pub(crate) struct Nudge(mpsc::SyncSender<()>);

impl Nudge {
    /// Never blocks: a nudge already waiting covers this commit too.
    pub(crate) fn committed(&self) {
        let _ = self.0.try_send(());
    }
}

/// Raises `writer`'s automatic checkpoint to the backstop, limits the WAL file it leaves
/// behind, and starts the checkpointer on its own connection to `path`. The thread ends
/// when the returned `Nudge` is dropped.
pub(crate) fn start(writer: &Connection, path: &Path) -> Result<(Nudge, Arc<Wal>), StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // Never wait for a lock: a checkpoint that cannot run now runs on the next nudge.
    conn.busy_timeout(Duration::ZERO)
        .map_err(StoreError::sql("setting the busy timeout"))?;
    let wal = Arc::new(Wal::new(path));
    let (tx, rx) = mpsc::sync_channel(1);
    let watched = wal.clone();
    std::thread::Builder::new()
        .name("mirror-checkpoint".into())
        .spawn(move || checkpoint_loop(&conn, &rx, &watched))
        .map_err(|e| StoreError::ReadTask(format!("cannot start the checkpoint thread: {e}")))?;
    writer
        .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
        .map_err(StoreError::sql("setting the WAL checkpoint threshold"))?;
    writer
        .pragma_update(None, "journal_size_limit", SHRINK_BYTES as i64)
        .map_err(StoreError::sql("setting the WAL size limit"))?;
    Ok((Nudge(tx), wal))
}

fn checkpoint_loop(conn: &Connection, nudges: &mpsc::Receiver<()>, wal: &Wal) {
    let mut warned_at = 0u64;
    let mut unsettled = false;
    loop {
        let idle = if unsettled {
            match nudges.recv_timeout(IDLE_CHECK) {
                Ok(()) => false,
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else if nudges.recv().is_ok() {
            false
        } else {
            return;
        };
        let lag = match checkpoint(conn, "PASSIVE") {
            Ok(Some(lag)) => lag,
            // Another checkpoint is running: look again soon.
            Ok(None) => {
                unsettled = true;
                continue;
            }
            // The writer's backstop checkpoint keeps the WAL bounded meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the writer will take the next one");
                unsettled = true;
                continue;
            }
        };
        let mut bytes = wal.bytes();
        // Nothing left to copy and no commit since the last look: give the space back.
        if idle
            && lag == 0
            && bytes > SHRINK_BYTES
            && let Ok(Some(_)) = checkpoint(conn, "TRUNCATE")
        {
            bytes = wal.bytes();
        }
        wal.lag_frames.store(lag, Ordering::Relaxed);
        metrics::gauge!("tariscope_sync_mirror_wal_bytes").set(bytes as f64);
        metrics::gauge!("tariscope_sync_mirror_wal_checkpoint_lag_frames").set(lag as f64);
        unsettled = lag > 0 || bytes > SHRINK_BYTES;
        let limit = wal.warn_bytes.load(Ordering::Relaxed);
        if limit > 0 && lag > 0 && bytes > limit && bytes >= warned_at.saturating_mul(2) {
            warned_at = bytes;
            tracing::warn!(
                wal_mib = bytes >> 20,
                lag_frames = lag,
                warn_mib = limit >> 20,
                "the mirror's WAL has grown past mirror.wal_warn_mib because checkpoints cannot complete: a reader holds an old snapshot (a long read transaction in a report, a BI tool, or an open BEGIN in a shell); the WAL grows with every write until that reader commits or closes, then shrinks by itself; keep read transactions short (docs/schema.md)"
            );
        } else if bytes <= limit {
            warned_at = 0;
        }
    }
}

/// Runs a checkpoint of `mode`; returns the frames it left in the WAL uncopied, or `None`
/// when it could not run now (another checkpoint, or for `TRUNCATE` a writer or a reader in
/// the way).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Option<u64>> {
    let (busy, log, copied) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
    tracing::trace!(mode, busy, log, copied, "WAL checkpoint");
    Ok((busy == 0 && log >= 0).then(|| u64::try_from(log - copied).unwrap_or(0)))
}
