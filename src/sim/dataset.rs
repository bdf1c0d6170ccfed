//! The emulator's live data and its lookup indexes, with the write operations the API
//! and the operator actions perform.
//!
//! Owns: `Dataset` (records + indexes kept consistent on every write), queries used by the
//! handlers, and the snapshot. Must not: know HTTP, wire formats, or faults.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::data::{
    SimCharge, SimDepartment, SimDn, SimNode, SimPayment, SimPbx, SimService, SimSnapshot,
    SimSubscriber, SimTariff, SimTariffPlan, SimTariffTime, day_summary,
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
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Bumped on every write (the `sql` copy is rebuilt when it changes).
    pub generation: u64,
    charges_by_sub: HashMap<i64, Vec<usize>>,
    payments_by_sub: HashMap<i64, Vec<usize>>,
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

/// A new subscriber, as `subscriber.create` receives it (already parsed).
#[derive(Debug, Clone, Default)]
pub struct NewSubscriber {
    pub fullname: String,
    pub department_id: i64,
    pub abonenttype: i64,
    pub connectiondate: Option<NaiveDate>,
    pub contract_number: Option<String>,
    pub contractdate: Option<NaiveDate>,
    pub account_number: Option<String>,
    pub personalcode: Option<String>,
    pub edrpou: Option<String>,
    pub taxcode: Option<String>,
    pub bankmfo: Option<String>,
    pub bankname: Option<String>,
    pub bankaccount: Option<String>,
    pub rateplan_id: Option<i64>,
}

impl Dataset {
    /// Build the indexes and id counters after the records were filled in.
    pub fn reindex(&mut self) {
        self.charges_by_sub.clear();
        self.payments_by_sub.clear();
        self.dn_index.clear();
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
        day_summary(s.opening_debt, charges, payments, date)
    }

    /// `subscriber.create`.
    pub fn create_subscriber(&mut self, new: NewSubscriber) -> Result<&SimSubscriber, WriteError> {
        let node_id = self
            .department(new.department_id)
            .map(|d| d.node_id)
            .ok_or_else(|| {
                WriteError::NotFound(format!("department {} does not exist", new.department_id))
            })?;
        if let Some(plan) = new.rateplan_id
            && !self.plans.iter().any(|p| p.id == plan)
        {
            return Err(WriteError::Invalid(format!(
                "rateplanid {plan} does not exist"
            )));
        }
        if let Some(acc) = &new.account_number
            && self.account_taken(acc)
        {
            return Err(WriteError::Conflict(format!(
                "accountnumber {acc} already exists"
            )));
        }
        let id = self.next_subscriber_id;
        let account_number = match new.account_number {
            Some(a) => a,
            None if self.account_taken(&id.to_string()) => {
                return Err(WriteError::Conflict(format!(
                    "generated account number {id} already exists"
                )));
            }
            None => id.to_string(),
        };
        self.next_subscriber_id += 1;
        let sub = SimSubscriber {
            id,
            fullname: new.fullname,
            street: None,
            house: None,
            flat: None,
            email: None,
            description: None,
            authcode: None,
            ispublic: Some(false),
            abonenttype: Some(new.abonenttype),
            edrpou: new.edrpou,
            zipcode: None,
            personalcode: new.personalcode,
            contract_number: new.contract_number,
            information: None,
            privilegeinfo: None,
            area: None,
            contractdate: new.contractdate,
            building: None,
            floornumber: None,
            account_number: Some(account_number),
            gender: None,
            birthday: None,
            bankaccount: new.bankaccount,
            bankmfo: new.bankmfo,
            taxcode: new.taxcode,
            deliverytype: None,
            privilegediscount: None,
            department_id: new.department_id,
            node_id,
            rateplan_id: new.rateplan_id,
            connectiondate: new.connectiondate,
            bankname: new.bankname,
            dns: Vec::new(),
            opening_debt: Decimal::ZERO,
        };
        self.generation += 1;
        Ok(self.subscribers.entry(id).or_insert(sub))
    }

    fn account_taken(&self, acc: &str) -> bool {
        self.subscribers
            .values()
            .any(|s| s.account_number.as_deref() == Some(acc))
    }

    /// Move a subscriber to another department (and its node).
    pub fn set_department(&mut self, id: i64, department_id: i64) -> Result<(), WriteError> {
        let node_id = self
            .department(department_id)
            .map(|d| d.node_id)
            .ok_or_else(|| {
                WriteError::NotFound(format!("department {department_id} does not exist"))
            })?;
        let s = self
            .subscribers
            .get_mut(&id)
            .ok_or_else(|| WriteError::NotFound(format!("subscriber {id} does not exist")))?;
        s.department_id = department_id;
        s.node_id = node_id;
        self.generation += 1;
        Ok(())
    }

    /// Set or clear a subscriber's tariff plan.
    pub fn set_rateplan(&mut self, id: i64, plan: Option<i64>) -> Result<(), WriteError> {
        if let Some(p) = plan
            && !self.plans.iter().any(|x| x.id == p)
        {
            return Err(WriteError::Invalid(format!(
                "rateplanid {p} does not exist"
            )));
        }
        let s = self
            .subscribers
            .get_mut(&id)
            .ok_or_else(|| WriteError::NotFound(format!("subscriber {id} does not exist")))?;
        s.rateplan_id = plan;
        self.generation += 1;
        Ok(())
    }

    /// Mutable access to a subscriber for plain field updates; marks the data changed.
    pub fn subscriber_mut(&mut self, id: i64) -> Option<&mut SimSubscriber> {
        let s = self.subscribers.get_mut(&id)?;
        self.generation += 1;
        Some(s)
    }

    /// `subscriber.dnadd`: returns the new DN record.
    pub fn add_dn(
        &mut self,
        subscriber_id: i64,
        pbx_id: i64,
        dn: &str,
        from_date: NaiveDate,
        description: Option<String>,
    ) -> Result<SimDn, WriteError> {
        let node_id = self
            .subscriber(subscriber_id)
            .map(|s| s.node_id)
            .ok_or_else(|| {
                WriteError::NotFound(format!("subscriber {subscriber_id} does not exist"))
            })?;
        match self.pbxs.iter().find(|p| p.id == pbx_id) {
            None => {
                return Err(WriteError::Invalid(format!(
                    "pbxid {pbx_id} does not exist"
                )));
            }
            Some(p) if p.node_id != node_id => {
                return Err(WriteError::Invalid(format!(
                    "pbxid {pbx_id} belongs to node {}, the subscriber to node {node_id}",
                    p.node_id
                )));
            }
            Some(_) => {}
        }
        if let Some(holder) = self.dn_index.get(&(pbx_id, dn.to_owned())) {
            return Err(WriteError::Conflict(format!(
                "DN {dn} on PBX {pbx_id} is already assigned to subscriber {holder}"
            )));
        }
        let rec = SimDn {
            id: self.next_dn_id,
            pbx_id,
            dn: dn.to_owned(),
            from_date,
            description,
        };
        self.next_dn_id += 1;
        self.dn_index.insert((pbx_id, dn.to_owned()), subscriber_id);
        if let Some(s) = self.subscribers.get_mut(&subscriber_id) {
            s.dns.push(rec.clone());
        }
        self.generation += 1;
        Ok(rec)
    }

    /// `accounts.payment`: returns the new payment id.
    pub fn add_payment(
        &mut self,
        subscriber_id: i64,
        day: NaiveDate,
        amount: Decimal,
        payment_type: i64,
        bank: Option<String>,
    ) -> Result<i64, WriteError> {
        if self.subscriber(subscriber_id).is_none() {
            return Err(WriteError::NotFound(format!(
                "subscriber {subscriber_id} does not exist"
            )));
        }
        let payment_id = self.next_payment_id;
        self.next_payment_id += 1;
        self.payments_by_sub
            .entry(subscriber_id)
            .or_default()
            .push(self.payments.len());
        self.payments.push(SimPayment {
            payment_id,
            subscriber_id,
            payment_day: day,
            amount: amount.round_dp(2),
            payment_type,
            bank,
        });
        self.generation += 1;
        Ok(payment_id)
    }

    /// Operator removal: the subscriber and its DNs disappear (its money history stays).
    pub fn remove_subscriber(&mut self, id: i64) -> bool {
        let Some(s) = self.subscribers.remove(&id) else {
            return false;
        };
        for dn in s.dns {
            self.dn_index.remove(&(dn.pbx_id, dn.dn));
        }
        self.generation += 1;
        true
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
            start_date: self.start_date,
            end_date: self.end_date,
        }
    }

    /// Number of DN assignments.
    pub fn dn_count(&self) -> usize {
        self.dn_index.len()
    }
}
