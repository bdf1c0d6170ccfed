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

/// Runs the binary with `--config config` and `args` to the end.
pub async fn run(config: &std::path::Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap()
}

/// Starts the binary with `--config config` and `args`, stdout and stderr piped.
pub fn spawn(config: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A test that fails before waiting for its child must not leave a daemon running.
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Sends `signal` (`-TERM`, `-KILL`) to process `pid`.
pub fn kill(signal: &str, pid: u32) {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
}

/// Reads `from` into `log` until `what` occurs `times` times (60 s at most, then fails).
pub async fn read_until(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    what: &str,
    times: usize,
    log: &mut String,
) {
    use tokio::io::AsyncReadExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while log.matches(what).count() < times {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_millis(200), from.read(&mut buf))
            .await
            .unwrap_or(Ok(0))
            .unwrap();
        log.push_str(&String::from_utf8_lossy(&buf[..n]));
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {what:?} {times}x: {log}"
        );
    }
}

/// A config for `sim` in `dir` (mirror `dir/mirror.db`, node 1, no retries, no endpoints),
/// with `extra` top-level lines first.
pub fn write_config(
    dir: &std::path::Path,
    sim: &tariscope_sync::sim::SimHandle,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "shutdown_grace_secs = 10\n{extra}\n\
         [api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 1000.0\nconcurrency = 16\n\
         [retry]\nmax_attempts = 1\n\
         [mirror]\npath = \"{}\"\n\
         [scope]\nnodes = [1]\n\
         [serve]\nlisten = \"\"\n",
        sim.base_url(),
        dir.join("mirror.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}
