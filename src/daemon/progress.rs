//! Progress display for `--run-once` and `demo`: one bar per job on a terminal (indicatif),
//! plain log lines otherwise.
//!
//! Owns: polling the jobs' progress counters and drawing them. Must not: change what jobs do.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

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
