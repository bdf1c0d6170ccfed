//! The summaries job's `active-days` mode end to end (issue 14): the real client against
//! the in-process emulator, the mirror compared row for row with what `every-day` writes,
//! and the `accounts.summary` requests counted by the emulator.

mod backends;

use std::time::Duration;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use tariscope_sync::api::{ClientConfig, RetrySettings, Secret, TariscopeClient};
use tariscope_sync::model::*;
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle};
use tariscope_sync::store::{Outcome, Store, StoreError, SummaryDays, pg};
use tariscope_sync::sync::{
    Clock, JobKind, Progress, PullOptions, Remote, RemoteError, RemoteErrorKind, RemoteResult,
    Scope, SubscriberRecords, SummariesMode, TariffFilter, run_job,
};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The emulator's default dataset (200 subscribers, 60 days of history) ending on `end`.
async fn sim(end: &str, history: u32, hidden_adjustments: bool) -> SimHandle {
    SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            end_date: Some(day(end)),
            days: history,
            ..DatasetConfig::default()
        },
        hidden_adjustments,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn client(sim: &SimHandle) -> TariscopeClient {
    let mut cfg = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    cfg.rate_per_sec = 0.0;
    cfg.concurrency = 16;
    cfg.retry = RetrySettings {
        max_attempts: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(5),
    };
    TariscopeClient::new(cfg).unwrap()
}

fn opts(today: NaiveDate, mode: SummariesMode) -> PullOptions {
    let mut o = PullOptions::new(today);
    o.scope = Scope {
        nodes: vec![1, 2],
        departments: vec![],
    };
    o.concurrency = 16;
    o.lookback_days = 1;
    o.summaries_mode = mode;
    o.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap());
    o
}

fn backfill(mut o: PullOptions, from: NaiveDate, to: NaiveDate) -> PullOptions {
    o.from = Some(from);
    o.to = Some(to);
    o
}

fn sql(source: tariscope_sync::store::DbError) -> StoreError {
    StoreError::Sql {
        context: "test",
        source,
    }
}

/// The first column of `query`'s rows, sorted. SQLite's `quote(x)` is spelt
/// `quote_nullable(x)` on PostgreSQL.
async fn strings(store: &Store, query: &'static str) -> Vec<String> {
    let mut rows: Vec<String> = store
        .read(move |c| {
            let query = if c.is_postgres() {
                query.replace("quote(", "quote_nullable(")
            } else {
                query.to_owned()
            };
            c.prepare(&query)
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql)
        })
        .await
        .unwrap();
    rows.sort();
    rows
}

/// Every column but the origin marker (and the timestamp).
const SUMMARIES: &str = "SELECT subscriber_id || ' ' || date || ' ' || quote(start_debt) || ' ' || quote(end_debt) || ' ' || quote(charge) || ' ' || quote(payment) FROM account_summaries";
const ORIGINS: &str = "SELECT origin || ' ' || count(*) FROM account_summaries GROUP BY origin";

async fn run_ok<R: Remote>(job: JobKind, remote: &R, store: &Store, o: &PullOptions) {
    let r = run_job(job, remote, store, o, &Progress::new())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ok, "{job}: {r:?}");
}

/// `store` with the subscribers, and payments and charges over `from..=to` (backfills).
async fn ledger<R: Remote>(
    store: Store,
    remote: &R,
    today: NaiveDate,
    from: NaiveDate,
    to: NaiveDate,
) -> Store {
    let o = opts(today, SummariesMode::ActiveDays);
    run_ok(JobKind::Subscribers, remote, &store, &o).await;
    let o = backfill(o, from, to);
    run_ok(JobKind::Payments, remote, &store, &o).await;
    run_ok(JobKind::Charges, remote, &store, &o).await;
    store
}

/// Runs summaries with `o` and returns the day counts and the `accounts.summary` requests.
async fn summaries<R: Remote>(
    sim: &SimHandle,
    remote: &R,
    store: &Store,
    o: &PullOptions,
) -> (SummaryDays, u64) {
    sim.reset_counters();
    let r = run_job(JobKind::Summaries, remote, store, o, &Progress::new())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let days = r.days.expect("a summaries run reports its days");
    assert_eq!(
        store.summary_days(r.run_id).await.unwrap(),
        Some(days),
        "the run record holds the same counts"
    );
    let requests = sim.request_count("accounts.summary");
    assert_eq!(days.fetched, requests, "one request per fetched day");
    (days, requests)
}

/// Two stores of each backend (one per summaries mode), in pairs.
async fn two_of_each() -> Vec<(backends::Backend, backends::Backend)> {
    let (a, b) = (backends::backends().await, backends::backends().await);
    a.into_iter().zip(b).collect()
}

/// Backfills `from..=to` in both modes into the fresh mirrors `stores` (every-day, then
/// active-days); returns both day counts and request counts after checking the mirrors are
/// equal.
async fn both_modes(
    sim: &SimHandle,
    from: NaiveDate,
    to: NaiveDate,
    stores: [Store; 2],
) -> [(SummaryDays, u64); 2] {
    let remote = client(sim);
    let mut out = Vec::new();
    let mut mirrors = Vec::new();
    let modes = [SummariesMode::EveryDay, SummariesMode::ActiveDays];
    for (mode, store) in modes.into_iter().zip(stores) {
        let store = ledger(store, &remote, to, from, to).await;
        out.push(summaries(sim, &remote, &store, &backfill(opts(to, mode), from, to)).await);
        mirrors.push(strings(&store, SUMMARIES).await);
        let origins = strings(&store, ORIGINS).await;
        let d = out.last().unwrap().0;
        let mut want = vec![format!("fetched {}", d.fetched)];
        if d.derived > 0 {
            want.insert(0, format!("derived {}", d.derived));
        }
        assert_eq!(
            origins, want,
            "{mode:?}: the marker says how each row was made"
        );
    }
    let subs = sim.state().subscribers.len();
    let days = from.iter_days().take_while(|d| *d <= to).count();
    assert_eq!(mirrors[0].len(), subs * days);
    assert!(
        mirrors[0] == mirrors[1],
        "active-days wrote other rows than every-day"
    );
    [out[0], out[1]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_days_equal_every_day_at_a_fraction_of_the_requests() {
    for (every_day, active_days) in two_of_each().await {
        let stores = [backends::on(&every_day), backends::on(&active_days)];
        let sim = sim("2026-03-01", 60, false).await;
        let (from, to) = (day("2026-01-31"), day("2026-03-01"));
        let [(every, every_requests), (active, requests)] =
            both_modes(&sim, from, to, stores).await;
        assert_eq!(every_requests, 200 * 30);
        assert_eq!((every.derived, every.every_day), (0, 200));
        let share = requests as f64 / every_requests as f64;
        let derived = active.derived as f64 / (active.fetched + active.derived) as f64;
        eprintln!(
            "default dataset, 30 days: active-days {requests} requests vs every-day {every_requests} = {:.1} %; derived days {:.1} %; {active:?}",
            100.0 * share,
            100.0 * derived
        );
        assert!(share <= 0.35, "{requests} of {every_requests} requests");
        assert_eq!(active.every_day, 0, "every ledger pull was complete");
        assert_eq!(active.stretches, 0, "nothing moves a balance unlisted here");
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_adjustments_are_found_by_bisection() {
    for (every_day, active_days) in two_of_each().await {
        let stores = [backends::on(&every_day), backends::on(&active_days)];
        let sim = sim("2026-03-01", 60, true).await;
        assert!(!sim.state().adjustments.is_empty());
        let (from, to) = (day("2026-01-31"), day("2026-03-01"));
        let [(_, every_requests), (active, requests)] = both_modes(&sim, from, to, stores).await;
        eprintln!(
            "hidden adjustments, 30 days: active-days {requests} requests vs every-day {every_requests} = {:.1} %; {active:?}",
            100.0 * requests as f64 / every_requests as f64
        );
        assert!(active.stretches > 0, "{active:?}");
        assert!(active.bisected >= active.stretches, "{active:?}");
        assert!(requests < every_requests / 2);
        sim.shutdown().await;
    }
}

/// The emulator's client, with the charges of one subscriber failing.
struct ChargesFailFor<'a>(&'a TariscopeClient, SubscriberId);

impl Remote for ChargesFailFor<'_> {
    fn lists_are_partial(&self) -> bool {
        Remote::lists_are_partial(self.0)
    }
    async fn subscribers_by_node(&self, n: i64) -> RemoteResult<SubscriberRecords> {
        Remote::subscribers_by_node(self.0, n).await
    }
    async fn subscribers_by_department(&self, d: i64) -> RemoteResult<SubscriberRecords> {
        Remote::subscribers_by_department(self.0, d).await
    }
    async fn subscriber_get(&self, id: i64) -> RemoteResult<Option<Subscriber>> {
        Remote::subscriber_get(self.0, id).await
    }
    async fn account_payments(
        &self,
        id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Payment>> {
        Remote::account_payments(self.0, id, from, to).await
    }
    async fn account_charges(
        &self,
        id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Charge>> {
        if id == self.1 {
            return Err(RemoteError::new(
                RemoteErrorKind::Transient,
                "injected: 503",
            ));
        }
        Remote::account_charges(self.0, id, from, to).await
    }
    async fn account_summary(&self, id: i64, d: NaiveDate) -> RemoteResult<AccountSummary> {
        Remote::account_summary(self.0, id, d).await
    }
    async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
        Remote::tariff_plans(self.0).await
    }
    async fn tariff_details(&self, f: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
        Remote::tariff_details(self.0, f).await
    }
    async fn services(&self) -> RemoteResult<Vec<Service>> {
        Remote::services(self.0).await
    }
    async fn system_info(&self) -> RemoteResult<SystemInfo> {
        Remote::system_info(self.0).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_charges_failed_is_fetched_every_day() {
    for backend in backends::backends().await {
        let sim = sim("2026-03-01", 60, false).await;
        let client = client(&sim);
        let victim = sim.state().subscribers[7].id;
        let failing = ChargesFailFor(&client, victim);
        let (from, to) = (day("2026-02-10"), day("2026-03-01"));
        let store = backends::on(&backend);
        let o = opts(to, SummariesMode::ActiveDays);
        run_ok(JobKind::Subscribers, &client, &store, &o).await;
        let o = backfill(o, from, to);
        run_ok(JobKind::Payments, &client, &store, &o).await;
        let r = run_job(JobKind::Charges, &failing, &store, &o, &Progress::new())
            .await
            .unwrap();
        assert_eq!((r.outcome, r.counts.errors), (Outcome::Partial, 1));

        let (days, _) = summaries(&sim, &client, &store, &o).await;
        assert_eq!(days.every_day, 1, "{days:?}");
        let victim_rows: Vec<String> = {
            let all = strings(
                &store,
                "SELECT subscriber_id || ' ' || origin FROM account_summaries",
            )
            .await;
            all.into_iter()
                .filter(|r| r.starts_with(&format!("{victim} ")))
                .collect()
        };
        assert_eq!(victim_rows.len(), 20);
        assert!(
            victim_rows.iter().all(|r| r.ends_with(" fetched")),
            "{victim_rows:?}"
        );
        assert!(days.derived > 0, "the others still derive");
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_day_backfill_then_daily_incremental_runs() {
    for (every_day, active_days) in two_of_each().await {
        let stores = [backends::on(&every_day), backends::on(&active_days)];
        let end = "2026-02-26";
        let sim = sim(end, 100, false).await;
        let remote = client(&sim);
        let end = day(end);
        let from = end - Days::new(89);
        let mut mirrors = Vec::new();
        let mut last_requests = Vec::new();
        let modes = [SummariesMode::EveryDay, SummariesMode::ActiveDays];
        for (mode, store) in modes.into_iter().zip(stores) {
            let store = ledger(store, &remote, end, from, end).await;
            summaries(&sim, &remote, &store, &backfill(opts(end, mode), from, end)).await;
            // Daily incremental runs of every account job (lookback 1) after the history ends.
            for n in 1..=2 {
                let today = end + Days::new(n);
                let o = opts(today, mode);
                run_ok(JobKind::Payments, &remote, &store, &o).await;
                run_ok(JobKind::Charges, &remote, &store, &o).await;
                let (_, requests) = summaries(&sim, &remote, &store, &o).await;
                last_requests.push(requests);
            }
            mirrors.push(strings(&store, SUMMARIES).await);
        }
        assert_eq!(mirrors[0].len(), 200 * (90 + 2));
        assert!(
            mirrors[0] == mirrors[1],
            "active-days wrote other rows than every-day"
        );
        // The first incremental window starts 30 days back (initial_days); the second is
        // [end + 1, end + 2], days with no activity: one request per subscriber.
        assert_eq!(last_requests[3], 200, "{last_requests:?}");
        assert_eq!(
            last_requests[1],
            2 * 200,
            "every-day: two days per subscriber"
        );
        sim.shutdown().await;
    }
}

mod cli_support;

/// `--run-once` pulls payments and charges before summaries, so no subscriber falls back to
/// every day; `status` shows the day counts. With the mirror in SQLite and, where a cluster
/// can be started, in PostgreSQL (`mirror.url`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_orders_the_jobs_and_status_shows_the_days() {
    let (_cluster, mirrors) = backends::mirror_urls().await;
    for url in mirrors {
        eprintln!(
            "--- on {}",
            if url.is_some() { "postgres" } else { "sqlite" }
        );
        let sim = cli_support::small_sim(3, 30, 40).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let mirror = match &url {
            Some(url) => format!("url = \"{url}\""),
            None => format!("path = \"{}\"", dir.path().join("mirror.db").display()),
        };
        std::fs::write(
        &config,
        format!(
            "timezone = \"UTC\"\n\
             [api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0\nconcurrency = 16\n\
             [mirror]\n{mirror}\n[scope]\nnodes = [1]\n[serve]\nlisten = \"\"\n",
            sim.base_url(),
        ),
    )
    .unwrap();
        let run = |args: &'static [&'static str]| {
            let config = config.clone();
            async move {
                tokio::process::Command::new(cli_support::BIN)
                    .arg("--config")
                    .arg(&config)
                    .args(args)
                    .output()
                    .await
                    .unwrap()
            }
        };
        let out = run(&["--run-once"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", cli_support::text(&out));
        let requests = sim.request_count("accounts.summary");

        let status = run(&["status", "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let summaries = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == "summaries")
            .unwrap();
        let days = &summaries["last_run"]["summary_days"];
        assert_eq!(days["every_day_subscribers"], 0, "{v:#}");
        assert_eq!(days["fetched"], requests, "{v:#}");
        let (fetched, derived) = (
            days["fetched"].as_u64().unwrap(),
            days["derived"].as_u64().unwrap(),
        );
        assert_eq!(fetched + derived, 30 * 31, "{v:#}");
        assert!(derived > fetched, "{v:#}");
        let text = cli_support::text(&run(&["status"]).await);
        assert!(
            text.contains(&format!(
                "summary days: fetched {fetched}, derived {derived}"
            )),
            "{text}"
        );
        sim.shutdown().await;
    }
}
