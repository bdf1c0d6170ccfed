//! Money history of the dataset: monthly fees, call charges and payments over the
//! history window, drawn from the generator's random stream.
//!
//! Owns: charges and payments generation. Must not: compute summaries (they are derived
//! on request from these records).

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::rngs::SmallRng;
use rust_decimal::Decimal;

use super::data::{SimCharge, SimPayment};
use super::dataset::Dataset;
use super::generate::{add_days, money, pick};

fn month_end(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|n| n.pred_opt())
        .unwrap_or(d)
}

/// Fill charges and payments for every subscriber.
pub fn fill(ds: &mut Dataset, rng: &mut SmallRng) {
    let mut charge_id = 900_001;
    let mut payment_id = 70_001;
    let days = u64::try_from((ds.end_date - ds.start_date).num_days() + 1).unwrap_or(1);
    let call_services = [
        ("Local calls", 50),
        ("Long distance calls", 120),
        ("Mobile calls", 150),
        ("International calls", 900),
    ];
    let ids: Vec<(i64, i64)> = ds
        .subscribers
        .values()
        .map(|s| (s.id, s.abonenttype.unwrap_or(0)))
        .collect();
    for (id, kind) in ids {
        let fee = match kind {
            1 => Decimal::new(35_000, 2),
            4 => Decimal::new(9_000, 2),
            _ => Decimal::new(18_000, 2),
        };
        let internet = rng.random_bool(0.4);
        for offset in 0..days {
            let day = add_days(ds.start_date, offset);
            if day.day() == 1 {
                let mut monthly = vec![("Subscription fee", fee)];
                if internet {
                    monthly.push(("Internet 100 Mbit/s", Decimal::new(25_000, 2)));
                }
                for (name, amount) in monthly {
                    ds.charges.push(SimCharge {
                        id: charge_id,
                        subscriber_id: id,
                        recdate: day,
                        fromdate: day,
                        todate: month_end(day),
                        servicename: name.to_owned(),
                        amount,
                        numberofservices: 1,
                    });
                    charge_id += 1;
                }
            }
            if rng.random_bool(0.12) {
                let (name, cents) = *pick(rng, &call_services);
                let seconds = rng.random_range(30..3600);
                let amount = (Decimal::new(cents * seconds, 2) / Decimal::new(60, 0)).round_dp(2);
                ds.charges.push(SimCharge {
                    id: charge_id,
                    subscriber_id: id,
                    recdate: day,
                    fromdate: day,
                    todate: day,
                    servicename: name.to_owned(),
                    amount,
                    numberofservices: seconds,
                });
                charge_id += 1;
            }
            if offset % 30 == 0 && rng.random_bool(0.85) {
                let pay_day = add_days(day, rng.random_range(0..30)).min(ds.end_date);
                let payment_type = rng.random_range(0..4);
                let bank = match payment_type {
                    3 => Some(
                        (*pick(
                            rng,
                            &["PrivatBank", "Monobank", "Oschadbank", "Raiffeisen Bank"],
                        ))
                        .to_owned(),
                    ),
                    2 => Some("Ukrposhta".to_owned()),
                    _ => None,
                };
                ds.payments.push(SimPayment {
                    payment_id,
                    subscriber_id: id,
                    payment_day: pay_day,
                    amount: money(rng, 10_000, 60_000),
                    payment_type,
                    bank,
                });
                payment_id += 1;
            }
        }
    }
}
