//! The guard against mass removal (issue 25): one empty answer must not empty the mirror.
//! Subscribers over `max_removals` in a node are held back (run `partial`), a later run
//! evaluates from scratch, `confirm_removals` applies what still holds; an empty reference
//! table answer deletes nothing; the limits are validated by the config.

mod backends;

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};
use tariscope_sync::config::{ConfigError, from_toml_str};
use tariscope_sync::model::Subscriber;
use tariscope_sync::store::{Outcome, RemovalLimit, Store, StoreError, pg};
use tariscope_sync::sync::fake::{FakeData, FakeRemote};
use tariscope_sync::sync::{Clock, JobKind, JobReport, Progress, PullOptions, Scope, run_job};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn opts() -> PullOptions {
    let mut o = PullOptions::new(day("2026-03-01"));
    o.scope = Scope {
        nodes: vec![1, 2],
        departments: vec![],
    };
    o.batch_size = 50;
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

async fn pull(job: JobKind, remote: &FakeRemote, store: &Store) -> JobReport {
    run_job(job, remote, store, &opts(), &Progress::new())
        .await
        .unwrap()
}

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

async fn count(store: &Store, query: &'static str) -> i64 {
    store
        .read(move |c| c.query_row(query, [], |r| r.get(0)).map_err(sql))
        .await
        .unwrap()
}

async fn change_rows(store: &Store) -> i64 {
    count(store, "SELECT count(*) FROM subscriber_changes").await
}

async fn live(store: &Store) -> i64 {
    count(
        store,
        "SELECT count(*) FROM subscribers WHERE removed_at IS NULL",
    )
    .await
}

/// 300 subscribers mirrored into `store`: 200 in node 1 (departments 11, 12), 100 in node 2
/// (21).
async fn mirrored(store: Store) -> (FakeRemote, Store) {
    let remote = FakeRemote::new(FakeData::seeded(300, day("2026-01-01")));
    let r = pull(JobKind::Subscribers, &remote, &store).await;
    assert_eq!((r.outcome, r.counts.inserted), (Outcome::Ok, 300));
    (remote, store)
}

/// Takes the first `n` subscribers of `node` out of the fake server's lists.
fn take(remote: &FakeRemote, node: i64, n: usize) -> BTreeMap<i64, Subscriber> {
    remote.edit(|d| {
        let ids: Vec<i64> = d
            .subscribers
            .values()
            .filter(|s| s.node_id == Some(node))
            .map(|s| s.id)
            .take(n)
            .collect();
        ids.into_iter()
            .map(|id| (id, d.subscribers.remove(&id).unwrap()))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_list_tombstones_nothing_and_the_next_run_logs_nothing() {
    for backend in backends::backends().await {
        let (remote, store) = mirrored(backends::on(&backend)).await;
        let changes = change_rows(&store).await;
        let gone = take(&remote, 2, usize::MAX);
        assert_eq!(gone.len(), 100);

        let r = pull(JobKind::Subscribers, &remote, &store).await;
        assert_eq!(r.outcome, Outcome::Partial, "{r:?}");
        assert_eq!(r.counts.removed, 0);
        let why = r.error.unwrap();
        assert!(
            why.contains(&format!(
                "held back 100 removals of 100 (100.0 %) in node 2: confirm with `tariscope-sync confirm-removals {}` or raise jobs.subscribers.max_removals",
                r.run_id
            )),
            "{why}"
        );
        assert_eq!(live(&store).await, 300);
        assert_eq!(change_rows(&store).await, changes, "no `removed` row");
        assert_eq!(store.held_removals(r.run_id).await.unwrap(), 100);

        // The list is back: nothing was removed, so nothing is restored either.
        remote.edit(|d| d.subscribers.extend(gone));
        let next = pull(JobKind::Subscribers, &remote, &store).await;
        assert_eq!(next.outcome, Outcome::Ok, "{next:?}");
        assert_eq!((next.counts.removed, next.counts.updated), (0, 0));
        assert_eq!(change_rows(&store).await, changes);
        // The glitch's held removals no longer hold.
        let c = store
            .confirm_removals(r.run_id, "2026-03-01T07:00:00Z".into())
            .await
            .unwrap();
        assert_eq!((c.held, c.applied, c.stale), (100, 0, 100));
        assert_eq!(live(&store).await, 300);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_removal_of_five_percent_passes() {
    for backend in backends::backends().await {
        let (remote, store) = mirrored(backends::on(&backend)).await;
        take(&remote, 1, 10);
        let r = pull(JobKind::Subscribers, &remote, &store).await;
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.counts.removed, 10);
        assert_eq!(live(&store).await, 290);
        assert_eq!(store.held_removals(r.run_id).await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_of_half_a_node_is_held_then_confirmed_and_applied() {
    for backend in backends::backends().await {
        let (remote, store) = mirrored(backends::on(&backend)).await;
        let changes = change_rows(&store).await;
        take(&remote, 1, 100);
        let r = pull(JobKind::Subscribers, &remote, &store).await;
        assert_eq!(r.outcome, Outcome::Partial, "{r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .starts_with("held back 100 removals of 200 (50.0 %) in node 1"),
            "{r:?}"
        );
        assert_eq!(live(&store).await, 300);

        let c = store
            .confirm_removals(r.run_id, "2026-03-01T07:00:00Z".into())
            .await
            .unwrap();
        assert_eq!(
            (c.job.as_str(), c.held, c.applied, c.stale),
            ("subscribers", 100, 100, 0)
        );
        assert_eq!(live(&store).await, 200);
        let logged = count(
            &store,
            "SELECT count(*) FROM subscriber_changes WHERE kind = 'removed'",
        )
        .await;
        assert_eq!(logged, 100);
        assert_eq!(change_rows(&store).await, changes + 100);
        let runs = store.job_runs("subscribers").await.unwrap();
        assert_eq!(
            runs[0].counts.removed, 100,
            "the run counts what it removed"
        );
        assert_eq!(store.held_removals(r.run_id).await.unwrap(), 0);

        // The next run finds the mirror as the server is: nothing to do.
        let next = pull(JobKind::Subscribers, &remote, &store).await;
        assert_eq!((next.outcome, next.counts.removed), (Outcome::Ok, 0));
        assert_eq!(change_rows(&store).await, changes + 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_limit_a_mass_removal_goes_through() {
    for backend in backends::backends().await {
        let (remote, store) = mirrored(backends::on(&backend)).await;
        take(&remote, 2, usize::MAX);
        let mut o = opts();
        o.max_removals = None;
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.removed), (Outcome::Ok, 100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_tariff_plans_answer_deletes_nothing() {
    for backend in backends::backends().await {
        let remote = FakeRemote::new(FakeData::seeded(3, day("2026-01-01")));
        let store = backends::on(&backend);
        let r = pull(JobKind::Reference, &remote, &store).await;
        assert_eq!(r.outcome, Outcome::Ok);
        let plans = count(&store, "SELECT count(*) FROM tariff_plans").await;
        assert!(plans > 0);
        remote.edit(|d| d.plans.clear());
        let r = pull(JobKind::Reference, &remote, &store).await;
        assert_eq!(r.outcome, Outcome::Partial, "{r:?}");
        assert_eq!(r.counts.removed, 0);
        assert!(
            r.error.as_deref().unwrap().contains("in tariff_plans")
                && r.error
                    .as_deref()
                    .unwrap()
                    .contains("jobs.reference.max_removals"),
            "{r:?}"
        );
        assert_eq!(
            count(&store, "SELECT count(*) FROM tariff_plans").await,
            plans
        );
        // Confirmed, the plans go.
        let c = store
            .confirm_removals(r.run_id, "2026-03-01T07:00:00Z".into())
            .await
            .unwrap();
        assert_eq!(c.applied as i64, plans);
        assert_eq!(count(&store, "SELECT count(*) FROM tariff_plans").await, 0);
    }
}

fn config(limits: &str) -> Result<tariscope_sync::config::Config, ConfigError> {
    let text = format!(
        "[api]\nbase_url = \"http://127.0.0.1:1\"\nusername = \"u\"\npassword = \"p\"\n[scope]\nnodes = [1]\n{limits}"
    );
    from_toml_str(&text, &HashMap::new())
}

#[test]
fn check_config_validates_the_limits() {
    use tariscope_sync::sync::Job;
    let c = config("").unwrap();
    assert_eq!(
        c.jobs[&Job::Subscribers].max_removals,
        Some(RemovalLimit::Share(10.0))
    );
    assert_eq!(
        c.jobs[&Job::Reference].max_removals,
        Some(RemovalLimit::Share(25.0))
    );
    assert_eq!(c.jobs[&Job::Payments].max_removals, None);
    let c =
        config("[jobs.subscribers]\nmax_removals = 40\n[jobs.reference]\nmax_removals = \"5%\"\n")
            .unwrap();
    assert_eq!(
        c.jobs[&Job::Subscribers].max_removals,
        Some(RemovalLimit::Count(40))
    );
    assert_eq!(
        c.jobs[&Job::Reference].max_removals,
        Some(RemovalLimit::Share(5.0))
    );
    let Err(ConfigError::Invalid(problems)) = config(
        "[jobs.subscribers]\nmax_removals = \"150%\"\n[jobs.reference]\nmax_removals = \"lots\"\n",
    ) else {
        panic!("bad limits must be refused");
    };
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter()
            .any(|p| p.contains("jobs.subscribers.max_removals"))
            && text
                .iter()
                .any(|p| p.contains("jobs.reference.max_removals")),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_the_scope_removes_the_rows_outside_it_without_holding() {
    for backend in backends::backends().await {
        let (remote, store) = mirrored(backends::on(&backend)).await;
        let mut o = opts();
        o.scope.nodes = vec![1];
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.counts.removed, 100, "node 2 is outside the scope now");
        assert_eq!(store.held_removals(r.run_id).await.unwrap(), 0);
        assert_eq!(live(&store).await, 200);
    }
}
