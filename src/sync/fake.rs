//! An in-memory `Remote` for tests and demos: a deterministic seeded dataset, editable
//! state, a call log, and injectable faults (undecodable records, a failure budget, a
//! "hang after N calls" switch to cancel a job mid-flight, latency).
//!
//! Owns: nothing of the product's behaviour. Must not: be used by the daemon against a
//! real server (it is the jobs' test double; the emulator in `crate::sim` is the faithful
//! stand-in for Tariscope).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use tokio::sync::Notify;

use super::remote::{
    Remote, RemoteError, RemoteErrorKind, RemoteResult, SubscriberRecords, TariffFilter,
};
use crate::model::{
    AccountSummary, Charge, Code, DnAssignment, Payment, PaymentType, Service, Subscriber,
    SubscriberId, SubscriberType, SystemInfo, Tariff, TariffPlan,
};

/// The remote methods, for faults and the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    ListNode,
    ListDepartment,
    Get,
    Payments,
    Charges,
    Summary,
    Plans,
    Tariffs,
    Services,
    SystemInfo,
}

/// One logged call: method, subscriber (when per subscriber), day (summaries).
pub type Call = (Method, Option<SubscriberId>, Option<NaiveDate>);

/// What the fake server holds.
#[derive(Debug, Clone, Default)]
pub struct FakeData {
    pub subscribers: BTreeMap<SubscriberId, Subscriber>,
    /// Department -> its node.
    pub departments: BTreeMap<i64, i64>,
    pub payments: Vec<Payment>,
    pub charges: Vec<Charge>,
    pub plans: Vec<TariffPlan>,
    pub tariffs: Vec<Tariff>,
    pub services: Vec<Service>,
    pub system: SystemInfo,
}

/// The deterministic daily summary of a subscriber (a pure function of id and day).
pub fn summary_of(id: SubscriberId, day: NaiveDate) -> AccountSummary {
    let n = i64::from(day.num_days_from_ce());
    let start = Decimal::new((id * 37 + n * 11) % 50_000, 2);
    let charge = Decimal::new((id + n) % 700, 2);
    let payment = Decimal::new(if (id + n) % 10 == 0 { 5_000 } else { 0 }, 2);
    AccountSummary {
        subscriber_id: id,
        date: day,
        start_debt: Some(start),
        end_debt: Some(start + charge - payment),
        charge: Some(charge),
        payment: Some(payment),
    }
}

impl FakeData {
    /// `n` subscribers (ids 1001..), spread over nodes 1..=2 and departments 11, 12 (node 1)
    /// and 21 (node 2); payments and charges from `first_day` over 60 days.
    pub fn seeded(n: usize, first_day: NaiveDate) -> FakeData {
        let mut data = FakeData {
            departments: BTreeMap::from([(11, 1), (12, 1), (21, 2)]),
            ..FakeData::default()
        };
        let deps = [11, 12, 21];
        for i in 0..n as i64 {
            let id = 1001 + i;
            let dep = deps[(i % 3) as usize];
            let dns = (0..=(i % 2))
                .map(|k| DnAssignment {
                    id: Some(id * 10 + k),
                    subscriber_id: id,
                    pbx_id: Some(1),
                    dn: format!("{}", 200_000 + id * 10 + k),
                    from_date: Some(first_day),
                    description: (k == 1).then(|| "fax".to_owned()),
                })
                .collect();
            data.subscribers.insert(
                id,
                Subscriber {
                    id,
                    fullname: Some(format!("Subscriber {id}")),
                    street: Some("Khreshchatyk".into()),
                    house: Some(format!("{}", i % 90 + 1)),
                    flat: (i % 4 == 0).then(|| format!("{}", i % 50)),
                    email: Some(format!("s{id}@example.test")),
                    ispublic: Some(i % 2 == 0),
                    subscriber_type: Some(SubscriberType::from_code(i % 5)),
                    edrpou: Some(format!("{:08}", 30_000_000 + id)),
                    contract_number: Some(format!("C-{id}")),
                    contractdate: Some(first_day),
                    account_number: Some(format!("{id}")),
                    gender: Some(Code(i % 3)),
                    deliverytype: Some(Code(i % 3)),
                    privilegediscount: Some(Decimal::new(i % 3 * 250, 2)),
                    department_id: Some(dep),
                    node_id: data.departments.get(&dep).copied(),
                    rateplan_id: Some(1 + i % 2),
                    dns: Some(dns),
                    ..Subscriber::default()
                },
            );
            for k in 0..3i64 {
                let day = first_day + chrono::Days::new(((i * 7 + k * 19) % 60) as u64);
                data.payments.push(Payment {
                    payment_id: id * 100 + k,
                    subscriber_id: id,
                    payment_day: Some(day),
                    amount: Some(Decimal::new(10_000 + k * 2_550, 2)),
                    payment_type: Some(PaymentType::from_code(k % 4)),
                    bank: (k == 1).then(|| "PrivatBank".to_owned()),
                });
                data.charges.push(Charge {
                    id: Some(id * 100 + k),
                    subscriber_id: id,
                    recdate: Some(day),
                    fromdate: Some(day),
                    todate: Some(day),
                    servicename: Some(if k == 0 { "Subscription" } else { "Calls" }.to_owned()),
                    charge: Some(Decimal::new(1_500 + k * 10, 2)),
                    numberofservices: Some(Decimal::from(k * 60 + 1)),
                });
            }
        }
        data.plans = vec![
            TariffPlan {
                id: 1,
                name: Some("Basic".into()),
                raw: vec![("id".into(), "1".into()), ("name".into(), "Basic".into())],
            },
            TariffPlan {
                id: 2,
                name: Some("Business".into()),
                raw: vec![
                    ("id".into(), "2".into()),
                    ("name".into(), "Business".into()),
                ],
            },
        ];
        data.tariffs = vec![Tariff {
            id: 7,
            name: Some("Local".into()),
            plan_id: Some(1),
            value: Some(Decimal::new(45, 2)),
            rounddurationdown: Some(false),
            raw: vec![("id".into(), "7".into())],
            ..Tariff::default()
        }];
        data.services = vec![Service {
            id: 3,
            name: Some("Voice mail".into()),
            raw: vec![("id".into(), "3".into())],
        }];
        data.system = SystemInfo {
            version: Some("4.6.4.1521".into()),
            database: Some("4.6.118".into()),
            build: Some("2024-02-01".into()),
            serial: Some("TS-0001".into()),
            edition: Some("Provider".into()),
        };
        data
    }
}

/// The fake server.
#[derive(Default)]
pub struct FakeRemote {
    data: Mutex<FakeData>,
    partial_lists: AtomicBool,
    /// Calls answered with `BadData`.
    bad: Mutex<HashSet<(Method, SubscriberId)>>,
    /// After this many more calls, every call fails `Transient`.
    fail_after: Mutex<Option<u64>>,
    /// After this many calls in total, calls never answer (to cancel a job mid-flight).
    hang_after: Mutex<Option<u64>>,
    hung: Notify,
    /// Set once a call hung (since the last `hang_after` / `clear_faults`).
    has_hung: AtomicBool,
    latency: Mutex<Option<Duration>>,
    calls: AtomicU64,
    log: Mutex<Vec<Call>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeRemote {
    pub fn new(data: FakeData) -> FakeRemote {
        FakeRemote {
            data: Mutex::new(data),
            ..FakeRemote::default()
        }
    }

    /// Edits the server's data.
    pub fn edit<T>(&self, f: impl FnOnce(&mut FakeData) -> T) -> T {
        f(&mut lock(&self.data))
    }

    /// A copy of the server's data.
    pub fn data(&self) -> FakeData {
        lock(&self.data).clone()
    }

    /// Lists return only `id` and `fullname`.
    pub fn set_partial_lists(&self, on: bool) {
        self.partial_lists.store(on, Ordering::SeqCst);
    }

    /// Answers `method` for `subscriber` with an undecodable-record error (for the list
    /// methods: that record of the list is an undecodable item).
    pub fn set_bad_data(&self, method: Method, subscriber: SubscriberId) {
        lock(&self.bad).insert((method, subscriber));
    }

    pub fn clear_faults(&self) {
        lock(&self.bad).clear();
        *lock(&self.fail_after) = None;
        *lock(&self.hang_after) = None;
        self.has_hung.store(false, Ordering::SeqCst);
    }

    /// Lets `n` more calls through, then fails every call as transient.
    pub fn fail_after(&self, n: u64) {
        *lock(&self.fail_after) = Some(n);
    }

    /// Once `n` calls have been made in total, further calls never answer.
    pub fn hang_after(&self, n: u64) {
        *lock(&self.hang_after) = Some(n);
        self.has_hung.store(false, Ordering::SeqCst);
    }

    /// Resolves when a call has hung (see `hang_after`).
    pub async fn hung(&self) {
        loop {
            let notified = self.hung.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_hung.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        *lock(&self.latency) = latency;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.log).clone()
    }

    /// How many times each call was made.
    pub fn call_counts(&self) -> HashMap<Call, u64> {
        let mut out = HashMap::new();
        for c in lock(&self.log).iter() {
            *out.entry(*c).or_default() += 1;
        }
        out
    }

    pub fn reset_calls(&self) {
        lock(&self.log).clear();
        self.calls.store(0, Ordering::SeqCst);
    }

    /// Logs a call and applies the faults.
    async fn enter(
        &self,
        method: Method,
        sub: Option<SubscriberId>,
        day: Option<NaiveDate>,
    ) -> RemoteResult<()> {
        let count = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.log).push((method, sub, day));
        let latency = *lock(&self.latency);
        if let Some(l) = latency {
            tokio::time::sleep(l).await;
        }
        let hang = lock(&self.hang_after).is_some_and(|n| count > n);
        if hang {
            self.has_hung.store(true, Ordering::SeqCst);
            self.hung.notify_waiters();
            std::future::pending::<()>().await;
        }
        {
            let mut budget = lock(&self.fail_after);
            if let Some(left) = budget.as_mut() {
                if *left == 0 {
                    return Err(RemoteError::new(
                        RemoteErrorKind::Transient,
                        "injected fault: server unavailable",
                    ));
                }
                *left -= 1;
            }
        }
        let bad = sub.filter(|s| lock(&self.bad).contains(&(method, *s)));
        if let Some(s) = bad {
            return Err(RemoteError::new(
                RemoteErrorKind::BadData,
                format!("injected fault: undecodable record for subscriber {s}"),
            ));
        }
        Ok(())
    }

    /// A list answer: `listed`, with the records `set_bad_data(method, id)` named as
    /// undecodable items.
    fn records(&self, method: Method, keep: impl Fn(&Subscriber) -> bool) -> SubscriberRecords {
        let bad = lock(&self.bad).clone();
        Box::new(self.listed(keep).into_iter().map(move |s| {
            if bad.contains(&(method, s.id)) {
                Err(RemoteError::new(
                    RemoteErrorKind::BadData,
                    format!(
                        "injected fault: undecodable list record for subscriber {}",
                        s.id
                    ),
                ))
            } else {
                Ok(s)
            }
        }))
    }

    fn listed(&self, keep: impl Fn(&Subscriber) -> bool) -> Vec<Subscriber> {
        let partial = self.partial_lists.load(Ordering::SeqCst);
        lock(&self.data)
            .subscribers
            .values()
            .filter(|s| keep(s))
            .map(|s| {
                if partial {
                    Subscriber {
                        id: s.id,
                        fullname: s.fullname.clone(),
                        ..Subscriber::default()
                    }
                } else {
                    s.clone()
                }
            })
            .collect()
    }
}

impl Remote for FakeRemote {
    fn lists_are_partial(&self) -> bool {
        self.partial_lists.load(Ordering::SeqCst)
    }

    async fn subscribers_by_node(&self, node: i64) -> RemoteResult<SubscriberRecords> {
        self.enter(Method::ListNode, None, None).await?;
        Ok(self.records(Method::ListNode, |s| s.node_id == Some(node)))
    }

    async fn subscribers_by_department(&self, department: i64) -> RemoteResult<SubscriberRecords> {
        self.enter(Method::ListDepartment, None, None).await?;
        Ok(self.records(Method::ListDepartment, |s| {
            s.department_id == Some(department)
        }))
    }

    async fn subscriber_get(&self, id: SubscriberId) -> RemoteResult<Option<Subscriber>> {
        self.enter(Method::Get, Some(id), None).await?;
        Ok(lock(&self.data).subscribers.get(&id).cloned())
    }

    async fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Payment>> {
        self.enter(Method::Payments, Some(id), None).await?;
        Ok(lock(&self.data)
            .payments
            .iter()
            .filter(|p| {
                p.subscriber_id == id && p.payment_day.is_some_and(|d| from <= d && d <= to)
            })
            .cloned()
            .collect())
    }

    async fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Charge>> {
        self.enter(Method::Charges, Some(id), None).await?;
        Ok(lock(&self.data)
            .charges
            .iter()
            .filter(|c| c.subscriber_id == id && c.recdate.is_some_and(|d| from <= d && d <= to))
            .cloned()
            .collect())
    }

    async fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> RemoteResult<AccountSummary> {
        self.enter(Method::Summary, Some(id), Some(date)).await?;
        if !lock(&self.data).subscribers.contains_key(&id) {
            return Err(RemoteError::new(
                RemoteErrorKind::NotFound,
                format!("subscriber {id}"),
            ));
        }
        Ok(summary_of(id, date))
    }

    async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
        self.enter(Method::Plans, None, None).await?;
        Ok(lock(&self.data).plans.clone())
    }

    async fn tariff_details(&self, _filter: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
        self.enter(Method::Tariffs, None, None).await?;
        Ok(lock(&self.data).tariffs.clone())
    }

    async fn services(&self) -> RemoteResult<Vec<Service>> {
        self.enter(Method::Services, None, None).await?;
        Ok(lock(&self.data).services.clone())
    }

    async fn system_info(&self) -> RemoteResult<SystemInfo> {
        self.enter(Method::SystemInfo, None, None).await?;
        Ok(lock(&self.data).system.clone())
    }
}
