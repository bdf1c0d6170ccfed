//! The `reference` pull job against the fake remote.

mod backends;

use chrono::{TimeZone, Utc};
use tariscope_sync::model::Service;
use tariscope_sync::store::{Outcome, Store, StoreError, pg};
use tariscope_sync::sync::fake::{FakeData, FakeRemote};
use tariscope_sync::sync::{Clock, JobKind, Progress, PullOptions, run_job};

fn opts() -> PullOptions {
    let mut o = PullOptions::new("2026-03-01".parse().unwrap());
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

async fn rows(store: &Store, query: &'static str) -> Vec<(i64, Option<String>)> {
    store
        .read(move |c| {
            c.prepare(query)
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(|source| StoreError::Sql {
                    context: "test",
                    source,
                })
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_is_mirrored_and_replaced_when_changed() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = FakeRemote::new(FakeData::seeded(1, "2026-01-01".parse().unwrap()));
        let progress = Progress::new();
        let r = run_job(JobKind::Reference, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(r.counts.inserted, 2 + 1 + 1 + 1);
        assert_eq!((progress.done(), progress.total()), (4, 4));
        assert_eq!(
            rows(&store, "SELECT id, name FROM tariff_plans ORDER BY id").await,
            [(1, Some("Basic".into())), (2, Some("Business".into()))]
        );
        assert_eq!(
            rows(&store, "SELECT id, version FROM system_info").await,
            [(1, Some("4.6.4.1521".into()))]
        );
        assert_eq!(
            rows(&store, "SELECT id, value FROM tariffs").await,
            [(7, Some("0.45".into()))]
        );

        // Unchanged: nothing but the run record is written.
        let before = store.total_changes().await.unwrap();
        let r = run_job(JobKind::Reference, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(r.counts.unchanged, 5);
        assert_eq!(store.total_changes().await.unwrap() - before, 2);

        // Changed: a plan renamed, a service replaced, the version bumped.
        remote.edit(|d| {
            d.plans[1].name = Some("Corporate".into());
            d.services = vec![Service {
                id: 4,
                name: Some("Conference".into()),
                raw: vec![],
            }];
            d.system.version = Some("4.6.5.1".into());
        });
        let r = run_job(JobKind::Reference, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(
            (
                r.counts.inserted,
                r.counts.updated,
                r.counts.removed,
                r.counts.unchanged
            ),
            (1, 2, 1, 2)
        );
        assert_eq!(
            rows(&store, "SELECT id, name FROM tariff_plans ORDER BY id").await,
            [(1, Some("Basic".into())), (2, Some("Corporate".into()))]
        );
        assert_eq!(
            rows(&store, "SELECT id, name FROM services").await,
            [(4, Some("Conference".into()))]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reference_fetch_keeps_the_table() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = FakeRemote::new(FakeData::seeded(1, "2026-01-01".parse().unwrap()));
        run_job(
            JobKind::Reference,
            &remote,
            &store,
            &opts(),
            &Progress::new(),
        )
        .await
        .unwrap();
        remote.edit(|d| d.services.clear());
        // plans and tariffs answer, services and system info fail.
        remote.fail_after(2);
        let r = run_job(
            JobKind::Reference,
            &remote,
            &store,
            &opts(),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!((r.outcome, r.counts.errors), (Outcome::Partial, 2));
        assert_eq!(rows(&store, "SELECT id, name FROM services").await.len(), 1);
    }
}
