//! The guard against mass removal (issue 25): removals a run may make, and the ones it held.
//!
//! Owns: `RemovalLimit` (a share of what the mirror holds in a list's scope, or a count),
//! deciding per list whether a run's removals are over it (an empty list where the mirror
//! holds rows always is), the `held_removals` table, and `confirm_removals`, which applies a
//! run's held removals that still hold. Must not: fetch anything (a later run re-evaluates
//! from scratch), or remove a row the latest run saw again.
//!
//! Why: one empty answer (a server in maintenance, a proxy) used to tombstone every
//! subscriber of a node and write a `removed` row for each into the change log integrators
//! follow; an empty `tariffs.plans` deleted every plan.

use std::collections::{HashMap, HashSet};

use super::db::{Conn, OptionalExtension, params};

use super::{Store, StoreError};

/// How much one run may remove from one list's scope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RemovalLimit {
    /// Percent of the rows the mirror holds in the scope (at least one row may always go).
    Share(f64),
    /// Rows.
    Count(u64),
}

impl RemovalLimit {
    /// `"10%"` (a share, 0 to 100) or `"25"` (a count).
    pub fn parse(text: &str) -> Result<RemovalLimit, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(RemovalLimit::Share(p)),
                _ => Err(format!(
                    "{text:?} is not a share between 0% and 100% (like \"10%\")"
                )),
            };
        }
        t.parse::<u64>().map(RemovalLimit::Count).map_err(|_| {
            format!("{text:?} is neither a share like \"10%\" nor a count of rows like 50")
        })
    }

    /// Whether removing `n` of the `of` rows a scope holds is over the limit.
    pub fn exceeded(self, n: u64, of: u64) -> bool {
        match self {
            RemovalLimit::Count(c) => n > c,
            RemovalLimit::Share(p) => n > 1 && n as f64 > p / 100.0 * of as f64,
        }
    }
}

impl std::fmt::Display for RemovalLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemovalLimit::Share(p) => write!(f, "{p}%"),
            RemovalLimit::Count(c) => write!(f, "{c}"),
        }
    }
}

/// One list a run read, and what the mirror holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListScope {
    /// "node 1", "department 4", "tariff_plans".
    pub label: String,
    /// The subscribers column the list's rows share (`nodeid`, `departmentid`).
    pub column: &'static str,
    pub id: i64,
    /// Records the list answered.
    pub listed: u64,
}

/// Removals held back in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub scope: String,
    /// Removals held.
    pub held: u64,
    /// Rows the mirror held in that scope.
    pub of: u64,
}

impl HeldBack {
    /// "held back 12 removals of 300 (4.0 %) in node 1".
    pub fn describe(&self) -> String {
        let pct = 100.0 * self.held as f64 / self.of.max(1) as f64;
        format!(
            "held back {} removals of {} ({pct:.1} %) in {}",
            self.held, self.of, self.scope
        )
    }
}

/// Which of the `removing` ids a run must hold back (with the scope each is held in): those
/// in a list's scope over `limit`. `live` is the id and the scope columns of each live row.
///
/// Rows in no list's scope (the configured scope no longer covers them, or push created them
/// outside it) are not judged: no answer of this run could have caused their removal, so no
/// glitch can, and holding them would leave every run `partial`.
pub(super) fn decide(
    limit: RemovalLimit,
    scopes: &[ListScope],
    live: &[(i64, HashMap<&'static str, Option<i64>>)],
    removing: &HashSet<i64>,
) -> (HashMap<i64, String>, Vec<HeldBack>) {
    let mut held = HashMap::new();
    let mut report = Vec::new();
    for scope in scopes {
        let in_scope: Vec<i64> = live
            .iter()
            .filter(|(_, cols)| cols.get(scope.column).copied().flatten() == Some(scope.id))
            .map(|(id, _)| *id)
            .collect();
        let going: Vec<i64> = in_scope
            .iter()
            .copied()
            .filter(|id| removing.contains(id))
            .collect();
        let of = in_scope.len() as u64;
        let n = going.len() as u64;
        let over = (scope.listed == 0 && of > 0) || limit.exceeded(n, of);
        if over && n > 0 {
            held.extend(going.into_iter().map(|id| (id, scope.label.clone())));
            report.push(HeldBack {
                scope: scope.label.clone(),
                held: n,
                of,
            });
        }
    }
    (held, report)
}

/// Records held removals of `run_id`.
pub(super) fn record(
    conn: &Conn,
    run_id: i64,
    job: &str,
    held: impl IntoIterator<Item = (String, String)>,
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached(
            "INSERT INTO held_removals (run_id, job, subject, scope) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .map_err(StoreError::sql("recording held removals"))?;
    for (subject, scope) in held {
        st.execute(params![run_id, job, subject, scope])
            .map_err(StoreError::sql("recording held removals"))?;
    }
    Ok(())
}

/// What `confirm-removals` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub job: String,
    /// Removals the run held back.
    pub held: u64,
    /// Applied now.
    pub applied: u64,
    /// Held, but a later run saw the row again (or it is gone already): not applied.
    pub stale: u64,
}

/// The held removals of `run_id` that still hold: all of them when it is its job's latest
/// finished run; otherwise those the latest run held back again.
fn still_holding(conn: &Conn, run_id: i64) -> Result<(String, Vec<String>, u64), StoreError> {
    let fail = StoreError::sql("reading held removals");
    let job: Option<String> = conn
        .query_row("SELECT job FROM job_runs WHERE id = ?1", [run_id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(StoreError::sql("reading held removals"))?;
    let Some(job) = job else {
        return Err(StoreError::NoSuchRun(run_id));
    };
    let subjects = |run: i64| -> Result<Vec<String>, super::db::DbError> {
        conn.prepare_cached("SELECT subject FROM held_removals WHERE run_id = ?1 ORDER BY subject")?
            .query_map([run], |r| r.get(0))?
            .collect()
    };
    let held = subjects(run_id).map_err(fail)?;
    let latest: i64 = conn
        .query_row(
            "SELECT max(id) FROM job_runs WHERE job = ?1 AND outcome <> 'running'",
            [&job],
            |r| r.get(0),
        )
        .map_err(StoreError::sql("reading held removals"))?;
    let count = held.len() as u64;
    if latest == run_id {
        return Ok((job, held, count));
    }
    let again: HashSet<String> = subjects(latest)
        .map_err(StoreError::sql("reading held removals"))?
        .into_iter()
        .collect();
    Ok((
        job,
        held.into_iter().filter(|s| again.contains(s)).collect(),
        count,
    ))
}

impl Store {
    /// Applies the removals `run_id` held back that still hold, writing the change log as
    /// that run would have, and forgets the run's held removals.
    pub async fn confirm_removals(
        &self,
        run_id: i64,
        now: String,
    ) -> Result<Confirmed, StoreError> {
        self.write(move |conn| {
            let (job, subjects, held) = still_holding(conn, run_id)?;
            let mut applied = 0;
            for subject in &subjects {
                let done = match job.as_str() {
                    "subscribers" => match subject.parse::<i64>() {
                        Ok(id) => super::subscribers::tombstone_one(conn, run_id, id, &now)?,
                        Err(_) => false,
                    },
                    _ => super::reference::delete_held(conn, subject)?,
                };
                applied += u64::from(done);
            }
            conn.execute("DELETE FROM held_removals WHERE run_id = ?1", [run_id])
                .map_err(StoreError::sql("forgetting held removals"))?;
            conn.execute(
                "UPDATE job_runs SET removed = removed + ?2 WHERE id = ?1",
                params![run_id, applied as i64],
            )
            .map_err(StoreError::sql("counting confirmed removals"))?;
            Ok(Confirmed {
                job,
                held,
                applied,
                stale: held - applied,
            })
        })
        .await
    }

    /// How many removals `run_id` holds back (0 when none or confirmed).
    pub async fn held_removals(&self, run_id: i64) -> Result<u64, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM held_removals WHERE run_id = ?1",
                [run_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(StoreError::sql("counting held removals"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_apply() {
        assert_eq!(RemovalLimit::parse("10%"), Ok(RemovalLimit::Share(10.0)));
        assert_eq!(RemovalLimit::parse(" 2.5 %"), Ok(RemovalLimit::Share(2.5)));
        assert_eq!(RemovalLimit::parse("40"), Ok(RemovalLimit::Count(40)));
        for bad in ["", "-1", "101%", "ten", "%"] {
            assert!(RemovalLimit::parse(bad).is_err(), "{bad:?}");
        }
        let share = RemovalLimit::Share(10.0);
        assert!(!share.exceeded(1, 5), "one row may always go");
        assert!(!share.exceeded(10, 100));
        assert!(share.exceeded(11, 100));
        assert!(RemovalLimit::Count(3).exceeded(4, 1000));
        assert!(!RemovalLimit::Count(3).exceeded(3, 4));
    }
}
