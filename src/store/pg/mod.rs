//! The mirror on PostgreSQL (issue 13): where a mirror that outgrew one host goes.
//!
//! Owns: the PostgreSQL schema in native types (`schema.sql`, the same tables and columns as
//! the SQLite mirror), its version bookkeeping (`migrate`), `Target` (a `postgres://` URL,
//! its password from the URL or a file, and a name for messages that never shows the
//! password), and copying a SQLite mirror into a PostgreSQL database (`copy`). Must not:
//! speak HTTP, decide sync policy, or import the sync engine (as the rest of the store).
//!
//! Why the `postgres` crate (rust-postgres's blocking client over `tokio-postgres`): it is
//! the maintained native Rust client, speaks COPY for bulk loads, needs no C library, and its
//! blocking API fits how the store already works: statements run on the store's own
//! threads (the writer thread, blocking read tasks), never on the async runtime.
//!
//! `leader` is the leader/standby election and its fencing (the daemon's side of it is
//! `crate::daemon::ha`). Statements of the table files reach PostgreSQL through
//! `store::db`.

pub(crate) mod copy;
pub mod leader;
mod migrate;

use std::str::FromStr;
use std::time::Duration;

pub use copy::{CopyReport, copy_sqlite_mirror};
pub use migrate::{SCHEMA_TABLES, migrate, schema_version};

/// How long connecting may take before it fails with a message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything that can go wrong with a PostgreSQL mirror.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL does not parse.
    #[error(
        "the PostgreSQL URL is not valid ({reason}); write it as postgres://user[:password]@host[:port]/database"
    )]
    Url { reason: String },
    /// The password file could not be read.
    #[error("cannot read the PostgreSQL password file {path}: {source}")]
    PasswordFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Connecting or logging in failed.
    #[error(
        "cannot connect to PostgreSQL at {target}: {source}; check that the server runs, the host, port, user and password, and pg_hba.conf"
    )]
    Connect {
        target: String,
        #[source]
        source: postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL error at {target} while {context}: {}", detail(source))]
    Sql {
        target: String,
        context: String,
        #[source]
        source: postgres::Error,
    },
    /// Sending a table's rows failed (the connection broke during the copy).
    #[error(
        "copying {table} to PostgreSQL at {target} failed: {source}; nothing was kept, run the copy again"
    )]
    CopyStream {
        target: String,
        table: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The database holds a schema written by a newer release.
    #[error(
        "the PostgreSQL mirror at {target} has schema version {found} but this build knows only up to {known}; upgrade tariscope-sync"
    )]
    TooNew {
        target: String,
        found: u32,
        known: u32,
    },
    /// The server cannot fence a paused leader (no `idle_session_timeout`).
    #[error(
        "PostgreSQL at {target} is version {version} (server_version_num); a standby daemon needs PostgreSQL 14 or later to fence a paused leader: upgrade the server or run one daemon"
    )]
    TooOldForStandby { target: String, version: i32 },
    /// This daemon led but its session (and with it the leader lock) is gone or in doubt.
    #[error(
        "this daemon is no longer the leader for {scope} (PostgreSQL at {target}: {detail}); it writes nothing more and stands by"
    )]
    Deposed {
        target: String,
        scope: String,
        detail: String,
    },
    /// `mirror copy` into a database whose mirror tables hold rows.
    #[error(
        "the PostgreSQL mirror at {target} is not empty ({tables}); copying would mix two mirrors. Use an empty database, or --force to replace what it holds"
    )]
    NotEmpty { target: String, tables: String },
    /// After a copy, a table's row count differs from the source's (the copy was rolled back).
    #[error(
        "copying {table}: {copied} rows arrived in PostgreSQL but the SQLite mirror has {expected}; nothing was kept, please report this bug"
    )]
    CountMismatch {
        table: &'static str,
        expected: u64,
        copied: u64,
    },
    /// The SQLite mirror's tables are not the ones this build's PostgreSQL schema has.
    #[error(
        "the SQLite mirror's table {table} has columns [{sqlite}] but the PostgreSQL schema has [{postgres}]; please report this bug"
    )]
    ShapeMismatch {
        table: &'static str,
        sqlite: String,
        postgres: String,
    },
    /// Reading the SQLite mirror failed.
    #[error(transparent)]
    Source(#[from] super::StoreError),
}

use crate::store::db::pg::detail;

/// A PostgreSQL database to keep the mirror in.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Target").field(&self.shown).finish()
    }
}

impl Target {
    /// Parses `url` (`postgres://user[:password]@host[:port]/db`); `password_file`, when
    /// given, supplies the password instead of the URL (its content, trailing newline cut).
    pub fn parse(url: &str, password_file: Option<&std::path::Path>) -> Result<Target, PgError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PgError::Url {
                reason: "it must start with postgres://".into(),
            });
        }
        let mut config = postgres::Config::from_str(url).map_err(|e| PgError::Url {
            reason: e.to_string(),
        })?;
        if let Some(path) = password_file {
            let text = std::fs::read_to_string(path).map_err(|source| PgError::PasswordFile {
                path: path.to_path_buf(),
                source,
            })?;
            config.password(text.trim_end_matches(['\r', '\n']));
        }
        if config.get_dbname().is_none() {
            return Err(PgError::Url {
                reason: "it names no database (…/database at the end)".into(),
            });
        }
        if config.get_user().is_none() {
            return Err(PgError::Url {
                reason: "it names no user (postgres://user@…)".into(),
            });
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("tariscope-sync");
        let shown = shown(&config);
        Ok(Target { config, shown })
    }

    /// `user@host:port/db`, for messages and logs (never the password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Connects (blocking: call from a blocking thread, not the async runtime).
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        self.config
            .connect(postgres::NoTls)
            .map_err(|source| PgError::Connect {
                target: self.shown.clone(),
                source,
            })
    }

    /// Wraps a PostgreSQL error with this target and what we were doing.
    pub(crate) fn sql(
        &self,
        context: impl Into<String>,
    ) -> impl FnOnce(postgres::Error) -> PgError {
        let target = self.shown.clone();
        let context = context.into();
        move |source| PgError::Sql {
            target,
            context,
            source,
        }
    }
}

fn shown(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_never_shows_its_password() {
        let t = Target::parse("postgres://sync:s3cret@db.example:6543/mirror", None).unwrap();
        assert_eq!(t.shown(), "sync@db.example:6543/mirror");
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn a_password_file_supplies_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let t = Target::parse("postgres://sync@127.0.0.1/mirror", Some(&file)).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"from-file"[..]));
        let missing = Target::parse("postgres://sync@h/m", Some(&dir.path().join("none")));
        assert!(
            matches!(missing, Err(PgError::PasswordFile { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        for (url, says) in [
            ("mysql://u@h/db", "must start with postgres://"),
            ("postgres://u@h", "names no database"),
            ("postgres://h/db", "names no user"),
        ] {
            let e = Target::parse(url, None).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("postgres://user"),
                "{url}: {e}"
            );
        }
    }
}
