//! The `subscribers` pull job against the fake remote: full pull, change log, no-op re-pull,
//! partial lists, list and item failures.

mod backends;

use chrono::{NaiveDate, TimeZone, Utc};
use tariscope_sync::model::{DnAssignment, Subscriber};
use tariscope_sync::store::{Outcome, Store, StoreError, pg};
use tariscope_sync::sync::fake::{FakeData, FakeRemote, Method};
use tariscope_sync::sync::{Clock, JobKind, JobReport, Progress, PullOptions, Scope, run_job};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn opts() -> PullOptions {
    let mut o = PullOptions::new(day("2026-03-01"));
    o.scope = Scope {
        nodes: vec![1],
        departments: vec![21],
    };
    o.concurrency = 4;
    o.batch_size = 7;
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

/// One `subscribers` run with `opts()`.
async fn pull(remote: &FakeRemote, store: &Store) -> JobReport {
    run_job(
        JobKind::Subscribers,
        remote,
        store,
        &opts(),
        &Progress::new(),
    )
    .await
    .unwrap()
}

fn fake(n: usize) -> FakeRemote {
    FakeRemote::new(FakeData::seeded(n, day("2026-01-01")))
}

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

/// `(subscriber, kind, changed_fields)` of the change log, in order.
async fn changes(store: &Store) -> Vec<(i64, String, Option<String>)> {
    store
        .read(|c| {
            c.prepare(
                "SELECT subscriber_id, kind, changed_fields FROM subscriber_changes ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(sql)
        })
        .await
        .unwrap()
}

async fn removed_at(store: &Store, id: i64) -> Option<String> {
    store
        .read(move |c| {
            c.query_row(
                "SELECT removed_at FROM subscribers WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(sql)
        })
        .await
        .unwrap()
}

/// Every subscriber of the fake is in the mirror exactly as the fake has it.
async fn assert_mirror_equals(store: &Store, remote: &FakeRemote) {
    let data = remote.data();
    let live = store.live_subscriber_ids().await.unwrap();
    assert_eq!(live, data.subscribers.keys().copied().collect::<Vec<_>>());
    for (id, want) in &data.subscribers {
        let mut got = store.subscriber(*id).await.unwrap().expect("in mirror");
        let mut want = want.clone();
        sort_dns(&mut got);
        sort_dns(&mut want);
        assert_eq!(got, want, "subscriber {id}");
    }
}

fn sort_dns(s: &mut Subscriber) {
    if let Some(d) = s.dns.as_mut() {
        d.sort_by(|a, b| a.dn.cmp(&b.dn));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pull_into_an_empty_mirror_equals_the_remote() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(40);
        let progress = Progress::new();
        let report = run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Ok, "{report:?}");
        assert_eq!(report.counts.inserted, 40);
        assert_eq!(report.counts.fetched, 40);
        assert_eq!((progress.done(), progress.total()), (40, 40));
        assert_mirror_equals(&store, &remote).await;
        let log = changes(&store).await;
        assert_eq!(log.len(), 40);
        assert!(
            log.iter()
                .all(|(_, kind, fields)| kind == "inserted" && fields.is_none())
        );
        let runs = store.job_runs("subscribers").await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].outcome, Outcome::Ok);
        assert_eq!(runs[0].counts.inserted, 40);
        assert!(runs[0].ended_at.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_re_pull_writes_no_mirror_row() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(40);
        let progress = Progress::new();
        run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        let before = store.total_changes().await.unwrap();
        let report = run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        let written = store.total_changes().await.unwrap() - before;
        assert_eq!(report.counts.unchanged, 40);
        assert_eq!(
            report.counts.inserted + report.counts.updated + report.counts.removed,
            0
        );
        // Exactly the run record: one INSERT at start, one UPDATE at the end.
        assert_eq!(written, 2, "a no-op pull must write only its job_runs row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_creations_removals_and_restores_are_logged() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(12);
        let progress = Progress::new();
        run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        let before = changes(&store).await.len();
        let removed = remote.edit(|d| {
            let s = d.subscribers.get_mut(&1001).unwrap();
            s.fullname = Some("Renamed".into());
            s.flat = None;
            s.dns.as_mut().unwrap().push(DnAssignment {
                id: Some(9),
                subscriber_id: 1001,
                pbx_id: Some(1),
                dn: "0441234567".into(),
                from_date: None,
                description: None,
            });
            let mut new = d.subscribers[&1002].clone();
            new.id = 5000;
            for dn in new.dns.as_mut().unwrap() {
                dn.subscriber_id = 5000;
            }
            d.subscribers.insert(5000, new);
            d.subscribers.remove(&1003).unwrap()
        });
        let report = run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(
            (
                report.counts.inserted,
                report.counts.updated,
                report.counts.removed,
                report.counts.unchanged
            ),
            (1, 1, 1, 10)
        );
        let log = changes(&store).await.split_off(before);
        let find = |id: i64| log.iter().find(|c| c.0 == id).cloned().unwrap();
        let (_, kind, fields) = find(1001);
        assert_eq!(kind, "updated");
        let fields: serde_json::Value = serde_json::from_str(&fields.unwrap()).unwrap();
        let fields = fields.as_object().unwrap();
        assert_eq!(
            fields["fullname"],
            serde_json::json!(["Subscriber 1001", "Renamed"])
        );
        assert_eq!(fields["flat"], serde_json::json!(["0", null]));
        assert!(fields.contains_key("dns"));
        assert_eq!(fields.len(), 3, "only the changed fields: {fields:?}");
        assert_eq!(find(5000).1, "inserted");
        assert_eq!(find(1003).1, "removed");
        assert_eq!(log.len(), 3);
        assert!(
            removed_at(&store, 1003).await.is_some(),
            "tombstoned, not deleted"
        );
        assert_mirror_equals(&store, &remote).await;

        // It comes back.
        remote.edit(|d| d.subscribers.insert(1003, removed));
        let report = run_job(JobKind::Subscribers, &remote, &store, &opts(), &progress)
            .await
            .unwrap();
        assert_eq!(report.counts.updated, 1);
        let last = changes(&store).await.pop().unwrap();
        assert_eq!(
            (last.0, last.1.as_str(), last.2.as_deref()),
            (1003, "restored", Some("{}"))
        );
        assert!(removed_at(&store, 1003).await.is_none());
        assert_mirror_equals(&store, &remote).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_lists_are_completed_with_subscriber_get() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(25);
        remote.set_partial_lists(true);
        let report = pull(&remote, &store).await;
        assert_eq!(report.outcome, Outcome::Ok);
        assert_mirror_equals(&store, &remote).await;
        let gets = remote.calls().iter().filter(|c| c.0 == Method::Get).count();
        assert_eq!(gets, 25);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_scopes_count_a_subscriber_once() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(30);
        let mut o = opts();
        o.scope = Scope {
            nodes: vec![1, 2],
            departments: vec![11, 21],
        };
        let report = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(report.counts.inserted, 30);
        assert_mirror_equals(&store, &remote).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_list_tombstones_nothing_and_the_run_is_partial() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(12);
        pull(&remote, &store).await;
        remote.edit(|d| d.subscribers.remove(&1001));
        // The node list answers; the department list (the second call) fails.
        remote.fail_after(1);
        let report = pull(&remote, &store).await;
        assert_eq!(report.outcome, Outcome::Partial);
        assert_eq!(report.counts.removed, 0);
        assert!(removed_at(&store, 1001).await.is_none());
        let errors = store.item_errors(report.run_id).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].0.contains("department 21"), "{errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_list_record_fails_alone_and_nothing_is_tombstoned() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(12);
        pull(&remote, &store).await;
        let before = store.subscriber(1004).await.unwrap();
        remote.set_bad_data(Method::ListNode, 1004);
        remote.set_bad_data(Method::ListDepartment, 1004);
        remote.edit(|d| {
            d.subscribers.get_mut(&1004).unwrap().fullname = Some("Changed".into());
            d.subscribers.get_mut(&1005).unwrap().fullname = Some("Changed too".into());
            d.subscribers.remove(&1001);
        });
        let report = pull(&remote, &store).await;
        assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
        assert!(report.counts.errors >= 1, "{report:?}");
        assert_eq!((report.counts.updated, report.counts.removed), (1, 0));
        assert_eq!(store.subscriber(1004).await.unwrap(), before, "untouched");
        assert!(
            removed_at(&store, 1001).await.is_none(),
            "a list with an unreadable record tombstones nothing"
        );
        let fullname = |s: Option<Subscriber>| s.unwrap().fullname;
        assert_eq!(
            fullname(store.subscriber(1005).await.unwrap()).as_deref(),
            Some("Changed too")
        );
        let errors = store.item_errors(report.run_id).await.unwrap();
        assert!(
            errors
                .iter()
                .all(|e| e.0.contains("(a record)") && e.1.contains("1004")),
            "{errors:?}"
        );
        remote.clear_faults();
        let report = pull(&remote, &store).await;
        assert_eq!(report.outcome, Outcome::Ok, "{report:?}");
        assert_eq!((report.counts.updated, report.counts.removed), (1, 1));
        assert_mirror_equals(&store, &remote).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_fails_that_item_only() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let remote = fake(12);
        pull(&remote, &store).await;
        let before = store.subscriber(1004).await.unwrap();
        remote.set_partial_lists(true);
        remote.set_bad_data(Method::Get, 1004);
        remote.edit(|d| {
            d.subscribers.get_mut(&1004).unwrap().fullname = Some("Changed".into());
            d.subscribers.get_mut(&1005).unwrap().fullname = Some("Changed too".into());
        });
        let report = pull(&remote, &store).await;
        assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
        assert_eq!(
            (
                report.counts.errors,
                report.counts.updated,
                report.counts.removed
            ),
            (1, 1, 0)
        );
        assert_eq!(
            store.subscriber(1004).await.unwrap(),
            before,
            "the failed item is untouched"
        );
        assert_eq!(
            store
                .subscriber(1005)
                .await
                .unwrap()
                .unwrap()
                .fullname
                .as_deref(),
            Some("Changed too")
        );
        let runs = store.job_runs("subscribers").await.unwrap();
        assert_eq!(runs[0].outcome, Outcome::Partial);
        assert!(runs[0].error.as_deref().unwrap().contains("1004"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_scope_is_refused() {
    for backend in backends::backends().await {
        let store = backends::on(&backend);
        let mut o = opts();
        o.scope = Scope::default();
        let err = run_job(JobKind::Subscribers, &fake(3), &store, &o, &Progress::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("scope"), "{err}");
    }
}
