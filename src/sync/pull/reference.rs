//! The `reference` job: tariff plans, tariffs, services and system info.
//!
//! Owns: fetching the four reference sets and replacing each in the mirror when it changed.
//! A set that cannot be fetched leaves its table as it was (the run is `partial`). Must not:
//! clear a table because a fetch failed, or delete more than `max_removals` allows (an empty
//! answer for a table that has rows never deletes: the run is `partial`, see
//! `store::removals`).

use super::{JobReport, Run, SyncError, Verdict, interrupted, is_fatal, now};
use crate::store::{Mode, ReferenceCounts, Store};
use crate::sync::options::{JobKind, Progress, PullOptions};
use crate::sync::remote::{Remote, RemoteResult, TariffFilter};

pub(super) async fn run<R: Remote>(
    remote: &R,
    store: &Store,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<JobReport, SyncError> {
    let mut run = Run::start(
        store,
        opts,
        progress,
        JobKind::Reference,
        Mode::Incremental,
        None,
    )
    .await?;
    let verdict = body(&mut run, remote, progress).await;
    run.conclude(verdict, None).await
}

/// Records one set's outcome; `Some(why)` when an auth failure must stop the run.
async fn settle(
    run: &mut Run<'_>,
    what: &str,
    fetched: u64,
    applied: RemoteResult<ReferenceCounts>,
    progress: &Progress,
) -> Result<Option<String>, SyncError> {
    progress.add_done(1);
    match applied {
        Ok(c) => {
            run.counts.fetched += fetched;
            run.counts.inserted += c.upserts.inserted;
            run.counts.updated += c.upserts.updated;
            run.counts.unchanged += c.upserts.unchanged;
            run.counts.removed += c.removed;
            if let Some(held) = c.held {
                run.held_back(held);
            }
            Ok(None)
        }
        Err(e) if is_fatal(&e) => Ok(Some(format!("{what}: {e}"))),
        Err(e) => {
            run.item_failed(what.to_owned(), &e).await?;
            Ok(None)
        }
    }
}

async fn body<R: Remote>(run: &mut Run<'_>, remote: &R, progress: &Progress) -> Verdict {
    progress.add_total(4);
    let store = run.store;
    let stamp = now(run.opts);
    let err = run.store_err();
    let guard = run.opts.max_removals.map(|limit| (run.id, limit));

    let (n, applied) = match remote.tariff_plans().await {
        Ok(v) => (
            v.len() as u64,
            Ok(store
                .replace_tariff_plans(v, guard, stamp.clone())
                .await
                .map_err(run.store_err())?),
        ),
        Err(e) => (0, Err(e)),
    };
    if let Some(why) = settle(run, "tariffs.plans", n, applied, progress).await? {
        return Ok(Some(why));
    }
    if let Some(why) = interrupted(run.opts) {
        return Ok(Some(why));
    }
    let (n, applied) = match remote.tariff_details(&TariffFilter::default()).await {
        Ok(v) => (
            v.len() as u64,
            Ok(store
                .replace_tariffs(v, guard, stamp.clone())
                .await
                .map_err(run.store_err())?),
        ),
        Err(e) => (0, Err(e)),
    };
    if let Some(why) = settle(run, "tariffs.details", n, applied, progress).await? {
        return Ok(Some(why));
    }
    if let Some(why) = interrupted(run.opts) {
        return Ok(Some(why));
    }
    let (n, applied) = match remote.services().await {
        Ok(v) => (
            v.len() as u64,
            Ok(store
                .replace_services(v, guard, stamp.clone())
                .await
                .map_err(run.store_err())?),
        ),
        Err(e) => (0, Err(e)),
    };
    if let Some(why) = settle(run, "services.list", n, applied, progress).await? {
        return Ok(Some(why));
    }
    if let Some(why) = interrupted(run.opts) {
        return Ok(Some(why));
    }
    let applied = match remote.system_info().await {
        Ok(info) => Ok(store.replace_system_info(info, stamp).await.map_err(err)?),
        Err(e) => Err(e),
    };
    settle(run, "tariscope.summary", 1, applied, progress).await
}
