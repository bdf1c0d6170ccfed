//! The emulator's shared state: dataset, users, token signer, faults, request counters.
//!
//! Owns: `Shared` and the operations both the in-process handle and the control API
//! perform (faults, counters, revocation, operator edits, snapshots).
//! Must not: know HTTP.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::auth::TokenSigner;
use super::config::{Fault, FaultPlan, SimConfig, SimUser, WireVariant};
use super::data::SimSnapshot;
use super::dataset::{Dataset, WriteError};
use super::generate::generate;
use super::handlers::sql::SqlCache;
use super::routes::{METHODS, method_index};

/// Everything a request handler may touch.
#[derive(Debug)]
pub struct Shared {
    data: RwLock<Dataset>,
    pub wire: WireVariant,
    pub users: Vec<SimUser>,
    pub signer: TokenSigner,
    faults: RwLock<FaultPlan>,
    faults_on: AtomicBool,
    counters: Vec<AtomicU64>,
    pub sql: SqlCache,
    /// Draws of fault injection: seeded (`seed_faults`) so a simulation replays which
    /// requests fail; the thread's generator until then.
    fault_rng: std::sync::Mutex<Option<rand::rngs::SmallRng>>,
}

impl Shared {
    pub fn new(config: SimConfig) -> Self {
        let faults_on = !config.faults.is_off();
        let mut data = generate(&config.dataset);
        if config.hidden_adjustments {
            super::adjustments::book(&mut data, config.dataset.seed);
        }
        Self {
            data: RwLock::new(data),
            wire: config.wire,
            users: config.users,
            signer: TokenSigner::new(config.token_ttl),
            faults: RwLock::new(config.faults),
            faults_on: AtomicBool::new(faults_on),
            counters: METHODS.iter().map(|_| AtomicU64::new(0)).collect(),
            sql: SqlCache::default(),
            fault_rng: std::sync::Mutex::new(None),
        }
    }

    /// From now on, faults fire by a generator seeded with `seed` (requests in the same
    /// order then meet the same faults).
    pub fn seed_faults(&self, seed: u64) {
        use rand::SeedableRng;
        *self.fault_rng.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(rand::rngs::SmallRng::seed_from_u64(seed));
    }

    /// One draw for fault injection (see `seed_faults`).
    pub fn fault_draw<T>(&self, draw: impl FnOnce(&mut dyn rand::RngCore) -> T) -> T {
        let mut seeded = self.fault_rng.lock().unwrap_or_else(|e| e.into_inner());
        match seeded.as_mut() {
            Some(rng) => draw(rng),
            None => draw(&mut rand::rng()),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Dataset> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Dataset> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn user(&self, name: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.username == name)
    }

    /// The fault for a method, when any fault is set.
    pub fn fault_for(&self, method: &str) -> Option<Fault> {
        if !self.faults_on.load(Ordering::Relaxed) {
            return None;
        }
        let plan = self.faults.read().unwrap_or_else(|p| p.into_inner());
        let f = plan.for_method(method);
        (!f.is_off()).then(|| f.clone())
    }

    pub fn faults(&self) -> FaultPlan {
        self.faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        let mut guard = self.faults.write().unwrap_or_else(|p| p.into_inner());
        self.faults_on.store(!plan.is_off(), Ordering::Relaxed);
        *guard = plan;
    }

    pub fn set_method_fault(&self, method: &str, fault: Fault) {
        let mut guard = self.faults.write().unwrap_or_else(|p| p.into_inner());
        guard.methods.insert(method.to_owned(), fault);
        self.faults_on.store(!guard.is_off(), Ordering::Relaxed);
    }

    /// Counts one request of method `index`; returns its number since the last reset.
    pub fn count(&self, index: usize) -> u64 {
        self.counters
            .get(index)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub fn request_count(&self, method: &str) -> u64 {
        method_index(method)
            .and_then(|i| self.counters.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// (method, count) for every method.
    pub fn request_counts(&self) -> Vec<(&'static str, u64)> {
        METHODS
            .iter()
            .zip(&self.counters)
            .map(|((name, _), c)| (*name, c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn reset_counters(&self) {
        for c in &self.counters {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> SimSnapshot {
        self.read().snapshot()
    }

    /// Operator edit of record fields (record names, case-insensitive; `None` clears);
    /// all or nothing: an unknown field or a bad value changes nothing.
    pub fn operator_update(
        &self,
        id: i64,
        fields: &[(&str, Option<&str>)],
    ) -> Result<(), WriteError> {
        self.write().update_subscriber(id, fields, true)
    }

    pub fn operator_remove(&self, id: i64) -> bool {
        self.write().remove_subscriber(id)
    }

    /// Operator removal of number `dn` on PBX `pbx_id` from subscriber `id`.
    pub fn operator_remove_dn(&self, id: i64, pbx_id: i64, dn: &str) -> bool {
        self.write().remove_dn(id, pbx_id, dn)
    }
}
