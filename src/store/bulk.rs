//! Multi-row `INSERT` statements for bulk loads.
//!
//! Owns: turning a flat list of column values into `INSERT ... VALUES (...), (...)`
//! statements of up to `ROWS` rows each (on PostgreSQL one `COPY` instead). Must not: know tables or decide what to write.
//!
//! Written by hand because rusqlite has no bulk insert: one statement per row costs a
//! reset, a bind pass and (for `AUTOINCREMENT` tables) a `sqlite_sequence` write per row,
//! which on a first pull of 100,000 subscribers was a third of the store's time.

use super::db::{Conn, params_from_iter};

use super::StoreError;
use super::values::Col;

/// Rows per statement: 64 rows x 36 columns stays far below SQLite's 32,766 parameters.
const ROWS: usize = 64;

/// Rows to insert into one table: `head` is `INSERT INTO t (a, b, c)`, `width` the number
/// of columns, `values` the rows one after the other.
pub(crate) struct Bulk<'a> {
    head: &'static str,
    width: usize,
    values: Vec<Col<'a>>,
}

impl<'a> Bulk<'a> {
    pub(crate) fn new(head: &'static str, width: usize) -> Self {
        Self {
            head,
            width,
            values: Vec::new(),
        }
    }

    /// Adds one row; `row` must yield exactly `width` values.
    pub(crate) fn push(&mut self, row: impl IntoIterator<Item = Col<'a>>) {
        let before = self.values.len();
        self.values.extend(row);
        debug_assert_eq!(self.values.len() - before, self.width, "{}", self.head);
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Writes every row added so far and empties the list.
    pub(crate) fn flush(&mut self, conn: &Conn, what: &'static str) -> Result<(), StoreError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let target = self.head.trim_start_matches("INSERT INTO ");
        let values = self.values.iter().map(Col::as_ref);
        if let Some(copied) = conn.copy_in(target, self.width, values) {
            copied.map_err(StoreError::sql(what))?;
            self.values.clear();
            return Ok(());
        }
        for chunk in self.values.chunks(self.width * ROWS) {
            let rows = chunk.len() / self.width;
            conn.prepare_cached(&self.sql(rows))
                .and_then(|mut st| st.execute(params_from_iter(chunk)))
                .map_err(StoreError::sql(what))?;
        }
        self.values.clear();
        Ok(())
    }

    fn sql(&self, rows: usize) -> String {
        let mut sql = String::with_capacity(self.head.len() + 10 + rows * (self.width * 3 + 3));
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..self.width {
                if c > 0 {
                    sql.push(',');
                }
                sql.push('?');
            }
            sql.push(')');
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_row_across_chunk_boundaries() {
        let raw = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::Lite(&raw);
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)")
            .unwrap();
        let texts: Vec<String> = (0..150).map(|i| format!("v{i}")).collect();
        let mut bulk = Bulk::new("INSERT INTO t (a, b)", 2);
        for (i, t) in texts.iter().enumerate() {
            bulk.push([Col::Int(i as i64), Col::Str(t)]);
        }
        bulk.flush(&conn, "test insert").unwrap();
        assert!(bulk.is_empty());
        let (n, sum): (i64, i64) = conn
            .query_row("SELECT count(*), sum(a) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, sum), (150, (0..150).sum()));
        let b: String = conn
            .query_row("SELECT b FROM t WHERE a = 149", [], |r| r.get(0))
            .unwrap();
        assert_eq!(b, "v149");
        bulk.flush(&conn, "empty flush").unwrap();
    }
}
