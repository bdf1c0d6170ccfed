//! What the summaries job reads to decide which days to fetch, and its day counts.
//!
//! Owns: the days on which the mirror holds a charge (booking date) or a payment, the
//! stored summaries of one day, the payments / charges runs that covered a window (with the
//! subscribers that failed in them), and the `days_*` columns of the summaries job's
//! `job_runs` row. Must not: decide which days to fetch or derive (`sync::pull` does).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::db::{OptionalExtension, params};
use chrono::NaiveDate;

use super::runs::{to_i64, to_u64};
use super::{Store, StoreError};
use crate::model::{AccountSummary, SubscriberId};

/// The day counts of one summaries run (`job_runs.days_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryDays {
    /// Days answered by `accounts.summary` (one request each).
    pub fetched: u64,
    /// Days written from the fetched days around them, without a request.
    pub derived: u64,
    /// Of the fetched days, those fetched to bisect a stretch that did not connect.
    pub bisected: u64,
    /// Stretches between fetched days whose balances did not connect (something moved the
    /// balance that neither list shows), each bisected until every part connected.
    pub stretches: u64,
    /// Subscribers fetched every day (their payments or charges of the window were not
    /// pulled completely, or the job runs in `every-day` mode).
    pub every_day: u64,
}

impl SummaryDays {
    pub fn add(&mut self, o: SummaryDays) {
        self.fetched += o.fetched;
        self.derived += o.derived;
        self.bisected += o.bisected;
        self.stretches += o.stretches;
        self.every_day += o.every_day;
    }
}

/// A payments or charges run whose window overlaps the asked window (`ok` or `partial`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRun {
    /// RFC 3339 UTC.
    pub started_at: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Subscribers with an item error in this run (`subscriber <id>`).
    pub failed: HashSet<SubscriberId>,
}

fn parse_date(
    table: &'static str,
    column: &'static str,
    t: String,
) -> Result<NaiveDate, StoreError> {
    t.parse().map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: t,
    })
}

impl Store {
    /// Per subscriber, the days in `from..=to` with a charge booked (`recdate`) or a payment.
    pub async fn active_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HashMap<SubscriberId, BTreeSet<NaiveDate>>, StoreError> {
        let rows: Vec<(SubscriberId, String)> = self
            .read(move |conn| {
                conn.prepare(
                    "SELECT subscriber_id, recdate FROM charges WHERE recdate BETWEEN ?1 AND ?2
                     UNION SELECT subscriber_id, payment_day FROM payments
                     WHERE payment_day BETWEEN ?1 AND ?2",
                )
                .and_then(|mut st| {
                    st.query_map(params![from.to_string(), to.to_string()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect()
                })
                .map_err(StoreError::sql("reading the days with charges or payments"))
            })
            .await?;
        let mut out: HashMap<SubscriberId, BTreeSet<NaiveDate>> = HashMap::new();
        for (sub, day) in rows {
            out.entry(sub)
                .or_default()
                .insert(parse_date("charges", "recdate", day)?);
        }
        Ok(out)
    }

    /// The stored summaries of `day`, by subscriber.
    pub async fn summaries_on(
        &self,
        day: NaiveDate,
    ) -> Result<HashMap<SubscriberId, AccountSummary>, StoreError> {
        let rows: Vec<(SubscriberId, [Option<String>; 4])> = self
            .read(move |conn| {
                conn.prepare(
                    "SELECT subscriber_id, start_debt, end_debt, charge, payment
                     FROM account_summaries WHERE date = ?1",
                )
                .and_then(|mut st| {
                    st.query_map([day.to_string()], |r| {
                        Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
                    })?
                    .collect()
                })
                .map_err(StoreError::sql("reading the summaries of a day"))
            })
            .await?;
        let dec = |column: &'static str, v: Option<String>| {
            v.map(|t| {
                t.parse().map_err(|_| StoreError::Corrupt {
                    table: "account_summaries",
                    column,
                    value: t,
                })
            })
            .transpose()
        };
        rows.into_iter()
            .map(|(sub, [start, end, charge, payment])| {
                Ok((
                    sub,
                    AccountSummary {
                        subscriber_id: sub,
                        date: day,
                        start_debt: dec("start_debt", start)?,
                        end_debt: dec("end_debt", end)?,
                        charge: dec("charge", charge)?,
                        payment: dec("payment", payment)?,
                    },
                ))
            })
            .collect()
    }

    /// The `ok` and `partial` runs of `job` whose window overlaps `from..=to`, with the
    /// subscribers that failed in each.
    pub async fn ledger_runs(
        &self,
        job: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LedgerRun>, StoreError> {
        let job = job.to_owned();
        let rows: Vec<(i64, String, String, String, Option<String>)> = self
            .read(move |conn| {
                conn.prepare(
                    "SELECT r.id, r.started_at, r.window_from, r.window_to, e.item
                     FROM job_runs r LEFT JOIN item_errors e ON e.run_id = r.id
                     WHERE r.job = ?1 AND r.outcome IN ('ok', 'partial')
                       AND r.window_from <= ?3 AND r.window_to >= ?2
                     ORDER BY r.id",
                )
                .and_then(|mut st| {
                    st.query_map(params![job, from.to_string(), to.to_string()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect()
                })
                .map_err(StoreError::sql("reading the runs that covered a window"))
            })
            .await?;
        let mut out: Vec<(i64, LedgerRun)> = Vec::new();
        for (id, started_at, wf, wt, item) in rows {
            if out.last().is_none_or(|(last, _)| *last != id) {
                out.push((
                    id,
                    LedgerRun {
                        started_at,
                        from: parse_date("job_runs", "window_from", wf)?,
                        to: parse_date("job_runs", "window_to", wt)?,
                        failed: HashSet::new(),
                    },
                ));
            }
            let failed = item
                .as_deref()
                .and_then(|i| i.strip_prefix("subscriber "))
                .and_then(|s| s.split_whitespace().next()?.parse().ok());
            if let (Some(sub), Some((_, run))) = (failed, out.last_mut()) {
                run.failed.insert(sub);
            }
        }
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// `first_seen_at` of every subscriber in the mirror.
    pub async fn subscribers_first_seen(
        &self,
    ) -> Result<HashMap<SubscriberId, String>, StoreError> {
        self.read(|conn| {
            conn.prepare("SELECT id, first_seen_at FROM subscribers")
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(StoreError::sql("reading when subscribers were first seen"))
        })
        .await
    }

    /// Records the day counts of summaries run `run_id`.
    pub async fn record_summary_days(
        &self,
        run_id: i64,
        days: SummaryDays,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE job_runs SET days_fetched = ?2, days_derived = ?3, days_bisected = ?4,
                     stretches_bisected = ?5, every_day_subscribers = ?6 WHERE id = ?1",
                params![
                    run_id,
                    to_i64(days.fetched),
                    to_i64(days.derived),
                    to_i64(days.bisected),
                    to_i64(days.stretches),
                    to_i64(days.every_day)
                ],
            )
            .map_err(StoreError::sql("recording the summary day counts"))?;
            Ok(())
        })
        .await
    }

    /// The day counts of run `run_id` (`None`: not a summaries run, or it recorded none).
    pub async fn summary_days(&self, run_id: i64) -> Result<Option<SummaryDays>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT days_fetched, days_derived, days_bisected, stretches_bisected,
                     every_day_subscribers FROM job_runs WHERE id = ?1 AND days_fetched IS NOT NULL",
                [run_id],
                |r| {
                    Ok(SummaryDays {
                        fetched: to_u64(r.get(0)?),
                        derived: to_u64(r.get(1)?),
                        bisected: to_u64(r.get(2)?),
                        stretches: to_u64(r.get(3)?),
                        every_day: to_u64(r.get(4)?),
                    })
                },
            )
            .optional()
            .map_err(StoreError::sql("reading the summary day counts"))
        })
        .await
    }
}
