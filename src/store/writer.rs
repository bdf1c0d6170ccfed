//! The single writer connection and its thread.
//!
//! Owns: the one read-write connection (SQLite, or a PostgreSQL session) and the thread
//! that runs every write. Async callers send a closure over a channel and await a oneshot. Commands queued together are
//! group-committed in one transaction, each inside its own savepoint, so one failing command
//! rolls back only itself. Replies are sent after the commit: a caller that got `Ok` knows
//! its rows are durable (to WAL `synchronous=NORMAL` level). A leader's PostgreSQL
//! session holds the leader lock (`Guard`): the thread confirms it when idle for the
//! heartbeat time and after a failed batch, and once it is lost fails every write
//! (`PgError::Deposed`) and cancels `Guard::deposed`. Must not: run network I/O or block on
//! anything but the database.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::StoreError;
use super::checkpoint::Nudge;
use super::db::{Conn, DbError, Session};
use super::pg::leader::Election;
use super::pg::{PgError, Target};

/// Most commands group-committed in one transaction.
const MAX_BATCH: usize = 256;

/// A unit of work for the writer thread.
pub(crate) trait Command: Send {
    /// Runs inside the open batch transaction, wrapped in a savepoint when `savepoint`
    /// (other commands share the transaction). Returns whether the command succeeded.
    fn run(&mut self, conn: &Conn, savepoint: bool) -> bool;
    /// Delivers the result once the batch has committed (or failed to).
    fn finish(self: Box<Self>, commit: Result<(), &Arc<DbError>>);
    /// Delivers `error` without running (the writer no longer writes).
    fn fail(self: Box<Self>, error: StoreError);
}

/// What keeps a leader's writer fenced: its election, and the token cancelled when the
/// session no longer holds the leader lock.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) election: Election,
    pub(crate) target: Target,
    pub(crate) deposed: CancellationToken,
}

impl Guard {
    /// Whether the session behind `conn` (the writer's) still holds the leader lock. Run
    /// on the writer thread, so it answers for the session every write commits through.
    pub(crate) fn confirm(&self, conn: &Conn) -> Result<(), PgError> {
        match conn {
            Conn::Pg(s) => self.election.confirm(s.borrow_mut().client(), &self.target),
            Conn::Lite(_) => Ok(()),
        }
    }
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
    F: FnOnce(&Conn) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Conn, savepoint: bool) -> bool {
        if let Some(f) = self.f.take() {
            self.out = Some(if savepoint {
                in_savepoint(conn, f)
            } else {
                guarded(conn, f)
            });
        }
        matches!(self.out, Some(Ok(_)))
    }

    fn finish(self: Box<Self>, commit: Result<(), &Arc<DbError>>) {
        let out = match (self.out, commit) {
            (Some(Ok(_)), Err(e)) => Err(StoreError::Commit { source: e.clone() }),
            (Some(out), _) => out,
            (None, Err(e)) => Err(StoreError::Commit { source: e.clone() }),
            (None, Ok(())) => Err(StoreError::WriterGone),
        };
        // The caller may have been cancelled; its result is then simply dropped.
        let _ = self.reply.send(out);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Runs `f`, turning a panic into `StoreError::Bug`.
fn guarded<T>(
    conn: &Conn,
    f: impl FnOnce(&Conn) -> Result<T, StoreError>,
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
    conn: &Conn,
    f: impl FnOnce(&Conn) -> Result<T, StoreError>,
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
    /// `checkpoints` (SQLite file stores) is told of every commit; `guard` (a leader's
    /// PostgreSQL session) keeps the writes fenced.
    pub(crate) fn spawn(
        conn: Session,
        checkpoints: Option<Nudge>,
        guard: Option<Guard>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Command>>();
        std::thread::Builder::new()
            .name("mirror-writer".into())
            .spawn(move || writer_loop(conn, rx, checkpoints, guard))
            .map_err(|e| StoreError::ReadTask(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` on the writer thread inside a transaction; resolves after the commit.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T, StoreError> + Send + 'static,
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
        F: FnOnce(&Conn) -> Result<T, StoreError> + Send + 'static,
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

fn writer_loop(
    session: Session,
    rx: mpsc::Receiver<Box<dyn Command>>,
    checkpoints: Option<Nudge>,
    guard: Option<Guard>,
) {
    let conn = session.conn();
    // PostgreSQL has no IMMEDIATE: its writes take row locks as they go.
    let begin = if conn.is_postgres() {
        "BEGIN"
    } else {
        "BEGIN IMMEDIATE"
    };
    let confirm = || guard.as_ref().map_or(Ok(()), |g| g.confirm(&conn));
    let lost = loop {
        let first = match &guard {
            None => match rx.recv() {
                Ok(cmd) => cmd,
                Err(_) => return,
            },
            Some(g) => match rx.recv_timeout(g.election.heartbeat_every()) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => match confirm() {
                    Ok(()) => continue,
                    Err(e) => break e,
                },
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        if !write_batch(conn, &rx, first, begin, checkpoints.as_ref())
            && let Err(e) = confirm()
        {
            break e;
        }
    };
    // Deposed: say so once, then refuse every write until the store is dropped.
    tracing::error!("{lost}");
    if let Some(g) = &guard {
        g.deposed.cancel();
    }
    let (target, scope, detail) = match &lost {
        PgError::Deposed {
            target,
            scope,
            detail,
        } => (target.clone(), scope.clone(), detail.clone()),
        other => (String::new(), String::new(), other.to_string()),
    };
    while let Ok(cmd) = rx.recv() {
        cmd.fail(StoreError::Postgres(Box::new(PgError::Deposed {
            target: target.clone(),
            scope: scope.clone(),
            detail: detail.clone(),
        })));
    }
}

/// Runs `first` and what is queued behind it in one transaction; whether it committed.
fn write_batch(
    conn: Conn<'_>,
    rx: &mpsc::Receiver<Box<dyn Command>>,
    first: Box<dyn Command>,
    begin: &str,
    checkpoints: Option<&Nudge>,
) -> bool {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(cmd) => batch.push(cmd),
            Err(_) => break,
        }
    }
    if let Err(e) = conn.execute_batch(begin) {
        let e = Arc::new(e);
        for cmd in batch {
            cmd.finish(Err(&e));
        }
        return false;
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
        return false;
    }
    let commit = conn.execute_batch("COMMIT").map_err(Arc::new);
    match &commit {
        Ok(()) => {
            if let Some(checkpoints) = checkpoints {
                checkpoints.committed();
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "mirror commit failed; the batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    let committed = commit.is_ok();
    for cmd in batch {
        cmd.finish(commit.as_ref().map(|_| ()));
    }
    committed
}
