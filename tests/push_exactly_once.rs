//! Push acceptance against the in-process emulator: creates, DNs, faults, interruptions.

mod backends;
mod push_support;

use push_support::*;
use tariscope_sync::model::{
    CreatedSubscriber, DnAssignment, NewDn, NewPayment, NewSubscriber, Payment, RecordedPayment,
    Subscriber, SubscriberPatch,
};
use tariscope_sync::sim::{Fault, FaultPlan};
use tariscope_sync::store::{OutboxState, Store, StoreError, pg};
use tariscope_sync::sync::plan::ConflictPolicy;
use tariscope_sync::sync::push::{PushRemote, WriteResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_a_thousand_subscribers_once_and_then_nothing() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        let before = sim.state().subscribers.len();
        import(&store, &desired_csv(1000, dep, pbx)).await;
        let opts = options(ConflictPolicy::RemoteWins);
        let report = push(&client, &store, &opts).await;
        assert_eq!((report.created, report.failed), (1000, 0), "{report:?}");
        assert!(report.unverified.is_empty(), "{:?}", report.unverified);
        assert_eq!(
            report.dns_added,
            (0..1000).map(|i| (i % 3 + 1) as u64).sum::<u64>()
        );
        assert_eq!(sim.state().subscribers.len(), before + 1000);
        assert_exactly_once(&sim, 1000, pbx);

        sim.reset_counters();
        let again = push(&client, &store, &opts).await;
        assert_eq!(writes(&sim), 0, "second push must send nothing: {again:?}");
        assert_eq!((again.created, again.updated, again.dns_added), (0, 0, 0));
        // Every desired row is linked to its subscriber.
        let desired = store.desired_subscribers().await.unwrap();
        assert!(desired.iter().all(|d| d.tariscope_id.is_some()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_after_commit_and_503s_create_no_duplicates() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        import(&store, &desired_csv(200, dep, pbx)).await;
        // Deterministic faults, so each one is known to fire: every fourth create is committed
        // and its answer lost, every fifth dnadd answered 503 (not processed), every sixth
        // update committed and its answer lost.
        let nth = |n, f: Fault| Fault { every_nth: n, ..f };
        let mut plan = FaultPlan::default();
        plan.methods.insert(
            "subscriber.create".into(),
            nth(4, Fault::drop_after_commit()),
        );
        plan.methods
            .insert("subscriber.dnadd".into(), nth(5, Fault::error(503)));
        plan.methods.insert(
            "subscriber.update".into(),
            nth(6, Fault::drop_after_commit()),
        );
        sim.set_faults(plan);
        let opts = options(ConflictPolicy::RemoteWins);
        let first = push(&client, &store, &opts).await;
        assert_eq!(
            sim.request_count("subscriber.create"),
            200,
            "no create was sent twice"
        );
        assert_eq!(
            first.adopted, 50,
            "each lost answer was settled by a look-up: {first:?}"
        );
        assert!(sim.request_count("subscriber.dnadd") >= 5, "a 503 fired");
        let second = push(&client, &store, &opts).await;
        assert_eq!(second.failed, 0, "{second:?}");
        assert_exactly_once(&sim, 200, pbx);
        let open = store.outbox_open().await.unwrap();
        assert!(open.is_empty(), "outbox still open: {open:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_part_way_resumes_without_duplicates() {
    for limit in [1, 7, 25, 60] {
        for backend in backends::backends().await {
            let sim = sim().await;
            let client = client(&sim);
            let store = backends::on(&backend);
            pull(&client, &store).await;
            let (dep, pbx) = department_and_pbx(&sim);
            import(&store, &desired_csv(40, dep, pbx)).await;
            let opts = options(ConflictPolicy::RemoteWins);
            let crashing = Crashing::new(&client, limit);
            let crashed = crashing.crashed.clone();
            tokio::select! {
                _ = push(&crashing, &store, &opts) => panic!("the push should have been interrupted (limit {limit})"),
                _ = crashed.notified() => {}
            }
            let sent = store.outbox_in(&[OutboxState::Sent]).await.unwrap();
            assert!(
                !sent.is_empty(),
                "an entry is left 'sent' by the crash (limit {limit})"
            );
            let resumed = push(&client, &store, &opts).await;
            assert_eq!(resumed.failed, 0, "limit {limit}: {resumed:?}");
            assert_exactly_once(&sim, 40, pbx);
            assert!(
                store.outbox_open().await.unwrap().is_empty(),
                "limit {limit}"
            );
            sim.reset_counters();
            push(&client, &store, &opts).await;
            assert_eq!(writes(&sim), 0, "limit {limit}: nothing left to send");
            sim.shutdown().await;
        }
    }
}

/// A shutdown during a push (issue 17.1): the push starts no new row once `stop` is
/// cancelled, finishes the rows under way, and records the run as interrupted; nothing is
/// half-done and the next push completes the rest, each write once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_push_ends_between_rows_and_is_recorded_as_interrupted() {
    for backend in backends::backends().await {
        use std::time::{Duration, Instant};
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        const N: usize = 20;
        import(&store, &desired_csv(N, dep, pbx)).await;
        sim.set_method_fault(
            "subscriber.create",
            Fault {
                latency: Duration::from_millis(30),
                ..Fault::default()
            },
        );
        let mut opts = options(ConflictPolicy::RemoteWins);
        opts.concurrency = 2;
        let stop = tokio_util::sync::CancellationToken::new();
        let progress = tariscope_sync::sync::Progress::new();
        let pushing =
            tariscope_sync::sync::push::run_push(&client, &store, &opts, &progress, &stop);
        let stopping = async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while sim.request_count("subscriber.create") < 3 {
                assert!(Instant::now() < deadline, "the push never got going");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            stop.cancel();
        };
        let (report, ()) = tokio::join!(pushing, stopping);
        let report = report.unwrap();
        assert!(
            report.not_started > 0 && report.created < N as u64,
            "stopped part-way: {report:?}"
        );
        assert_eq!(
            report.outcome,
            Some(tariscope_sync::store::Outcome::Failed),
            "{report:?}"
        );
        let run = &store.job_runs("push").await.unwrap()[0];
        assert!(
            run.error
                .as_deref()
                .unwrap_or_default()
                .contains("interrupted"),
            "{run:?}"
        );
        // Nothing half-done: every row that started finished its steps.
        assert!(store.outbox_open().await.unwrap().is_empty());
        let state = sim.state();
        for d in store.desired_subscribers().await.unwrap() {
            let Some(id) = d.tariscope_id else { continue };
            let s = state.subscribers.iter().find(|s| s.id == id).unwrap();
            assert_eq!(s.dns.len(), d.dns.len(), "{}: all its numbers", d.key);
            assert!(s.street.is_some(), "{}: its follow-up update", d.key);
        }
        sim.clear_faults();
        let rest = push(&client, &store, &opts).await;
        assert_eq!(rest.created + report.created, N as u64, "{rest:?}");
        assert_exactly_once(&sim, N, pbx);
    }
}

/// Applies updates but answers them without the record, and then finds no subscriber by
/// id: every update ends in a failed read-back.
struct VanishingReadBack<'a>(&'a tariscope_sync::api::TariscopeClient);

impl PushRemote for VanishingReadBack<'_> {
    async fn create(&self, s: &NewSubscriber) -> WriteResult<CreatedSubscriber> {
        self.0.create(s).await
    }
    async fn update(&self, p: &SubscriberPatch) -> WriteResult<Option<Subscriber>> {
        self.0.update(p).await.map(|_| None)
    }
    async fn dnadd(&self, dn: &NewDn) -> WriteResult<DnAssignment> {
        self.0.dnadd(dn).await
    }
    async fn get(&self, _id: i64) -> WriteResult<Option<Subscriber>> {
        Ok(None)
    }
    async fn find_by_email(&self, email: &str) -> WriteResult<Option<Subscriber>> {
        self.0.find_by_email(email).await
    }
    async fn list_department(&self, department: i64) -> WriteResult<Vec<Subscriber>> {
        self.0.list_department(department).await
    }
    async fn payment(&self, p: &NewPayment) -> WriteResult<RecordedPayment> {
        self.0.payment(p).await
    }
    async fn payments_on(&self, id: i64, day: chrono::NaiveDate) -> WriteResult<Vec<Payment>> {
        self.0.payments_on(id, day).await
    }
    async fn payment_by_id(&self, id: i64, payment_id: i64) -> WriteResult<Option<Payment>> {
        self.0.payment_by_id(id, payment_id).await
    }
}

/// A failed read-back marks the outbox entry failed; when that write itself fails (here a
/// trigger stands in for a full disk) the push stops with the store's error instead of
/// reporting a failure it never recorded.
#[tokio::test]
async fn a_failed_outbox_write_after_a_failed_read_back_ends_the_push() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        import(&store, &desired_csv(1, dep, pbx)).await;
        store
            .write(|c| {
                c.execute_batch(if c.is_postgres() {
                    "CREATE FUNCTION outbox_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN RAISE EXCEPTION 'database or disk is full'; END $$;
                     CREATE TRIGGER outbox_disk_full BEFORE UPDATE OF state ON outbox
                     FOR EACH ROW WHEN (NEW.state = 'failed') EXECUTE FUNCTION outbox_disk_full();"
                } else {
                    "CREATE TEMP TRIGGER outbox_disk_full BEFORE UPDATE OF state ON outbox
                     WHEN NEW.state = 'failed'
                     BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
                })
                .map_err(|source| StoreError::Sql {
                    context: "test trigger",
                    source,
                })
            })
            .await
            .unwrap();
        sim.reset_counters();
        let err = tariscope_sync::sync::push::run_push(
            &VanishingReadBack(&client),
            &store,
            &options(ConflictPolicy::RemoteWins),
            &tariscope_sync::sync::Progress::new(),
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect_err("the outbox write's failure ends the push");
        assert_eq!(
            sim.request_count("subscriber.update"),
            1,
            "the read-back path ran"
        );
        assert!(
            std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("disk is full")),
            "{err}"
        );
    }
}
