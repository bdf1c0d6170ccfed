//! Shared helpers of the tests that run the real `tariscope-sync` binary.
#![allow(dead_code)]

use std::process::Output;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tariscope-sync");

/// stdout then stderr, for assertion messages and searches.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A port nothing listens on now (for `serve.listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The emulator with a tiny dataset: one node, one department.
pub async fn small_sim(seed: u64, subscribers: usize, days: u32) -> tariscope_sync::sim::SimHandle {
    use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle};
    SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed,
            nodes: 1,
            departments_per_node: 1,
            subscribers,
            days,
            end_date: None,
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}
