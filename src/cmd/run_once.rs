//! `tariscope-sync --run-once`: the selected jobs once, with an optional backfill range.
//!
//! Owns: checking `--from/--to` against the rules before any work (exit 3, like a bad
//! configuration), the progress bars' lifetime, the end-of-run table and the exit code. Must
//! not: schedule, or wait for signals itself (the caller passes the signal future).

use std::future::Future;
use std::sync::Arc;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, Exit};
use crate::lock::{Holder, Wait};
use crate::sync::Job;
use crate::{errln, outln};

/// The backfill range `from..=to` (`to` defaults to `today`), or why it breaks a rule.
/// `today` is Tariscope's calendar date (the configured time zone); `jobs` the selected ones.
pub fn check_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
    jobs: &[Job],
) -> Result<Option<(NaiveDate, NaiveDate)>, String> {
    let Some(from) = from else {
        return match to {
            None => Ok(None),
            Some(_) => Err("--to needs --from: a backfill names its first day".into()),
        };
    };
    if from > today {
        return Err(format!(
            "--from {from} is in the future (today is {today} in the configured timezone): a backfill reads days that have begun"
        ));
    }
    let to = to.unwrap_or(today);
    if from > to {
        return Err(format!(
            "--from {from} is after --to {to}: a backfill runs from its first day (--from) to its last (--to), so --from must not be later than --to"
        ));
    }
    if to > today {
        return Err(format!(
            "--to {to} is in the future (today is {today} in the configured timezone): leave --to out to end the backfill today"
        ));
    }
    if !jobs.iter().any(|j| j.takes_range()) {
        let names: Vec<&str> = jobs.iter().map(|j| j.as_str()).collect();
        return Err(format!(
            "--from/--to apply to the payments, charges and summaries jobs, and none of the selected jobs ({}) takes a range: add one of those to --jobs, or leave out --from/--to",
            names.join(", ")
        ));
    }
    Ok(Some((from, to)))
}

/// Runs the `named` jobs (every enabled one when empty) once, over the backfill range
/// `(from, to)`. A job another process runs is waited for as `wait` says (exit 75 when not
/// run). `interrupt` resolves on SIGTERM/SIGINT: running jobs stop at a safe point and the
/// exit is 0.
pub async fn run(
    config: &Config,
    named: &[Job],
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    wait: Wait,
    interrupt: impl Future<Output = ()> + Send + 'static,
    out: &mut Out,
) -> Exit {
    let selected = config.select_jobs(named);
    let clock = Clock::system();
    let today = clock.now().with_timezone(&config.timezone).date_naive();
    let range = match check_range(from, to, today, &selected) {
        Ok(r) => r,
        Err(e) => {
            errln!("tariscope-sync: {e}");
            return Exit::Config;
        }
    };
    let mut jobs = match daemon::open(config, clock) {
        Ok(j) => j,
        Err(e @ daemon::StartError::NotLeader { .. }) => {
            errln!("tariscope-sync: {e}");
            return Exit::TempFail;
        }
        Err(e) => {
            errln!("tariscope-sync: {e}");
            return Exit::Runtime;
        }
    };
    jobs.range = range.map(|(from, to)| (from, Some(to)));
    let jobs = Arc::new(jobs);
    let stop = CancellationToken::new();
    let interrupted = CancellationToken::new();
    {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        tokio::spawn(async move {
            interrupt.await;
            interrupted.cancel();
            stop.cancel();
        });
    }
    let bars_stop = CancellationToken::new();
    let bars = daemon::progress::spawn_bars(jobs.clone(), selected.clone(), bars_stop.clone());
    let tell = |job: Job, holder: Option<&Holder>| {
        let who = holder.map_or("who is just starting".to_owned(), |h| h.to_string());
        let bound = match wait {
            Wait::Up(d) => format!("up to {} s", d.as_secs()),
            _ => "until it finishes".to_owned(),
        };
        errln!(
            "tariscope-sync: the {job} job is running in another process ({who}); waiting for it {bound} (--no-wait exits at once, --wait SECS bounds the wait)"
        );
    };
    let summaries = daemon::run_once(&jobs, &selected, stop, wait, &tell).await;
    bars_stop.cancel();
    if let Some(b) = bars {
        let _ = b.await;
    }
    super::print_summaries(out, &summaries);
    if interrupted.is_cancelled() {
        outln!(
            out,
            "interrupted: committed work is kept; run again to resume from the checkpoints"
        );
        return Exit::Ok;
    }
    Exit::of(summaries.iter().map(|s| s.outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_checked_with_their_rule() {
        let today = d("2026-12-02");
        let all = Job::ALL;
        assert_eq!(check_range(None, None, today, &all), Ok(None));
        assert_eq!(
            check_range(Some(d("2026-11-01")), None, today, &all),
            Ok(Some((d("2026-11-01"), today)))
        );
        assert_eq!(
            check_range(
                Some(d("2026-11-01")),
                Some(d("2026-11-30")),
                today,
                &[Job::Payments]
            ),
            Ok(Some((d("2026-11-01"), d("2026-11-30"))))
        );
        let err = |from: &str, to: Option<&str>, jobs: &[Job]| {
            check_range(Some(d(from)), to.map(d), today, jobs).unwrap_err()
        };
        assert!(
            err("2026-11-30", Some("2026-11-01"), &all)
                .starts_with("--from 2026-11-30 is after --to 2026-11-01: ")
        );
        assert!(err("2026-12-03", None, &all).starts_with("--from 2026-12-03 is in the future"));
        assert!(
            err("2026-12-01", Some("2026-12-09"), &all)
                .starts_with("--to 2026-12-09 is in the future")
        );
        let e = err("2026-11-01", None, &[Job::Reference, Job::Push]);
        assert!(
            e.contains("none of the selected jobs (reference, push) takes a range"),
            "{e}"
        );
    }
}
