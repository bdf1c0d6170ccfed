//! `mirror copy`: a SQLite mirror copied whole into a PostgreSQL database.
//!
//! Owns: reading every table of the SQLite mirror in one read transaction (one consistent
//! snapshot), streaming it into PostgreSQL with `COPY ... FROM STDIN` (text format: the
//! server parses each value into its native type, so `'12.50'` becomes `numeric`, `'1'` a
//! `boolean`, an RFC 3339 text a `timestamptz`), setting the id sequences past the copied ids
//! (and past SQLite's `AUTOINCREMENT` counters, so no id is ever handed out twice), and
//! checking every table's row count before the one PostgreSQL transaction commits. Either
//! everything arrives or nothing does. Must not: take the jobs' locks or print (the command
//! does).

use std::io::Write;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{PgError, SCHEMA_TABLES, Target, migrate};
use crate::store::StoreError;

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Every table with the rows copied, in load order.
    pub tables: Vec<(&'static str, u64)>,
    /// Rows the target held before and `--force` replaced.
    pub replaced: u64,
}

/// Copies the SQLite mirror at `sqlite` (already at this build's schema version: open it
/// with `Store::open` first) into `target`, creating the schema there. Refuses a target whose
/// mirror tables hold rows unless `force`, which empties them in the same transaction.
/// Blocking.
pub fn copy_sqlite_mirror(
    sqlite: &Path,
    target: &Target,
    force: bool,
) -> Result<CopyReport, PgError> {
    let source = open_source(sqlite)?;
    let mut client = target.connect()?;
    migrate(&mut client, target)?;
    let mut tx = client
        .transaction()
        .map_err(target.sql("starting the copy"))?;
    let mut held = Vec::new();
    let mut replaced = 0;
    for table in SCHEMA_TABLES {
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])
            .map_err(target.sql(format!("counting {table}")))?
            .get(0);
        if n > 0 {
            held.push(format!("{table}: {n} rows"));
            replaced += n as u64;
        }
    }
    if !held.is_empty() {
        if !force {
            return Err(PgError::NotEmpty {
                target: target.shown().to_owned(),
                tables: held.join(", "),
            });
        }
        let all = SCHEMA_TABLES.iter().map(|t| quote(t)).collect::<Vec<_>>();
        tx.batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", all.join(", ")))
            .map_err(target.sql("emptying the target (--force)"))?;
    }
    // One snapshot of the SQLite mirror for every table: a daemon writing meanwhile does not
    // tear the copy.
    source
        .execute_batch("BEGIN")
        .map_err(StoreError::sql("starting the read transaction"))?;
    let mut tables = Vec::new();
    for table in SCHEMA_TABLES {
        let columns = same_columns(&source, &mut tx, target, table)?;
        let copied = copy_table(&source, &mut tx, target, table, &columns)?;
        let expected: i64 = source
            .query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
                r.get(0)
            })
            .map_err(StoreError::sql("counting a table of the SQLite mirror"))?;
        let arrived: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])
            .map_err(target.sql(format!("counting {table} after the copy")))?
            .get(0);
        if copied != expected as u64 || arrived != expected {
            return Err(PgError::CountMismatch {
                table,
                expected: expected as u64,
                copied: arrived as u64,
            });
        }
        if columns.iter().any(|c| c == "id") {
            advance_identity(&source, &mut tx, target, table)?;
        }
        tables.push((*table, copied));
    }
    tx.commit().map_err(target.sql("committing the copy"))?;
    Ok(CopyReport { tables, replaced })
}

fn open_source(path: &Path) -> Result<Connection, PgError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::sql("setting the busy timeout"))?;
    Ok(conn)
}

/// The table's columns in PostgreSQL's order, after checking SQLite has the same set.
fn same_columns(
    source: &Connection,
    tx: &mut postgres::Transaction<'_>,
    target: &Target,
    table: &'static str,
) -> Result<Vec<String>, PgError> {
    let mut sqlite: Vec<String> = source
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(StoreError::sql("reading a table's columns"))?;
    let postgres: Vec<String> = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .map_err(target.sql(format!("reading the columns of {table}")))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sorted = postgres.clone();
    sorted.sort();
    sqlite.sort();
    if sqlite != sorted {
        return Err(PgError::ShapeMismatch {
            table,
            sqlite: sqlite.join(", "),
            postgres: sorted.join(", "),
        });
    }
    Ok(postgres)
}

/// Streams one table; returns the rows PostgreSQL took.
fn copy_table(
    source: &Connection,
    tx: &mut postgres::Transaction<'_>,
    target: &Target,
    table: &'static str,
    columns: &[String],
) -> Result<u64, PgError> {
    let list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut select = source
        .prepare(&format!("SELECT {list} FROM {}", quote(table)))
        .map_err(StoreError::sql("reading a table of the SQLite mirror"))?;
    let mut rows = select
        .query([])
        .map_err(StoreError::sql("reading a table of the SQLite mirror"))?;
    let mut writer = tx
        .copy_in(&format!("COPY {} ({list}) FROM STDIN", quote(table)))
        .map_err(target.sql(format!("starting to copy {table}")))?;
    let mut line = Vec::with_capacity(1024);
    let mut failed = None;
    while let Some(row) = rows
        .next()
        .map_err(StoreError::sql("reading a table of the SQLite mirror"))?
    {
        line.clear();
        for i in 0..columns.len() {
            if i > 0 {
                line.push(b'\t');
            }
            let value = row
                .get_ref(i)
                .map_err(StoreError::sql("reading a value of the SQLite mirror"))?;
            encode(value, &mut line);
        }
        line.push(b'\n');
        // A write fails only when the server has refused the COPY; `finish` says why.
        if let Err(e) = writer.write_all(&line) {
            failed = Some(e);
            break;
        }
    }
    let copied = writer.finish().map_err(|e| {
        // Class 22 (data exception): a value SQLite's loose typing let in (a desired row
        // written by hand) that the native column refuses; the server's message names it.
        let bad_value = e.code().is_some_and(|c| c.code().starts_with("22"));
        let context = if bad_value {
            format!(
                "copying {table} (a value in the SQLite mirror does not fit the column's type; fix or delete that row, then copy again)"
            )
        } else {
            format!("copying {table}")
        };
        target.sql(context)(e)
    })?;
    if let Some(e) = failed {
        return Err(PgError::CopyStream {
            target: target.shown().to_owned(),
            table,
            source: e,
        });
    }
    Ok(copied)
}

/// Sets `table`'s id sequence past both the largest copied id and SQLite's `AUTOINCREMENT`
/// counter (ids of deleted rows are never reused there, so not here either).
fn advance_identity(
    source: &Connection,
    tx: &mut postgres::Transaction<'_>,
    target: &Target,
    table: &'static str,
) -> Result<(), PgError> {
    let max_id: Option<i64> = source
        .query_row(&format!("SELECT max(id) FROM {}", quote(table)), [], |r| {
            r.get(0)
        })
        .map_err(StoreError::sql("reading the largest id"))?;
    let counter: Option<i64> = source
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(StoreError::sql("reading the AUTOINCREMENT counter"))?;
    let next = max_id.max(counter).unwrap_or(0);
    if next < 1 {
        return Ok(());
    }
    let identity: bool = tx
        .query_one(
            "SELECT pg_get_serial_sequence($1, 'id') IS NOT NULL",
            &[&table],
        )
        .map_err(target.sql(format!("looking up the id sequence of {table}")))?
        .get(0);
    if identity {
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
            &[&table, &next],
        )
        .map_err(target.sql(format!("advancing the id sequence of {table}")))?;
    }
    Ok(())
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// One value in COPY's text format: `\N` for NULL, backslash, tab, newline and carriage
/// return escaped; a BLOB (only ever in a text column, written there by hand) as `x'..'`.
pub(crate) fn encode(value: ValueRef<'_>, out: &mut Vec<u8>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"\\N"),
        ValueRef::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
        ValueRef::Text(t) => escape(t, out),
        ValueRef::Blob(b) => {
            out.extend_from_slice(b"x'");
            for byte in b {
                out.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
            out.push(b'\'');
        }
    }
}

fn escape(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_would_end_a_field_or_row() {
        let mut out = Vec::new();
        encode(ValueRef::Text(b"a\tb\\c\nd\re"), &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re");
        out.clear();
        encode(ValueRef::Null, &mut out);
        assert_eq!(out, b"\\N");
        out.clear();
        encode(ValueRef::Blob(&[0xde, 0x01]), &mut out);
        assert_eq!(out, b"x'de01'");
    }
}
