//! Progress of running jobs: one bar per job for `--run-once` and `demo` on a terminal
//! (indicatif); when stderr is not a terminal (systemd, Docker, a file) one log line per
//! running job every `log.progress_secs` (done/total, rate, ETA, errors so far); and, always,
//! per-job gauges on `/metrics` while a job runs ([`watch`], issue 12).
//!
//! Owns: polling the jobs' progress counters and showing them. Must not: change what jobs do.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::Jobs;

/// Draws bars until `stop`; a no-op (log lines come from the jobs) when stderr is not a
/// terminal.
pub fn spawn_bars(
    jobs: Arc<Jobs>,
    names: Vec<crate::sync::Job>,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let bars: Vec<(Arc<crate::sync::Progress>, ProgressBar)> = names
        .iter()
        .map(|n| {
            let bar = multi.add(
                ProgressBar::new(0)
                    .with_style(style.clone())
                    .with_prefix(n.as_str()),
            );
            (jobs.progress_of(*n), bar)
        })
        .collect();
    Some(tokio::spawn(async move {
        loop {
            for (p, bar) in &bars {
                bar.set_length(p.total());
                bar.set_position(p.done());
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        for (p, bar) in &bars {
            bar.set_length(p.total());
            bar.set_position(p.done());
            bar.finish();
        }
    }))
}

/// Watches one running job until dropped: its gauges on `/metrics` every second, and a
/// progress line every `every` when stderr is not a terminal (`every` zero: no lines). The
/// lines are logged inside the caller's span, so they carry the job's `job` and `run_id`.
pub fn watch(
    job: crate::sync::Job,
    progress: Arc<crate::sync::Progress>,
    every: Duration,
) -> Watch {
    let lines = !every.is_zero() && !std::io::stderr().is_terminal();
    let tick = if every.is_zero() {
        Duration::from_secs(1)
    } else {
        every.min(Duration::from_secs(1))
    };
    let started = Instant::now();
    let name = job.as_str();
    let watched = progress.clone();
    let task = tokio::spawn(
        async move {
            let mut last_line = Instant::now();
            loop {
                tokio::time::sleep(tick).await;
                let now = Report::of(&watched, started.elapsed());
                now.export(name, true);
                if lines && last_line.elapsed() >= every {
                    last_line = Instant::now();
                    now.log();
                }
            }
        }
        .instrument(tracing::Span::current()),
    );
    Watch {
        task,
        job,
        progress,
        started,
    }
}

/// Stops watching on drop and exports the run's last figures with `running` 0.
pub struct Watch {
    task: tokio::task::JoinHandle<()>,
    job: crate::sync::Job,
    progress: Arc<crate::sync::Progress>,
    started: Instant,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
        let last = Report {
            eta_secs: None,
            ..Report::of(&self.progress, self.started.elapsed())
        };
        last.export(self.job.as_str(), false);
    }
}

/// A job's progress at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub done: u64,
    pub total: u64,
    pub errors: u64,
    /// Items per second since the job started.
    pub rate: f64,
    /// Seconds left at that rate (`None`: unknown).
    pub eta_secs: Option<u64>,
}

impl Report {
    pub fn of(p: &crate::sync::Progress, elapsed: Duration) -> Report {
        let (done, total) = (p.done(), p.total());
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta_secs =
            (rate > 0.0 && total >= done).then(|| ((total - done) as f64 / rate).ceil() as u64);
        Report {
            done,
            total,
            errors: p.errors(),
            rate,
            eta_secs,
        }
    }

    fn export(&self, job: &'static str, running: bool) {
        metrics::gauge!("tariscope_sync_job_running", "job" => job).set(if running {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("tariscope_sync_job_items_done", "job" => job).set(self.done as f64);
        metrics::gauge!("tariscope_sync_job_items_expected", "job" => job).set(self.total as f64);
        metrics::gauge!("tariscope_sync_job_item_errors", "job" => job).set(self.errors as f64);
        metrics::gauge!("tariscope_sync_job_items_per_second", "job" => job).set(self.rate);
        metrics::gauge!("tariscope_sync_job_eta_seconds", "job" => job)
            .set(self.eta_secs.unwrap_or(0) as f64);
    }

    fn log(&self) {
        let eta = self
            .eta_secs
            .map_or_else(|| "unknown".to_string(), |s| format!("{s} s"));
        tracing::info!(
            done = self.done,
            total = self.total,
            rate = (self.rate * 10.0).round() / 10.0,
            eta_secs = self.eta_secs,
            errors = self.errors,
            "progress: {}/{} items, {:.1}/s, ETA {eta}, {} error(s) so far",
            self.done,
            self.total,
            self.rate,
            self.errors
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_from_the_counters() {
        let p = crate::sync::Progress::new();
        p.add_total(500);
        p.add_done(100);
        let r = Report::of(&p, Duration::from_secs(20));
        assert_eq!((r.done, r.total, r.errors), (100, 500, 0));
        assert!((r.rate - 5.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.eta_secs, Some(80));
        let idle = Report::of(&crate::sync::Progress::new(), Duration::from_secs(5));
        assert_eq!(idle.eta_secs, None, "nothing done yet: no ETA");
    }
}
