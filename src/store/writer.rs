//! The single writer connection and its thread.
//!
//! Owns: the one read-write SQLite connection and the thread that runs every write. Async
//! callers send a closure over a channel and await a oneshot. Commands queued together are
//! group-committed in one transaction, each inside its own savepoint, so one failing command
//! rolls back only itself. Replies are sent after the commit: a caller that got `Ok` knows
//! its rows are durable (to WAL `synchronous=NORMAL` level). Must not: run network I/O or
//! block on anything but SQLite.

use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;
use super::checkpoint::Nudge;

/// Most commands group-committed in one transaction.
const MAX_BATCH: usize = 256;

/// A unit of work for the writer thread.
pub(crate) trait Command: Send {
    /// Runs inside the open batch transaction, wrapped in a savepoint when `savepoint`
    /// (other commands share the transaction). Returns whether the command succeeded.
    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool;
    /// Delivers the result once the batch has committed (or failed to).
    fn finish(self: Box<Self>, commit: Result<(), &Arc<rusqlite::Error>>);
}

/// A closure and the place to send its result.
struct Op<T, F> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Command for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool {
        if let Some(f) = self.f.take() {
            self.out = Some(if savepoint {
                in_savepoint(conn, f)
            } else {
                guarded(conn, f)
            });
        }
        matches!(self.out, Some(Ok(_)))
    }

    fn finish(self: Box<Self>, commit: Result<(), &Arc<rusqlite::Error>>) {
        let out = match (self.out, commit) {
            (Some(Ok(_)), Err(e)) => Err(StoreError::Commit { source: e.clone() }),
            (Some(out), _) => out,
            (None, Err(e)) => Err(StoreError::Commit { source: e.clone() }),
            (None, Ok(())) => Err(StoreError::WriterGone),
        };
        // The caller may have been cancelled; its result is then simply dropped.
        let _ = self.reply.send(out);
    }
}

/// Runs `f`, turning a panic into `StoreError::Bug`.
fn guarded<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)));
    ran.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(StoreError::Bug(what))
    })
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT cmd")
        .map_err(StoreError::sql("opening a savepoint"))?;
    match guarded(conn, f) {
        Ok(v) => {
            conn.execute_batch("RELEASE cmd")
                .map_err(StoreError::sql("releasing a savepoint"))?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rb) = conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd") {
                tracing::error!(error = %rb, "rolling back a failed write command failed");
            }
            Err(e)
        }
    }
}

/// The sending half, cloned into every `Store` handle.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Command>>,
}

impl Writer {
    /// Starts the writer thread owning `conn`. The thread ends when every `Writer` is dropped.
    /// `checkpoints` (file stores) is told of every commit.
    pub(crate) fn spawn(
        conn: Connection,
        checkpoints: Option<Nudge>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Command>>();
        std::thread::Builder::new()
            .name("mirror-writer".into())
            .spawn(move || writer_loop(conn, rx, checkpoints))
            .map_err(|e| StoreError::ReadTask(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` on the writer thread inside a transaction; resolves after the commit.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues `f` for the writer thread now (not when the result is first polled), so a
    /// caller can prepare the next batch while this one is written.
    pub(crate) fn submit<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Box<dyn Command> = Box::new(Op {
            f: Some(f),
            out: None,
            reply,
        });
        let sent = self.tx.send(op).map_err(|_| StoreError::WriterGone);
        async move {
            sent?;
            rx.await.map_err(|_| StoreError::WriterGone)?
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Box<dyn Command>>, checkpoints: Option<Nudge>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = Arc::new(e);
            for cmd in batch {
                cmd.finish(Err(&e));
            }
            continue;
        }
        // A command alone in its transaction needs no savepoint (whose page journal costs
        // a bulk write ~8 %): if it fails, the whole transaction is rolled back instead.
        let alone = batch.len() == 1;
        let mut ok = true;
        for cmd in batch.iter_mut() {
            ok &= cmd.run(&conn, !alone);
        }
        if alone && !ok {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back a failed write command failed");
            }
            for cmd in batch {
                cmd.finish(Ok(()));
            }
            continue;
        }
        let commit = conn.execute_batch("COMMIT").map_err(Arc::new);
        match &commit {
            Ok(()) => {
                if let Some(checkpoints) = &checkpoints {
                    checkpoints.committed();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "mirror commit failed; the batch is rolled back");
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        for cmd in batch {
            cmd.finish(commit.as_ref().map(|_| ()));
        }
    }
}
