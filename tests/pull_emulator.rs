//! The pull jobs end to end: the real client against the in-process emulator, the mirror
//! checked against the emulator's state (its control API / snapshot).

mod backends;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use tariscope_sync::api::{ClientConfig, RetrySettings, Secret, TariscopeClient};
use tariscope_sync::model::NewSubscriber;
use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle, SimSnapshot, WireVariant};
use tariscope_sync::store::{Outcome, Store, StoreError, pg};
use tariscope_sync::sync::{Clock, JobKind, Progress, PullOptions, Scope, run_job};

const END: &str = "2026-03-01";

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn sim(subscribers: usize, wire: WireVariant) -> SimHandle {
    SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            subscribers,
            nodes: 2,
            departments_per_node: 3,
            days: 30,
            end_date: Some(day(END)),
            ..DatasetConfig::default()
        },
        wire,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn remote(sim: &SimHandle, partial: bool) -> TariscopeClient {
    TariscopeClient::new(client_config(sim, partial)).unwrap()
}

fn client_config(sim: &SimHandle, partial: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    cfg.rate_per_sec = 0.0;
    cfg.concurrency = 16;
    cfg.profile.lists_are_partial = partial;
    cfg.retry = RetrySettings {
        max_attempts: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(5),
    };
    cfg
}

fn opts(snapshot: &SimSnapshot) -> PullOptions {
    let mut o = PullOptions::new(day(END));
    o.scope = Scope {
        nodes: snapshot.nodes.iter().map(|n| n.id).collect(),
        departments: vec![],
    };
    o.concurrency = 8;
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

async fn strings(store: &Store, query: &'static str) -> Vec<String> {
    let mut rows: Vec<String> = store
        .read(move |c| {
            c.prepare(query)
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql)
        })
        .await
        .unwrap();
    rows.sort();
    rows
}

/// Two stores of each backend, in pairs (a test's two fresh mirrors).
async fn two_of_each() -> Vec<(backends::Backend, backends::Backend)> {
    let (a, b) = (backends::backends().await, backends::backends().await);
    a.into_iter().zip(b).collect()
}

/// `subscriber kind changed_fields` of run `run`'s change log, sorted (the JSON as the
/// store reads it back: SQL's text of a PostgreSQL `jsonb` is spaced otherwise).
async fn change_log(store: &Store, run: i64) -> Vec<String> {
    let mut rows: Vec<String> = store
        .read(move |c| {
            c.prepare(
                "SELECT subscriber_id, kind, changed_fields FROM subscriber_changes WHERE run_id = ?1",
            )
            .and_then(|mut s| {
                s.query_map([run], |r| {
                    let (id, kind, fields): (i64, String, Option<String>) =
                        (r.get(0)?, r.get(1)?, r.get(2)?);
                    Ok(format!("{id} {kind} {}", fields.unwrap_or_default()))
                })?
                .collect()
            })
            .map_err(sql)
        })
        .await
        .unwrap();
    rows.sort();
    rows
}

/// The mirror holds exactly the emulator's live subscribers, field by field.
async fn assert_mirror_matches(store: &Store, snap: &SimSnapshot) {
    let live = store.live_subscriber_ids().await.unwrap();
    let want: Vec<i64> = snap
        .subscribers
        .iter()
        .map(|s| s.id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(live, want);
    for s in &snap.subscribers {
        let m = store.subscriber(s.id).await.unwrap().unwrap();
        assert_eq!(m.fullname.as_deref(), Some(s.fullname.as_str()), "{}", s.id);
        assert_eq!(
            (&m.street, &m.house, &m.flat, &m.email),
            (&s.street, &s.house, &s.flat, &s.email)
        );
        assert_eq!(
            (&m.account_number, &m.contract_number, &m.edrpou),
            (&s.account_number, &s.contract_number, &s.edrpou)
        );
        assert_eq!(
            (m.birthday, m.contractdate, m.privilegediscount),
            (s.birthday, s.contractdate, s.privilegediscount)
        );
        assert_eq!(
            (m.department_id, m.node_id),
            (Some(s.department_id), Some(s.node_id))
        );
        let dns: BTreeSet<(Option<i64>, String)> = m
            .dns
            .unwrap()
            .into_iter()
            .map(|d| (d.pbx_id, d.dn))
            .collect();
        let want: BTreeSet<(Option<i64>, String)> = s
            .dns
            .iter()
            .map(|d| (Some(d.pbx_id), d.dn.clone()))
            .collect();
        assert_eq!(dns, want, "DNs of {}", s.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pull_edits_and_no_op_against_the_emulator() {
    for backend in backends::backends().await {
        let sim = sim(60, WireVariant::default()).await;
        let remote = remote(&sim, false);
        let store = backends::on(&backend);
        let o = opts(&sim.state());
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.inserted), (Outcome::Ok, 60), "{r:?}");
        assert_mirror_matches(&store, &sim.state()).await;

        // An operator edits one, removes another; a third is created through the API.
        let (a, b) = (sim.state().subscribers[3].id, sim.state().subscribers[7].id);
        assert!(sim.operator_update(a, "street", Some("Sadova")));
        assert!(sim.operator_remove(b));
        let created = remote
            .subscriber_create(&NewSubscriber {
                fullname: "New Subscriber".into(),
                department_id: Some(sim.state().subscribers[0].department_id),
                ..NewSubscriber::default()
            })
            .await
            .unwrap();
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(
            (r.counts.inserted, r.counts.updated, r.counts.removed),
            (1, 1, 1),
            "{r:?}"
        );
        let log = change_log(&store, 2).await;
        let old_street = store.subscriber(a).await.unwrap().unwrap();
        assert_eq!(old_street.street.as_deref(), Some("Sadova"));
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(
            log.iter()
                .any(|l| l.starts_with(&format!("{a} updated {{\"street\":["))),
            "{log:?}"
        );
        assert!(log.contains(&format!("{b} removed ")), "{log:?}");
        assert!(
            log.contains(&format!("{} inserted ", created.id)),
            "{log:?}"
        );
        assert_mirror_matches(&store, &sim.state()).await;

        // Nothing changed remotely: nothing but the run record is written.
        let before = store.total_changes().await.unwrap();
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.counts.unchanged, 60);
        assert_eq!(store.total_changes().await.unwrap() - before, 2);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_wire_variants_give_the_same_mirror() {
    for backend in backends::backends().await {
        let wire = WireVariant {
            key_case: tariscope_sync::sim::KeyCase::Lower,
            numbers_as_strings: true,
            partial_lists: true,
            ..WireVariant::default()
        };
        let sim = sim(30, wire).await;
        let remote = remote(&sim, true);
        let store = backends::on(&backend);
        let r = run_job(
            JobKind::Subscribers,
            &remote,
            &store,
            &opts(&sim.state()),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!((r.outcome, r.counts.inserted), (Outcome::Ok, 30), "{r:?}");
        assert_eq!(sim.request_count("subscriber.get"), 30);
        assert_mirror_matches(&store, &sim.state()).await;
        sim.shutdown().await;
    }
}

/// A server whose lists are partial while the profile does not say so: the pull sees it
/// (every record carries only id and name), fetches each subscriber, and the mirror's other
/// fields are not blanked; a server with full lists costs no `subscriber.get`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_lists_the_profile_does_not_announce_do_not_blank_the_mirror() {
    for (first, second) in two_of_each().await {
        let wire = WireVariant {
            partial_lists: true,
            ..WireVariant::default()
        };
        let sim = sim(20, wire).await;
        let remote = remote(&sim, false);
        let store = backends::on(&first);
        let o = opts(&sim.state());
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.inserted), (Outcome::Ok, 20), "{r:?}");
        assert_eq!(sim.request_count("subscriber.get"), 20);
        assert_mirror_matches(&store, &sim.state()).await;
        // The next run sees the same and changes nothing.
        let r = run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.counts.unchanged, r.counts.updated), (20, 0), "{r:?}");
        sim.shutdown().await;

        let full = self::sim(20, WireVariant::default()).await;
        let store = backends::on(&second);
        run_job(
            JobKind::Subscribers,
            &self::remote(&full, false),
            &store,
            &opts(&full.state()),
            &Progress::new(),
        )
        .await
        .unwrap();
        assert_eq!(full.request_count("subscriber.get"), 0);
        assert_mirror_matches(&store, &full.state()).await;
        full.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_charges_and_reference_match_the_emulator() {
    for backend in backends::backends().await {
        let sim = sim(25, WireVariant::default()).await;
        let remote = remote(&sim, false);
        let store = backends::on(&backend);
        let mut o = opts(&sim.state());
        run_job(JobKind::Subscribers, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        // Overlapping incremental windows (lookback 3 days) over the whole history.
        o.initial_days = 40;
        for today in ["2026-02-10", "2026-02-15", "2026-02-20", END] {
            o.today = day(today);
            for job in [JobKind::Payments, JobKind::Charges] {
                let r = run_job(job, &remote, &store, &o, &Progress::new())
                    .await
                    .unwrap();
                assert_eq!(r.outcome, Outcome::Ok, "{job} {today}: {r:?}");
            }
        }
        let snap = sim.state();
        let want: Vec<String> = {
            let mut v: Vec<String> = snap
                .payments
                .iter()
                .map(|p| {
                    format!(
                        "{} {} {} {}",
                        p.subscriber_id,
                        p.payment_id,
                        p.payment_day,
                        p.amount.normalize()
                    )
                })
                .collect();
            v.sort();
            v
        };
        let got = strings(&store, "SELECT subscriber_id || ' ' || payment_id || ' ' || payment_day || ' ' || amount FROM payments").await;
        assert_eq!(got, want, "payments exactly once each");
        let want: Vec<String> = {
            let mut v: Vec<String> = snap
                .charges
                .iter()
                .map(|c| {
                    format!(
                        "{} id:{} {} {}",
                        c.subscriber_id,
                        c.id,
                        c.recdate,
                        c.amount.normalize()
                    )
                })
                .collect();
            v.sort();
            v
        };
        let got = strings(
            &store,
            "SELECT subscriber_id || ' ' || charge_key || ' ' || recdate || ' ' || charge FROM charges",
        )
        .await;
        assert_eq!(got, want, "charges exactly once each");

        let r = run_job(JobKind::Reference, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        let plans = strings(&store, "SELECT id || ' ' || name FROM tariff_plans").await;
        let mut want: Vec<String> = snap
            .plans
            .iter()
            .filter(|p| p.active)
            .map(|p| format!("{} {}", p.id, p.name))
            .collect();
        want.sort();
        assert_eq!(plans, want);
        assert_eq!(
            strings(&store, "SELECT CAST(count(*) AS TEXT) FROM tariffs").await,
            [snap.tariffs.len().to_string()]
        );
        assert_eq!(
            strings(&store, "SELECT CAST(count(*) AS TEXT) FROM services").await,
            [snap.services.len().to_string()]
        );
        assert_eq!(
            strings(
                &store,
                "SELECT CAST(count(*) AS TEXT) FROM system_info WHERE version IS NOT NULL"
            )
            .await,
            ["1"]
        );
        sim.shutdown().await;
    }
}

const SUMMARIES: &str = "SELECT subscriber_id || ' ' || date || ' ' || start_debt || ' ' || end_debt || ' ' || charge || ' ' || payment FROM account_summaries";

fn expected_summaries(
    snap: &SimSnapshot,
    subs: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<String> {
    let mut v = Vec::new();
    for id in subs {
        for d in from.iter_days().take_while(|d| *d <= to) {
            let (s, e, c, p) = snap.summary(*id, d);
            v.push(format!(
                "{id} {d} {} {} {} {}",
                s.normalize(),
                e.normalize(),
                c.normalize(),
                p.normalize()
            ));
        }
    }
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summaries_backfill_resumes_after_cancel_and_after_faults() {
    for (first, second) in two_of_each().await {
        let sim = sim(20, WireVariant::default()).await;
        let remote = remote(&sim, false);
        let snap = sim.state();
        let subs: Vec<i64> = snap.subscribers.iter().map(|s| s.id).take(12).collect();
        let mut o = opts(&snap);
        o.subscribers = Some(subs.clone());
        o.from = Some(day("2026-02-10"));
        o.to = Some(day("2026-02-19"));
        o.concurrency = 4;
        let want = expected_summaries(&snap, &subs, day("2026-02-10"), day("2026-02-19"));
        assert_eq!(want.len(), 120);

        // Cancelled: the job future is dropped once the emulator has answered ~50 summaries.
        let store = backends::on(&first);
        sim.set_method_fault(
            "accounts.summary",
            Fault {
                latency: Duration::from_millis(2),
                ..Fault::default()
            },
        );
        sim.reset_counters();
        let watch = async {
            while sim.request_count("accounts.summary") < 50 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let progress = Progress::new();
        tokio::select! {
            r = run_job(JobKind::Summaries, &remote, &store, &o, &progress) => panic!("not cancelled: {r:?}"),
            _ = watch => {}
        }
        let cut = sim.request_count("accounts.summary");
        let r = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(strings(&store, SUMMARIES).await, want);
        let total = sim.request_count("accounts.summary");
        assert!(
            total <= 120 + o.concurrency as u64,
            "fetched {total} (cut at {cut}) for 120 items"
        );
        assert!(
            r.counts.fetched < 120,
            "the resumed run skipped checkpointed days"
        );

        // Faults: one subscriber at a time, day by day, every fifth summary request fails and
        // is not retried (days 5 and 10 of each subscriber's ten), so the run is always partial;
        // then the server heals and a second run fetches each subscriber from its first failed
        // day: 6 of its 10 days.
        let store = backends::on(&second);
        sim.reset_counters();
        sim.set_method_fault(
            "accounts.summary",
            Fault {
                error_rate: 1.0,
                error_status: 500,
                every_nth: 5,
                ..Fault::default()
            },
        );
        let mut no_retry = client_config(&sim, false);
        no_retry.retry.max_attempts = 1;
        let no_retry = TariscopeClient::new(no_retry).unwrap();
        let one_by_one = PullOptions {
            concurrency: 1,
            ..o.clone()
        };
        let r = run_job(
            JobKind::Summaries,
            &no_retry,
            &store,
            &one_by_one,
            &Progress::new(),
        )
        .await
        .unwrap();
        sim.clear_faults();
        assert_eq!(r.outcome, Outcome::Partial, "{r:?}");
        sim.reset_counters();
        let again = run_job(JobKind::Summaries, &remote, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!(again.outcome, Outcome::Ok);
        let refetched = sim.request_count("accounts.summary");
        assert_eq!(r.counts.errors, 24, "{r:?}");
        assert_eq!(
            refetched,
            12 * 6,
            "the resumed run should fetch days 5 to 10 of each subscriber: the first run keeps \
             the days before each subscriber's first failure, and no day after it"
        );
        assert_eq!(strings(&store, SUMMARIES).await, want);
        sim.shutdown().await;
    }
}
