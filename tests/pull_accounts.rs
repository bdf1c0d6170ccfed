//! The account pull jobs against the fake remote: payment and charge windows with lookback,
//! daily summaries, resumable backfills (cancelled task, injected fault), undecodable items.

mod backends;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use tariscope_sync::store::{Mode, Outcome, Store, StoreError, pg};
use tariscope_sync::sync::fake::{FakeData, FakeRemote, Method, summary_of};
use tariscope_sync::sync::{Clock, JobKind, Progress, PullOptions, Scope, run_job};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const FIRST: &str = "2026-01-01";

fn opts(today: &str) -> PullOptions {
    let mut o = PullOptions::new(day(today));
    o.scope = Scope {
        nodes: vec![1, 2],
        departments: vec![],
    };
    o.concurrency = 4;
    o.lookback_days = 3;
    o.initial_days = 20;
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

/// A table's rows as text, without timestamps, sorted.
async fn dump(store: &Store, query: &'static str) -> Vec<String> {
    let mut rows: Vec<String> = store
        .read(move |c| {
            let mut st = c.prepare(query).map_err(sql)?;
            let n = st.column_names().map_err(sql)?.len();
            st.query_map([], |r| {
                let cols: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect();
                Ok(cols.join("|"))
            })
            .and_then(|rows| rows.collect())
            .map_err(sql)
        })
        .await
        .unwrap();
    rows.sort();
    rows
}

const PAYMENTS: &str =
    "SELECT subscriber_id, payment_id, payment_day, amount, payment_type, bank FROM payments";
const CHARGES: &str = "SELECT subscriber_id, charge_key, charge_id, recdate, fromdate, todate, servicename, charge, numberofservices FROM charges";
const SUMMARIES: &str =
    "SELECT subscriber_id, date, start_debt, end_debt, charge, payment FROM account_summaries";

/// A payment as `dump(PAYMENTS)` renders its stored row.
fn payment_row(p: &tariscope_sync::model::Payment) -> String {
    use rusqlite::types::Value;
    let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    [
        Value::Integer(p.subscriber_id),
        Value::Integer(p.payment_id),
        text(p.payment_day.map(|d| d.to_string())),
        text(p.amount.map(|a| a.normalize().to_string())),
        p.payment_type
            .map_or(Value::Null, |t| Value::Integer(t.code())),
        text(p.bank.clone()),
    ]
    .iter()
    .map(|v| format!("{v:?}"))
    .collect::<Vec<_>>()
    .join("|")
}

/// `store` with the fake's subscribers pulled.
async fn mirror(store: Store, remote: &FakeRemote) -> Store {
    let r = run_job(
        JobKind::Subscribers,
        remote,
        &store,
        &opts("2026-03-01"),
        &Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Ok);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_windows_with_lookback_never_duplicate() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(15, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        let mut seen_windows = Vec::new();
        // Daily incremental runs across the whole data range: every window overlaps the last.
        let mut today = day("2026-01-25");
        while today <= day("2026-03-05") {
            let r = run_job(
                JobKind::Payments,
                &remote,
                &store,
                &opts(&today.to_string()),
                &Progress::new(),
            )
            .await
            .unwrap();
            assert_eq!(r.outcome, Outcome::Ok);
            assert_eq!(r.mode, Mode::Incremental);
            seen_windows.push(r.window.unwrap());
            today = today + Days::new(4);
        }
        assert_eq!(
            seen_windows[0],
            (day("2026-01-05"), day("2026-01-25")),
            "first: initial_days"
        );
        assert_eq!(
            seen_windows[1],
            (day("2026-01-22"), day("2026-01-29")),
            "then: last end - lookback"
        );
        // The fake's own payments of the covered days, written as the store writes them: the
        // mirror must hold each exactly once and nothing else. Compared as multisets, so a
        // payment stored under a second key (or a key shared by two payments) fails here even
        // though the table's primary key is unique.
        let in_range = |p: &&tariscope_sync::model::Payment| {
            p.payment_day
                .is_some_and(|d| d >= day("2026-01-05") && d <= day("2026-03-05"))
        };
        let mut want: Vec<String> = remote
            .data()
            .payments
            .iter()
            .filter(in_range)
            .map(payment_row)
            .collect();
        want.sort();
        assert!(want.len() > 30);
        let stored = dump(&store, PAYMENTS).await;
        assert_eq!(
            stored, want,
            "each payment of the covered days exactly once, as the remote has it"
        );
        let want = want.len();
        // A payment changed on the server inside the window is updated in place.
        remote.edit(|d| {
            let late = d
                .payments
                .iter_mut()
                .find(|p| p.payment_day >= Some(day("2026-02-27")))
                .unwrap();
            late.bank = Some("Oschadbank".into());
        });
        let r = run_job(
            JobKind::Payments,
            &remote,
            &store,
            &opts("2026-03-05"),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!((r.counts.inserted, r.counts.updated), (0, 1));
        assert_eq!(dump(&store, PAYMENTS).await.len(), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_run_of_the_same_window_writes_no_account_row() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(10, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        let mut o = opts("2026-03-01");
        o.from = Some(day(FIRST));
        o.to = Some(day("2026-03-01"));
        run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        let before = store.total_changes().await.unwrap();
        let r = run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.counts.unchanged, 30);
        // Run record (insert + update) and the 10 checkpoints written then cleared with the data.
        assert_eq!(store.total_changes().await.unwrap() - before, 2 + 10 + 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_whose_id_is_the_subscriber_id_are_keyed_by_content() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(6, day(FIRST)));
        // The guide's reading: every charge row's `id` is the subscriber's id.
        remote.edit(|d| {
            for c in &mut d.charges {
                c.id = Some(c.subscriber_id);
            }
            // Two identical rows on one day: both kept.
            let twin = d.charges[0].clone();
            d.charges.push(twin);
        });
        let store = mirror(backends::on(&backend), &remote).await;
        let mut today = day("2026-01-20");
        while today <= day("2026-03-10") {
            let r = run_job(
                JobKind::Charges,
                &remote,
                &store,
                &opts(&today.to_string()),
                &Progress::new(),
            )
            .await
            .unwrap();
            assert_eq!(r.outcome, Outcome::Ok);
            today = today + Days::new(5);
        }
        let stored = dump(&store, CHARGES).await;
        assert_eq!(stored.len(), remote.data().charges.len());
        assert!(
            stored.iter().all(|r| r.contains("Text(\"c:")),
            "content keys: {stored:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_with_record_ids_are_keyed_by_id() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(4, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        let mut o = opts("2026-03-01");
        o.from = Some(day(FIRST));
        o.to = Some(day("2026-03-01"));
        run_job(JobKind::Charges, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        let stored = dump(&store, CHARGES).await;
        assert_eq!(stored.len(), 12);
        assert!(
            stored.iter().all(|r| r.contains("Text(\"id:")),
            "{stored:?}"
        );
    }
}

fn expected_summaries(
    subs: impl Iterator<Item = i64> + Clone,
    from: NaiveDate,
    to: NaiveDate,
) -> usize {
    let days = from.iter_days().take_while(|d| *d <= to).count();
    subs.count() * days
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_backfill_then_incremental() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(8, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        let mut o = opts("2026-02-10");
        o.from = Some(day("2026-02-01"));
        o.to = Some(day("2026-02-05"));
        let progress = Progress::new();
        let r = run_job(JobKind::Summaries, &remote, &store, &o, &progress)
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(r.counts.inserted, 40);
        assert_eq!((progress.done(), progress.total()), (40, 40));
        let rows = dump(&store, SUMMARIES).await;
        assert_eq!(rows.len(), 40);
        let s = summary_of(1003, day("2026-02-03"));
        let want = format!(
            "Integer(1003)|Text(\"2026-02-03\")|Text(\"{}\")|Text(\"{}\")|Text(\"{}\")|Text(\"{}\")",
            s.start_debt.unwrap().normalize(),
            s.end_debt.unwrap().normalize(),
            s.charge.unwrap().normalize(),
            s.payment.unwrap().normalize()
        );
        assert!(rows.contains(&want), "{want} not in {rows:?}");
        assert!(
            store.checkpoints("summaries", "").await.unwrap().is_empty(),
            "cleared when ok"
        );

        // Incremental: first the initial window, then only the days since the last one.
        let r = run_job(
            JobKind::Summaries,
            &remote,
            &store,
            &opts("2026-02-10"),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!(r.window, Some((day("2026-01-21"), day("2026-02-10"))));
        remote.reset_calls();
        let r = run_job(
            JobKind::Summaries,
            &remote,
            &store,
            &opts("2026-02-12"),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!(r.window, Some((day("2026-02-10"), day("2026-02-12"))));
        assert_eq!(remote.calls().len(), 8 * 3);
    }
}

/// Runs the same summaries backfill into a fresh mirror without interruption. In SQLite, also
/// for a test on PostgreSQL: both mirrors must read back alike.
async fn uninterrupted(remote: &FakeRemote, o: &PullOptions) -> Vec<String> {
    let store = mirror(Store::open_in_memory().unwrap(), remote).await;
    let r = run_job(JobKind::Summaries, remote, &store, o, &Progress::new())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ok);
    dump(&store, SUMMARIES).await
}

fn backfill_opts() -> PullOptions {
    let mut o = opts("2026-03-01");
    o.from = Some(day("2026-02-01"));
    o.to = Some(day("2026-02-10"));
    o.concurrency = 3;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backfill_resumes_and_ends_identical() {
    let remote = FakeRemote::new(FakeData::seeded(9, day(FIRST)));
    let o = backfill_opts();
    let want = uninterrupted(&remote, &o).await;
    assert_eq!(
        want.len(),
        expected_summaries(0..9, day("2026-02-01"), day("2026-02-10"))
    );

    for k in [1u64, 17, 44, 89] {
        for backend in backends::backends().await {
            let store = mirror(backends::on(&backend), &remote).await;
            remote.reset_calls();
            remote.hang_after(k);
            let progress = Progress::new();
            tokio::select! {
                r = run_job(JobKind::Summaries, &remote, &store, &o, &progress) => panic!("finished despite the hang: {r:?}"),
                _ = remote.hung() => {}
            }
            // The job future is dropped here: the task is cancelled mid-flight.
            remote.clear_faults();
            let stored_before = dump(&store, SUMMARIES).await.len();
            assert!(stored_before < want.len());
            let r = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
                .await
                .unwrap();
            assert_eq!(r.outcome, Outcome::Ok);
            assert_eq!(dump(&store, SUMMARIES).await, want, "k = {k}");
            let counts = remote.call_counts();
            assert!(
                counts.values().all(|n| *n <= 2),
                "k = {k}: some day fetched more than twice"
            );
            let refetched = counts.values().filter(|n| **n == 2).count();
            assert!(
                refetched <= o.concurrency,
                "k = {k}: {refetched} refetched, more than in flight"
            );
            let runs = store.job_runs("summaries").await.unwrap();
            assert_eq!(
                runs[1].outcome,
                Outcome::Failed,
                "the cancelled run is closed as failed"
            );
            assert!(runs[1].error.as_deref().unwrap().contains("interrupted"));
            remote.clear_faults();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_stopped_by_faults_resumes_from_its_checkpoint() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(9, day(FIRST)));
        let o = backfill_opts();
        let want = uninterrupted(&remote, &o).await;
        let store = mirror(backends::on(&backend), &remote).await;
        remote.reset_calls();
        remote.fail_after(40);
        let r = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Partial);
        assert_eq!(r.counts.errors, 90 - 40);
        assert_eq!(store.item_errors(r.run_id).await.unwrap().len(), 50);
        remote.clear_faults();
        let r = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(dump(&store, SUMMARIES).await, want);
        let counts = remote.call_counts();
        assert!(counts.values().all(|n| *n <= 2));
        // Only the failed days were fetched successfully a second time.
        assert_eq!(r.counts.fetched, 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_backfill_resumes_per_subscriber() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(12, day(FIRST)));
        let mut o = opts("2026-03-01");
        o.from = Some(day(FIRST));
        o.to = Some(day("2026-03-01"));
        let store = mirror(backends::on(&backend), &remote).await;
        remote.reset_calls();
        remote.fail_after(5);
        let r = run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.errors), (Outcome::Partial, 7));
        remote.clear_faults();
        let r = run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(
            remote.calls().len(),
            12 + 7,
            "only the failed subscribers again"
        );
        assert_eq!(dump(&store, PAYMENTS).await.len(), 36);
        assert!(store.checkpoints("payments", "").await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_item_makes_the_run_partial_and_writes_nothing_of_it() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(6, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        remote.set_bad_data(Method::Payments, 1002);
        remote.set_bad_data(Method::Summary, 1004);
        let mut o = opts("2026-03-01");
        o.from = Some(day(FIRST));
        o.to = Some(day("2026-03-01"));
        let r = run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.errors), (Outcome::Partial, 1));
        let rows = dump(&store, PAYMENTS).await;
        assert_eq!(rows.len(), 15);
        assert!(!rows.iter().any(|r| r.starts_with("Integer(1002)|")));
        let errs = store.item_errors(r.run_id).await.unwrap();
        assert_eq!(errs[0].0, "subscriber 1002");
        assert!(errs[0].1.contains("undecodable"), "{errs:?}");

        o.from = Some(day("2026-02-01"));
        o.to = Some(day("2026-02-03"));
        let r = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(
            (r.outcome, r.counts.errors, r.counts.inserted),
            (Outcome::Partial, 3, 15)
        );
        let runs = store.job_runs("summaries").await.unwrap();
        assert_eq!(runs[0].outcome, Outcome::Partial);
        assert_eq!(runs[0].counts.errors, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_failure_stops_the_run_as_failed() {
    use tariscope_sync::model::*;
    use tariscope_sync::sync::{
        Remote, RemoteError, RemoteErrorKind, RemoteResult, SubscriberRecords, TariffFilter,
    };

    /// A remote whose every call is refused for lack of rights.
    struct Refused;
    fn no<T>() -> RemoteResult<T> {
        Err(RemoteError::new(RemoteErrorKind::Auth, "forbidden"))
    }
    impl Remote for Refused {
        fn lists_are_partial(&self) -> bool {
            false
        }
        async fn subscribers_by_node(&self, _: i64) -> RemoteResult<SubscriberRecords> {
            no()
        }
        async fn subscribers_by_department(&self, _: i64) -> RemoteResult<SubscriberRecords> {
            no()
        }
        async fn subscriber_get(&self, _: i64) -> RemoteResult<Option<Subscriber>> {
            no()
        }
        async fn account_payments(
            &self,
            _: i64,
            _: NaiveDate,
            _: NaiveDate,
        ) -> RemoteResult<Vec<Payment>> {
            no()
        }
        async fn account_charges(
            &self,
            _: i64,
            _: NaiveDate,
            _: NaiveDate,
        ) -> RemoteResult<Vec<Charge>> {
            no()
        }
        async fn account_summary(&self, _: i64, _: NaiveDate) -> RemoteResult<AccountSummary> {
            no()
        }
        async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
            no()
        }
        async fn tariff_details(&self, _: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
            no()
        }
        async fn services(&self) -> RemoteResult<Vec<Service>> {
            no()
        }
        async fn system_info(&self) -> RemoteResult<SystemInfo> {
            no()
        }
    }
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(3, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        for job in [
            JobKind::Subscribers,
            JobKind::Payments,
            JobKind::Charges,
            JobKind::Summaries,
            JobKind::Reference,
        ] {
            let r = run_job(job, &Refused, &store, &opts("2026-03-01"), &Progress::new())
                .await
                .unwrap();
            assert_eq!(r.outcome, Outcome::Failed, "{job}");
            assert!(r.error.as_deref().unwrap().contains("forbidden"));
        }
        assert_eq!(
            store.live_subscriber_ids().await.unwrap().len(),
            3,
            "nothing tombstoned"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_needs_a_valid_range() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(1, day(FIRST)));
        let store = mirror(backends::on(&backend), &remote).await;
        let mut o = opts("2026-03-01");
        o.from = Some(day("2026-02-02"));
        assert!(
            run_job(JobKind::Payments, &remote, &store, &o, &Progress::new())
                .await
                .is_err()
        );
        o.to = Some(day("2026-02-01"));
        assert!(
            run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
                .await
                .is_err()
        );
    }
}
