//! The store's error type.
//!
//! Owns: `StoreError`, one variant per way the mirror can fail, each keeping its source and
//! telling the operator what to do. Must not: hide the underlying SQLite, PostgreSQL or I/O error.

use std::path::PathBuf;
use std::sync::Arc;

use super::db::DbError;

/// Everything that can go wrong in the mirror (SQLite or PostgreSQL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The folder of the mirror file could not be created or the file could not be created.
    #[error(
        "cannot create the mirror file {path}: {source}; check that the folder is writable by this user"
    )]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused to open the file.
    #[error(
        "cannot open the mirror database {path}: {source}; check the path and that it is a SQLite file"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed to apply; the mirror is left at the previous version.
    #[error(
        "migration {version} ({name}) failed: {source}; the mirror stays at the previous version"
    )]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer release.
    #[error(
        "the mirror has schema version {found} but this build knows only up to {known}; upgrade tariscope-sync"
    )]
    TooNew { found: u32, known: u32 },
    /// A statement failed.
    #[error("mirror database error while {context}: {source}")]
    Sql {
        context: &'static str,
        #[source]
        source: DbError,
    },
    /// The batch transaction this write was part of failed to commit (disk full, I/O error).
    #[error(
        "the write transaction failed to commit: {source}; check free disk space and file permissions"
    )]
    Commit {
        #[source]
        source: Arc<DbError>,
    },
    /// A stored value could not be turned back into a domain value (the file was edited by hand?).
    #[error(
        "corrupt value in {table}.{column}: {value:?}; the row was edited outside tariscope-sync"
    )]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    /// The writer thread has stopped (it panicked or the store was shut down).
    #[error("the mirror's writer thread has stopped; restart tariscope-sync")]
    WriterGone,
    /// A write command panicked; it was rolled back and the writer keeps running.
    #[error("a mirror write failed on an internal error ({0}); please report this bug")]
    Bug(String),
    /// An earlier grouped write of the same job run failed (its error was reported where it
    /// happened); nothing more of the run is written, so no checkpoint covers lost data.
    #[error(
        "an earlier write of this run failed, so this one was not attempted; see the first error"
    )]
    EarlierWriteFailed,
    /// `confirm-removals` named a run the mirror does not know.
    #[error(
        "no run {0} in the mirror; `tariscope-sync status` shows the runs that held removals back"
    )]
    NoSuchRun(i64),
    /// The PostgreSQL mirror could not be reached, migrated or led.
    #[error(transparent)]
    Postgres(#[from] Box<super::pg::PgError>),
    /// A blocking read task failed to run.
    #[error("a mirror read task failed: {0}")]
    ReadTask(String),
}

impl StoreError {
    /// Wraps a database error (of either engine) with what we were doing.
    pub(crate) fn sql<E: Into<DbError>>(context: &'static str) -> impl FnOnce(E) -> StoreError {
        move |source| StoreError::Sql {
            context,
            source: source.into(),
        }
    }
}
