//! Shared helpers of the `api_*` integration tests: start the emulator, build a client
//! for it, normalise raw fields for comparison across wire variants.
#![allow(dead_code)]

use std::time::Duration;

use tariscope_sync::api::{ClientConfig, Format, RetrySettings, Secret, TariscopeClient};
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle, WireVariant};

/// A small deterministic dataset (fast to generate).
pub fn small_dataset() -> DatasetConfig {
    DatasetConfig {
        seed: 7,
        nodes: 2,
        departments_per_node: 3,
        subscribers: 40,
        days: 20,
        end_date: chrono::NaiveDate::from_ymd_opt(2025, 5, 20),
    }
}

pub fn sim_config(wire: WireVariant) -> SimConfig {
    SimConfig {
        dataset: small_dataset(),
        wire,
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    SimHandle::start(config).await.expect("emulator starts")
}

/// A client config for `sim` as demo/demo, fast retries, no rate limit.
pub fn client_config(sim: &SimHandle, format: Format) -> ClientConfig {
    let mut c = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    c.format = format;
    c.rate_per_sec = 0.0;
    c.concurrency = 16;
    c.request_timeout = Duration::from_secs(10);
    c.retry = RetrySettings {
        max_attempts: 4,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(20),
    };
    c
}

pub fn client(sim: &SimHandle, format: Format) -> TariscopeClient {
    TariscopeClient::new(client_config(sim, format)).expect("client builds")
}

/// Raw `(key, text)` fields normalised so that the same value sent as a number, a
/// string, a 0/1 flag or a .NET date compares equal.
pub fn norm_raw(raw: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = raw
        .iter()
        .map(|(k, v)| (k.replace('_', ""), norm_value(v)))
        .collect();
    out.sort();
    out
}

fn norm_value(v: &str) -> String {
    let t = v.trim();
    match t {
        "true" | "1" => return "true".into(),
        "false" | "0" => return "false".into(),
        _ => {}
    }
    if let Ok(d) = t.parse::<rust_decimal::Decimal>() {
        return d.normalize().to_string();
    }
    if t.len() == 19 && t.ends_with("T00:00:00") {
        return t[..10].to_owned();
    }
    t.to_owned()
}
