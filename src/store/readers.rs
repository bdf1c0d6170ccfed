//! The read connections of a mirror.
//!
//! Owns: a small pool of them: read-only connections to the SQLite file, or PostgreSQL
//! sessions, opened on demand and kept while idle (at most four), and closing PostgreSQL
//! sessions off the async runtime. Must not: write.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::db::{PgSession, Session};
use super::{BUSY_TIMEOUT, StoreError, pg};

/// A small pool of read connections: read-only ones to the mirror file, or PostgreSQL
/// sessions.
pub(super) struct Readers {
    pub(super) source: ReadSource,
    pub(super) idle: Mutex<Vec<Session>>,
}

pub(super) enum ReadSource {
    Sqlite(PathBuf),
    Postgres(Box<pg::Target>),
}

impl Readers {
    pub(super) fn take(&self) -> Result<Session, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        match &self.source {
            ReadSource::Sqlite(path) => {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|source| StoreError::Open {
                    path: path.clone(),
                    source,
                })?;
                conn.busy_timeout(BUSY_TIMEOUT)
                    .map_err(StoreError::sql("setting the busy timeout"))?;
                Ok(Session::Lite(conn))
            }
            ReadSource::Postgres(target) => Ok(Session::Pg(Box::new(RefCell::new(
                PgSession::new(target.connect().map_err(Box::new)?),
            )))),
        }
    }

    pub(super) fn give_back(&self, conn: Session) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.len() < 4 {
            idle.push(conn);
        }
    }
}

impl Drop for Readers {
    /// Idle PostgreSQL sessions are closed off the runtime (`close_off_runtime`).
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if idle.iter().any(|s| s.conn().is_postgres()) {
            close_off_runtime(idle);
        }
    }
}

/// Drops `sessions` on a thread of their own: a PostgreSQL client closes its connection by
/// blocking on its own runtime, which panics inside an async task.
pub(super) fn close_off_runtime<T: Send + 'static>(sessions: T) {
    let _ = std::thread::Builder::new()
        .name("mirror-close".into())
        .spawn(move || drop(sessions));
}
