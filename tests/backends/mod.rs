//! Tests that run on both backends: an in-memory SQLite mirror and, where PostgreSQL's
//! binaries can be had, a mirror in a throwaway PostgreSQL cluster of the test's own (started
//! from the binaries, stopped when the test ends; `tests/pg_support`). Where no server can be
//! had the PostgreSQL half is skipped with the reason (it fails under `TARISCOPE_CI=1`, as
//! every test needing a tool does).
//!
//! One file for the store's own tests (included by `src/store/mod.rs`) and the acceptance
//! tests (`mod backends;` beside `use tariscope_sync::store::{Store, pg};`): its parent
//! module names `Store` and `pg`.
#![allow(dead_code)]

#[path = "../deploy_support/mod.rs"]
mod deploy_support;
#[path = "../pg_support/mod.rs"]
pub(crate) mod pg_support;

use super::{Store, pg};

/// A store to test, and the cluster it lives in (stopped on drop).
pub(crate) struct Backend {
    pub(crate) store: Store,
    pub(crate) name: &'static str,
    _cluster: Option<pg_support::PgCluster>,
}

/// The backends every store test runs on, SQLite first.
pub(crate) async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend {
        store: Store::open_in_memory().unwrap(),
        name: "sqlite",
        _cluster: None,
    }];
    let postgres = tokio::task::spawn_blocking(|| {
        let cluster = pg_support::cluster()?;
        let target = pg::Target::parse(&cluster.database(), None).unwrap();
        let store = Store::open_postgres(&target).unwrap();
        Some(Backend {
            store,
            name: "postgres",
            _cluster: Some(cluster),
        })
    })
    .await
    .unwrap();
    out.extend(postgres);
    out
}

/// Says which backend the following assertions are about (shown with a failure).
pub(crate) fn on(backend: &Backend) -> Store {
    eprintln!("--- on {}", backend.name);
    backend.store.clone()
}

/// The mirrors a test of the real binary runs on: `None` (a SQLite file of its own) and,
/// where a cluster can be had, a fresh database's URL on it. The cluster, returned too,
/// stops when dropped.
pub(crate) async fn mirror_urls() -> (Option<pg_support::PgCluster>, Vec<Option<String>>) {
    let cluster = pg_support::cluster_from_async().await;
    let mut mirrors = vec![None];
    mirrors.extend(cluster.as_ref().map(|c| Some(c.database_from_async())));
    (cluster, mirrors)
}
