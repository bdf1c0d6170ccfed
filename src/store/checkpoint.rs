//! WAL checkpoints off the writer thread.
//!
//! Owns: a thread with its own connection that copies committed WAL frames back into the
//! mirror file (`PRAGMA wal_checkpoint(PASSIVE)`) each time the writer reports a commit,
//! and the writer's own automatic checkpoint threshold, raised to a backstop. Must not:
//! write rows, or make the writer wait (a passive checkpoint never blocks it, and a
//! commit only leaves a note in a one-slot channel).
//!
//! Why: SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on
//! the writer thread, and on a first pull of 100,000 subscribers it was ~15 % of that
//! thread's time. Litestream takes checkpoints out of the writer's path the same way. Should
//! this thread stop or fall behind, the writer checkpoints by itself once the WAL reaches
//! `BACKSTOP_PAGES`.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;

use super::StoreError;

/// WAL size (pages) at which the writer checkpoints by itself (SQLite's default: 1,000).
const BACKSTOP_PAGES: u32 = 10_000;

/// The writer's side: tells the checkpointer that something was committed.
pub(crate) struct Nudge(mpsc::SyncSender<()>);

impl Nudge {
    /// Never blocks: a nudge already waiting covers this commit too.
    pub(crate) fn committed(&self) {
        let _ = self.0.try_send(());
    }
}

/// Raises `writer`'s automatic checkpoint to the backstop and starts the checkpointer on
/// its own connection to `path`. The thread ends when the returned `Nudge` is dropped.
pub(crate) fn start(writer: &Connection, path: &Path) -> Result<Nudge, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(super::BUSY_TIMEOUT)
        .map_err(StoreError::sql("setting the busy timeout"))?;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mirror-checkpoint".into())
        .spawn(move || checkpoint_loop(&conn, &rx))
        .map_err(|e| StoreError::ReadTask(format!("cannot start the checkpoint thread: {e}")))?;
    writer
        .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
        .map_err(StoreError::sql("setting the WAL checkpoint threshold"))?;
    Ok(Nudge(tx))
}

fn checkpoint_loop(conn: &Connection, nudges: &mpsc::Receiver<()>) {
    while nudges.recv().is_ok() {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match done {
            Ok((wal, copied)) => tracing::trace!(wal, copied, "WAL checkpoint"),
            // The writer's backstop checkpoint keeps the WAL bounded meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the writer will take the next one")
            }
        }
    }
}
