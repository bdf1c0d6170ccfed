//! The emulator's live data and its lookup indexes, with the write operations the API
//! and the operator actions perform.
//!
//! Owns: `Dataset` (records + indexes kept consistent on every write), queries used by the
//! handlers, and the snapshot. Must not: know HTTP, wire formats, or faults.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;

mod writes;

pub use writes::NewSubscriber;

use super::data::{
    SimAdjustment, SimCharge, SimDepartment, SimNode, SimPayment, SimPbx, SimService, SimSnapshot,
    SimSubscriber, SimTariff, SimTariffPlan, SimTariffTime, adjusted, day_summary,
};

/// All records plus the indexes the hot paths use.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub nodes: Vec<SimNode>,
    pub pbxs: Vec<SimPbx>,
    pub departments: Vec<SimDepartment>,
    pub subscribers: BTreeMap<i64, SimSubscriber>,
    pub payments: Vec<SimPayment>,
    pub charges: Vec<SimCharge>,
    pub plans: Vec<SimTariffPlan>,
    pub tariffs: Vec<SimTariff>,
    pub tariff_times: Vec<SimTariffTime>,
    pub services: Vec<SimService>,
    /// Balance adjustments no list shows (the hidden-adjustments variant; else empty).
    pub adjustments: Vec<SimAdjustment>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Bumped on every write (the `sql` copy is rebuilt when it changes).
    pub generation: u64,
    /// Variant: `subscriber.create` accepts an account number another subscriber has (a
    /// server that does not refuse duplicates; exactly-once must not depend on refusals).
    pub accept_duplicate_accounts: bool,
    charges_by_sub: HashMap<i64, Vec<usize>>,
    payments_by_sub: HashMap<i64, Vec<usize>>,
    adjustments_by_sub: HashMap<i64, Vec<usize>>,
    /// (pbx id, DN) -> holder subscriber id.
    dn_index: HashMap<(i64, String), i64>,
    next_subscriber_id: i64,
    next_dn_id: i64,
    next_payment_id: i64,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Unknown subscriber/department: the text names it.
    NotFound(String),
    /// A parameter is out of range; the text names it.
    Invalid(String),
    /// The record would duplicate an existing one; the text says which.
    Conflict(String),
}

impl Dataset {
    /// Build the indexes and id counters after the records were filled in.
    pub fn reindex(&mut self) {
        self.charges_by_sub.clear();
        self.payments_by_sub.clear();
        self.adjustments_by_sub.clear();
        self.dn_index.clear();
        for (i, a) in self.adjustments.iter().enumerate() {
            self.adjustments_by_sub
                .entry(a.subscriber_id)
                .or_default()
                .push(i);
        }
        for (i, c) in self.charges.iter().enumerate() {
            self.charges_by_sub
                .entry(c.subscriber_id)
                .or_default()
                .push(i);
        }
        for (i, p) in self.payments.iter().enumerate() {
            self.payments_by_sub
                .entry(p.subscriber_id)
                .or_default()
                .push(i);
        }
        let mut max_dn = 0;
        for s in self.subscribers.values() {
            for dn in &s.dns {
                self.dn_index.insert((dn.pbx_id, dn.dn.clone()), s.id);
                max_dn = max_dn.max(dn.id);
            }
        }
        self.next_subscriber_id = self.subscribers.keys().max().map_or(1, |m| m + 1);
        self.next_dn_id = max_dn + 1;
        self.next_payment_id = self
            .payments
            .iter()
            .map(|p| p.payment_id)
            .max()
            .unwrap_or(0)
            + 1;
    }

    pub fn subscriber(&self, id: i64) -> Option<&SimSubscriber> {
        self.subscribers.get(&id)
    }

    /// The lowest-id subscriber with this e-mail (case-insensitive).
    pub fn subscriber_by_email(&self, email: &str) -> Option<&SimSubscriber> {
        self.subscribers.values().find(|s| {
            s.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
        })
    }

    pub fn department(&self, id: i64) -> Option<&SimDepartment> {
        self.departments.iter().find(|d| d.id == id)
    }

    pub fn node(&self, id: i64) -> Option<&SimNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The department and every department below it.
    pub fn department_tree(&self, root: i64) -> Vec<i64> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                self.departments
                    .iter()
                    .filter(|d| d.parent_id == Some(parent))
                    .map(|d| d.id),
            );
            i += 1;
        }
        out
    }

    /// A subscriber's charges with `from <= recdate <= to`, in date then id order.
    pub fn charges_of(&self, id: i64, from: NaiveDate, to: NaiveDate) -> Vec<&SimCharge> {
        let mut list: Vec<&SimCharge> = self
            .charges_by_sub
            .get(&id)
            .into_iter()
            .flatten()
            .map(|&i| &self.charges[i])
            .filter(|c| c.recdate >= from && c.recdate <= to)
            .collect();
        list.sort_by_key(|c| (c.recdate, c.id));
        list
    }

    /// A subscriber's payments with `from <= paymentday <= to`, in date then id order.
    pub fn payments_of(&self, id: i64, from: NaiveDate, to: NaiveDate) -> Vec<&SimPayment> {
        let mut list: Vec<&SimPayment> = self
            .payments_of_all(id)
            .filter(|p| p.payment_day >= from && p.payment_day <= to)
            .collect();
        list.sort_by_key(|p| (p.payment_day, p.payment_id));
        list
    }

    fn payments_of_all(&self, id: i64) -> impl Iterator<Item = &SimPayment> {
        self.payments_by_sub
            .get(&id)
            .into_iter()
            .flatten()
            .map(|&i| &self.payments[i])
    }

    /// One payment of one subscriber.
    pub fn payment(&self, subscriber_id: i64, payment_id: i64) -> Option<&SimPayment> {
        self.payments_of_all(subscriber_id)
            .find(|p| p.payment_id == payment_id)
    }

    /// `(start, end, charge, payment)` of a subscriber on `date`.
    pub fn summary(
        &self,
        s: &SimSubscriber,
        date: NaiveDate,
    ) -> (Decimal, Decimal, Decimal, Decimal) {
        let charges = self
            .charges_by_sub
            .get(&s.id)
            .into_iter()
            .flatten()
            .map(|&i| (self.charges[i].recdate, self.charges[i].amount));
        let payments = self
            .payments_of_all(s.id)
            .map(|p| (p.payment_day, p.amount));
        let adjustments = self
            .adjustments_by_sub
            .get(&s.id)
            .into_iter()
            .flatten()
            .map(|&i| (self.adjustments[i].day, self.adjustments[i].amount));
        adjusted(
            day_summary(s.opening_debt, charges, payments, date),
            adjustments,
            date,
        )
    }

    /// A clone of every record.
    pub fn snapshot(&self) -> SimSnapshot {
        SimSnapshot {
            subscribers: self.subscribers.values().cloned().collect(),
            payments: self.payments.clone(),
            charges: self.charges.clone(),
            departments: self.departments.clone(),
            nodes: self.nodes.clone(),
            pbxs: self.pbxs.clone(),
            plans: self.plans.clone(),
            tariffs: self.tariffs.clone(),
            tariff_times: self.tariff_times.clone(),
            services: self.services.clone(),
            adjustments: self.adjustments.clone(),
            start_date: self.start_date,
            end_date: self.end_date,
        }
    }

    /// Number of DN assignments (a number assigned twice counts twice).
    pub fn dn_count(&self) -> usize {
        self.subscribers.values().map(|s| s.dns.len()).sum()
    }
}
