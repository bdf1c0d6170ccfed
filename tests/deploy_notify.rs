//! The systemd notify protocol of the real `tariscope-sync` binary: with `NOTIFY_SOCKET` at a
//! datagram socket this test owns and `WATCHDOG_USEC` set, the daemon (against a spawned
//! `tariscope-sim` on loopback) sends `READY=1`, then `WATCHDOG=1` at half the interval, and
//! on SIGTERM `STOPPING=1` before exiting 0.
//!
//! Owns: that end-to-end check. Must not: need systemd, or use anything but 127.0.0.1.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim() -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tariscope-sim"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sim = Proc(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the emulator did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (sim, port)
}

fn write_config(dir: &Path, sim_port: u16) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "shutdown_grace_secs = 10\n\
         [api]\nbase_url = \"http://127.0.0.1:{sim_port}\"\nusername = \"demo\"\n\
         password_file = \"{}\"\n\
         [mirror]\npath = \"{}\"\n\
         [scope]\nnodes = [1]\n\
         [serve]\nlisten = \"127.0.0.1:{}\"\n",
        dir.join("password").display(),
        dir.join("mirror.db").display(),
        free_port()
    );
    std::fs::write(dir.join("password"), "demo\n").unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// The next datagram's lines, or None after `wait`.
fn recv(rx: &UnixDatagram, wait: Duration) -> Option<Vec<String>> {
    rx.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    match rx.recv(&mut buf) {
        Ok(n) => Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        Err(_) => None,
    }
}

/// Reads datagrams until one holds `want`; returns everything read on the way.
fn until(rx: &UnixDatagram, want: &str, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        if let Some(lines) = recv(rx, Duration::from_millis(500)) {
            let hit = lines.iter().any(|l| l == want);
            seen.extend(lines);
            if hit {
                return seen;
            }
        }
    }
    panic!("no {want} within {limit:?}; got {seen:?}");
}

#[test]
#[ignore = "needs the daemon"]
fn daemon_speaks_the_notify_protocol_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_port) = start_sim();
    let config = write_config(dir.path(), sim_port);
    let sock_path = dir.path().join("notify.sock");
    let rx = UnixDatagram::bind(&sock_path).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_tariscope-sync"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000") // 1 s: pings every 0.5 s
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = Proc(child);

    let before_ready = until(&rx, "READY=1", Duration::from_secs(30));
    assert!(
        !before_ready.iter().any(|l| l == "STOPPING=1"),
        "{before_ready:?}"
    );

    // At least three pings within 3 s of a 1 s watchdog (one every 0.5 s expected).
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if let Some(lines) = recv(&rx, Duration::from_millis(200)) {
            pings += lines.iter().filter(|l| *l == "WATCHDOG=1").count();
        }
    }
    assert!(
        pings >= 3,
        "only {pings} WATCHDOG=1 in 3 s of a 1 s watchdog"
    );

    let status = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    until(&rx, "STOPPING=1", Duration::from_secs(15));
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit within the grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "SIGTERM ends the daemon with exit 0");
}

/// Without the daemon the part that runs today: the sim starts and the binary's config
/// check accepts the config this test writes (so the ignored test fails only on the daemon).
#[test]
fn the_notify_test_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 8085);
    let out = Command::new(env!("CARGO_BIN_EXE_tariscope-sync"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_sim, _port) = start_sim();
}
