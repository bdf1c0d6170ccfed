//! The `subscribers` job: mirror every subscriber of the configured scope.
//!
//! Owns: reading the node and department lists (and `subscriber.get` per listed id when the
//! lists are partial), filling a missing node / department from the list it came from,
//! de-duplicating subscribers listed twice, applying them to the mirror in batches, and
//! tombstoning the ones no list holds any more. Must not: tombstone anything when a list
//! could not be read (a subscriber missing from an unread list has not disappeared).

use std::collections::HashSet;

use futures::StreamExt;

use super::{Run, SyncError, Verdict, is_fatal, now};
use crate::model::Subscriber;
use crate::store::{Mode, Store};
use crate::sync::options::{JobKind, Progress, PullOptions};
use crate::sync::remote::Remote;

/// Where a list came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Node(i64),
    Department(i64),
}

impl Source {
    fn label(self) -> String {
        match self {
            Source::Node(n) => format!("subscriber.list.node {n}"),
            Source::Department(d) => format!("subscriber.list.department {d}"),
        }
    }

    /// Fills what the list implies and the record did not say. A department list also holds
    /// sub-departments, so only an absent department id is filled.
    fn fill(self, s: &mut Subscriber) {
        match self {
            Source::Node(n) => {
                s.node_id.get_or_insert(n);
            }
            Source::Department(d) => {
                s.department_id.get_or_insert(d);
            }
        }
    }
}

pub(super) async fn run<R: Remote>(
    remote: &R,
    store: &Store,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<super::JobReport, SyncError> {
    if opts.scope.is_empty() {
        return Err(SyncError::Options {
            job: JobKind::Subscribers,
            message: "the scope names no node and no department".into(),
        });
    }
    let mut run = Run::start(store, opts, JobKind::Subscribers, Mode::Incremental, None).await?;
    let verdict = body(&mut run, remote, progress).await;
    run.conclude(verdict, None).await
}

async fn body<R: Remote>(run: &mut Run<'_>, remote: &R, progress: &Progress) -> Verdict {
    let opts = run.opts;
    let sources = opts.scope.nodes.iter().map(|n| Source::Node(*n)).chain(
        opts.scope
            .departments
            .iter()
            .map(|d| Source::Department(*d)),
    );
    let mut seen = HashSet::new();
    let mut complete = true;
    for source in sources {
        let listed = match source {
            Source::Node(n) => remote.subscribers_by_node(n).await,
            Source::Department(d) => remote.subscribers_by_department(d).await,
        };
        let mut list = match listed {
            Ok(list) => list,
            Err(e) if is_fatal(&e) => return Ok(Some(format!("{}: {e}", source.label()))),
            Err(e) => {
                complete = false;
                run.item_failed(source.label(), &e).await?;
                continue;
            }
        };
        run.counts.fetched += list.len() as u64;
        list.retain(|s| seen.insert(s.id));
        progress.add_total(list.len() as u64);
        if remote.lists_are_partial() {
            match complete_records(run, remote, list, &mut seen, progress).await? {
                Ok(full) => list = full,
                Err(why) => return Ok(Some(why)),
            }
        }
        for s in &mut list {
            source.fill(s);
        }
        apply(run, list, progress).await?;
    }
    if complete {
        let removed = run
            .store
            .tombstone_unseen(run.id, seen, now(opts))
            .await
            .map_err(run.store_err())?;
        run.counts.removed += removed;
    } else {
        tracing::warn!(
            run_id = run.id,
            "a list of the scope could not be read; no subscriber is tombstoned this run"
        );
    }
    Ok(None)
}

/// Replaces partial list records by `subscriber.get` answers, fetched concurrently. A
/// subscriber the server no longer knows leaves `seen` (it is tombstoned); one that failed
/// stays in `seen` (it is not). `Ok(Err(why))`: an auth failure stopped the job.
async fn complete_records<R: Remote>(
    run: &mut Run<'_>,
    remote: &R,
    partial: Vec<Subscriber>,
    seen: &mut HashSet<i64>,
    progress: &Progress,
) -> Result<Result<Vec<Subscriber>, String>, SyncError> {
    let mut answers = futures::stream::iter(partial.into_iter().map(|s| s.id))
        .map(|id| async move { (id, remote.subscriber_get(id).await) })
        .buffer_unordered(run.opts.concurrency);
    let mut full = Vec::new();
    while let Some((id, answer)) = answers.next().await {
        match answer {
            Ok(Some(mut s)) => {
                s.id = id;
                full.push(s);
            }
            Ok(None) => {
                seen.remove(&id);
                progress.add_done(1);
            }
            Err(e) if is_fatal(&e) => return Ok(Err(format!("subscriber.get {id}: {e}"))),
            Err(e) => {
                progress.add_done(1);
                run.item_failed(format!("subscriber.get {id}"), &e).await?;
            }
        }
    }
    full.sort_by_key(|s| s.id);
    Ok(Ok(full))
}

/// Applies `list` in transactions of `batch_size` records.
async fn apply(
    run: &mut Run<'_>,
    list: Vec<Subscriber>,
    progress: &Progress,
) -> Result<(), SyncError> {
    let batch = run.opts.batch_size.max(1);
    let mut records = list.into_iter();
    loop {
        let chunk: Vec<Subscriber> = records.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len() as u64;
        let c = run
            .store
            .apply_subscribers(run.id, chunk, now(run.opts))
            .await
            .map_err(run.store_err())?;
        run.counts.inserted += c.inserted;
        run.counts.updated += c.updated + c.restored;
        run.counts.unchanged += c.unchanged;
        progress.add_done(n);
    }
    Ok(())
}
