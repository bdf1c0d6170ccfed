//! The one connection type every table file speaks, over SQLite or PostgreSQL.
//!
//! Owns: `Conn` (a borrowed SQLite connection or PostgreSQL session), its statements, rows
//! and parameters, with the shape of rusqlite's API (`execute`, `query_row`,
//! `prepare_cached`, `query_map`, `params!`, `.optional()`), so a table file's SQL and its
//! row mapping are written once for both backends; `DbError`, either engine's error.
//! Parameters are rusqlite values and rows are read with rusqlite's `FromSql`: on
//! PostgreSQL parameters travel in text form, which the server parses into the column's
//! native type (`date`, `numeric`, `boolean`, `timestamptz`, `jsonb`), and native values
//! come back as the SQLite mirror stores them (`pg` does both). Must not: know tables.
//!
//! Written by hand: no crate puts one statement API over both rusqlite and rust-postgres
//! (sqlx does, but would replace the whole store with an async one and a second SQLite
//! driver); this layer is the thin part of that.
//!
//! SQL written once must be portable: `?N` placeholders (rewritten to `$N`), `ON CONFLICT`
//! rather than `INSERT OR IGNORE`, `RETURNING` rather than `last_insert_rowid`, `CAST(?N
//! AS TEXT)` where PostgreSQL cannot infer a parameter's type. Where the engines differ
//! (JSON functions), `Conn::is_postgres` picks the text.

pub(crate) mod pg;

use std::cell::RefCell;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, Value, ValueRef};

pub use pg::PgSession;
pub use rusqlite::params;

/// An error of either engine.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg::detail(.0))]
    Postgres(#[from] postgres::Error),
    /// Sending rows to PostgreSQL's `COPY` failed (the connection broke).
    #[error("sending rows to PostgreSQL failed: {0}")]
    Copy(std::io::Error),
}

impl DbError {
    fn no_rows(&self) -> bool {
        matches!(self, DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }
}

/// `query_row(...).optional()`: no row is `None`, as with rusqlite.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalExtension<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.no_rows() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement's parameters: `params![...]`, `[]`, an array, or `params_from_iter`.
pub trait Params {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for &[&dyn ToSql] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Params for [&dyn ToSql; 0] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let refs: Vec<&dyn ToSql> = self.iter().map(|p| p as &dyn ToSql).collect();
                f(&refs)
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8);

/// Parameters from an iterator (rusqlite's `params_from_iter`).
pub struct ParamsFromIter<I>(I);

pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let items: Vec<I::Item> = self.0.into_iter().collect();
        let refs: Vec<&dyn ToSql> = items.iter().map(|p| p as &dyn ToSql).collect();
        f(&refs)
    }
}

/// A connection of either engine, borrowed for one command or read.
#[derive(Clone, Copy)]
pub enum Conn<'c> {
    Lite(&'c rusqlite::Connection),
    Pg(&'c RefCell<PgSession>),
}

impl<'c> Conn<'c> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// The SQLite connection; `None` on PostgreSQL (for SQLite-only housekeeping).
    pub fn sqlite(&self) -> Option<&'c rusqlite::Connection> {
        match self {
            Conn::Lite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    /// Rows inserted, updated or deleted through this connection since it opened.
    pub fn total_changes(&self) -> u64 {
        match self {
            Conn::Lite(c) => c.total_changes(),
            Conn::Pg(s) => s.borrow().changes(),
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize, DbError> {
        match self {
            Conn::Lite(c) => params.with(|p| Ok(c.execute(sql, p)?)),
            Conn::Pg(s) => params.with(|p| s.borrow_mut().execute(sql, p, true)),
        }
    }

    /// PostgreSQL only: `values` (rows of `width`) into `target` (`t (a, b, c)`) by COPY;
    /// `None` on SQLite (whose multi-row inserts are as fast: `store::bulk`).
    pub fn copy_in<'v>(
        &self,
        target: &str,
        width: usize,
        values: impl Iterator<Item = ValueRef<'v>>,
    ) -> Option<Result<u64, DbError>> {
        match self {
            Conn::Lite(_) => None,
            Conn::Pg(s) => Some(s.borrow_mut().copy_in(target, width, values)),
        }
    }

    /// Runs statements without parameters, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(s) => s.borrow_mut().batch(sql),
        }
    }

    /// The first row of a query through `f`; no row is `QueryReturnedNoRows` (see
    /// `OptionalExtension`).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_, '_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        match self {
            Conn::Lite(c) => params.with(|p| Ok(c.query_row(sql, p, |r| f(&Row::Lite(r)))?)),
            Conn::Pg(s) => {
                let rows = params.with(|p| s.borrow_mut().query(sql, p, true))?;
                let first = rows.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                Ok(f(&Row::Pg(first))?)
            }
        }
    }

    /// A statement to run, compiled for this use only. On PostgreSQL it is planned for the
    /// parameters it gets: use it where a plan cached while a table was small would stay
    /// wrong as it grows (a look-up of many ids at once).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'c>, DbError> {
        match self {
            Conn::Lite(c) => Ok(Stmt::Lite(c.prepare(sql)?)),
            Conn::Pg(s) => Ok(Stmt::Pg(s, sql.to_owned(), false)),
        }
    }

    /// As `prepare`, kept compiled for the next use of the same text.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>, DbError> {
        match self {
            Conn::Lite(c) => Ok(Stmt::LiteCached(c.prepare_cached(sql)?)),
            Conn::Pg(s) => Ok(Stmt::Pg(s, sql.to_owned(), true)),
        }
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Lite(rusqlite::Statement<'c>),
    LiteCached(rusqlite::CachedStatement<'c>),
    /// The session, the SQL, and whether to keep it prepared.
    Pg(&'c RefCell<PgSession>, String, bool),
}

impl<'c> Stmt<'c> {
    fn lite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match self {
            Stmt::Lite(s) => Some(s),
            Stmt::LiteCached(s) => Some(s),
            Stmt::Pg(..) => None,
        }
    }

    pub fn execute(&mut self, params: impl Params) -> Result<usize, DbError> {
        if let Some(st) = self.lite() {
            return params.with(|p| Ok(st.execute(p)?));
        }
        let Stmt::Pg(s, sql, cached) = self else {
            unreachable!()
        };
        params.with(|p| s.borrow_mut().execute(sql, p, *cached))
    }

    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_, '_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        if let Some(st) = self.lite() {
            return params.with(|p| Ok(st.query_row(p, |r| f(&Row::Lite(r)))?));
        }
        let Stmt::Pg(s, sql, cached) = self else {
            unreachable!()
        };
        let rows = params.with(|p| s.borrow_mut().query(sql, p, *cached))?;
        let first = rows.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        Ok(f(&Row::Pg(first))?)
    }

    /// Every row through `f`, as an iterator.
    pub fn query_map<T, F>(
        &mut self,
        params: impl Params,
        f: F,
    ) -> Result<MappedRows<'_, F>, DbError>
    where
        F: FnMut(&Row<'_, '_>) -> rusqlite::Result<T>,
    {
        let rows = match self {
            Stmt::Lite(st) => Rows::Lite(params.with(|p| st.query(p))?),
            Stmt::LiteCached(st) => Rows::Lite(params.with(|p| st.query(p))?),
            Stmt::Pg(s, sql, cached) => Rows::Pg(
                params
                    .with(|p| s.borrow_mut().query(sql, p, *cached))?
                    .into_iter(),
            ),
        };
        Ok(MappedRows { rows, f })
    }

    /// The names of the result's columns.
    pub fn column_names(&mut self) -> Result<Vec<String>, DbError> {
        if let Some(st) = self.lite() {
            return Ok(st.column_names().iter().map(|n| n.to_string()).collect());
        }
        let Stmt::Pg(s, sql, _) = self else {
            unreachable!()
        };
        s.borrow_mut().column_names(sql)
    }
}

enum Rows<'s> {
    Lite(rusqlite::Rows<'s>),
    Pg(std::vec::IntoIter<Vec<Value>>),
}

/// The rows of `Stmt::query_map`, each through the caller's function.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(&Row<'_, '_>) -> rusqlite::Result<T>,
{
    type Item = Result<T, DbError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Lite(rows) => match rows.next() {
                Ok(Some(r)) => Some((self.f)(&Row::Lite(r)).map_err(DbError::from)),
                Ok(None) => None,
                Err(e) => Some(Err(e.into())),
            },
            Rows::Pg(rows) => rows
                .next()
                .map(|cells| (self.f)(&Row::Pg(&cells)).map_err(DbError::from)),
        }
    }
}

/// A result row: read its columns by index with any rusqlite `FromSql` type.
pub enum Row<'r, 's> {
    Lite(&'r rusqlite::Row<'s>),
    Pg(&'r [Value]),
}

impl Row<'_, '_> {
    pub fn get<I: ColumnIndex, T: FromSql>(&self, idx: I) -> rusqlite::Result<T> {
        let idx = idx.index();
        match self {
            Row::Lite(r) => r.get(idx),
            Row::Pg(cells) => {
                let cell = cells
                    .get(idx)
                    .ok_or(rusqlite::Error::InvalidColumnIndex(idx))?;
                let value = ValueRef::from(cell);
                T::column_result(value).map_err(|e| match e {
                    FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(idx, String::new(), value.data_type())
                    }
                    FromSqlError::OutOfRange(i) => rusqlite::Error::IntegralValueOutOfRange(idx, i),
                    other => rusqlite::Error::FromSqlConversionFailure(
                        idx,
                        value.data_type(),
                        Box::new(other),
                    ),
                })
            }
        }
    }
}

/// A column index (by position only: names read the same on both engines only by position).
pub trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A connection owned by a thread or a pool: what a `Conn` borrows.
pub enum Session {
    Lite(rusqlite::Connection),
    Pg(Box<RefCell<PgSession>>),
}

impl Session {
    pub fn conn(&self) -> Conn<'_> {
        match self {
            Session::Lite(c) => Conn::Lite(c),
            Session::Pg(s) => Conn::Pg(s),
        }
    }
}
