//! Payments into Tariscope, exactly once (issue 15), against the in-process emulator:
//! a thousand payments under dropped answers and 503s, equal payments under different
//! references, an operator's identical payment between our send and our look-up (ambiguous,
//! never resent, settled by `resolve`), bad rows beside good ones, a payment for a subscriber
//! created by the same push, and the real binary SIGKILLed at random moments.

mod backends;
mod cli_support;
mod push_support;

use std::collections::HashMap;

use chrono::NaiveDate;
use push_support::*;
use rust_decimal::Decimal;
use tariscope_sync::api::TariscopeClient;
use tariscope_sync::model::{
    CreatedSubscriber, DnAssignment, NewDn, NewPayment, NewSubscriber, Payment, RecordedPayment,
    Subscriber, SubscriberPatch,
};
use tariscope_sync::records::{FileFormat, ReadOptions};
use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle};
use tariscope_sync::store::{OutboxEntry, OutboxState, Store, pg};
use tariscope_sync::sync::payments::{PaymentContext, parse_payments};
use tariscope_sync::sync::plan::ConflictPolicy;
use tariscope_sync::sync::push::{PushOptions, PushRemote, WriteErrorKind, WriteResult};

async fn sim_of(subscribers: usize) -> SimHandle {
    SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed: 15,
            nodes: 1,
            departments_per_node: 3,
            subscribers,
            days: 5,
            end_date: Some(today()),
        },
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// An emulator of `subscribers`, a client, and `store` with its subscribers pulled.
async fn setup(store: Store, subscribers: usize) -> (SimHandle, TariscopeClient, Store) {
    let sim = sim_of(subscribers).await;
    let client = client(&sim);
    pull(&client, &store).await;
    (sim, client, store)
}

fn opts() -> PushOptions {
    options(ConflictPolicy::RemoteWins)
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn day(n: i64) -> NaiveDate {
    today() - chrono::Duration::days(n)
}

/// Writes desired payments with plain SQL, as local software would:
/// (reference, subscriberid, amount, day).
async fn write_payments(store: &Store, rows: Vec<(String, i64, String, NaiveDate)>) {
    store
        .write(move |conn| {
            for (r, id, amount, d) in &rows {
                conn.execute(
                    "INSERT INTO desired_payments (reference, subscriberid, amount, paymentday, paymenttype, bank) \
                     VALUES (?1, ?2, ?3, ?4, 3, 'PrivatBank')",
                    tariscope_sync::store::params![r, id, amount, d.to_string()],
                )
                .unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// The emulator's payments of subscriber `id` of `amount` on `d`.
fn in_tariscope(sim: &SimHandle, id: i64, amount: Decimal, d: NaiveDate) -> Vec<i64> {
    sim.state()
        .payments
        .iter()
        .filter(|p| p.subscriber_id == id && p.amount == amount && p.payment_day == d)
        .map(|p| p.payment_id)
        .collect()
}

async fn open_payment_entries(store: &Store) -> Vec<OutboxEntry> {
    let open = [
        OutboxState::Pending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::Ambiguous,
    ];
    let all = store.outbox_in(&open).await.unwrap();
    all.into_iter().filter(|e| e.op == "payment").collect()
}

/// `reference → paymentid` of `desired_payments`.
async fn posted_ids(store: &Store) -> HashMap<String, Option<i64>> {
    store
        .read(|conn| {
            let mut stmt = conn
                .prepare("SELECT reference, paymentid FROM desired_payments")
                .unwrap();
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            Ok(rows)
        })
        .await
        .unwrap()
}

fn subscriber_ids(sim: &SimHandle) -> Vec<i64> {
    sim.state().subscribers.iter().map(|s| s.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_payments_under_drops_and_503s_post_each_reference_once() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 300).await;
        let ids = subscriber_ids(&sim);
        assert_eq!(ids.len(), 300);
        // Amounts far above the generated ones, unique per payment: each is findable.
        let rows: Vec<_> = (0..1000usize)
            .map(|i| {
                let amount = format!("{}.{:02}", 70_000 + i, i % 100);
                (
                    format!("bank-{i:04}"),
                    ids[i % 300],
                    amount,
                    day((i % 5) as i64),
                )
            })
            .collect();
        write_payments(&store, rows.clone()).await;
        let before = sim.state().payments.len();
        sim.set_method_fault(
            "accounts.payment",
            Fault {
                drop_after_commit_rate: 0.10,
                error_rate: 0.05,
                ..Fault::default()
            },
        );
        let report = push(&client, &store, &opts()).await;
        let p = &report.payments;
        assert_eq!(
            (p.posted, p.failed, p.ambiguous),
            (1000, 0, 0),
            "{report:?}"
        );
        assert!(
            p.found > 20,
            "dropped answers were settled by look-ups: {p:?}"
        );
        let state = sim.state();
        assert_eq!(state.payments.len(), before + 1000, "no payment twice");
        let posted = posted_ids(&store).await;
        for (r, id, amount, d) in &rows {
            let there = in_tariscope(&sim, *id, dec(amount), *d);
            assert_eq!(there.len(), 1, "{r}: {there:?}");
            assert_eq!(
                posted[r],
                Some(there[0]),
                "{r}: the row holds its paymentid"
            );
        }
        assert!(
            open_payment_entries(&store).await.is_empty(),
            "outbox drained"
        );
        let linked: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM payments WHERE reference LIKE 'bank-%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap())
            })
            .await
            .unwrap();
        assert_eq!(linked, 1000, "the payments mirror names each reference");

        sim.clear_faults();
        sim.reset_counters();
        let again = push(&client, &store, &opts()).await;
        assert_eq!(sim.request_count("accounts.payment"), 0, "{again:?}");
        assert_eq!(again.payments.posted, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_payments_under_different_references_both_post_once_under_drops() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 5).await;
        let id = subscriber_ids(&sim)[0];
        let amount = "777.00".to_string();
        write_payments(
            &store,
            vec![
                ("stmt-1".into(), id, amount.clone(), day(1)),
                ("stmt-2".into(), id, amount.clone(), day(1)),
            ],
        )
        .await;
        // Every payment is committed and its answer lost.
        sim.set_method_fault("accounts.payment", Fault::drop_after_commit());
        let report = push(&client, &store, &opts()).await;
        assert_eq!(
            (report.payments.posted, report.payments.found),
            (2, 2),
            "{report:?}"
        );
        let there = in_tariscope(&sim, id, dec(&amount), day(1));
        assert_eq!(there.len(), 2, "{there:?}");
        let posted = posted_ids(&store).await;
        let mut got = vec![posted["stmt-1"].unwrap(), posted["stmt-2"].unwrap()];
        got.sort_unstable();
        assert_eq!(got, there, "each reference has its own payment");
        sim.reset_counters();
        push(&client, &store, &opts()).await;
        assert_eq!(sim.request_count("accounts.payment"), 0);

        // The payments pull finds them in Tariscope and keeps their references.
        let mut o = tariscope_sync::sync::PullOptions::new(today());
        o.scope.nodes = vec![1];
        o.clock = clock();
        let progress = tariscope_sync::sync::Progress::new();
        let job = tariscope_sync::sync::JobKind::Payments;
        let pulled = tariscope_sync::sync::run_job(job, &client, &store, &o, &progress)
            .await
            .unwrap();
        assert_eq!(pulled.counts.errors, 0, "{pulled:?}");
        let refs: Vec<(i64, String)> = store
            .read(|c| {
                let mut st = c
                    .prepare("SELECT payment_id, reference FROM payments WHERE reference IS NOT NULL ORDER BY payment_id")
                    .unwrap();
                Ok(st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap())
            })
            .await
            .unwrap();
        let mut want = vec![
            (posted["stmt-1"].unwrap(), "stmt-1".to_string()),
            (posted["stmt-2"].unwrap(), "stmt-2".to_string()),
        ];
        want.sort();
        assert_eq!(refs, want);
    }
}

/// The real client, with an operator who enters `copies` identical payments by hand right
/// after a send whose outcome is unknown (before our look-up).
struct OperatorBetween<'a> {
    inner: &'a TariscopeClient,
    sim: &'a SimHandle,
    copies: usize,
}

impl PushRemote for OperatorBetween<'_> {
    async fn create(&self, s: &NewSubscriber) -> WriteResult<CreatedSubscriber> {
        self.inner.create(s).await
    }
    async fn update(&self, p: &SubscriberPatch) -> WriteResult<Option<Subscriber>> {
        self.inner.update(p).await
    }
    async fn dnadd(&self, dn: &NewDn) -> WriteResult<DnAssignment> {
        self.inner.dnadd(dn).await
    }
    async fn get(&self, id: i64) -> WriteResult<Option<Subscriber>> {
        PushRemote::get(self.inner, id).await
    }
    async fn find_by_email(&self, email: &str) -> WriteResult<Option<Subscriber>> {
        self.inner.find_by_email(email).await
    }
    async fn list_department(&self, department: i64) -> WriteResult<Vec<Subscriber>> {
        self.inner.list_department(department).await
    }
    async fn payment(&self, p: &NewPayment) -> WriteResult<RecordedPayment> {
        let r = self.inner.payment(p).await;
        if r.as_ref()
            .is_err_and(|e| e.kind == WriteErrorKind::OutcomeUnknown)
        {
            for _ in 0..self.copies {
                let code = p.payment_type.code();
                let bank = p.bank.as_deref();
                let by_hand = self.sim.operator_post_payment(
                    p.subscriber_id,
                    p.payment_day,
                    p.amount,
                    code,
                    bank,
                );
                assert!(by_hand.is_some());
            }
        }
        r
    }
    async fn payments_on(&self, id: i64, d: NaiveDate) -> WriteResult<Vec<Payment>> {
        self.inner.payments_on(id, d).await
    }
    async fn payment_by_id(&self, id: i64, payment_id: i64) -> WriteResult<Option<Payment>> {
        self.inner.payment_by_id(id, payment_id).await
    }
}

fn config() -> tariscope_sync::config::Config {
    let text = "[api]\nusername = \"demo\"\npassword = \"demo\"\n[scope]\nnodes = [1]\n[mirror]\npath = \"/nonexistent/payments-test.db\"\n";
    tariscope_sync::config::from_toml_str(text, &HashMap::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_payment_by_hand_makes_it_ambiguous_never_resent_and_resolve_settles_it() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 5).await;
        let id = subscriber_ids(&sim)[1];
        write_payments(&store, vec![("pb-1".into(), id, "370.00".into(), day(0))]).await;
        sim.set_method_fault("accounts.payment", Fault::drop_after_commit());
        let operator = OperatorBetween {
            inner: &client,
            sim: &sim,
            copies: 1,
        };
        let report = push(&operator, &store, &opts()).await;
        assert_eq!(
            (report.payments.posted, report.payments.ambiguous),
            (0, 1),
            "{report:?}"
        );
        assert_eq!(
            report.outcome,
            Some(tariscope_sync::store::Outcome::Partial)
        );
        let there = in_tariscope(&sim, id, dec("370.00"), day(0));
        assert_eq!(there.len(), 2, "ours and the operator's: {there:?}");
        let open = open_payment_entries(&store).await;
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].state, OutboxState::Ambiguous);

        // Nothing is resent while it is ambiguous, whatever the server does now.
        sim.clear_faults();
        sim.reset_counters();
        let again = push(&client, &store, &opts()).await;
        assert_eq!(sim.request_count("accounts.payment"), 0, "{again:?}");
        assert_eq!(in_tariscope(&sim, id, dec("370.00"), day(0)).len(), 2);

        // `status` lists it with the facts.
        let status = tariscope_sync::cmd::status::collect(&config(), &store, clock())
            .await
            .unwrap();
        let p = &status["payments"];
        assert_eq!(p["ambiguous"]["count"], 1, "{p}");
        assert_eq!(p["ambiguous"]["amount"], "370.00");
        let facts = p["ambiguous_entries"][0]["facts"].as_str().unwrap();
        assert!(
            facts.contains("before sending, 0 payment(s)") && facts.contains("now 2"),
            "{facts}"
        );
        assert!(
            facts.contains("tariscope-sync resolve pb-1 --landed"),
            "{facts}"
        );

        // A person looked: the lower id is ours.
        let ours = there[0];
        let done = store
            .payment_resolve("pb-1".into(), Some(ours), "2025-05-20T11:00:00Z".into())
            .await
            .unwrap();
        assert!(done.is_ok(), "{done:?}");
        assert!(open_payment_entries(&store).await.is_empty());
        assert_eq!(posted_ids(&store).await["pb-1"], Some(ours));
        let twice = store
            .payment_resolve("pb-1".into(), None, "2025-05-20T11:00:00Z".into())
            .await
            .unwrap();
        assert!(twice.unwrap_err().contains("not waiting for a person"));
        sim.reset_counters();
        push(&client, &store, &opts()).await;
        assert_eq!(sim.request_count("accounts.payment"), 0);
        let status = tariscope_sync::cmd::status::collect(&config(), &store, clock())
            .await
            .unwrap();
        assert_eq!(status["payments"]["posted"]["count"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_as_not_landed_it_is_sent_again_after_a_new_snapshot() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 5).await;
        let id = subscriber_ids(&sim)[2];
        write_payments(&store, vec![("pb-2".into(), id, "55.50".into(), day(2))]).await;
        // Our request never reaches the server, but we cannot know: the operator enters two.
        sim.set_method_fault("accounts.payment", Fault::drop_before());
        let operator = OperatorBetween {
            inner: &client,
            sim: &sim,
            copies: 2,
        };
        let report = push(&operator, &store, &opts()).await;
        assert_eq!(report.payments.ambiguous, 1, "{report:?}");
        assert_eq!(in_tariscope(&sim, id, dec("55.50"), day(2)).len(), 2);
        let r = store
            .payment_resolve("pb-2".into(), None, "2025-05-20T10:00:00Z".into())
            .await
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
        sim.clear_faults();
        let report = push(&client, &store, &opts()).await;
        assert_eq!(report.payments.posted, 1, "{report:?}");
        let there = in_tariscope(&sim, id, dec("55.50"), day(2));
        assert_eq!(there.len(), 3, "the operator's two and ours");
        assert_eq!(posted_ids(&store).await["pb-2"], Some(there[2]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_rejected_with_their_reason_and_good_rows_post() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 5).await;
        let ids = subscriber_ids(&sim);
        let acc = sim.state().subscribers[0].account_number.clone().unwrap();
        let csv = format!(
            "reference,subscriberid,accountnumber,amount,paymentday,bank\n\
             ok-1,{id1},,100.00,{d1},Oschadbank\n\
             ok-2,,{acc},\"200,50\",{d1},\n\
             bad-account,,NO-SUCH-ACC,10.00,{d1},\n\
             bad-negative,{id1},,-10.00,{d1},\n\
             bad-malformed,{id1},,12.3.4,{d1},\n\
             bad-scale,{id1},,10.005,{d1},\n\
             bad-future,{id1},,10.00,{future},\n\
             bad-early,{id1},,10.00,2020-01-01,\n",
            id1 = ids[1],
            d1 = day(1),
            future = today() + chrono::Duration::days(1),
        );
        let mut o = opts();
        o.payments.earliest_day = NaiveDate::from_ymd_opt(2025, 1, 1);
        let import = |text: String| {
            let store = store.clone();
            async move {
                let ctx = PaymentContext::load(&store, today(), o_earliest())
                    .await
                    .unwrap();
                let existing = store
                    .desired_payment_rows()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.key.shown().unwrap(), r))
                    .collect();
                let b = parse_payments(
                    text.as_bytes(),
                    &ReadOptions::new(FileFormat::Csv),
                    &ctx,
                    &existing,
                )
                .unwrap();
                let rejected = b.rejected.clone();
                store
                    .import_payments(
                        b.rows,
                        b.unchanged,
                        b.rejected,
                        "f.csv (payments)".into(),
                        "2025-05-20T10:00:00Z".into(),
                    )
                    .await
                    .unwrap();
                rejected
            }
        };
        let rejected = import(csv).await;
        let reasons: Vec<(String, String)> = rejected
            .iter()
            .map(|r| (r.key.clone().unwrap(), r.reason.clone()))
            .collect();
        let want = [
            ("bad-account", "unknown account"),
            ("bad-negative", "above 0"),
            ("bad-malformed", "amount = \"12.3.4\""),
            ("bad-scale", "3 decimal places"),
            ("bad-future", "in the future"),
            ("bad-early", "payments.earliest_day"),
        ];
        assert_eq!(reasons.len(), want.len(), "{reasons:#?}");
        for ((key, reason), (k, part)) in reasons.iter().zip(want) {
            assert_eq!(key, k);
            assert!(reason.contains(part), "{key}: {reason}");
        }
        // The same reference again with another amount: refused, the row stays as it was.
        let again = import(format!(
            "reference,subscriberid,amount,paymentday\nok-1,{},150.00,{}\n",
            ids[1],
            day(1)
        ))
        .await;
        assert!(
            again[0]
                .reason
                .contains("seen before with different values"),
            "{again:?}"
        );

        let report = push(&client, &store, &o).await;
        assert_eq!(report.payments.posted, 2, "{report:?}");
        assert_eq!(in_tariscope(&sim, ids[1], dec("100.00"), day(1)).len(), 1);
        assert_eq!(in_tariscope(&sim, ids[0], dec("200.50"), day(1)).len(), 1);

        // Editing a posted row with SQL: refused with the reason, never posted again.
        store
            .write(|c| {
                c.execute(
                    "UPDATE desired_payments SET amount = '999.00' WHERE reference = 'ok-1'",
                    [],
                )
                .unwrap();
                Ok(())
            })
            .await
            .unwrap();
        sim.reset_counters();
        let report = push(&client, &store, &o).await;
        assert_eq!(sim.request_count("accounts.payment"), 0, "{report:?}");
        assert_eq!(report.payments.rejected, 1);
        let rows = store.rejected_rows().await.unwrap();
        let edit = rows
            .iter()
            .find(|r| r.source == "desired_payments")
            .expect("the edit is listed");
        assert!(
            edit.rejection.reason.contains("editing a posted row"),
            "{edit:?}"
        );
    }
}

fn o_earliest() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, 1, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_a_subscriber_created_in_the_same_push_waits_for_it() {
    for backend in backends::backends().await {
        let (sim, client, store) = setup(backends::on(&backend), 5).await;
        let (dep, pbx) = department_and_pbx(&sim);
        import(&store, &desired_csv(1, dep, pbx)).await;
        store
            .write(|c| {
                c.execute(
                    "INSERT INTO desired_payments (reference, subscriber_key, amount, paymentday) \
                     VALUES ('new-1', 'crm-0000', '10.00', '2025-05-19')",
                    [],
                )
                .unwrap();
                Ok(())
            })
            .await
            .unwrap();
        let planned = tariscope_sync::sync::push::plan_now(&store, &opts())
            .await
            .unwrap();
        assert_eq!(
            planned.payments.waiting.len(),
            1,
            "waits for its subscriber"
        );
        let report = push(&client, &store, &opts()).await;
        assert_eq!(
            (report.created, report.payments.posted),
            (1, 1),
            "{report:?}"
        );
        let created = store.desired_subscribers().await.unwrap()[0]
            .tariscope_id
            .unwrap();
        assert_eq!(in_tariscope(&sim, created, dec("10.00"), day(1)).len(), 1);
    }
}

fn payment_requests(sim: &SimHandle) -> u64 {
    sim.request_count("accounts.payment") + sim.request_count("accounts.payments")
}

/// The real binary: payments imported from a file, then the push SIGKILLed at 10 random
/// moments (after a random number of payment requests) and restarted; the end state is the
/// same as without the kills: every reference once in Tariscope, the mirror intact. With the
/// mirror in SQLite and, where a cluster can be started, in PostgreSQL (`mirror.url`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_killed_at_random_moments_posts_every_payment_once() {
    use cli_support::{kill, run, spawn, text, write_config};
    use rand::{Rng, SeedableRng};

    let (_cluster, mirrors) = backends::mirror_urls().await;
    for url in mirrors {
        eprintln!(
            "--- on {}",
            if url.is_some() { "postgres" } else { "sqlite" }
        );
        let sim = SimHandle::start(SimConfig {
            dataset: DatasetConfig {
                seed: 16,
                nodes: 1,
                departments_per_node: 2,
                subscribers: 40,
                days: 3,
                end_date: None,
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sim, "timezone = \"UTC\"");
        if let Some(url) = &url {
            let text = std::fs::read_to_string(&config).unwrap();
            let path = format!("path = \"{}\"", dir.path().join("mirror.db").display());
            assert!(text.contains(&path), "{text}");
            std::fs::write(&config, text.replace(&path, &format!("url = \"{url}\""))).unwrap();
        }
        let out = run(&config, &["--run-once", "--jobs", "subscribers"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));

        let ids = subscriber_ids(&sim);
        let paid = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
        let mut csv = String::from("reference;subscriberid;amount;paymentday;paymenttype;bank\n");
        let mut want = Vec::new();
        for i in 0..120usize {
            // Three payments per subscriber, amounts unique: each one is findable.
            let amount = format!("{}.{:02}", 80_000 + i, i % 100);
            csv.push_str(&format!(
                "kill-{i:03};{};{amount};{paid};1;Monobank\n",
                ids[i % 40]
            ));
            want.push((format!("kill-{i:03}"), ids[i % 40], dec(&amount)));
        }
        csv.push_str(&format!("kill-bad;{};-1;{paid};1;\n", ids[0]));
        let file = dir.path().join("statement.csv");
        std::fs::write(&file, csv).unwrap();
        let out = run(&config, &["import-payments", file.to_str().unwrap()]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "a row was rejected: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("120 new, 0 unchanged, 1 rejected"),
            "{}",
            text(&out)
        );
        let out = run(&config, &["plan"]).await;
        assert!(
            text(&out).contains(
                "Payments a push would post (accounts.payment, each reference once): 120"
            ),
            "{}",
            text(&out)
        );

        sim.set_method_fault(
            "accounts.payment",
            Fault {
                latency: std::time::Duration::from_millis(3),
                drop_after_commit_rate: 0.1,
                ..Fault::default()
            },
        );
        let seed: u64 = rand::random();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut killed = 0;
        for kill_no in 0..10 {
            let target = payment_requests(&sim) + rng.random_range(1..=40);
            let mut child = spawn(&config, &["--run-once", "--jobs", "push"]);
            let pid = child.id().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if payment_requests(&sim) >= target {
                    kill("-KILL", pid);
                    killed += 1;
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "seed {seed}, kill {kill_no}: the push never got going"
                );
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            child.wait().await.unwrap();
        }
        let sent_before_the_end = sim.request_count("accounts.payment");
        assert!(
            killed >= 8 && sent_before_the_end < 120,
            "seed {seed}: the kills fell mid-push ({killed} of 10; {sent_before_the_end} payments sent)"
        );
        sim.clear_faults();
        let mut last = None;
        for _ in 0..3 {
            let out = run(&config, &["--run-once", "--jobs", "push"]).await;
            let done = text(&out).contains("payments posted");
            last = Some(out);
            if done && open_payment_entries_in(dir.path(), url.as_deref()).await == 0 {
                break;
            }
        }
        let last = last.unwrap();
        assert!(
            matches!(last.status.code(), Some(0 | 2)),
            "seed {seed}: {}",
            text(&last)
        );

        let state = sim.state();
        for (r, id, amount) in &want {
            let n = state
                .payments
                .iter()
                .filter(|p| p.subscriber_id == *id && p.amount == *amount)
                .count();
            assert_eq!(n, 1, "seed {seed}: {r} is in Tariscope {n} times");
        }
        let store = open_mirror(dir.path(), url.as_deref()).await;
        let posted = posted_ids(&store).await;
        assert_eq!(posted.len(), 120);
        assert!(
            posted.values().all(Option::is_some),
            "seed {seed}: {posted:?}"
        );
        assert!(open_payment_entries(&store).await.is_empty(), "seed {seed}");
        if !store.is_postgres() {
            // SQLite's own check of the file; PostgreSQL has no counterpart to ask.
            let check: String = store
                .read(|c| {
                    Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                        .unwrap())
                })
                .await
                .unwrap();
            assert_eq!(check, "ok");
        }

        let out = run(&config, &["status"]).await;
        let total: Decimal = want.iter().map(|(_, _, a)| *a).sum();
        assert!(
        text(&out).contains(&format!(
            "payments: posted 120 ({total}), pending 0 (0), ambiguous 0 (0), rejected 0 (0) + 1 rejected in imported files"
        )),
        "{}",
        text(&out)
    );

        // `resolve` says why it cannot settle what does not wait for a person.
        let out = run(&config, &["resolve", "kill-000", "--not-landed"]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out).contains("not waiting for a person"),
            "{}",
            text(&out)
        );
        let out = run(&config, &["resolve", "kill-000"]).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "a verdict is required: {}",
            text(&out)
        );
    }
}

/// The mirror of a config written for `dir` (below): PostgreSQL `url`, else `dir/mirror.db`.
async fn open_mirror(dir: &std::path::Path, url: Option<&str>) -> Store {
    let (dir, url) = (dir.to_owned(), url.map(str::to_owned));
    tokio::task::spawn_blocking(move || match url {
        Some(url) => Store::open_postgres(&pg::Target::parse(&url, None).unwrap()).unwrap(),
        None => Store::open(dir.join("mirror.db")).unwrap(),
    })
    .await
    .unwrap()
}

async fn open_payment_entries_in(dir: &std::path::Path, url: Option<&str>) -> usize {
    let store = open_mirror(dir, url).await;
    open_payment_entries(&store).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_takes_an_operators_payment_by_hand() {
    let sim = sim_of(3).await;
    let id = subscriber_ids(&sim)[0];
    let url = format!("{}/_sim/payments", sim.base_url());
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| http.post(&url).json(&body).send();
    let r = post(serde_json::json!({"subscriberid": id, "paymentday": "2025-05-19", "payment": "370.00", "paymenttype": 3, "bank": "PrivatBank"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pid = r.json::<serde_json::Value>().await.unwrap()["paymentid"]
        .as_i64()
        .unwrap();
    assert_eq!(in_tariscope(&sim, id, dec("370.00"), day(1)), [pid]);
    assert_eq!(sim.request_count("accounts.payment"), 0, "not an API call");
    let unknown =
        serde_json::json!({"subscriberid": 1, "paymentday": "2025-05-19", "payment": "1"});
    assert_eq!(post(unknown).await.unwrap().status(), 404);
    let negative =
        serde_json::json!({"subscriberid": id, "paymentday": "2025-05-19", "payment": "-1"});
    assert_eq!(post(negative).await.unwrap().status(), 400);
    let bad = serde_json::json!({"subscriberid": id, "day": "2025-05-19"});
    assert_eq!(post(bad).await.unwrap().status(), 400);
}
