//! The bookkeeping tables: `job_runs`, `checkpoints`, `item_errors`.
//!
//! Owns: recording every job run (start, end, outcome, counts, window, error), resumable
//! checkpoints, and per-item errors. Checkpoints are written by the data-writing functions
//! of the other table files in the same transaction as the data they cover (see
//! `put_checkpoint`). Must not: decide outcomes or windows (the jobs do).

use super::db::{Conn, OptionalExtension, params};
use chrono::NaiveDate;

use super::{Store, StoreError};

/// Whether a run continued from the last successful window or covered an explicit range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Incremental,
    Backfill,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Incremental => "incremental",
            Mode::Backfill => "backfill",
        }
    }
}

/// `job_runs.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Ok,
    Partial,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Outcome, StoreError> {
        Ok(match s {
            "running" => Outcome::Running,
            "ok" => Outcome::Ok,
            "partial" => Outcome::Partial,
            "failed" => Outcome::Failed,
            other => {
                return Err(StoreError::Corrupt {
                    table: "job_runs",
                    column: "outcome",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// The counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records received from the API.
    pub fetched: u64,
    pub inserted: u64,
    /// Changed rows (restored subscribers count here too).
    pub updated: u64,
    /// Tombstoned subscribers / deleted reference rows.
    pub removed: u64,
    pub unchanged: u64,
    /// Items that failed (recorded in `item_errors`).
    pub errors: u64,
    /// Push: numbers assigned (`subscriber.dnadd` writes done). 0 for other jobs.
    pub numbers: u64,
}

/// What a job declares when it starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub job: String,
    pub mode: Mode,
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// RFC 3339 UTC.
    pub started_at: String,
}

/// A row of `job_runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub mode: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: Outcome,
    pub counts: Counts,
    pub error: Option<String>,
    pub window_from: Option<String>,
    pub window_to: Option<String>,
}

/// Which runs `select_runs` reads.
#[derive(Debug, Clone, Copy)]
enum RunSelect {
    All,
    Newest,
    NewestOk,
    Running,
}

/// A checkpoint to commit together with the data it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub job: String,
    pub key: String,
    pub cursor: String,
}

/// Upserts a checkpoint inside the caller's transaction.
pub(crate) fn put_checkpoint(conn: &Conn, cp: &Checkpoint, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (job, key, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job, key) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![cp.job, cp.key, cp.cursor, now]))
    .map_err(StoreError::sql("writing a checkpoint"))?;
    Ok(())
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Records the start of a run and returns its id. Runs of the same job still marked
    /// `running` (the process died or the task was cancelled) are closed as `failed`.
    pub async fn start_run(&self, start: RunStart) -> Result<i64, StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE job_runs SET outcome = 'failed', ended_at = ?2,
                     error = 'interrupted: the run did not finish (process stopped or task cancelled)'
                 WHERE job = ?1 AND outcome = 'running'",
                params![start.job, start.started_at],
            )
            .map_err(StoreError::sql("closing interrupted runs"))?;
            conn.query_row(
                "INSERT INTO job_runs (job, mode, started_at, outcome, window_from, window_to)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5) RETURNING id",
                params![
                    start.job,
                    start.mode.as_str(),
                    start.started_at,
                    start.window.map(|w| w.0.to_string()),
                    start.window.map(|w| w.1.to_string())
                ],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("recording a run start"))
        })
        .await
    }

    /// Records the end of a run. When `clear_checkpoints` is `Some((job, prefix))`, the
    /// checkpoints of that job whose key starts with `prefix` are deleted in the same
    /// transaction (the work they tracked is complete).
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: Outcome,
        counts: Counts,
        error: Option<String>,
        ended_at: String,
        clear_checkpoints: Option<(String, String)>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE job_runs SET ended_at = ?2, outcome = ?3, fetched = ?4, inserted = ?5,
                     updated = ?6, removed = ?7, unchanged = ?8, errors = ?9, error = ?10,
                     numbers = ?11
                 WHERE id = ?1",
                params![
                    run_id,
                    ended_at,
                    outcome.as_str(),
                    to_i64(counts.fetched),
                    to_i64(counts.inserted),
                    to_i64(counts.updated),
                    to_i64(counts.removed),
                    to_i64(counts.unchanged),
                    to_i64(counts.errors),
                    error,
                    to_i64(counts.numbers)
                ],
            )
            .map_err(StoreError::sql("recording a run end"))?;
            if let Some((job, prefix)) = clear_checkpoints {
                conn.execute(
                    "DELETE FROM checkpoints WHERE job = ?1 AND substr(key, 1, length(CAST(?2 AS TEXT))) = CAST(?2 AS TEXT)",
                    params![job, prefix],
                )
                .map_err(StoreError::sql("clearing checkpoints"))?;
            }
            Ok(())
        })
        .await
    }

    /// Records that one item of a run failed.
    pub async fn record_item_error(
        &self,
        run_id: i64,
        item: String,
        error: String,
        at: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO item_errors (run_id, item, error, at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, item, error, at],
            )
            .map_err(StoreError::sql("recording an item error"))?;
            Ok(())
        })
        .await
    }

    /// The `window_to` of the latest `ok` run of `job` in `mode`, if any.
    pub async fn last_ok_window_end(
        &self,
        job: &str,
        mode: Mode,
    ) -> Result<Option<NaiveDate>, StoreError> {
        let job = job.to_owned();
        let end: Option<String> = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT window_to FROM job_runs WHERE job = ?1 AND mode = ?2 AND outcome = 'ok'
                     AND window_to IS NOT NULL ORDER BY id DESC LIMIT 1",
                    params![job, mode.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::sql("reading the last successful window"))
            })
            .await?;
        end.map(|t| {
            t.parse().map_err(|_| StoreError::Corrupt {
                table: "job_runs",
                column: "window_to",
                value: t,
            })
        })
        .transpose()
    }

    /// Checkpoints of `job` whose key starts with `prefix`, as `(key, cursor)`.
    pub async fn checkpoints(
        &self,
        job: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (job, prefix) = (job.to_owned(), prefix.to_owned());
        self.read(move |conn| {
            conn.prepare(
                "SELECT key, cursor FROM checkpoints WHERE job = ?1 AND substr(key, 1, length(CAST(?2 AS TEXT))) = CAST(?2 AS TEXT) ORDER BY key",
            )
            .and_then(|mut st| st.query_map(params![job, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(StoreError::sql("reading checkpoints"))
        })
        .await
    }

    /// The runs of `job`, newest first (every one: for tests and tools; the daemon asks for
    /// what it needs with the methods below, which do not grow with the history).
    pub async fn job_runs(&self, job: &str) -> Result<Vec<JobRun>, StoreError> {
        self.select_runs(job, RunSelect::All).await
    }

    /// The newest run of `job`, if any.
    pub async fn last_run(&self, job: &str) -> Result<Option<JobRun>, StoreError> {
        Ok(self.select_runs(job, RunSelect::Newest).await?.pop())
    }

    /// The newest run of `job` that ended `ok`, if any.
    pub async fn last_ok_run(&self, job: &str) -> Result<Option<JobRun>, StoreError> {
        Ok(self.select_runs(job, RunSelect::NewestOk).await?.pop())
    }

    /// The runs of `job` still marked `running` (left so by a crash or a shutdown).
    pub async fn runs_left_running(&self, job: &str) -> Result<Vec<JobRun>, StoreError> {
        self.select_runs(job, RunSelect::Running).await
    }

    /// Reads the runs `which` selects. The daemon calls this on every run, so apart from
    /// `All` each selection reads a bounded number of rows through the `job_runs_job` index
    /// (reading the whole history each time cost memory and time that grew with it: the soak
    /// of issue 16 saw it).
    async fn select_runs(&self, job: &str, which: RunSelect) -> Result<Vec<JobRun>, StoreError> {
        let job = job.to_owned();
        let tail = match which {
            RunSelect::All => " ORDER BY id DESC",
            RunSelect::Newest => " ORDER BY id DESC LIMIT 1",
            RunSelect::NewestOk => " AND outcome = 'ok' ORDER BY id DESC LIMIT 1",
            RunSelect::Running => " AND outcome = 'running' ORDER BY id DESC",
        };
        let sql = format!(
            "SELECT id, job, mode, started_at, ended_at, outcome, fetched, inserted, updated,
                removed, unchanged, errors, error, window_from, window_to, numbers
             FROM job_runs WHERE job = ?1{tail}"
        );
        self.read(move |conn| {
            let mut st = conn
                .prepare(&sql)
                .map_err(StoreError::sql("reading job runs"))?;
            let rows = st
                .query_map([job], |r| {
                    Ok((
                        JobRun {
                            id: r.get(0)?,
                            job: r.get(1)?,
                            mode: r.get(2)?,
                            started_at: r.get(3)?,
                            ended_at: r.get(4)?,
                            outcome: Outcome::Running,
                            counts: Counts {
                                fetched: to_u64(r.get(6)?),
                                inserted: to_u64(r.get(7)?),
                                updated: to_u64(r.get(8)?),
                                removed: to_u64(r.get(9)?),
                                unchanged: to_u64(r.get(10)?),
                                errors: to_u64(r.get(11)?),
                                numbers: to_u64(r.get(15)?),
                            },
                            error: r.get(12)?,
                            window_from: r.get(13)?,
                            window_to: r.get(14)?,
                        },
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(StoreError::sql("reading job runs"))?;
            let mut out = Vec::new();
            for row in rows {
                let (mut run, outcome) = row.map_err(StoreError::sql("reading job runs"))?;
                run.outcome = Outcome::parse(&outcome)?;
                out.push(run);
            }
            Ok(out)
        })
        .await
    }

    /// The item errors of a run, as `(item, error)`.
    pub async fn item_errors(&self, run_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.read(move |conn| {
            conn.prepare("SELECT item, error FROM item_errors WHERE run_id = ?1 ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(StoreError::sql("reading item errors"))
        })
        .await
    }
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
