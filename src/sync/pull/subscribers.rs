//! The `subscribers` job: mirror every subscriber of the configured scope.
//!
//! Owns: reading the node and department lists (and `subscriber.get` per listed id when the
//! lists are partial, configured or seen: a list whose records carry only id and name),
//! filling a missing node / department from the list it came from,
//! de-duplicating subscribers listed twice, applying them to the mirror in batches (decoding
//! the next batch while the writer thread commits the previous one, so a list is never held
//! whole as records; its raw answer is), recording each undecodable record as a failed item,
//! recording whether the records show their numbers (`server_traits`), and tombstoning the ones no
//! list holds any more. Must not: tombstone anything when a list or one of its records could
//! not be read (a subscriber missing from an unread list has not disappeared), or more than
//! `max_removals` of a list's scope (an empty list where the mirror holds rows never
//! tombstones: the removals are held back, the run is `partial`; see `store::removals`).

use std::collections::HashSet;

use futures::StreamExt;

use super::{Run, SyncError, Verdict, interrupted, is_fatal, now};
use crate::model::{DnListing, Subscriber};
use crate::store::{ApplyCounts, ListScope, Mode, Store, StoreError};
use crate::sync::options::{JobKind, Progress, PullOptions};
use crate::sync::remote::{Remote, RemoteError, RemoteResult, SubscriberRecords};

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

    /// The list's scope for the removal guard; `listed`: records it answered.
    fn scope(self, listed: u64) -> ListScope {
        let (word, column, id) = match self {
            Source::Node(n) => ("node", "nodeid", n),
            Source::Department(d) => ("department", "departmentid", d),
        };
        ListScope {
            label: format!("{word} {id}"),
            column,
            id,
            listed,
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
    let mut run = Run::start(
        store,
        opts,
        progress,
        JobKind::Subscribers,
        Mode::Incremental,
        None,
    )
    .await?;
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
    let mut scopes = Vec::new();
    let mut listing = None;
    for source in sources {
        // At shutdown: stop between lists and batches; nothing is tombstoned.
        if let Some(why) = interrupted(opts) {
            return Ok(Some(why));
        }
        let listed = match source {
            Source::Node(n) => remote.subscribers_by_node(n).await,
            Source::Department(d) => remote.subscribers_by_department(d).await,
        };
        let records = match listed {
            Ok(records) => records,
            Err(e) if is_fatal(&e) => return Ok(Some(format!("{}: {e}", source.label()))),
            Err(e) => {
                complete = false;
                run.item_failed(source.label(), &e).await?;
                continue;
            }
        };
        let before = run.counts.fetched;
        let (partial, records) = if remote.lists_are_partial() {
            (true, records)
        } else {
            detect_partial(source, records)
        };
        let bad = if partial {
            let mut list = Vec::new();
            let mut bad = Vec::new();
            for record in records {
                run.counts.fetched += 1;
                match record {
                    Ok(s) => list.push(s),
                    Err(e) => bad.push(e),
                }
            }
            list.retain(|s| seen.insert(s.id));
            progress.add_total(list.len() as u64);
            let full = match complete_records(run, remote, list, &mut seen, progress).await? {
                Ok(full) => full,
                Err(why) => return Ok(Some(why)),
            };
            let records = full.into_iter().map(Ok);
            apply(run, source, records, None, &mut listing, progress).await?;
            bad
        } else {
            apply(
                run,
                source,
                records,
                Some(&mut seen),
                &mut listing,
                progress,
            )
            .await?
        };
        scopes.push(source.scope(run.counts.fetched - before));
        // A record that could not be read may be a live subscriber: nothing is tombstoned.
        for e in bad {
            complete = false;
            run.item_failed(format!("{} (a record)", source.label()), &e)
                .await?;
        }
    }
    if let Some(listing) = listing {
        let source = format!("pull run {}", run.id);
        run.store
            .record_dn_listing(listing, source, now(opts))
            .await
            .map_err(run.store_err())?;
    }
    if let Some(why) = interrupted(opts) {
        return Ok(Some(why));
    }
    if complete {
        let guard = opts.max_removals.map(|limit| (limit, scopes));
        let removals = run
            .store
            .tombstone_unseen(run.id, seen, guard, now(opts))
            .await
            .map_err(run.store_err())?;
        run.counts.removed += removals.removed;
        for held in removals.held {
            run.held_back(held);
        }
    } else {
        tracing::warn!(
            run_id = run.id,
            "a list of the scope could not be read; no subscriber is tombstoned this run"
        );
    }
    Ok(None)
}

/// True when a listed record carries nothing but its id and name (and what the list itself
/// implies): the shape of a server whose lists are partial.
fn only_id_and_name(s: &Subscriber) -> bool {
    let bare = Subscriber {
        id: s.id,
        fullname: s.fullname.clone(),
        department_id: s.department_id,
        node_id: s.node_id,
        ..Subscriber::default()
    };
    *s == bare
}

/// A server whose lists are partial while `api.profile.lists_are_partial` is not set would
/// otherwise blank every other field of the mirror (and log them as cleared). When the first
/// record of a list carries only id and name, the list is read whole and, if every record
/// of it does, it is treated as partial (each subscriber fetched with `subscriber.get`) with
/// a warning that says what to configure. Wrongly taken for partial, a list costs requests,
/// never data: `subscriber.get` answers the full record either way.
fn detect_partial(source: Source, records: SubscriberRecords) -> (bool, SubscriberRecords) {
    let mut records = records.peekable();
    if !matches!(records.peek(), Some(Ok(first)) if only_id_and_name(first)) {
        return (false, Box::new(records));
    }
    let list: Vec<_> = records.collect();
    let partial = list.iter().all(|r| match r {
        Ok(s) => only_id_and_name(s),
        Err(_) => true,
    });
    if partial {
        tracing::warn!(
            list = source.label(),
            records = list.len(),
            "the list's records carry only id and name although api.profile.lists_are_partial \
             is not set: fetching each subscriber with subscriber.get instead of blanking the \
             mirror's fields; set api.profile.lists_are_partial = true to say so"
        );
    }
    (partial, Box::new(list.into_iter()))
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
    let stop = run.opts.stop.clone();
    let mut answers = futures::stream::iter(partial.into_iter().map(|s| s.id))
        .take_while(move |_| std::future::ready(!stop.is_cancelled()))
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

/// Writes `records` in transactions of `batch_size`. A batch is queued for the writer
/// thread before the previous one is awaited, so the writer always has the next batch
/// ready while the job decodes the one after (at most three batches in memory). With `seen`, a subscriber listed before is
/// skipped and every written id is added to it. `listing` learns whether the records show
/// their numbers (`DnListing`; shown by any record wins). Returns the records that could not
/// be decoded.
async fn apply(
    run: &mut Run<'_>,
    source: Source,
    mut records: impl Iterator<Item = RemoteResult<Subscriber>>,
    mut seen: Option<&mut HashSet<i64>>,
    listing: &mut Option<DnListing>,
    progress: &Progress,
) -> Result<Vec<RemoteError>, SyncError> {
    /// Records decoded between two yields to the runtime (about a millisecond of work).
    const YIELD_EVERY: usize = 256;
    let batch = run.opts.batch_size.max(1);
    let mut bad = Vec::new();
    let mut in_flight = None;
    let mut exhausted = false;
    // At shutdown no new batch starts (the caller records the run as interrupted).
    while !exhausted && !run.opts.stop.is_cancelled() {
        let mut chunk = Vec::with_capacity(batch.min(8192));
        let mut read = 0usize;
        while chunk.len() < batch {
            let Some(record) = records.next() else {
                exhausted = true;
                break;
            };
            read += 1;
            if read.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
            match record {
                Ok(mut s) => {
                    if seen.as_mut().is_none_or(|seen| seen.insert(s.id)) {
                        source.fill(&mut s);
                        chunk.push(s);
                    }
                }
                Err(e) => bad.push(e),
            }
        }
        if seen.is_some() {
            // The partial-list path counted its records and set the total already.
            run.counts.fetched += read as u64;
            progress.add_total(chunk.len() as u64);
        }
        if *listing != Some(DnListing::Shown) {
            *listing = DnListing::of(&chunk).or(*listing);
        }
        // Queued before the previous batch is awaited, so the writer never waits for us.
        if !chunk.is_empty() {
            let n = chunk.len() as u64;
            let write = (n, run.store.apply_subscribers(run.id, chunk, now(run.opts)));
            if let Some(previous) = in_flight.replace(write) {
                finish(run, previous, progress).await?;
            }
        }
    }
    if let Some(write) = in_flight {
        finish(run, write, progress).await?;
    }
    Ok(bad)
}

/// Waits for one batch write and counts it.
async fn finish(
    run: &mut Run<'_>,
    (n, write): (u64, impl Future<Output = Result<ApplyCounts, StoreError>>),
    progress: &Progress,
) -> Result<(), SyncError> {
    let c = write.await.map_err(run.store_err())?;
    run.counts.inserted += c.inserted;
    run.counts.updated += c.updated + c.restored;
    run.counts.unchanged += c.unchanged;
    progress.add_done(n);
    Ok(())
}
