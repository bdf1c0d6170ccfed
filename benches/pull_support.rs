//! Shared by the pull benchmarks (included with `#[path]`): start `tariscope-sim` as a child
//! process (so its memory and CPU are not counted as ours), build a client, read our
//! process's CPU time and peak RSS from `/proc`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tariscope_sync::api::{ClientConfig, Secret, TariscopeClient};

/// The emulator child; killed on drop.
pub struct Sim {
    child: Child,
    pub addr: SocketAddr,
    _faults: Option<tempfile::NamedTempFile>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Starts the emulator with `args` (besides `--listen`) and an optional fault plan JSON.
    pub fn start(args: &[&str], faults: Option<&str>) -> Sim {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let faults = faults.map(|json| {
            let f = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(f.path(), json).unwrap();
            f
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tariscope-sim"));
        cmd.arg("--listen").arg(addr.to_string()).args(args);
        if let Some(f) = &faults {
            cmd.arg("--faults").arg(f.path());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The emulator binds its port before it generates the dataset (a second or more for
        // 100,000 subscribers), so an accepted connection is not readiness: an answer is.
        let started = Instant::now();
        while !answers(addr) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "tariscope-sim did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sim {
            child,
            addr,
            _faults: faults,
        }
    }

    pub fn remote(&self, concurrency: usize) -> TariscopeClient {
        let mut cfg =
            ClientConfig::new(format!("http://{}", self.addr), "demo", Secret::new("demo"));
        cfg.rate_per_sec = 0.0;
        cfg.concurrency = concurrency;
        cfg.request_timeout = Duration::from_secs(300);
        TariscopeClient::new(cfg).unwrap()
    }
}

/// Whether an HTTP server at `addr` answers a request (with any status).
fn answers(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let mut first = [0u8; 1];
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n")
        .is_ok()
        && matches!(stream.read(&mut first), Ok(1))
}

/// User + system CPU time of this process (from `/proc/self/stat`, 100 ticks per second).
pub fn cpu_time() -> Duration {
    stat_cpu(std::path::Path::new("/proc/self"))
}

/// User + system CPU time from the `stat` file under `dir` (a process or a thread).
fn stat_cpu(dir: &std::path::Path) -> Duration {
    let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based overall).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Peak resident set size of this process, MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system) of this process's threads named `name` (`/proc/self/task`).
pub fn thread_cpu(name: &str) -> Duration {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(|task| stat_cpu(&task.path()))
        .sum()
}
