//! What the rest of the program is built from: the validated [`Config`] turned into the
//! client's, the push executor's and the job selection's own settings.
//!
//! Owns: these conversions, beside the configuration they read (the dependency points from
//! `config` to `api` and `sync`, never back). Must not: validate (the schema did) or fall
//! back to defaults for a value the schema accepted.

use super::Config;
use crate::api::ClientConfig;
use crate::clock::Clock;
use crate::sync::Job;
use crate::sync::push::PushOptions;

impl Config {
    /// The API client's settings.
    pub fn client_config(&self) -> ClientConfig {
        let a = &self.api;
        let mut c = ClientConfig::new(a.base_url.clone(), a.username.clone(), a.password.clone());
        c.format = a.format;
        c.connect_timeout = a.connect_timeout;
        c.request_timeout = a.request_timeout;
        c.ca_file = a.ca_file.clone();
        c.local_address = a.local_address;
        c.token_lifetime = a.token_lifetime;
        c.token_margin = a.token_margin;
        c.rate_per_sec = a.rate_per_sec;
        c.concurrency = a.concurrency;
        c.retry = self.retry.clone();
        c.profile = a.profile.clone();
        c
    }

    /// The push executor's settings, stamping times with `clock`.
    pub fn push_options(&self, clock: Clock) -> PushOptions {
        PushOptions {
            policy: self.push.conflict_policy,
            natural_key: self.push.natural_key.field(),
            max_attempts: self.push.max_attempts,
            concurrency: self.jobs[&Job::Push].concurrency,
            clock,
        }
    }

    /// Today in Tariscope's time zone (`timezone`).
    pub fn today(&self, clock: Clock) -> chrono::NaiveDate {
        clock.now().with_timezone(&self.timezone).date_naive()
    }

    /// The jobs `named` (every enabled job when empty), in run order.
    pub fn select_jobs(&self, named: &[Job]) -> Vec<Job> {
        Job::ALL
            .into_iter()
            .filter(|j| {
                if named.is_empty() {
                    self.jobs[j].enabled
                } else {
                    named.contains(j)
                }
            })
            .collect()
    }
}
