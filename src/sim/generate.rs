//! The deterministic dataset generator: the same `DatasetConfig` (seed, sizes, end date)
//! always gives the same records.
//!
//! Owns: building a `Dataset` from a seed. Must not: depend on anything but the config
//! (no clock except to resolve `end_date: None`, no hash-map iteration order).

use std::collections::HashSet;

use chrono::{Datelike, Days, NaiveDate};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::config::DatasetConfig;
use super::data::{SimDepartment, SimDn, SimNode, SimPbx, SimSubscriber};
use super::dataset::Dataset;
use super::names::*;

/// Id of the first generated subscriber (so the guide's example id 1234 exists by default).
pub const FIRST_SUBSCRIBER_ID: i64 = 1201;
/// Id of the first PBX (the guide's example PBX 292 is the second).
pub const FIRST_PBX_ID: i64 = 291;

pub(super) fn pick<'a, T>(rng: &mut SmallRng, list: &'a [T]) -> &'a T {
    // Lists are non-empty constants.
    list.choose(rng).unwrap_or(&list[0])
}

pub(super) fn money(rng: &mut SmallRng, min_cents: i64, max_cents: i64) -> Decimal {
    Decimal::new(rng.random_range(min_cents..=max_cents), 2)
}

fn digits(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

pub(super) fn add_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

/// Generate the dataset for `cfg`.
pub fn generate(cfg: &DatasetConfig) -> Dataset {
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let end = cfg
        .end_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let days = u64::from(cfg.days.max(1));
    let start = end.checked_sub_days(Days::new(days - 1)).unwrap_or(end);
    let mut ds = Dataset::default();
    ds.start_date = start;
    ds.end_date = end;
    super::catalog::fill(&mut ds);
    topology(&mut ds, cfg, &mut rng);
    subscribers(&mut ds, cfg, &mut rng);
    super::history::fill(&mut ds, &mut rng);
    ds.reindex();
    ds
}

fn topology(ds: &mut Dataset, cfg: &DatasetConfig, rng: &mut SmallRng) {
    let mut pbx_id = FIRST_PBX_ID;
    let mut dep_id = 1;
    for n in 0..cfg.nodes.max(1) {
        let node_id = i64::try_from(n).unwrap_or(0) + 1;
        let city = CITIES[n % CITIES.len()];
        let name = if n < CITIES.len() {
            city.to_owned()
        } else {
            format!("{city} {}", n / CITIES.len() + 1)
        };
        ds.nodes.push(SimNode {
            id: node_id,
            name: name.clone(),
        });
        for p in 1..=2 {
            ds.pbxs.push(SimPbx {
                id: pbx_id,
                node_id,
                name: format!("{name} PBX-{p}"),
            });
            pbx_id += 1;
        }
        let root = dep_id;
        ds.departments.push(SimDepartment {
            id: root,
            node_id,
            parent_id: None,
            name,
        });
        dep_id += 1;
        let mut children: Vec<i64> = Vec::new();
        for k in 1..cfg.departments_per_node.max(1) {
            let parent = if !children.is_empty() && rng.random_bool(0.4) {
                *pick(rng, &children)
            } else {
                root
            };
            ds.departments.push(SimDepartment {
                id: dep_id,
                node_id,
                parent_id: Some(parent),
                name: DEPARTMENTS[(k - 1) % DEPARTMENTS.len()].to_owned(),
            });
            children.push(dep_id);
            dep_id += 1;
        }
    }
}

fn person(rng: &mut SmallRng) -> (String, String, String, i64) {
    let surname = (*pick(rng, SURNAMES)).to_owned();
    let (male, female) = *pick(rng, PATRONYMICS);
    if rng.random_bool(0.5) {
        let given = (*pick(rng, MALE_NAMES)).to_owned();
        (surname, given, male.to_owned(), 1)
    } else {
        let given = (*pick(rng, FEMALE_NAMES)).to_owned();
        (surname, given, female.to_owned(), 2)
    }
}

fn subscribers(ds: &mut Dataset, cfg: &DatasetConfig, rng: &mut SmallRng) {
    let mut used_dns: HashSet<(i64, String)> = HashSet::new();
    let mut dn_id = 50_001;
    let active_plans: Vec<i64> = ds.plans.iter().filter(|p| p.active).map(|p| p.id).collect();
    let end = ds.end_date;
    let history_start = ds.start_date;
    for i in 0..cfg.subscribers {
        let id = FIRST_SUBSCRIBER_ID + i64::try_from(i).unwrap_or(0);
        let dep = pick(rng, &ds.departments).clone();
        let roll = rng.random_range(0..100);
        let abonenttype = match roll {
            0..72 => 0,
            72..87 => 1,
            87..91 => 2,
            91..95 => 3,
            _ => 4,
        };
        let is_person = matches!(abonenttype, 0 | 2 | 4);
        let (fullname, email, gender, birthday) = if is_person {
            let (surname, given, patronymic, gender) = person(rng);
            let email = format!(
                "{}.{}.{id}@{}",
                slug(&given),
                slug(&surname),
                pick(rng, MAIL_DOMAINS)
            );
            let birthday = NaiveDate::from_ymd_opt(
                rng.random_range(1940..2006),
                rng.random_range(1..13),
                rng.random_range(1..29),
            );
            (
                format!("{surname} {given} {patronymic}"),
                email,
                Some(gender),
                birthday,
            )
        } else if abonenttype == 1 {
            let stem = *pick(rng, COMPANIES);
            let name = format!("{} {stem}", pick(rng, LEGAL_FORMS));
            (
                name,
                format!("office.{id}@{}.com.ua", slug(stem)),
                None,
                None,
            )
        } else {
            let org = *pick(rng, BUDGET_ORGS);
            (
                format!(
                    "{org} ({})",
                    ds.nodes
                        .iter()
                        .find(|n| n.id == dep.node_id)
                        .map_or("", |n| n.name.as_str())
                ),
                format!("budget.{id}@{}.gov.ua", slug(org)),
                None,
                None,
            )
        };
        let contract_start = NaiveDate::from_ymd_opt(2010, 1, 1).unwrap_or(history_start);
        let span = u64::try_from((end - contract_start).num_days().max(31) - 30).unwrap_or(1);
        let contractdate = add_days(contract_start, rng.random_range(0..span));
        let connectiondate = add_days(contractdate, rng.random_range(0..15));
        let (bank, mfo) = *pick(rng, BANKS);
        let legal = !is_person;
        let privileged = abonenttype == 4;
        let mut dns = Vec::new();
        let node_pbxs: Vec<i64> = ds
            .pbxs
            .iter()
            .filter(|p| p.node_id == dep.node_id)
            .map(|p| p.id)
            .collect();
        for k in 0..rng.random_range(1..=3) {
            let pbx = *pick(rng, &node_pbxs);
            let dn = loop {
                let candidate = if rng.random_bool(0.05) {
                    format!("+38067{}", digits(rng, 7))
                } else {
                    format!("{}{}", 2 + (dep.node_id % 7), digits(rng, 6))
                };
                if used_dns.insert((pbx, candidate.clone())) {
                    break candidate;
                }
            };
            dns.push(SimDn {
                id: dn_id,
                pbx_id: pbx,
                dn,
                from_date: add_days(connectiondate, k * 30),
                description: match k {
                    0 => Some("main".to_owned()),
                    1 => Some("fax".to_owned()),
                    _ => None,
                },
            });
            dn_id += 1;
        }
        let sub = SimSubscriber {
            id,
            fullname,
            street: Some((*pick(rng, STREETS)).to_owned()),
            house: Some(format!(
                "{}{}",
                rng.random_range(1..160),
                if rng.random_bool(0.1) { "a" } else { "" }
            )),
            flat: (!legal).then(|| rng.random_range(1..220).to_string()),
            email: Some(email),
            description: match rng.random_range(0..10) {
                0 => Some("VIP".to_owned()),
                1 => Some("Pays by invoice".to_owned()),
                _ => None,
            },
            authcode: Some(digits(rng, 4)),
            ispublic: Some(rng.random_bool(0.7)),
            abonenttype: Some(abonenttype),
            edrpou: legal.then(|| digits(rng, 8)),
            zipcode: Some(format!("{:05}", rng.random_range(1001..99999))),
            personalcode: is_person.then(|| digits(rng, 10)),
            contract_number: Some(format!("{}-{:02}", i % 997 + 1, contractdate.year() % 100)),
            information: None,
            privilegeinfo: privileged.then(|| "War veteran".to_owned()),
            area: Some((*pick(rng, AREAS)).to_owned()),
            contractdate: Some(contractdate),
            building: rng
                .random_bool(0.15)
                .then(|| format!("korp. {}", rng.random_range(1..5))),
            floornumber: (!legal).then(|| rng.random_range(1..17).to_string()),
            account_number: Some(if rng.random_bool(0.7) {
                id.to_string()
            } else {
                format!("LS-{}", 100_000 + id)
            }),
            gender,
            birthday,
            bankaccount: legal.then(|| format!("UA{}{mfo}{}", digits(rng, 2), digits(rng, 19))),
            bankmfo: legal.then(|| mfo.to_owned()),
            taxcode: (legal && rng.random_bool(0.6)).then(|| digits(rng, 12)),
            deliverytype: Some(rng.random_range(0..3)),
            privilegediscount: privileged
                .then(|| Decimal::new(if rng.random_bool(0.5) { 2500 } else { 5000 }, 2)),
            department_id: dep.id,
            node_id: dep.node_id,
            rateplan_id: Some(match abonenttype {
                1 => 2,
                4 => 4,
                _ => *pick(rng, &active_plans),
            }),
            connectiondate: Some(connectiondate),
            bankname: legal.then(|| bank.to_owned()),
            dns,
            opening_debt: money(rng, -20_000, 50_000),
        };
        ds.subscribers.insert(id, sub);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> DatasetConfig {
        DatasetConfig {
            seed,
            end_date: NaiveDate::from_ymd_opt(2025, 5, 31),
            ..DatasetConfig::default()
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(&cfg(7)).snapshot();
        assert_eq!(a, generate(&cfg(7)).snapshot());
        assert_ne!(a.subscribers, generate(&cfg(8)).snapshot().subscribers);
    }

    #[test]
    fn sizes_and_uniqueness() {
        let ds = generate(&DatasetConfig {
            nodes: 3,
            departments_per_node: 5,
            subscribers: 500,
            ..cfg(3)
        });
        assert_eq!(ds.nodes.len(), 3);
        assert_eq!(ds.departments.len(), 15);
        assert_eq!(ds.subscribers.len(), 500);
        let emails: HashSet<_> = ds
            .subscribers
            .values()
            .filter_map(|s| s.email.clone())
            .collect();
        assert_eq!(emails.len(), 500, "e-mails are unique");
        let accounts: HashSet<_> = ds
            .subscribers
            .values()
            .filter_map(|s| s.account_number.clone())
            .collect();
        assert_eq!(accounts.len(), 500, "account numbers are unique");
        for s in ds.subscribers.values() {
            assert!((1..=3).contains(&s.dns.len()));
            let dep = ds.department(s.department_id).unwrap();
            assert_eq!(dep.node_id, s.node_id);
            for dn in &s.dns {
                let pbx = ds.pbxs.iter().find(|p| p.id == dn.pbx_id).unwrap();
                assert_eq!(
                    pbx.node_id, s.node_id,
                    "DNs sit on PBXs of the subscriber's node"
                );
            }
            if s.abonenttype == Some(1) {
                assert_eq!(s.edrpou.as_ref().map(String::len), Some(8));
            } else if let Some(pc) = &s.personalcode {
                assert_eq!(pc.len(), 10);
            }
        }
        assert_eq!(
            ds.dn_count(),
            ds.subscribers.values().map(|s| s.dns.len()).sum::<usize>()
        );
        // the root department carries the node's name
        for n in &ds.nodes {
            assert!(
                ds.departments
                    .iter()
                    .any(|d| d.node_id == n.id && d.parent_id.is_none() && d.name == n.name)
            );
        }
    }

    #[test]
    fn history_covers_the_window() {
        let ds = generate(&cfg(1));
        assert_eq!(ds.end_date, NaiveDate::from_ymd_opt(2025, 5, 31).unwrap());
        assert_eq!((ds.end_date - ds.start_date).num_days(), 59);
        assert!(
            ds.charges
                .iter()
                .all(|c| c.recdate >= ds.start_date && c.recdate <= ds.end_date)
        );
        assert!(
            ds.payments
                .iter()
                .all(|p| p.payment_day >= ds.start_date && p.payment_day <= ds.end_date)
        );
        assert!(
            ds.subscriber(1234).is_some(),
            "the guide's example id exists by default"
        );
    }
}
