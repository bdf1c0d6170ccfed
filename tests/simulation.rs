//! Seeded whole-system simulation (issue 16.1): one seed fixes the emulator's dataset and wire
//! variant (a server with partial lists is announced in `api.profile` for even seeds only),
//! the conflict policy, a random sequence of operator actions (in the emulator),
//! local actions (desired rows and payments written with plain SQL from a second connection,
//! and through `import`), pull and push runs under random faults, token revocations and
//! crashes (a run dropped at a random moment, or after a random write reached the server);
//! then, faults off, one settling pull + push + pull, and the invariants:
//!
//! * the mirror equals Tariscope for every subscriber in scope (every field, numbers
//!   included), removed ones tombstoned, and the change log's last word on each agrees;
//! * every desired subscriber exists in Tariscope exactly once, linked, with its desired
//!   values except where an operator's edit stands; every desired number is held exactly
//!   once; every desired payment is posted exactly once and recorded; a further push sends
//!   nothing;
//! * the outbox holds only `done` entries and `terminal` ones with a reason (`ambiguous` only
//!   where the guide leaves nothing to look at: a lost `dnadd` answer on a server whose
//!   records show no numbers); `PRAGMA integrity_check` is ok; no panic.
//!
//! `cargo test --test simulation` runs seeds 1..=40 and the seeds that found bugs
//! (`REGRESSIONS`); `SIM_SEEDS=1000` runs that many
//! (`SIM_FIRST=n` starts elsewhere), `SIM_SEED=n` replays one and prints its steps. Requests
//! of one run go out concurrently, so a seed fixes what is done and which faults are set, not
//! the exact interleaving; seeds with `concurrency 1` replay request for request, up to the
//! random firing of faults.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::NaiveDate;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use tariscope_sync::api::{ClientConfig, Format, RetrySettings, Secret, TariscopeClient};
use tariscope_sync::model::Subscriber;
use tariscope_sync::sim::{
    DatasetConfig, Envelope, Fault, FaultPlan, KeyCase, SimConfig, SimHandle, WireVariant,
};
use tariscope_sync::store::Store;
use tariscope_sync::sync::fields::{Field, fields_of};
use tariscope_sync::sync::import::{self, parse};
use tariscope_sync::sync::plan::ConflictPolicy;
use tariscope_sync::sync::push::{PushOptions, PushRemote, run_push};
use tariscope_sync::sync::{JobKind, Progress, PullOptions, run_job};
use tokio_util::sync::CancellationToken;

mod push_support;
use push_support::{Crashing, assignments, clock, today};

/// The desired columns the simulation manages, with the operator's field name for the same
/// field (`None`: the operator does not edit it).
const EDITABLE: [(&str, &str); 4] = [
    ("street", "street"),
    ("house", "House"),
    ("flat", "Flat"),
    ("email", "email"),
];

/// Seeds that found a bug, each fixed (the note in each line); they run in every `cargo test`.
/// Seeds whose world has `concurrency` above 1 replay the same steps and faults, not always
/// the same interleaving.
const REGRESSIONS: &[(u64, &str)] = &[
    (
        11,
        "a payment by the account number of a desired row not yet created was rejected",
    ),
    (
        17,
        "local-wins re-added a number our own dnadd had assigned, before a pull showed it",
    ),
    (
        57,
        "a renamed key lost its merge base; our own update whose answer was lost became a conflict",
    ),
    (
        103,
        "a `sent` dnadd of a deleted row was closed as done without a look-up",
    ),
    (
        250,
        "a number moved away from a row whose dnadd was ambiguous was assigned twice",
    ),
    (
        398,
        "a dnadd confirmed by a run that died before recording it was sent again",
    ),
    (
        809,
        "a create whose read-back failed left no base: the next edit became a conflict",
    ),
    (
        876,
        "a sent payment whose row was deleted stayed `sent` for ever",
    ),
    (
        908,
        "an ambiguous dnadd after a create held the row's other fields back for ever",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_worlds_keep_every_invariant() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env("SIM_FIRST").unwrap_or(1);
            (first..first + env("SIM_SEEDS").unwrap_or(40)).collect()
        }
    };
    run_seeds(&seeds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_that_found_bugs_stay_fixed() {
    if std::env::var_os("SIM_SEED").is_some() {
        return; // replaying one seed: `random_worlds_keep_every_invariant` runs it
    }
    let seeds: Vec<u64> = REGRESSIONS.iter().map(|(s, _)| *s).collect();
    run_seeds(&seeds).await;
}

async fn run_seeds(seeds: &[u64]) {
    let verbose = seeds.len() == 1;
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for &seed in seeds {
        let outcome = tokio::spawn(async move { run_seed(seed, verbose).await }).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(join) => Some(format!("panicked: {join}")),
        };
        if let Some(f) = failure {
            eprintln!("seed {seed} FAILED: {f}");
            failures.push((seed, f));
        }
    }
    eprintln!(
        "simulation: {} seeds in {:.1} s, {} failed",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed (replay one with SIM_SEED=n):\n{}",
        failures.len(),
        seeds.len(),
        failures
            .iter()
            .map(|(s, f)| format!("seed {s}: {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One desired row as the simulation wrote it.
#[derive(Debug, Clone)]
struct Row {
    account: String,
    department: i64,
    /// Managed editable columns and their values.
    fields: BTreeMap<&'static str, String>,
    dns: BTreeSet<(i64, String)>,
}

#[derive(Debug, Clone)]
struct Pay {
    /// The desired row it names (by key or by that row's account number).
    account: String,
    amount: Decimal,
    day: NaiveDate,
}

struct World {
    seed: u64,
    rng: SmallRng,
    sim: SimHandle,
    client: TariscopeClient,
    store: Store,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    policy: ConflictPolicy,
    records_without_dns: bool,
    concurrency: usize,
    nodes: Vec<i64>,
    /// Department id -> its node.
    departments: BTreeMap<i64, i64>,
    /// Node -> its PBXs.
    pbxs: BTreeMap<i64, Vec<i64>>,
    counter: u64,
    rows: BTreeMap<String, Row>,
    /// Account numbers of every desired row ever written (created at most once each).
    accounts: BTreeSet<String>,
    /// Numbers moved from one desired row to another (held by either, once).
    moved_dns: BTreeSet<(i64, String)>,
    /// Every number ever desired, with the account it was first desired for.
    all_dns: BTreeMap<(i64, String), String>,
    /// (subscriber id, column) -> the operator's last value.
    operator_edits: BTreeMap<(i64, &'static str), String>,
    operator_removed: BTreeSet<i64>,
    operator_removed_dns: BTreeSet<(i64, String)>,
    payments: BTreeMap<String, Pay>,
    steps: Vec<String>,
    /// What went wrong outside the invariants (a binary that panicked).
    problems: Vec<String>,
    /// `api.profile.lists_are_partial` as configured (the server may be partial without it).
    partial_lists: bool,
    format: Format,
    verbose: bool,
}

async fn run_seed(seed: u64, verbose: bool) -> Result<(), String> {
    let mut w = World::new(seed, verbose).await;
    let steps = w.rng.random_range(8..=30);
    for _ in 0..steps {
        w.step().await;
    }
    let settled = w.settle().await;
    let result = match settled {
        Ok(()) => w.check().await,
        Err(e) => Err(e),
    };
    let steps = w.steps.join("\n  ");
    w.sim.shutdown().await;
    result.map_err(|e| format!("{e}\n  steps:\n  {steps}"))
}

impl World {
    async fn new(seed: u64, verbose: bool) -> World {
        let mut rng = SmallRng::seed_from_u64(seed);
        let nodes = rng.random_range(1..=2usize);
        let wire = WireVariant {
            key_case: [KeyCase::Documented, KeyCase::Lower, KeyCase::Pascal]
                [rng.random_range(0..3)],
            numbers_as_strings: rng.random_bool(0.3),
            envelope: if rng.random_bool(0.3) {
                Envelope::Wrapped
            } else {
                Envelope::Bare
            },
            partial_lists: rng.random_bool(0.2),
            records_without_dns: rng.random_bool(0.25),
            accept_duplicate_dns: rng.random_bool(0.5),
            ..WireVariant::default()
        };
        let token_ttl = if rng.random_bool(0.15) {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(6 * 3600)
        };
        let sim = SimHandle::start(SimConfig {
            wire,
            token_ttl,
            dataset: DatasetConfig {
                seed,
                nodes,
                departments_per_node: rng.random_range(1..=3),
                subscribers: rng.random_range(4..=40),
                days: rng.random_range(2..=8),
                end_date: Some(today()),
            },
            ..SimConfig::default()
        })
        .await
        .expect("emulator starts");
        sim.seed_faults(seed);
        // Exactly-once must not depend on the server refusing a second account number.
        sim.set_accept_duplicate_accounts(rng.random_bool(0.7));
        let concurrency = [1, 2, 8][rng.random_range(0..3)];
        let mut c = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
        c.rate_per_sec = 0.0;
        c.concurrency = concurrency.max(2);
        c.request_timeout = Duration::from_secs(5);
        // Half the partial-list servers are not announced in the profile (the pull must see
        // them itself); from the seed, not the RNG, so older seeds keep their worlds.
        let announced = wire.partial_lists && seed.is_multiple_of(2);
        c.profile.lists_are_partial = announced;
        let format = if rng.random_bool(0.2) {
            Format::Xml
        } else {
            Format::Json
        };
        c.format = format;
        c.retry = RetrySettings {
            max_attempts: rng.random_range(1..=4),
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(5),
        };
        let client = TariscopeClient::new(c).expect("client builds");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.db");
        let store = Store::open(&path).expect("mirror opens");
        let policy = [
            ConflictPolicy::RemoteWins,
            ConflictPolicy::LocalWins,
            ConflictPolicy::Manual,
        ][rng.random_range(0..3)];
        let s = sim.state();
        let node_ids: Vec<i64> = s.nodes.iter().map(|n| n.id).collect();
        let departments = s.departments.iter().map(|d| (d.id, d.node_id)).collect();
        let mut pbxs: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for p in &s.pbxs {
            pbxs.entry(p.node_id).or_default().push(p.id);
        }
        let mut w = World {
            seed,
            rng,
            sim,
            client,
            store,
            path,
            _dir: dir,
            policy,
            records_without_dns: wire.records_without_dns,
            concurrency,
            nodes: node_ids,
            departments,
            pbxs,
            counter: 0,
            rows: BTreeMap::new(),
            accounts: BTreeSet::new(),
            moved_dns: BTreeSet::new(),
            all_dns: BTreeMap::new(),
            operator_edits: BTreeMap::new(),
            operator_removed: BTreeSet::new(),
            operator_removed_dns: BTreeSet::new(),
            payments: BTreeMap::new(),
            steps: Vec::new(),
            problems: Vec::new(),
            partial_lists: announced,
            format,
            verbose,
        };
        w.log(format!(
            "world: {nodes} nodes, {} subscribers, wire {wire:?}, ttl {token_ttl:?}, policy {policy:?}, concurrency {concurrency}",
            s.subscribers.len()
        ));
        w
    }

    fn log(&mut self, step: String) {
        if self.verbose {
            eprintln!("[seed {}] {step}", self.seed);
        }
        self.steps.push(step);
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())].clone())
    }

    /// A second connection to the mirror, as an integrator's program would open one.
    fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        c
    }

    async fn step(&mut self) {
        match self.rng.random_range(0..100) {
            0..=11 => self.operator_edit(),
            12..=14 => self.operator_remove(),
            15..=17 => self.operator_remove_dn(),
            18..=20 => self.operator_payment(),
            21..=32 => self.local_add(),
            33..=40 => self.local_edit(),
            41..=42 => self.local_delete(),
            43..=45 => self.local_rename(),
            46..=50 => self.local_dn_add(),
            51..=52 => self.local_dn_move(),
            53..=56 => self.local_import().await,
            57..=62 => self.local_payment(),
            63..=64 => {
                self.sim.revoke_tokens();
                self.log("tokens revoked".into());
            }
            65..=67 => self.binary_run().await,
            68..=76 => self.run(JobKind::Subscribers).await,
            77..=80 => self.run(JobKind::Payments).await,
            _ => self.push_run().await,
        }
    }

    // ---- operator actions (in Tariscope) ----

    fn live_ids(&self) -> Vec<i64> {
        self.sim.state().subscribers.iter().map(|s| s.id).collect()
    }

    fn operator_edit(&mut self) {
        let Some(id) = self.pick(&self.live_ids()) else {
            return;
        };
        let (column, field) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        let value = format!("op-{}", self.next());
        if self.sim.operator_update(id, field, Some(&value)) {
            self.operator_edits.insert((id, column), value.clone());
            self.log(format!("operator sets {column} of {id} to {value}"));
        }
    }

    fn operator_remove(&mut self) {
        let Some(id) = self.pick(&self.live_ids()) else {
            return;
        };
        if self.sim.operator_remove(id) {
            self.operator_removed.insert(id);
            self.log(format!("operator removes subscriber {id}"));
        }
    }

    fn operator_remove_dn(&mut self) {
        let held: Vec<(i64, i64, String)> = self
            .sim
            .state()
            .subscribers
            .iter()
            .flat_map(|s| s.dns.iter().map(move |d| (s.id, d.pbx_id, d.dn.clone())))
            .collect();
        let Some((id, pbx, dn)) = self.pick(&held) else {
            return;
        };
        if self.sim.operator_remove_dn(id, pbx, &dn) {
            self.operator_removed_dns.insert((pbx, dn.clone()));
            self.log(format!("operator takes {pbx}/{dn} from {id}"));
        }
    }

    fn operator_payment(&mut self) {
        let Some(id) = self.pick(&self.live_ids()) else {
            return;
        };
        let n = self.next();
        let amount = Decimal::new(500_000 + n as i64, 2);
        let day = today() - chrono::Days::new(self.rng.random_range(0..3));
        if let Some(pid) = self.sim.operator_post_payment(id, day, amount, 1, None) {
            self.log(format!(
                "operator posts payment {pid} of {amount} on {day} for {id}"
            ));
        }
    }

    // ---- local actions (desired state) ----

    fn local_add(&mut self) {
        let n = self.next();
        let key = format!("k{n}");
        let account = format!("SIM-{}-{n}", self.seed);
        let department = self.department();
        let mut fields = BTreeMap::new();
        fields.insert("street", format!("Vulytsia {n}"));
        if self.rng.random_bool(0.5) {
            fields.insert("email", format!("p{n}@example.org"));
        }
        let mut dns = BTreeSet::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let dn = self.fresh_dn(department);
            dns.insert(dn);
        }
        let row = Row {
            account: account.clone(),
            department,
            fields,
            dns,
        };
        let c = self.sql();
        write_row(&c, &key, &row);
        for (pbx, dn) in &row.dns {
            self.all_dns.insert((*pbx, dn.clone()), account.clone());
        }
        self.accounts.insert(account);
        self.log(format!("SQL: desired {key} = {row:?}"));
        self.rows.insert(key, row);
    }

    fn department(&mut self) -> i64 {
        let ids: Vec<i64> = self.departments.keys().copied().collect();
        self.pick(&ids).unwrap()
    }

    /// A number never desired before, on a PBX of `department`'s node.
    fn fresh_dn(&mut self, department: i64) -> (i64, String) {
        let n = self.next();
        let node = self.departments[&department];
        let pbx = self.pick(&self.pbxs[&node].clone()).unwrap();
        (pbx, format!("9{:06}", n))
    }

    fn pick_key(&mut self) -> Option<String> {
        let keys: Vec<String> = self.rows.keys().cloned().collect();
        self.pick(&keys)
    }

    fn local_edit(&mut self) {
        let Some(key) = self.pick_key() else { return };
        let (column, _) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        let value = format!("loc-{}", self.next());
        self.sql()
            .execute(
                &format!("UPDATE desired_subscribers SET {column} = ?1 WHERE key = ?2"),
                (&value, &key),
            )
            .unwrap();
        self.rows
            .get_mut(&key)
            .unwrap()
            .fields
            .insert(column, value.clone());
        self.log(format!("SQL: {key}.{column} = {value}"));
    }

    fn local_delete(&mut self) {
        let Some(key) = self.pick_key() else { return };
        self.sql()
            .execute("DELETE FROM desired_subscribers WHERE key = ?1", [&key])
            .unwrap();
        self.rows.remove(&key);
        self.log(format!("SQL: delete desired {key}"));
    }

    fn local_rename(&mut self) {
        let Some(key) = self.pick_key() else { return };
        let new = format!("k{}", self.next());
        let mut c = self.sql();
        let tx = c.transaction().unwrap();
        tx.execute(
            "UPDATE desired_subscribers SET key = ?1 WHERE key = ?2",
            (&new, &key),
        )
        .unwrap();
        tx.execute(
            "UPDATE desired_payments SET subscriber_key = ?1 WHERE subscriber_key = ?2",
            (&new, &key),
        )
        .unwrap();
        tx.commit().unwrap();
        let row = self.rows.remove(&key).unwrap();
        self.rows.insert(new.clone(), row);
        self.log(format!("SQL: rename {key} -> {new}"));
    }

    fn local_dn_add(&mut self) {
        let Some(key) = self.pick_key() else { return };
        let (pbx, dn) = self.fresh_dn(self.rows[&key].department);
        self.sql()
            .execute(
                "INSERT INTO desired_dns (key, pbx_id, dn) VALUES (?1, ?2, ?3)",
                (&key, pbx, &dn),
            )
            .unwrap();
        let row = self.rows.get_mut(&key).unwrap();
        row.dns.insert((pbx, dn.clone()));
        let account = row.account.clone();
        self.all_dns.insert((pbx, dn.clone()), account);
        self.log(format!("SQL: {key} wants {pbx}/{dn}"));
    }

    fn local_dn_move(&mut self) {
        let held: Vec<(String, (i64, String))> = self
            .rows
            .iter()
            .flat_map(|(k, r)| r.dns.iter().map(move |d| (k.clone(), d.clone())))
            .collect();
        let Some((from, dn)) = self.pick(&held) else {
            return;
        };
        // To another row of the same node (a PBX serves one node).
        let node = self.departments[&self.rows[&from].department];
        let same_node: Vec<String> = self
            .rows
            .iter()
            .filter(|(k, r)| **k != from && self.departments[&r.department] == node)
            .map(|(k, _)| k.clone())
            .collect();
        let Some(to) = self.pick(&same_node) else {
            return;
        };
        self.sql()
            .execute(
                "UPDATE desired_dns SET key = ?1 WHERE pbx_id = ?2 AND dn = ?3",
                (&to, dn.0, &dn.1),
            )
            .unwrap();
        self.rows.get_mut(&from).unwrap().dns.remove(&dn);
        self.rows.get_mut(&to).unwrap().dns.insert(dn.clone());
        self.moved_dns.insert(dn.clone());
        self.log(format!("SQL: move {}/{} from {from} to {to}", dn.0, dn.1));
    }

    /// Re-imports one or more rows (some new) through `import`, with every managed value.
    async fn local_import(&mut self) {
        let mut csv = String::from(
            "key,fullname,departmentid,subscribertype,accountnumber,street,house,flat,email,dns\n",
        );
        let mut keys: Vec<String> = Vec::new();
        if let Some(k) = self.pick_key() {
            keys.push(k);
        }
        let n = self.next();
        let new_key = format!("k{n}");
        let department = self.department();
        let dn = self.fresh_dn(department);
        let new_row = Row {
            account: format!("SIM-{}-{n}", self.seed),
            department,
            fields: BTreeMap::from([("street", format!("Imported {n}"))]),
            dns: [dn.clone()].into_iter().collect(),
        };
        self.all_dns.insert(dn, new_row.account.clone());
        self.accounts.insert(new_row.account.clone());
        self.rows.insert(new_key.clone(), new_row);
        keys.push(new_key);
        if let Some(k) = keys.first().cloned()
            && keys.len() == 2
        {
            // An edit of an existing row, by file.
            let v = format!("imp-{}", self.next());
            self.rows.get_mut(&k).unwrap().fields.insert("house", v);
        }
        for k in &keys {
            let r = &self.rows[k];
            let f = |c: &str| r.fields.get(c).cloned().unwrap_or_default();
            let dns: Vec<String> = r.dns.iter().map(|(p, d)| format!("{p}/{d}")).collect();
            writeln!(
                csv,
                "{k},Full Name {k},{},0,{},{},{},{},{},{}",
                r.department,
                r.account,
                f("street"),
                f("house"),
                f("flat"),
                f("email"),
                dns.join(";")
            )
            .unwrap();
        }
        let batch = parse(&csv, import::Format::Csv).unwrap();
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        self.store
            .import_desired(batch, "sim.csv".into(), "2025-05-20T10:00:00Z".into())
            .await
            .unwrap();
        self.log(format!("import:\n{csv}"));
    }

    fn local_payment(&mut self) {
        let Some(key) = self.pick_key() else { return };
        let n = self.next();
        let reference = format!("PAY-{n}");
        let account = self.rows[&key].account.clone();
        let amount = Decimal::new(10_000 + n as i64 * 100 + 7, 2);
        let day = today() - chrono::Days::new(self.rng.random_range(0..3));
        let c = self.sql();
        if self.rng.random_bool(0.5) {
            c.execute(
                "INSERT INTO desired_payments (reference, subscriber_key, amount, paymentday, paymenttype, bank) VALUES (?1, ?2, ?3, ?4, 1, 'Sim Bank')",
                (&reference, &key, amount.to_string(), day.to_string()),
            )
        } else {
            c.execute(
                "INSERT INTO desired_payments (reference, accountid, amount, paymentday, paymenttype, bank) VALUES (?1, ?2, ?3, ?4, 1, 'Sim Bank')",
                (&reference, &account, amount.to_string(), day.to_string()),
            )
        }
        .unwrap();
        self.log(format!(
            "SQL: payment {reference} {amount} on {day} for {key} ({account})"
        ));
        self.payments.insert(
            reference,
            Pay {
                account,
                amount,
                day,
            },
        );
    }

    // ---- runs ----

    fn random_faults(&mut self) -> FaultPlan {
        if self.rng.random_bool(0.35) {
            return FaultPlan::default();
        }
        let r = &mut self.rng;
        let fault = Fault {
            latency: Duration::from_millis(r.random_range(0..3)),
            error_rate: r.random_range(0.0..0.15),
            error_status: if r.random_bool(0.5) { 500 } else { 503 },
            rate_limit_rate: r.random_range(0.0..0.05),
            retry_after_secs: 0,
            drop_before_rate: r.random_range(0.0..0.05),
            drop_after_commit_rate: r.random_range(0.0..0.15),
            ..Fault::default()
        };
        FaultPlan {
            global: fault,
            ..FaultPlan::default()
        }
    }

    fn pull_options(&self, kind: JobKind) -> PullOptions {
        let mut o = PullOptions::new(today());
        o.scope.nodes = self.nodes.clone();
        o.clock = clock();
        o.concurrency = self.concurrency;
        if kind == JobKind::Payments {
            o.from = Some(today() - chrono::Days::new(10));
            o.to = Some(today());
        }
        o
    }

    /// A pull under random faults, dropped at a random moment for a share of runs.
    async fn run(&mut self, kind: JobKind) {
        let faults = self.random_faults();
        self.sim.set_faults(faults.clone());
        let crash_after = self
            .rng
            .random_bool(0.2)
            .then(|| Duration::from_millis(self.rng.random_range(0..30)));
        let opts = self.pull_options(kind);
        let progress = Progress::new();
        let job = run_job(kind, &self.client, &self.store, &opts, &progress);
        let outcome = match crash_after {
            Some(d) => match tokio::time::timeout(d, job).await {
                Ok(r) => format!("{:?}", r.map(|r| r.outcome)),
                Err(_) => format!("crashed after {d:?}"),
            },
            None => format!("{:?}", job.await.map(|r| r.outcome)),
        };
        self.sim.clear_faults();
        self.log(format!(
            "pull {kind:?} under {} -> {outcome}",
            faults_text(&faults)
        ));
    }

    fn push_options(&self) -> PushOptions {
        PushOptions {
            policy: self.policy,
            natural_key: Some(Field::AccountId),
            max_attempts: 8,
            concurrency: self.concurrency,
            clock: clock(),
            payments: Default::default(),
        }
    }

    /// A push under random faults; for a share of runs the process "dies" after a random
    /// number of writes reached the server, or at a random moment.
    async fn push_run(&mut self) {
        let faults = self.random_faults();
        self.sim.set_faults(faults.clone());
        let opts = self.push_options();
        let stop = CancellationToken::new();
        let progress = Progress::new();
        let outcome = match self.rng.random_range(0..10) {
            0..=2 => {
                let limit = self.rng.random_range(1..=6);
                let remote = Crashing::new(&self.client, limit);
                let crashed = remote.crashed.clone();
                tokio::select! {
                    r = run_push(&remote, &self.store, &opts, &progress, &stop) => summary(r),
                    _ = crashed.notified() => format!("crashed after write {limit}"),
                }
            }
            3 => {
                let d = Duration::from_millis(self.rng.random_range(0..40));
                match tokio::time::timeout(
                    d,
                    run_push(&self.client, &self.store, &opts, &progress, &stop),
                )
                .await
                {
                    Ok(r) => summary(r),
                    Err(_) => format!("crashed after {d:?}"),
                }
            }
            _ => summary(run_push(&self.client, &self.store, &opts, &progress, &stop).await),
        };
        self.sim.clear_faults();
        self.log(format!("push under {} -> {outcome}", faults_text(&faults)));
    }

    /// The real binary, `--run-once` of a pull and push (with `--from/--to` for payments)
    /// beside this process's own connection to the mirror, under faults; half the time killed
    /// with SIGKILL at a random moment.
    async fn binary_run(&mut self) {
        let faults = self.random_faults();
        self.sim.set_faults(faults.clone());
        let config = self.binary_config();
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "--run-once",
            "--no-wait",
        ];
        if self.rng.random_bool(0.5) {
            args.extend(["--jobs", "subscribers,push"]);
        } else {
            args.extend([
                "--jobs",
                "payments,push",
                "--from",
                "2025-05-10",
                "--to",
                "2025-05-20",
            ]);
        }
        let kill_after = self
            .rng
            .random_bool(0.5)
            .then(|| Duration::from_millis(self.rng.random_range(5..300)));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tariscope-sync"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stderr = child.stderr.take().unwrap();
        let collect = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            text
        });
        let outcome = match kill_after {
            Some(d) => match tokio::time::timeout(d, child.wait()).await {
                Ok(status) => format!("exited {:?}", status.unwrap().code()),
                Err(_) => {
                    child.start_kill().unwrap();
                    child.wait().await.unwrap();
                    format!("SIGKILL after {d:?}")
                }
            },
            None => format!("exited {:?}", child.wait().await.unwrap().code()),
        };
        let stderr = collect.await.unwrap_or_default();
        if stderr.contains("panicked") {
            self.problems.push(format!(
                "the binary panicked ({}): {stderr}",
                args.join(" ")
            ));
        }
        self.sim.clear_faults();
        self.log(format!(
            "binary {} under {} -> {outcome}",
            args[3..].join(" "),
            faults_text(&faults)
        ));
    }

    /// The daemon's configuration for this world (mirror, scope, policy, wire profile).
    fn binary_config(&self) -> std::path::PathBuf {
        let path = self.path.with_file_name("config.toml");
        let policy = match self.policy {
            ConflictPolicy::RemoteWins => "remote-wins",
            ConflictPolicy::LocalWins => "local-wins",
            ConflictPolicy::Manual => "manual",
        };
        let nodes: Vec<String> = self.nodes.iter().map(i64::to_string).collect();
        let text = format!(
            "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nformat = \"{}\"\nrate_per_sec = 0.0\nrequest_timeout_secs = 5\n\
             [api.profile]\nlists_are_partial = {}\n\
             [retry]\nmax_attempts = 3\ninitial_delay_ms = 1\nmax_delay_ms = 5\nmax_elapsed_secs = 5\n\
             [mirror]\npath = \"{}\"\n\
             [scope]\nnodes = [{}]\n\
             [push]\nconflict_policy = \"{policy}\"\nmax_attempts = 8\n\
             [serve]\nlisten = \"\"\n",
            self.sim.base_url(),
            if self.format == Format::Xml {
                "xml"
            } else {
                "json"
            },
            self.partial_lists,
            self.path.display(),
            nodes.join(", ")
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Faults off: pull, push, pull; the push must not fail.
    async fn settle(&mut self) -> Result<(), String> {
        self.sim.clear_faults();
        // Outstanding blocking writes of a dropped run finish first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.settle_pull().await?;
        let opts = self.push_options();
        let report = run_push(
            &self.client,
            &self.store,
            &opts,
            &Progress::new(),
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| format!("settling push failed: {e:#}"))?;
        self.log(format!(
            "settling push -> {}",
            summary::<String>(Ok(report))
        ));
        self.settle_pull().await?;
        let r = run_job(
            JobKind::Payments,
            &self.client,
            &self.store,
            &self.pull_options(JobKind::Payments),
            &Progress::new(),
        )
        .await
        .map_err(|e| format!("settling payments pull failed: {e:#}"))?;
        if r.counts.errors != 0 {
            return Err(format!("settling payments pull had errors: {r:?}"));
        }
        Ok(())
    }

    async fn settle_pull(&mut self) -> Result<(), String> {
        let r = run_job(
            JobKind::Subscribers,
            &self.client,
            &self.store,
            &PullOptions {
                // The operator confirms the removals the guard held back (small worlds
                // cross its 10 % at once).
                max_removals: None,
                ..self.pull_options(JobKind::Subscribers)
            },
            &Progress::new(),
        )
        .await
        .map_err(|e| format!("settling pull failed: {e:#}"))?;
        if r.counts.errors != 0 {
            return Err(format!("settling pull had errors: {r:?}"));
        }
        Ok(())
    }

    // ---- invariants ----

    async fn check(&mut self) -> Result<(), String> {
        if let Some(p) = self.problems.first() {
            return Err(p.clone());
        }
        self.check_mirror().await?;
        self.check_desired().await?;
        self.check_payments().await?;
        self.check_outbox().await?;
        // Nothing is left to send: a further push writes nothing.
        self.sim.reset_counters();
        let report = run_push(
            &self.client,
            &self.store,
            &self.push_options(),
            &Progress::new(),
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| format!("final push failed: {e:#}"))?;
        let writes: u64 = [
            "subscriber.create",
            "subscriber.update",
            "subscriber.dnadd",
            "accounts.payment",
        ]
        .iter()
        .map(|m| self.sim.request_count(m))
        .sum();
        if writes != 0 {
            return Err(format!(
                "a push after settling sent {writes} writes: {}",
                summary::<String>(Ok(report))
            ));
        }
        let ok: String = self
            .sql()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        if ok != "ok" {
            return Err(format!("integrity_check: {ok}"));
        }
        Ok(())
    }

    /// The mirror equals Tariscope in scope; removed subscribers are tombstoned; the change
    /// log's last entry per subscriber agrees with the mirror.
    async fn check_mirror(&self) -> Result<(), String> {
        let state = self.sim.state();
        let live: BTreeSet<i64> = state.subscribers.iter().map(|s| s.id).collect();
        let mirrored: BTreeMap<i64, bool> = {
            let c = self.sql();
            let mut q = c
                .prepare("SELECT id, removed_at IS NULL FROM subscribers")
                .unwrap();
            q.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for id in &live {
            if mirrored.get(id) != Some(&true) {
                return Err(format!(
                    "subscriber {id} is in Tariscope but {} in the mirror",
                    if mirrored.contains_key(id) {
                        "tombstoned"
                    } else {
                        "missing"
                    }
                ));
            }
            let remote = self
                .client
                .get(*id)
                .await
                .map_err(|e| format!("get {id}: {e:#}"))?
                .ok_or(format!("get {id}: not found"))?;
            let mirror = self.store.subscriber(*id).await.unwrap().unwrap();
            let (a, b) = (fields_of(&mirror), fields_of(&remote));
            if a != b {
                let diff: Vec<String> = a
                    .iter()
                    .filter(|(f, v)| b.get(f) != Some(v))
                    .map(|(f, v)| format!("{}: mirror {v:?}, Tariscope {:?}", f.name(), b.get(f)))
                    .collect();
                return Err(format!("subscriber {id} differs: {}", diff.join("; ")));
            }
            if dn_set(&mirror) != dn_set(&remote) {
                return Err(format!(
                    "subscriber {id}: mirror numbers {:?}, Tariscope {:?}",
                    dn_set(&mirror),
                    dn_set(&remote)
                ));
            }
        }
        for (id, alive) in &mirrored {
            if *alive && !live.contains(id) {
                return Err(format!(
                    "subscriber {id} is live in the mirror but not in Tariscope"
                ));
            }
        }
        self.check_change_log(&mirrored)
    }

    /// The change log's last kind per subscriber says what the mirror holds.
    fn check_change_log(&self, mirrored: &BTreeMap<i64, bool>) -> Result<(), String> {
        let c = self.sql();
        let mut q = c
            .prepare(
                "SELECT subscriber_id, kind FROM subscriber_changes WHERE id IN \
                 (SELECT max(id) FROM subscriber_changes GROUP BY subscriber_id)",
            )
            .unwrap();
        for row in q
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
        {
            let (id, kind) = row.unwrap();
            let alive = mirrored.get(&id).copied();
            let ok = match kind.as_str() {
                "removed" => alive == Some(false),
                _ => alive == Some(true),
            };
            if !ok {
                return Err(format!(
                    "change log ends with {kind:?} for subscriber {id}, mirror alive: {alive:?}"
                ));
            }
        }
        let unlogged: i64 = c
            .query_row(
                "SELECT count(*) FROM subscribers s WHERE NOT EXISTS \
                 (SELECT 1 FROM subscriber_changes c WHERE c.subscriber_id = s.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if unlogged != 0 {
            return Err(format!(
                "{unlogged} mirrored subscribers have no change log entry"
            ));
        }
        Ok(())
    }

    async fn check_desired(&self) -> Result<(), String> {
        let state = self.sim.state();
        // No account number was created twice, whatever happened to its row.
        for account in &self.accounts {
            let n = state
                .subscribers
                .iter()
                .filter(|s| s.account_number.as_deref() == Some(account))
                .count();
            if n > 1 {
                return Err(format!("account {account} exists {n} times in Tariscope"));
            }
        }
        let links: BTreeMap<String, Option<i64>> = {
            let c = self.sql();
            let mut q = c
                .prepare("SELECT key, tariscope_id FROM desired_subscribers")
                .unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let conflicts = self.store.conflicts().await.unwrap();
        for (key, row) in &self.rows {
            let holders: Vec<_> = state
                .subscribers
                .iter()
                .filter(|s| s.account_number.as_deref() == Some(&row.account))
                .collect();
            let link = links.get(key).copied().flatten();
            if let Some(id) = link
                && self.operator_removed.contains(&id)
            {
                continue; // its subscriber was removed by an operator: blocked, by design
            }
            let [sub] = holders[..] else {
                return Err(format!(
                    "desired {key} ({}) exists {} times in Tariscope",
                    row.account,
                    holders.len()
                ));
            };
            if link != Some(sub.id) {
                return Err(format!(
                    "desired {key} is linked to {link:?}, its subscriber is {}",
                    sub.id
                ));
            }
            let remote = self.store.subscriber(sub.id).await.unwrap().unwrap();
            for (column, want) in &row.fields {
                let field: Field = column.parse().unwrap();
                let have = field.value_of(&remote);
                if &have == want {
                    continue;
                }
                let operator = self.operator_edits.get(&(sub.id, column));
                let explained = match self.policy {
                    // Tariscope's value stands where an operator edited the field.
                    ConflictPolicy::RemoteWins => operator == Some(&have),
                    ConflictPolicy::LocalWins => operator == Some(&have),
                    ConflictPolicy::Manual => {
                        operator == Some(&have)
                            || conflicts
                                .iter()
                                .any(|x| &x.key == key && x.subject == *column)
                    }
                };
                if !explained {
                    return Err(format!(
                        "desired {key} (subscriber {}): {column} is {have:?} in Tariscope, desired {want:?}, operator's last value {operator:?}",
                        sub.id
                    ));
                }
            }
            for (pbx, dn) in &row.dns {
                let n = assignments(&state, *pbx, dn);
                let removed = self.operator_removed_dns.contains(&(*pbx, dn.clone()));
                let moved = self.moved_dns.contains(&(*pbx, dn.clone()));
                let on_it = sub.dns.iter().any(|d| d.pbx_id == *pbx && &d.dn == dn);
                let ok = match (removed, moved) {
                    (false, false) => n == 1 && on_it,
                    (false, true) => n == 1,
                    (true, _) => n <= 1,
                };
                let waits = n == 0 && self.ambiguous_dns(key, *pbx, dn);
                if !ok && !waits {
                    return Err(format!(
                        "desired {key} (subscriber {}): number {pbx}/{dn} assigned {n} times (on it: {on_it}); its outbox entries: {}",
                        sub.id,
                        self.dn_entries(*pbx, dn)
                    ));
                }
            }
        }
        for ((pbx, dn), account) in &self.all_dns {
            let n = assignments(&state, *pbx, dn);
            if n > 1 {
                return Err(format!(
                    "number {pbx}/{dn} (first desired for {account}) assigned {n} times"
                ));
            }
        }
        Ok(())
    }

    /// Whether a `dnadd` of row `key` is `ambiguous` where that is by design: a lost answer
    /// on a server whose records show no numbers. The row's steps stop there, so its later
    /// numbers wait too (a person settles the entry; `status` says how).
    /// A number moved away from a row with such an entry waits for it too (it may be on
    /// the first subscriber).
    fn ambiguous_dns(&self, key: &str, pbx: i64, dn: &str) -> bool {
        self.records_without_dns
            && self
                .sql()
                .query_row(
                    "SELECT count(*) FROM outbox WHERE op = 'dnadd' AND state = 'ambiguous' AND (key = ?1 \
                     OR (json_extract(payload, '$.pbx_id') = ?2 AND json_extract(payload, '$.dn') = ?3))",
                    (key, pbx, dn),
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                > 0
    }

    /// The outbox entries of a number, for failure messages.
    fn dn_entries(&self, pbx: i64, dn: &str) -> String {
        let c = self.sql();
        let mut q = c
            .prepare(
                "SELECT id, key, subscriber_id, state, attempts, result FROM outbox WHERE op = 'dnadd' \
                 AND json_extract(payload, '$.pbx_id') = ?1 AND json_extract(payload, '$.dn') = ?2",
            )
            .unwrap();
        q.query_map((pbx, dn), |r| {
            Ok(format!(
                "[{} {} -> {:?}: {} after {} attempts, {:?}]",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join(" ")
    }

    async fn check_payments(&self) -> Result<(), String> {
        let state = self.sim.state();
        let c = self.sql();
        for (reference, p) in &self.payments {
            let landed: Vec<i64> = state
                .payments
                .iter()
                .filter(|x| x.amount == p.amount && x.payment_day == p.day)
                .map(|x| x.payment_id)
                .collect();
            if landed.len() > 1 {
                return Err(format!(
                    "payment {reference} ({} on {}) posted {} times: {landed:?}",
                    p.amount,
                    p.day,
                    landed.len()
                ));
            }
            let recorded: Option<i64> = c
                .query_row(
                    "SELECT paymentid FROM desired_payments WHERE reference = ?1",
                    [reference],
                    |r| r.get(0),
                )
                .unwrap();
            // Expected to post: its row and its subscriber are still there.
            let owner = self.rows.values().any(|r| r.account == p.account);
            let holder = state
                .subscribers
                .iter()
                .find(|s| s.account_number.as_deref() == Some(&p.account));
            let by_key_orphan = c
                .query_row(
                    "SELECT subscriber_key IS NOT NULL AND NOT EXISTS \
                     (SELECT 1 FROM desired_subscribers d WHERE d.key = p.subscriber_key) \
                     FROM desired_payments p WHERE reference = ?1",
                    [reference],
                    |r| r.get::<_, bool>(0),
                )
                .unwrap();
            if owner && holder.is_some() && !by_key_orphan {
                if landed.len() != 1 {
                    return Err(format!(
                        "payment {reference} ({} on {} for {}) was not posted",
                        p.amount, p.day, p.account
                    ));
                }
                if recorded != Some(landed[0]) {
                    return Err(format!(
                        "payment {reference} landed as {} but desired_payments.paymentid is {recorded:?}",
                        landed[0]
                    ));
                }
            } else if let Some(id) = recorded
                && landed != [id]
            {
                return Err(format!(
                    "payment {reference} recorded as {id}, Tariscope has {landed:?}"
                ));
            }
        }
        Ok(())
    }

    async fn check_outbox(&self) -> Result<(), String> {
        let c = self.sql();
        let mut q = c
            .prepare(
                "SELECT id, key, op, state, last_error, payload FROM outbox WHERE state != 'done'",
            )
            .unwrap();
        let rows: Vec<(i64, String, String, String, Option<String>, String)> = q
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (id, key, op, state, error, payload) in rows {
            let ok = match state.as_str() {
                "terminal" => error.as_deref().is_some_and(|e| !e.is_empty()),
                // Where nothing can be looked at, or a payment that may have landed whose
                // row is now rejected or gone: a person settles it (`status`, `resolve`).
                "ambiguous" => {
                    (op == "dnadd" && self.records_without_dns)
                        || (op == "payment"
                            && error
                                .as_deref()
                                .is_some_and(|e| e.contains("desired_payments row")))
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "outbox entry {id} ({op} of {key}) is {state} after settling (error {error:?}): {payload}"
                ));
            }
        }
        Ok(())
    }
}

fn write_row(c: &rusqlite::Connection, key: &str, row: &Row) {
    let f = |col: &str| row.fields.get(col).cloned();
    c.execute(
        "INSERT INTO desired_subscribers (key, fullname, departmentid, abonenttype, accountid, street, house, flat, email) \
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8)",
        (
            key,
            format!("Full Name {key}"),
            row.department,
            &row.account,
            f("street"),
            f("house"),
            f("flat"),
            f("email"),
        ),
    )
    .unwrap();
    for (pbx, dn) in &row.dns {
        c.execute(
            "INSERT INTO desired_dns (key, pbx_id, dn) VALUES (?1, ?2, ?3)",
            (key, pbx, dn),
        )
        .unwrap();
    }
}

fn dn_set(s: &Subscriber) -> BTreeSet<(Option<i64>, String)> {
    s.dns
        .iter()
        .flatten()
        .map(|d| (d.pbx_id, d.dn.clone()))
        .collect()
}

fn faults_text(f: &FaultPlan) -> String {
    if f.is_off() {
        return "no faults".into();
    }
    let g = &f.global;
    format!(
        "faults ({:.2} {}, {:.2} 429, {:.2} drop-before, {:.2} drop-after-commit)",
        g.error_rate,
        g.error_status,
        g.rate_limit_rate,
        g.drop_before_rate,
        g.drop_after_commit_rate
    )
}

fn summary<E: std::fmt::Display>(r: Result<tariscope_sync::sync::push::PushReport, E>) -> String {
    match r {
        Ok(r) => format!("{r:?}"),
        Err(e) => format!("error: {e}"),
    }
}
