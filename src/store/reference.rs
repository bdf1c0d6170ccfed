//! The reference tables: `tariff_plans`, `tariffs`, `services`, `system_info`.
//!
//! Owns: replacing each table's content with what the API answered when it changed: rows are
//! upserted (unchanged rows not written) and rows the answer no longer holds are deleted.
//! Must not: keep history (reference data has none in the mirror).

use std::collections::HashSet;

use super::db::{Conn, params};
use rusqlite::types::Value;

use super::removals::{self, HeldBack, RemovalLimit};
use super::upsert::{Table, UpsertCounts, upsert};
use super::values::{date, dec, flag, int, text};
use super::{Store, StoreError};
use crate::model::{Code, Service, SystemInfo, Tariff, TariffPlan};

/// What a reference replacement did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceCounts {
    pub upserts: UpsertCounts,
    pub removed: u64,
    /// Deletions held back because they were over the limit (see `removals`).
    pub held: Option<HeldBack>,
}

/// The run replacing a table and its removal limit; `None`: delete whatever is gone.
pub type Guard = Option<(i64, RemovalLimit)>;

const PLANS: Table = Table {
    name: "tariff_plans",
    keys: &["id"],
    data: &["name", "raw"],
    first_seen: false,
};

const SERVICES: Table = Table {
    name: "services",
    keys: &["id"],
    data: &["name", "raw"],
    first_seen: false,
};

const TARIFFS: Table = Table {
    name: "tariffs",
    keys: &["id"],
    data: &[
        "name",
        "provider_id",
        "parameters_id",
        "plan_id",
        "active_date",
        "currency_id",
        "value",
        "roundto",
        "freeseconds",
        "subtract_seconds",
        "roundcostto",
        "rounddurationdown",
        "roundcostdown",
        "roundfirstminute",
        "noaccount",
        "accountdescription",
        "accountdns",
        "minimumduration",
        "stages",
        "minimumcost",
        "raw",
    ],
    first_seen: false,
};

const SYSTEM: Table = Table {
    name: "system_info",
    keys: &["id"],
    data: &["version", "database", "build", "serial", "edition"],
    first_seen: false,
};

/// The raw fields as a JSON object (keys sorted), stored in the `raw` column.
fn raw_json(raw: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, serde_json::Value> = raw
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    Value::Text(serde_json::Value::Object(map).to_string())
}

/// Upserts `rows` (id, data) and deletes the ids of the table not among them, unless
/// `guard`'s limit holds the deletions back (an empty answer always does when the table has
/// rows): then they are recorded in `held_removals` for `confirm-removals`.
fn replace(
    conn: &Conn,
    t: &Table,
    rows: Vec<(i64, Vec<Value>)>,
    guard: Guard,
    now: &str,
) -> Result<ReferenceCounts, StoreError> {
    let listed = rows.len() as u64;
    let sql = t.sql();
    let mut counts = ReferenceCounts::default();
    let mut keep = HashSet::new();
    for (id, data) in rows {
        if !keep.insert(id) {
            tracing::warn!(
                table = t.name,
                id,
                "the API listed the same id twice; keeping the first"
            );
            continue;
        }
        counts
            .upserts
            .count(upsert(conn, t, &sql, vec![Value::Integer(id)], data, now)?);
    }
    let existing: Vec<i64> = conn
        .prepare(&format!("SELECT id FROM {}", t.name))
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(StoreError::sql("listing reference rows"))?;
    let of = existing.len() as u64;
    let gone: Vec<i64> = existing
        .into_iter()
        .filter(|id| !keep.contains(id))
        .collect();
    let n = gone.len() as u64;
    if let Some((run_id, limit)) = guard
        && n > 0
        && ((listed == 0 && of > 0) || limit.exceeded(n, of))
    {
        removals::record(
            conn,
            run_id,
            "reference",
            gone.iter()
                .map(|id| (format!("{}:{id}", t.name), t.name.to_owned())),
        )?;
        counts.held = Some(HeldBack {
            scope: t.name.to_owned(),
            held: n,
            of,
        });
        return Ok(counts);
    }
    for id in gone {
        conn.execute(
            &format!("DELETE FROM {} WHERE id = ?1", t.name),
            params![id],
        )
        .map_err(StoreError::sql("deleting a reference row"))?;
        counts.removed += 1;
    }
    Ok(counts)
}

fn tariff_row(t: &Tariff) -> (i64, Vec<Value>) {
    let code = |c: Option<Code>| int(c.map(|c| c.0));
    (
        t.id,
        vec![
            text(&t.name),
            int(t.provider_id),
            int(t.parameters_id),
            int(t.plan_id),
            date(t.active_date),
            int(t.currency_id),
            dec(t.value),
            code(t.roundto),
            int(t.freeseconds),
            int(t.subtract_seconds),
            code(t.roundcostto),
            flag(t.rounddurationdown),
            flag(t.roundcostdown),
            flag(t.roundfirstminute),
            flag(t.noaccount),
            text(&t.accountdescription),
            flag(t.accountdns),
            int(t.minimumduration),
            code(t.stages),
            dec(t.minimumcost),
            raw_json(&t.raw),
        ],
    )
}

/// Deletes a held reference row (`<table>:<id>`) if it is still there.
pub(super) fn delete_held(conn: &Conn, subject: &str) -> Result<bool, StoreError> {
    let Some((table, id)) = subject.split_once(':') else {
        return Ok(false);
    };
    let Some(t) = [&PLANS, &TARIFFS, &SERVICES]
        .into_iter()
        .find(|t| t.name == table)
    else {
        return Ok(false);
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(false);
    };
    let n = conn
        .execute(
            &format!("DELETE FROM {} WHERE id = ?1", t.name),
            params![id],
        )
        .map_err(StoreError::sql("deleting a reference row"))?;
    Ok(n > 0)
}

impl Store {
    /// Replaces the tariff plans.
    pub async fn replace_tariff_plans(
        &self,
        plans: Vec<TariffPlan>,
        guard: Guard,
        now: String,
    ) -> Result<ReferenceCounts, StoreError> {
        let rows = plans
            .iter()
            .map(|p| (p.id, vec![text(&p.name), raw_json(&p.raw)]))
            .collect();
        self.write(move |conn| replace(conn, &PLANS, rows, guard, &now))
            .await
    }

    /// Replaces the tariffs.
    pub async fn replace_tariffs(
        &self,
        tariffs: Vec<Tariff>,
        guard: Guard,
        now: String,
    ) -> Result<ReferenceCounts, StoreError> {
        let rows = tariffs.iter().map(tariff_row).collect();
        self.write(move |conn| replace(conn, &TARIFFS, rows, guard, &now))
            .await
    }

    /// Replaces the services.
    pub async fn replace_services(
        &self,
        services: Vec<Service>,
        guard: Guard,
        now: String,
    ) -> Result<ReferenceCounts, StoreError> {
        let rows = services
            .iter()
            .map(|s| (s.id, vec![text(&s.name), raw_json(&s.raw)]))
            .collect();
        self.write(move |conn| replace(conn, &SERVICES, rows, guard, &now))
            .await
    }

    /// Replaces the single `system_info` row.
    pub async fn replace_system_info(
        &self,
        info: SystemInfo,
        now: String,
    ) -> Result<ReferenceCounts, StoreError> {
        let row = (
            1,
            vec![
                text(&info.version),
                text(&info.database),
                text(&info.build),
                text(&info.serial),
                text(&info.edition),
            ],
        );
        self.write(move |conn| replace(conn, &SYSTEM, vec![row], None, &now))
            .await
    }
}
