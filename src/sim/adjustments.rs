//! The hidden-adjustments data variant: balance adjustments that no list shows.
//!
//! Owns: booking them into a generated dataset (`SimConfig::hidden_adjustments`). An
//! adjustment moves the subscriber's balance at the end of its day: `accounts.summary`
//! shows it in that day's `end_debt` (not in `charge` or `payment`) and in every later
//! `start_debt`; `accounts.charges` and `accounts.payments` never list it. This is what a
//! manual correction, a write-off or a charge booked under another date looks like to a
//! client. Must not: touch the charges, payments or the default dataset's random stream
//! (it draws from its own, seeded from the dataset seed).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::data::SimAdjustment;
use super::dataset::Dataset;
use super::generate::add_days;

/// Chance of an adjustment per subscriber and day (about one a month).
const PER_DAY: f64 = 1.0 / 30.0;

/// Books adjustments on random days of the history for every subscriber.
pub fn book(ds: &mut Dataset, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xAD7_0517);
    let days = u64::try_from((ds.end_date - ds.start_date).num_days() + 1).unwrap_or(1);
    let ids: Vec<i64> = ds.subscribers.keys().copied().collect();
    for id in ids {
        for offset in 0..days {
            if rng.random_bool(PER_DAY) {
                // -50.00 ..= 50.00 without 0: a correction either way.
                let cents = rng.random_range(1..=5_000) * if rng.random_bool(0.5) { 1 } else { -1 };
                ds.adjustments.push(SimAdjustment {
                    subscriber_id: id,
                    day: add_days(ds.start_date, offset),
                    amount: Decimal::new(cents, 2),
                });
            }
        }
    }
    ds.reindex();
}
