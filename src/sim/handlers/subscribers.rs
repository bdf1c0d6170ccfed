//! `subscriber.*` methods: get, list by department or node, update, create, dnadd, and
//! the subscriber record as the profile (§6) lays it out.
//!
//! Owns: parameter rules and response shapes of these methods. Must not: render, check
//! auth or apply faults.

use chrono::NaiveDate;

use crate::sim::config::WireVariant;
use crate::sim::data::{SimDn, SimSubscriber};
use crate::sim::dataset::{Dataset, NewSubscriber};
use crate::sim::error::ApiError;
use crate::sim::params::{PVal, Params};
use crate::sim::value::Val;

/// A DN as it appears inside a record.
fn dn_val(dn: &SimDn) -> Val<'_> {
    Val::Obj(vec![
        ("id", Val::Int(dn.id)),
        ("pbxid", Val::Int(dn.pbx_id)),
        ("dn", Val::str(&dn.dn)),
        ("fromdate", Val::Date(dn.from_date)),
        ("description", Val::opt_str(dn.description.as_deref())),
    ])
}

fn t(v: &Option<String>) -> Val<'_> {
    Val::opt_str(v.as_deref())
}

/// What a subscriber record shows (from the wire variant).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Only `id` and `fullname` (the partial-lists variant; lists only).
    pub partial: bool,
    /// The `dns` list (off: the records-without-DNs variant).
    pub dns: bool,
}

impl Shape {
    /// The shape of a full record (`subscriber.get`, the answer of `subscriber.update`).
    pub fn full(wire: &WireVariant) -> Self {
        Self {
            partial: false,
            dns: !wire.records_without_dns,
        }
    }

    /// The shape of a list element.
    pub fn listed(wire: &WireVariant) -> Self {
        Self {
            partial: wire.partial_lists,
            ..Self::full(wire)
        }
    }
}

/// The subscriber record (§6), documented fields in documented order, then extensions.
pub fn record(s: &SimSubscriber, shape: Shape) -> Val<'_> {
    if shape.partial {
        return Val::Obj(vec![
            ("id", Val::Int(s.id)),
            ("fullname", Val::str(&s.fullname)),
        ]);
    }
    let mut fields = vec![
        ("id", Val::Int(s.id)),
        ("fullname", Val::str(&s.fullname)),
        ("street", t(&s.street)),
        ("House", t(&s.house)),
        ("Flat", t(&s.flat)),
        ("email", t(&s.email)),
        ("description", t(&s.description)),
        ("authcode", t(&s.authcode)),
        ("ispublic", Val::opt(s.ispublic, Val::Bool)),
        ("abonenttype", Val::opt(s.abonenttype, Val::Int)),
        ("code", t(&s.edrpou)),
        ("zipcode", t(&s.zipcode)),
        ("personalcode", t(&s.personalcode)),
        ("contractid", t(&s.contract_number)),
        ("information", t(&s.information)),
        ("privilegeinfo", t(&s.privilegeinfo)),
        ("area", t(&s.area)),
        ("contractdate", Val::opt(s.contractdate, Val::Date)),
        ("building", t(&s.building)),
        ("floornumber", t(&s.floornumber)),
        ("accountId", t(&s.account_number)),
        ("gender", Val::opt(s.gender, Val::Int)),
        ("birthday", Val::opt(s.birthday, Val::Date)),
        ("bankaccount", t(&s.bankaccount)),
        ("bankmfo", t(&s.bankmfo)),
        ("taxcode", t(&s.taxcode)),
        ("deliverytype", Val::opt(s.deliverytype, Val::Int)),
        ("privilegediscount", Val::opt(s.privilegediscount, Val::Dec)),
        ("departmentid", Val::Int(s.department_id)),
        ("nodeid", Val::Int(s.node_id)),
        ("rateplanid", Val::opt(s.rateplan_id, Val::Int)),
        ("connectiondate", Val::opt(s.connectiondate, Val::Date)),
        ("bankname", t(&s.bankname)),
    ];
    if shape.dns {
        fields.push(("dns", Val::List(s.dns.iter().map(dn_val).collect())));
    }
    Val::Obj(fields)
}

fn unknown_subscriber(id: i64) -> ApiError {
    ApiError::not_found(format!("subscriber {id} does not exist"))
}

/// `subscriber.get`: by `id`, else by `email`.
pub fn get<'a>(ds: &'a Dataset, p: &Params, shape: Shape) -> Result<Val<'a>, ApiError> {
    if let Some(id) = p.int("id")? {
        return ds
            .subscriber(id)
            .map(|s| record(s, shape))
            .ok_or_else(|| unknown_subscriber(id));
    }
    let email = p
        .text("email")
        .ok_or_else(|| ApiError::invalid("parameter id or email is required"))?;
    ds.subscriber_by_email(email)
        .map(|s| record(s, shape))
        .ok_or_else(|| ApiError::not_found(format!("no subscriber has e-mail {email}")))
}

/// `subscriber.list.department`: the department and all its sub-departments.
pub fn list_department<'a>(ds: &'a Dataset, p: &Params, shape: Shape) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    if ds.department(id).is_none() {
        return Err(ApiError::not_found(format!(
            "department {id} does not exist"
        )));
    }
    let tree = ds.department_tree(id);
    Ok(Val::List(
        ds.subscribers
            .values()
            .filter(|s| tree.contains(&s.department_id))
            .map(|s| record(s, shape))
            .collect(),
    ))
}

/// `subscriber.list.node`.
pub fn list_node<'a>(ds: &'a Dataset, p: &Params, shape: Shape) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    if ds.node(id).is_none() {
        return Err(ApiError::not_found(format!("node {id} does not exist")));
    }
    Ok(Val::List(
        ds.subscribers
            .values()
            .filter(|s| s.node_id == id)
            .map(|s| record(s, shape))
            .collect(),
    ))
}

/// `subscriber.update`: partial; `null` clears; unknown names are ignored. Validates
/// every field before changing anything.
pub fn update<'a>(ds: &'a mut Dataset, p: &Params, shape: Shape) -> Result<Val<'a>, ApiError> {
    let id = p.required_int("id")?;
    let fields: Vec<(&str, Option<&str>)> = p
        .iter()
        .map(|(name, value)| {
            let text = match value {
                PVal::Null => None,
                PVal::Text(t) => Some(t.as_str()),
            };
            (name, text)
        })
        .collect();
    ds.update_subscriber(id, &fields, false)?;
    ds.subscriber(id)
        .map(|s| record(s, shape))
        .ok_or_else(|| unknown_subscriber(id))
}

/// `subscriber.create`: answers `{id, accountnumber, fullname}`.
pub fn create<'a>(ds: &'a mut Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let new = NewSubscriber {
        fullname: p.required_text("fullname")?.to_owned(),
        department_id: p.required_int("departmentid")?,
        abonenttype: p.code("subscribertype", 4, 0)?,
        connectiondate: p.date("connectiondate")?,
        contract_number: p.owned("contactnumber"),
        contractdate: p.date("contractdate")?,
        account_number: p.owned("accountnumber"),
        personalcode: p.owned("personalcode"),
        edrpou: p.owned("edrpou"),
        taxcode: p.owned("taxcode"),
        bankmfo: p.owned("bankcode"),
        bankname: p.owned("bankname"),
        bankaccount: p.owned("bankaccount"),
        rateplan_id: p.int("rateplanid")?,
    };
    let s = ds.create_subscriber(new)?;
    Ok(Val::Obj(vec![
        ("id", Val::Int(s.id)),
        ("accountnumber", Val::opt_str(s.account_number.as_deref())),
        ("fullname", Val::str(&s.fullname)),
    ]))
}

/// Digits with an optional leading `+`.
fn valid_dn(dn: &str) -> bool {
    let digits = dn.strip_prefix('+').unwrap_or(dn);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `subscriber.dnadd`: answers `{id, subscriberid, pbxid, dn}`. A number already assigned
/// is refused (409), or with `accept_duplicates` assigned once more.
pub fn dnadd(
    ds: &mut Dataset,
    p: &Params,
    today: NaiveDate,
    accept_duplicates: bool,
) -> Result<Val<'static>, ApiError> {
    let subscriber_id = p.required_int("subscriberid")?;
    let dn = p.required_text("dn")?.to_owned();
    if !valid_dn(&dn) {
        return Err(ApiError::invalid(format!(
            "parameter DN must be digits with an optional leading +, got {dn:?}"
        )));
    }
    let pbx_id = p.required_int("pbxid")?;
    let from = p.date("fromdate")?.unwrap_or(today);
    let rec = ds.add_dn(
        subscriber_id,
        pbx_id,
        &dn,
        from,
        p.owned("description"),
        accept_duplicates,
    )?;
    Ok(Val::Obj(vec![
        ("id", Val::Int(rec.id)),
        ("subscriberid", Val::Int(subscriber_id)),
        ("pbxid", Val::Int(rec.pbx_id)),
        ("dn", Val::owned(rec.dn)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_format() {
        for (dn, ok) in [
            ("2001", true),
            ("+380671234567", true),
            ("", false),
            ("+", false),
            ("12-34", false),
            ("abc", false),
        ] {
            assert_eq!(valid_dn(dn), ok, "{dn}");
        }
    }
}
