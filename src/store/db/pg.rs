//! A PostgreSQL session behind `Conn`: statements, parameters and values.
//!
//! Owns: one `postgres::Client` with its statement cache, the rewrite of SQLite's `?N`
//! placeholders to `$N`, parameters sent in text form (the server parses them into the
//! column's native type, as `COPY` does), native result values turned back into the SQLite
//! mirror's representation (dates `yyyy-mm-dd`, decimals as text with their scale, flags 0/1,
//! timestamps RFC 3339 UTC, JSON as text), and the count of rows changed. Must not: know
//! tables.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::DbError;

/// Statements kept prepared per session (bulk inserts of every row count included).
const CACHE: usize = 512;

/// One connection to the PostgreSQL mirror.
pub struct PgSession {
    client: postgres::Client,
    cache: HashMap<String, postgres::Statement>,
    changes: u64,
}

impl PgSession {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client,
            cache: HashMap::new(),
            changes: 0,
        }
    }

    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    /// Rows inserted, updated or deleted through this session.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// `sql` prepared: from the cache when `cached` (a named statement kept for the session,
    /// planned generically after five runs), else for this run only (planned for its
    /// parameters).
    fn statement(&mut self, sql: &str, cached: bool) -> Result<postgres::Statement, DbError> {
        if !cached {
            return Ok(self.client.prepare(&placeholders(sql))?);
        }
        if let Some(st) = self.cache.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&placeholders(sql))?;
        if self.cache.len() >= CACHE {
            self.cache.clear();
        }
        self.cache.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        cached: bool,
    ) -> Result<usize, DbError> {
        let st = self.statement(sql, cached)?;
        let n = with_params(params, |p| self.client.execute(&st, p))??;
        self.changes += n;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        cached: bool,
    ) -> Result<Vec<Vec<Value>>, DbError> {
        let st = self.statement(sql, cached)?;
        let rows = with_params(params, |p| self.client.query(&st, p))??;
        // `INSERT/UPDATE/DELETE ... RETURNING` answers one row per row changed; SQLite's
        // `total_changes()` counts them, so does this.
        let head = sql.trim_start().get(..6).unwrap_or_default();
        if ["INSERT", "UPDATE", "DELETE"]
            .iter()
            .any(|k| head.eq_ignore_ascii_case(k))
        {
            self.changes += rows.len() as u64;
        }
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Cell>(i).map(|c| c.0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(DbError::from)
            })
            .collect()
    }

    /// `values` (rows of `width`) into `target` (`t (a, b, c)`) by one `COPY ... FROM
    /// STDIN` in text form: no statement to parse and plan, no parameters to bind.
    pub(super) fn copy_in<'v>(
        &mut self,
        target: &str,
        width: usize,
        values: impl Iterator<Item = ValueRef<'v>>,
    ) -> Result<u64, DbError> {
        use std::io::Write;
        let mut writer = self.client.copy_in(&format!("COPY {target} FROM STDIN"))?;
        let mut buf = Vec::with_capacity(64 * 1024);
        for (i, v) in values.enumerate() {
            if i % width != 0 {
                buf.push(b'\t');
            }
            crate::store::pg::copy::encode(v, &mut buf);
            if i % width == width - 1 {
                buf.push(b'\n');
                if buf.len() >= 1 << 20 {
                    writer.write_all(&buf).map_err(DbError::Copy)?;
                    buf.clear();
                }
            }
        }
        writer.write_all(&buf).map_err(DbError::Copy)?;
        let n = writer.finish()?;
        self.changes += n;
        Ok(n)
    }

    pub(super) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.client.batch_execute(sql)?)
    }

    pub(super) fn column_names(&mut self, sql: &str) -> Result<Vec<String>, DbError> {
        let st = self.statement(sql, true)?;
        Ok(st.columns().iter().map(|c| c.name().to_owned()).collect())
    }
}

/// Runs `f` with `params` as PostgreSQL parameters.
fn with_params<R>(
    params: &[&dyn rusqlite::ToSql],
    f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R,
) -> Result<R, DbError> {
    let outputs = params
        .iter()
        .map(|p| p.to_sql())
        .collect::<rusqlite::Result<Vec<ToSqlOutput<'_>>>>()?;
    let texts = outputs
        .iter()
        .map(|o| match o {
            ToSqlOutput::Borrowed(v) => Ok(Param(*v)),
            ToSqlOutput::Owned(v) => Ok(Param(ValueRef::from(v))),
            _ => Err(rusqlite::Error::ToSqlConversionFailure(
                "a parameter kind PostgreSQL cannot take".into(),
            )),
        })
        .collect::<rusqlite::Result<Vec<Param<'_>>>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|t| t as &(dyn ToSql + Sync)).collect();
    Ok(f(&refs))
}

/// `?N` to `$N`; a bare `?` numbered after the highest so far, as SQLite does. Quoted
/// text and identifiers are left alone.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut highest = 0u32;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = digits.parse().unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// A parameter in text form: the server parses it as the column's type wants.
#[derive(Debug)]
struct Param<'a>(ValueRef<'a>);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            ValueRef::Null => return Ok(IsNull::Yes),
            ValueRef::Integer(i) if *ty == Type::BOOL => {
                out.extend_from_slice(if i != 0 { b"t" } else { b"f" })
            }
            ValueRef::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
            ValueRef::Text(t) => out.extend_from_slice(t),
            ValueRef::Blob(b) => {
                out.extend_from_slice(b"\\x");
                for byte in b {
                    out.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> postgres::types::Format {
        postgres::types::Format::Text
    }

    to_sql_checked!();
}

/// A native value read back as the SQLite mirror stores it.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = |s: String| Ok(Cell(Value::Text(s)));
        match *ty {
            Type::BOOL => Ok(Cell(Value::Integer(i64::from(bool::from_sql(ty, raw)?)))),
            Type::INT2 => Ok(Cell(Value::Integer(i16::from_sql(ty, raw)?.into()))),
            Type::INT4 => Ok(Cell(Value::Integer(i32::from_sql(ty, raw)?.into()))),
            Type::INT8 => Ok(Cell(Value::Integer(i64::from_sql(ty, raw)?))),
            Type::OID => Ok(Cell(Value::Integer(u32::from_sql(ty, raw)?.into()))),
            Type::FLOAT4 => Ok(Cell(Value::Real(f32::from_sql(ty, raw)?.into()))),
            Type::FLOAT8 => Ok(Cell(Value::Real(f64::from_sql(ty, raw)?))),
            Type::NUMERIC => text(numeric_text(raw)?),
            Type::DATE => text(crate::store::values::date_text(
                chrono::NaiveDate::from_sql(ty, raw)?,
            )),
            Type::TIMESTAMPTZ => text(
                chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
            Type::JSON | Type::JSONB => text(serde_json::Value::from_sql(ty, raw)?.to_string()),
            Type::BYTEA => Ok(Cell(Value::Blob(<Vec<u8>>::from_sql(ty, raw)?))),
            _ => text(String::from_sql(ty, raw)?),
        }
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
                | Type::DATE
                | Type::TIMESTAMPTZ
                | Type::JSON
                | Type::JSONB
                | Type::BYTEA
        ) || <String as FromSql>::accepts(ty)
    }
}

/// A `numeric` in binary form as text with its scale (`370.00` stays `370.00`, as SQLite
/// keeps a desired row's text). By hand: rust_decimal's decoder drops the scale and stops at
/// 28 digits, and the format is four fields and base-10,000 digits.
fn numeric_text(raw: &[u8]) -> Result<String, Box<dyn Error + Sync + Send>> {
    let field = |i: usize| -> Result<u16, Box<dyn Error + Sync + Send>> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a numeric value cut short".into())
    };
    let ndigits = usize::from(field(0)?);
    let weight = i32::from(field(2)? as i16);
    let (sign, dscale) = (field(4)?, usize::from(field(6)?));
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| field(8 + 2 * i))
        .collect::<Result<Vec<u16>, _>>()?;
    // The base-10,000 digit of weight `w` (10,000^w), 0 where none is sent.
    let group = |w: i32| {
        usize::try_from(weight - w)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(weight).to_string());
        for w in (0..weight).rev() {
            out.push_str(&format!("{:04}", group(w)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut w = -1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(w)));
            w -= 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

/// The server's message with its detail and hint, which `postgres::Error`'s own Display
/// leaves out.
pub(crate) fn detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(d) = db.detail() {
                text.push_str(&format!(" ({d})"));
            }
            if let Some(w) = db.where_() {
                text.push_str(&format!(" [{w}]"));
            }
            if let Some(h) = db.hint() {
                text.push_str(&format!("; hint: {h}"));
            }
            text
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{numeric_text, placeholders};

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for field in [digits.len() as u16, weight as u16, sign, dscale] {
            raw.extend(field.to_be_bytes());
        }
        for d in digits {
            raw.extend(d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_read_back_with_their_scale() {
        for (raw, text) in [
            (numeric(0, 0, 2, &[370]), "370.00"),
            (numeric(-1, 0, 4, &[12]), "0.0012"),
            (numeric(-2, 0, 6, &[1200]), "0.000012"),
            (numeric(-2, 0, 8, &[12]), "0.00000012"),
            (numeric(1, 0x4000, 1, &[1, 2345, 6000]), "-12345.6"),
            (numeric(2, 0, 0, &[7]), "700000000"),
            (numeric(0, 0, 0, &[]), "0"),
            (numeric(0, 0xC000, 0, &[]), "NaN"),
        ] {
            assert_eq!(numeric_text(&raw).unwrap(), text);
        }
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            placeholders("SELECT ?1, ?, '?', \"a?\" FROM t WHERE x = ?3 AND y = ?"),
            "SELECT $1, $2, '?', \"a?\" FROM t WHERE x = $3 AND y = $4"
        );
        assert_eq!(placeholders("VALUES (?,?),(?,?)"), "VALUES ($1,$2),($3,$4)");
    }
}
