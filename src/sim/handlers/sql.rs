//! `sql`: read-only `SELECT`s against an in-memory SQLite copy of the emulator's data.
//!
//! Owns: building the copy (cached, rebuilt when the dataset's generation changes) and
//! the read-only checks (a single statement, `SELECT`/`WITH`, `Statement::readonly`,
//! `PRAGMA query_only`). Must not: write to the live dataset.

use std::sync::Mutex;

use rusqlite::{Connection, params};
use rust_decimal::prelude::ToPrimitive;

use crate::sim::dataset::Dataset;
use crate::sim::error::ApiError;
use crate::sim::params::Params;
use crate::sim::value::Val;

/// Rows returned at most.
const MAX_ROWS: usize = 10_000;

/// The cached copy and the generation it was built from.
#[derive(Default)]
pub struct SqlCache {
    inner: Mutex<Option<(u64, Connection)>>,
}

impl std::fmt::Debug for SqlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlCache")
    }
}

const SCHEMA: &str = "
CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE pbxs (id INTEGER PRIMARY KEY, nodeid INTEGER, name TEXT);
CREATE TABLE departments (id INTEGER PRIMARY KEY, nodeid INTEGER, parentid INTEGER, name TEXT);
CREATE TABLE subscribers (id INTEGER PRIMARY KEY, fullname TEXT, street TEXT, house TEXT, flat TEXT,
  email TEXT, abonenttype INTEGER, code TEXT, personalcode TEXT, contractid TEXT, accountid TEXT,
  departmentid INTEGER, nodeid INTEGER, rateplanid INTEGER, connectiondate TEXT);
CREATE TABLE dns (id INTEGER PRIMARY KEY, subscriberid INTEGER, pbxid INTEGER, dn TEXT, fromdate TEXT, description TEXT);
CREATE TABLE payments (paymentid INTEGER PRIMARY KEY, subscriberid INTEGER, paymentday TEXT, payment REAL, paymenttype INTEGER, bank TEXT);
CREATE TABLE charges (id INTEGER PRIMARY KEY, subscriberid INTEGER, recdate TEXT, fromdate TEXT, todate TEXT, servicename TEXT, charge REAL, numberofservices INTEGER);
";

fn build(ds: &Dataset) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO nodes VALUES (?1, ?2)")?;
        for n in &ds.nodes {
            st.execute(params![n.id, n.name])?;
        }
        let mut st = tx.prepare("INSERT INTO pbxs VALUES (?1, ?2, ?3)")?;
        for p in &ds.pbxs {
            st.execute(params![p.id, p.node_id, p.name])?;
        }
        let mut st = tx.prepare("INSERT INTO departments VALUES (?1, ?2, ?3, ?4)")?;
        for d in &ds.departments {
            st.execute(params![d.id, d.node_id, d.parent_id, d.name])?;
        }
        let mut st = tx.prepare(
            "INSERT INTO subscribers VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
        )?;
        let mut dn = tx.prepare("INSERT INTO dns VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for s in ds.subscribers.values() {
            st.execute(params![
                s.id,
                s.fullname,
                s.street,
                s.house,
                s.flat,
                s.email,
                s.abonenttype,
                s.edrpou,
                s.personalcode,
                s.contract_number,
                s.account_number,
                s.department_id,
                s.node_id,
                s.rateplan_id,
                s.connectiondate.map(|d| d.to_string()),
            ])?;
            for d in &s.dns {
                dn.execute(params![
                    d.id,
                    s.id,
                    d.pbx_id,
                    d.dn,
                    d.from_date.to_string(),
                    d.description
                ])?;
            }
        }
        let mut st = tx.prepare("INSERT INTO payments VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for p in &ds.payments {
            st.execute(params![
                p.payment_id,
                p.subscriber_id,
                p.payment_day.to_string(),
                p.amount.to_f64(),
                p.payment_type,
                p.bank
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO charges VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for c in &ds.charges {
            st.execute(params![
                c.id,
                c.subscriber_id,
                c.recdate.to_string(),
                c.fromdate.to_string(),
                c.todate.to_string(),
                c.servicename,
                c.amount.to_f64(),
                c.numberofservices
            ])?;
        }
    }
    tx.commit()?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn internal(e: rusqlite::Error) -> ApiError {
    ApiError::invalid(format!("query failed: {e}"))
}

/// Run the `query` parameter.
pub fn run(cache: &SqlCache, ds: &Dataset, p: &Params) -> Result<Val<'static>, ApiError> {
    let query = p.required_text("query")?;
    let head = query.trim_start().to_ascii_lowercase();
    if !(head.starts_with("select") || head.starts_with("with")) {
        return Err(ApiError::invalid(
            "the emulator's sql runs only read-only SELECT statements",
        ));
    }
    let mut guard = cache.inner.lock().unwrap_or_else(|p| p.into_inner());
    if guard
        .as_ref()
        .is_none_or(|(generation, _)| *generation != ds.generation)
    {
        let conn = build(ds)
            .map_err(|e| ApiError::invalid(format!("could not build the sql copy: {e}")))?;
        *guard = Some((ds.generation, conn));
    }
    let Some((_, conn)) = guard.as_ref() else {
        return Err(ApiError::invalid("the sql copy is unavailable"));
    };
    let mut stmt = conn.prepare(query).map_err(internal)?;
    if !stmt.readonly() {
        return Err(ApiError::invalid(
            "the emulator's sql runs only read-only SELECT statements",
        ));
    }
    let columns: Vec<Val<'static>> = stmt
        .column_names()
        .into_iter()
        .map(|c| Val::owned(c.to_owned()))
        .collect();
    let width = columns.len();
    let mut rows = stmt.query([]).map_err(internal)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        if out.len() >= MAX_ROWS {
            break;
        }
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            use rusqlite::types::ValueRef;
            cells.push(match row.get_ref(i).map_err(internal)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(n) => Val::Int(n),
                ValueRef::Real(f) => Val::Float(f),
                ValueRef::Text(t) => Val::owned(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Val::owned(format!("<{} bytes>", b.len())),
            });
        }
        out.push(Val::List(cells));
    }
    Ok(Val::Obj(vec![
        ("columns", Val::List(columns)),
        ("rows", Val::List(out)),
    ]))
}
