//! The write operations on the dataset (`subscriber.create`, `update` helpers, `dnadd`,
//! `accounts.payment`, operator removal), keeping the indexes consistent.
//!
//! Owns: validation that needs the whole dataset (departments, plans, PBXs, duplicate DNs
//! and account numbers) and id allocation. Must not: parse request parameters.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Dataset, WriteError};
use crate::sim::data::{FieldError, SimDn, SimPayment, SimSubscriber};

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
            && !self.accept_duplicate_accounts
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

    /// Update record fields of a subscriber by record name (case-insensitive; `None`
    /// clears). All fields are validated before anything changes. `id`, `nodeid` and
    /// `dns` are read-only: ignored. Unknown names are ignored, or refused when `strict`.
    /// `departmentid` moves the subscriber and its node.
    pub fn update_subscriber(
        &mut self,
        id: i64,
        fields: &[(&str, Option<&str>)],
        strict: bool,
    ) -> Result<(), WriteError> {
        let mut copy = self
            .subscriber(id)
            .cloned()
            .ok_or_else(|| WriteError::NotFound(format!("subscriber {id} does not exist")))?;
        for (name, value) in fields {
            let lname = name.to_ascii_lowercase();
            match lname.as_str() {
                "id" | "nodeid" | "dns" => {}
                "departmentid" => {
                    let d = value
                        .and_then(|t| t.trim().parse::<i64>().ok())
                        .ok_or_else(|| {
                            WriteError::Invalid("departmentid must be an integer".to_owned())
                        })?;
                    let node = self.department(d).map(|dep| dep.node_id).ok_or_else(|| {
                        WriteError::NotFound(format!("department {d} does not exist"))
                    })?;
                    copy.department_id = d;
                    copy.node_id = node;
                }
                "rateplanid" => {
                    let plan = value
                        .map(|t| {
                            t.trim().parse::<i64>().map_err(|_| {
                                WriteError::Invalid("rateplanid must be an integer".to_owned())
                            })
                        })
                        .transpose()?;
                    if let Some(p) = plan
                        && !self.plans.iter().any(|x| x.id == p)
                    {
                        return Err(WriteError::Invalid(format!(
                            "rateplanid {p} does not exist"
                        )));
                    }
                    copy.rateplan_id = plan;
                }
                _ => match copy.set_field(&lname, *value) {
                    Ok(()) => {}
                    Err(FieldError::Unknown) if !strict => {}
                    Err(FieldError::Unknown) => {
                        return Err(WriteError::Invalid(format!(
                            "{name} is not an editable record field"
                        )));
                    }
                    Err(FieldError::Invalid(m)) => return Err(WriteError::Invalid(m)),
                },
            }
        }
        if let Some(slot) = self.subscribers.get_mut(&id) {
            *slot = copy;
        }
        self.generation += 1;
        Ok(())
    }

    /// `subscriber.dnadd`: returns the new DN record. A number already assigned is a
    /// conflict, or with `accept_duplicates` one more assignment (to whichever subscriber).
    pub fn add_dn(
        &mut self,
        subscriber_id: i64,
        pbx_id: i64,
        dn: &str,
        from_date: NaiveDate,
        description: Option<String>,
        accept_duplicates: bool,
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
        if let Some(holder) = self
            .dn_index
            .get(&(pbx_id, dn.to_owned()))
            .filter(|_| !accept_duplicates)
        {
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

    /// Operator removal of one number from a subscriber (every assignment of it there).
    pub fn remove_dn(&mut self, subscriber_id: i64, pbx_id: i64, dn: &str) -> bool {
        let Some(s) = self.subscribers.get_mut(&subscriber_id) else {
            return false;
        };
        let before = s.dns.len();
        s.dns.retain(|d| !(d.pbx_id == pbx_id && d.dn == dn));
        if s.dns.len() == before {
            return false;
        }
        let key = (pbx_id, dn.to_owned());
        if self.dn_index.get(&key) == Some(&subscriber_id) {
            self.dn_index.remove(&key);
        }
        self.generation += 1;
        true
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
}
