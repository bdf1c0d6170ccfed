//! Grouped writes for the per-item jobs (payments, charges, summaries).
//!
//! Owns: `WriteGroup`, which collects what many items produce (rows and the checkpoint each
//! item completes) and writes them as one transaction when it holds `MAX_ROWS` rows or its
//! oldest entry is `MAX_AGE` old, whichever comes first; at most one such transaction is in
//! flight while the next fills (an item that fills a group while the previous one is still
//! being written waits for it: back-pressure). Must not: reorder entries (a subscriber's
//! checkpoints must reach the mirror in the order the job produced them), or go on writing
//! after a failed transaction (a later checkpoint could then cover data that was lost).
//! A group dropped with entries (its run cancelled) still writes them.
//!
//! Why: while an integrator holds a read transaction, SQLite cannot reuse the WAL, so it
//! grows by every page every commit rewrites. One commit per item (a subscriber's day)
//! rewrote the same few pages thousands of times; one commit per few thousand rows writes
//! each page once per group. The promises are unchanged: a checkpoint commits with its data
//! (same transaction), and an interrupted run loses only entries not yet written, whose
//! checkpoints were not written either, so a resumed run fetches them again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rusqlite::types::Value;

use super::runs::{Checkpoint, put_checkpoint};
use super::upsert::{Sql, Table, UpsertCounts, upsert};
use super::{Store, StoreError};

/// Rows (checkpoints included) at which a group is written.
pub(crate) const MAX_ROWS: usize = 2_000;
/// Age of a group's oldest entry at which the group is written on the next entry.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(250);

/// One row to upsert: its key values and its data values, in the table's column order.
pub(crate) type Row = (Vec<Value>, Vec<Value>);

/// What one item produced: rows of one table and the checkpoint they complete.
struct Entry {
    table: &'static Table,
    rows: Vec<Row>,
    checkpoint: Option<Checkpoint>,
    now: String,
}

type Flight = Pin<Box<dyn Future<Output = Result<UpsertCounts, StoreError>> + Send>>;

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    rows: usize,
    since: Option<Instant>,
    in_flight: Option<Flight>,
    counts: UpsertCounts,
    /// Set when a group failed to write: nothing more is written.
    failed: bool,
}

/// Collects per-item writes of one job run into larger transactions. `finish` writes what
/// is left and returns the counts of everything written.
pub struct WriteGroup {
    store: Store,
    state: tokio::sync::Mutex<State>,
}

impl Store {
    /// A new, empty write group for one job run.
    pub fn write_group(&self) -> WriteGroup {
        WriteGroup {
            store: self.clone(),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }
}

impl WriteGroup {
    /// Adds one item's `rows` of `table` and its checkpoint. Returns once they are queued;
    /// they are committed later, together. Fails if an earlier group failed to write (its
    /// error was returned to the item that wrote it).
    pub(crate) async fn add(
        &self,
        table: &'static Table,
        rows: Vec<Row>,
        checkpoint: Option<Checkpoint>,
        now: String,
    ) -> Result<(), StoreError> {
        let mut st = self.state.lock().await;
        if st.failed {
            return Err(StoreError::EarlierWriteFailed);
        }
        st.rows += rows.len() + usize::from(checkpoint.is_some());
        st.since.get_or_insert_with(Instant::now);
        st.entries.push(Entry {
            table,
            rows,
            checkpoint,
            now,
        });
        let due = st.rows >= MAX_ROWS || st.since.is_some_and(|t| t.elapsed() >= MAX_AGE);
        if due {
            self.send(&mut st).await?;
        }
        Ok(())
    }

    /// Writes what is left and waits for it. Returns the counts of every row written.
    pub async fn finish(&self) -> Result<UpsertCounts, StoreError> {
        let mut st = self.state.lock().await;
        if st.failed {
            return Err(StoreError::EarlierWriteFailed);
        }
        self.send(&mut st).await?;
        if let Some(flight) = st.in_flight.take() {
            Self::landed(&mut st, flight.await)?;
        }
        Ok(st.counts)
    }

    /// Waits for the group in flight, then queues the collected entries as the next one.
    async fn send(&self, st: &mut State) -> Result<(), StoreError> {
        if let Some(flight) = st.in_flight.take() {
            Self::landed(st, flight.await)?;
        }
        st.in_flight = Self::queue(&self.store, st).map(|f| Box::pin(f) as Flight);
        Ok(())
    }

    /// Queues the collected entries on the writer as one command (now, not when the
    /// returned future is first polled); `None` when there are none.
    fn queue(
        store: &Store,
        st: &mut State,
    ) -> Option<impl Future<Output = Result<UpsertCounts, StoreError>> + Send + 'static> {
        let entries = std::mem::take(&mut st.entries);
        st.rows = 0;
        st.since = None;
        if entries.is_empty() {
            return None;
        }
        Some(store.writer.submit(move |conn| {
            let mut counts = UpsertCounts::default();
            let mut sqls: HashMap<&'static str, Sql> = HashMap::new();
            for e in entries {
                let table_sql = sqls.entry(e.table.name).or_insert_with(|| e.table.sql());
                for (key, data) in e.rows {
                    counts.count(upsert(conn, e.table, table_sql, key, data, &e.now)?);
                }
                if let Some(cp) = e.checkpoint {
                    put_checkpoint(conn, &cp, &e.now)?;
                }
            }
            Ok(counts)
        }))
    }

    fn landed(st: &mut State, written: Result<UpsertCounts, StoreError>) -> Result<(), StoreError> {
        match written {
            Ok(c) => {
                st.counts.add(c);
                Ok(())
            }
            Err(e) => {
                st.failed = true;
                Err(e)
            }
        }
    }
}

/// A run cancelled mid-flight (its future dropped) still writes what its items fetched, with
/// their checkpoints, so the resumed run fetches again only what was in flight. Nothing is
/// written after a failed group.
impl Drop for WriteGroup {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if !st.failed {
            // The writer runs a queued command whether or not anyone awaits its reply.
            drop(Self::queue(&self.store, st));
        }
    }
}
