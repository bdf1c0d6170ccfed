//! Shared helpers of the `push_*` tests: an emulator, a client, a mirror, a pull, a push.
#![allow(dead_code)]

use std::time::Duration;

use chrono::NaiveDate;
use tariscope_sync::api::{ClientConfig, RetrySettings, Secret, TariscopeClient};
use tariscope_sync::model::{
    CreatedSubscriber, DnAssignment, NewDn, NewPayment, NewSubscriber, Payment, RecordedPayment,
    Subscriber, SubscriberPatch,
};
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle, WireVariant};
use tariscope_sync::store::Store;
use tariscope_sync::sync::fields::Field;
use tariscope_sync::sync::import::{Format, parse};
use tariscope_sync::sync::plan::ConflictPolicy;
use tariscope_sync::sync::push::{PushOptions, PushRemote, PushReport, WriteResult, run_push};
use tariscope_sync::sync::{Clock, JobKind, Progress, PullOptions, run_job};

pub const TODAY: (i32, u32, u32) = (2025, 5, 20);

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap()
}

pub async fn sim() -> SimHandle {
    sim_with(WireVariant::default()).await
}

/// The test emulator with wire variant `wire`.
pub async fn sim_with(wire: WireVariant) -> SimHandle {
    SimHandle::start(SimConfig {
        wire,
        dataset: DatasetConfig {
            seed: 11,
            nodes: 1,
            departments_per_node: 3,
            subscribers: 30,
            days: 5,
            end_date: Some(today()),
        },
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts")
}

pub fn client(sim: &SimHandle) -> TariscopeClient {
    let mut c = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    c.rate_per_sec = 0.0;
    c.concurrency = 16;
    c.request_timeout = Duration::from_secs(10);
    c.retry = RetrySettings {
        max_attempts: 6,
        initial_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(20),
    };
    TariscopeClient::new(c).expect("client builds")
}

pub fn clock() -> Clock {
    clock_at("2025-05-20T10:00:00Z")
}

/// A clock that always says `t` (RFC 3339).
pub fn clock_at(t: &str) -> Clock {
    Clock::fixed(chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc())
}

pub async fn pull(client: &TariscopeClient, store: &Store) {
    let mut opts = PullOptions::new(today());
    opts.scope.nodes = vec![1];
    opts.clock = clock();
    let report = run_job(JobKind::Subscribers, client, store, &opts, &Progress::new())
        .await
        .expect("pull runs");
    assert_eq!(report.counts.errors, 0, "{report:?}");
}

pub fn options(policy: ConflictPolicy) -> PushOptions {
    PushOptions {
        policy,
        natural_key: Some(Field::AccountId),
        max_attempts: 8,
        concurrency: 8,
        clock: clock(),
        payments: Default::default(),
    }
}

pub async fn push<R: PushRemote>(remote: &R, store: &Store, opts: &PushOptions) -> PushReport {
    run_push(
        remote,
        store,
        opts,
        &Progress::new(),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("push runs")
}

/// The first department and PBX of node 1 in the emulator.
pub fn department_and_pbx(sim: &SimHandle) -> (i64, i64) {
    let s = sim.state();
    let dep = s.departments.iter().find(|d| d.node_id == 1).unwrap().id;
    let pbx = s.pbxs.iter().find(|p| p.node_id == 1).unwrap().id;
    (dep, pbx)
}

/// A CSV of `n` new subscribers with 1..=3 numbers each (account numbers `ACC-<i>`).
pub fn desired_csv(n: usize, department: i64, pbx: i64) -> String {
    let mut csv =
        String::from("key,fullname,departmentid,subscribertype,accountnumber,street,dns\n");
    for i in 0..n {
        let dns: Vec<String> = (0..=(i % 3)).map(|j| format!("{pbx}/7{i:05}{j}")).collect();
        csv.push_str(&format!(
            "crm-{i:04},Pidpryiemets {i},{department},{},ACC-{i},Vulytsia {i},{}\n",
            i % 2,
            dns.join(";")
        ));
    }
    csv
}

pub async fn import(store: &Store, csv: &str) {
    let batch = parse(csv, Format::Csv).unwrap();
    assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
    store
        .import_desired(batch, "desired.csv".into(), "2025-05-20T10:00:00Z".into())
        .await
        .unwrap();
}

/// Checks the emulator holds exactly one subscriber per desired row (by account number)
/// and each desired number exactly once, on that subscriber.
pub fn assert_exactly_once(sim: &SimHandle, n: usize, pbx: i64) {
    let s = sim.state();
    for i in 0..n {
        let acc = format!("ACC-{i}");
        let holders: Vec<_> = s
            .subscribers
            .iter()
            .filter(|x| x.account_number.as_deref() == Some(acc.as_str()))
            .collect();
        assert_eq!(holders.len(), 1, "{acc}: {} subscribers", holders.len());
        let sub = holders[0];
        for j in 0..=(i % 3) {
            let dn = format!("7{i:05}{j}");
            let count = assignments(&s, pbx, &dn);
            assert_eq!(count, 1, "DN {dn} assigned {count} times");
            assert!(sub.dns.iter().any(|d| d.dn == dn), "DN {dn} not on {acc}");
        }
    }
}

pub fn writes(sim: &SimHandle) -> u64 {
    ["subscriber.create", "subscriber.update", "subscriber.dnadd"]
        .iter()
        .map(|m| sim.request_count(m))
        .sum()
}

/// How many times number `dn` of PBX `pbx` is assigned on the emulator (a server that
/// accepts a repeated `dnadd` keeps every assignment).
pub fn assignments(s: &tariscope_sync::sim::SimSnapshot, pbx: i64, dn: &str) -> usize {
    s.subscribers
        .iter()
        .map(|x| {
            x.dns
                .iter()
                .filter(|d| d.dn == dn && d.pbx_id == pbx)
                .count()
        })
        .sum()
}

/// The four kinds of server for numbers: (records show no DNs, a repeated dnadd is
/// accepted as a second assignment).
pub const DN_SERVERS: [(bool, bool); 4] =
    [(false, false), (false, true), (true, false), (true, true)];

pub fn dn_server(records_without_dns: bool, accept_duplicate_dns: bool) -> WireVariant {
    WireVariant {
        records_without_dns,
        accept_duplicate_dns,
        ..WireVariant::default()
    }
}

/// Settles every `dnadd` left for a person the way an operator would: looks at the
/// subscriber in Tariscope (here: the emulator's state) and marks the entry `done` when it
/// holds the number, `failed` (sent again) when not. Returns how many were settled.
pub async fn settle_unknown_dnadds_by_hand(sim: &SimHandle, store: &Store) -> usize {
    use tariscope_sync::store::OutboxState;
    let state = sim.state();
    let open = store
        .outbox_in(&[OutboxState::Ambiguous, OutboxState::Sent])
        .await
        .unwrap();
    let mut settled = 0;
    for e in open.into_iter().filter(|e| e.op == "dnadd") {
        let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        let (id, pbx, dn) = (
            e.subscriber_id.unwrap(),
            p["pbx_id"].as_i64().unwrap(),
            p["dn"].as_str().unwrap(),
        );
        let holds = state
            .subscribers
            .iter()
            .any(|s| s.id == id && s.dns.iter().any(|d| d.pbx_id == pbx && d.dn == dn));
        let to = if holds {
            OutboxState::Done
        } else {
            OutboxState::Failed
        };
        store
            .outbox_mark(
                e.id,
                to,
                false,
                None,
                None,
                None,
                "2025-05-20T11:00:00Z".into(),
            )
            .await
            .unwrap();
        settled += 1;
    }
    settled
}

/// Forwards to the real client; after `limit` writes reached the server it never returns,
/// so the caller can drop the push mid-flight (the process died after sending). `crashed`
/// is notified then.
pub struct Crashing<'a> {
    pub inner: &'a TariscopeClient,
    pub writes: std::sync::atomic::AtomicUsize,
    pub limit: usize,
    pub crashed: std::sync::Arc<tokio::sync::Notify>,
}

impl<'a> Crashing<'a> {
    pub fn new(inner: &'a TariscopeClient, limit: usize) -> Self {
        Crashing {
            inner,
            writes: Default::default(),
            limit,
            crashed: Default::default(),
        }
    }

    async fn after_write<T>(&self, r: WriteResult<T>) -> WriteResult<T> {
        use std::sync::atomic::Ordering;
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 >= self.limit {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        r
    }
}

impl PushRemote for Crashing<'_> {
    async fn create(&self, s: &NewSubscriber) -> WriteResult<CreatedSubscriber> {
        let r = self.inner.create(s).await;
        self.after_write(r).await
    }
    async fn update(&self, p: &SubscriberPatch) -> WriteResult<Option<Subscriber>> {
        let r = self.inner.update(p).await;
        self.after_write(r).await
    }
    async fn dnadd(&self, dn: &NewDn) -> WriteResult<DnAssignment> {
        let r = self.inner.dnadd(dn).await;
        self.after_write(r).await
    }
    async fn get(&self, id: i64) -> WriteResult<Option<Subscriber>> {
        self.inner.get(id).await
    }
    async fn find_by_email(&self, email: &str) -> WriteResult<Option<Subscriber>> {
        self.inner.find_by_email(email).await
    }
    async fn list_department(&self, department: i64) -> WriteResult<Vec<Subscriber>> {
        self.inner.list_department(department).await
    }
    async fn payment(&self, p: &NewPayment) -> WriteResult<RecordedPayment> {
        let r = self.inner.payment(p).await;
        self.after_write(r).await
    }
    async fn payments_on(&self, id: i64, day: NaiveDate) -> WriteResult<Vec<Payment>> {
        self.inner.payments_on(id, day).await
    }
    async fn payment_by_id(&self, id: i64, payment_id: i64) -> WriteResult<Option<Payment>> {
        self.inner.payment_by_id(id, payment_id).await
    }
}
