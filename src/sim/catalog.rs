//! The fixed catalogue of the dataset: tariff plans, tariffs with time-of-day bands, and
//! services. The same for every seed.
//!
//! Owns: reference records. Must not: depend on the seed or the size knobs.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::data::{SimService, SimTariff, SimTariffPlan, SimTariffTime};
use super::dataset::Dataset;

/// Fill plans, tariffs, tariff times and services.
pub fn fill(ds: &mut Dataset) {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
    let plans = [
        (1, "Basic", "Residential plan with per-minute calls", true),
        (2, "Business", "Legal entities, cheaper long distance", true),
        (3, "Unlimited city", "Flat fee, free local calls", true),
        (4, "Social", "Preferential subscribers", true),
        (5, "Archive 2019", "Closed for new subscribers", false),
    ];
    for (id, name, description, active) in plans {
        ds.plans.push(SimTariffPlan {
            id,
            name: name.to_owned(),
            description: description.to_owned(),
            currencyid: 980,
            active,
        });
    }
    // (name, direction, provider, per-minute value in kopiykas, free seconds)
    let kinds = [
        ("Local", "out", 1, 50, 0),
        ("Long distance", "out", 1, 120, 0),
        ("Mobile", "out", 2, 150, 5),
        ("International", "out", 2, 900, 0),
        ("Incoming", "in", 1, 0, 0),
    ];
    let mut rate_id = 101;
    for plan in &ds.plans {
        for (k, (name, dir, provider, cents, free)) in kinds.iter().enumerate() {
            let factor = if plan.id == 4 {
                50
            } else if plan.id == 2 {
                80
            } else {
                100
            };
            let value = Decimal::new(cents * factor / 100, 2);
            ds.tariffs.push(SimTariff {
                id: rate_id,
                name: format!("{} {}", plan.name, name.to_lowercase()),
                providerid: *provider,
                parametersid: 1000 + rate_id,
                planid: plan.id,
                activedate: d(2024, 1, 1),
                currencyid: 980,
                value,
                roundto: if k == 3 { 1 } else { 60 },
                freeseconds: *free,
                substractseconds: 0,
                roundcostto: 2,
                rounddurationdown: false,
                roundcostdown: false,
                roundfirstminute: k != 4,
                noaccount: *dir == "in",
                accountdescription: format!("{name} calls"),
                accountdns: k == 0,
                minimumduration: if k == 3 { 60 } else { 0 },
                stages: 0,
                minimumcost: Decimal::ZERO.round_dp(2),
                direction: (*dir).to_owned(),
            });
            let bands: &[(i64, i64, i64)] = if *dir == "in" {
                &[(0, 24, 100)]
            } else {
                &[(0, 8, 50), (8, 20, 100), (20, 24, 75)]
            };
            for (from, to, pct) in bands {
                ds.tariff_times.push(SimTariffTime {
                    rateid: rate_id,
                    fromhour: *from,
                    tohour: *to,
                    value: (value * Decimal::new(*pct, 2)).round_dp(2),
                });
            }
            rate_id += 1;
        }
    }
    let services = [
        (1, "Subscription fee", 18000, "month"),
        (2, "Local calls", 50, "sec"),
        (3, "Long distance calls", 120, "sec"),
        (4, "Mobile calls", 150, "sec"),
        (5, "International calls", 900, "sec"),
        (6, "Internet 100 Mbit/s", 25000, "month"),
        (7, "Static IP address", 5000, "month"),
        (8, "Voice mail", 2000, "month"),
    ];
    for (id, name, cents, unit) in services {
        ds.services.push(SimService {
            id,
            name: name.to_owned(),
            price: Decimal::new(cents, 2),
            unit: unit.to_owned(),
        });
    }
}
