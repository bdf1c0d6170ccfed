//! Load benchmark of the emulator: `cargo bench --bench sim_load`.
//!
//! Starts the release `tariscope-sim` binary as a separate process, logs in, then drives
//! `GET /api/subscriber/get/?id=...` over N keep-alive connections (one request in flight
//! per connection, hand-written HTTP/1.1 on raw TCP so the generator stays cheap) for a
//! fixed duration, and prints requests/s and p50/p90/p99/max latency.
//! Knobs (environment): SIM_LOAD_SECS (10), SIM_LOAD_CONNS (32), SIM_LOAD_THREADS (1,
//! the load generator's tokio worker threads), SIM_LOAD_WARMUP_SECS (1), SIM_LOAD_TARGET
//! (`127.0.0.1:PORT` of an emulator already running with the default dataset, e.g. under
//! `perf record`; no process is started then).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Read one response (Content-Length framed) from `tcp`; returns the status code.
async fn read_response(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .split("\r\n")
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Ok((status, body));
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn login(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"username":"demo","password":"demo"}"#;
    let req = format!(
        "POST /api/auth HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let (status, body) = read_response(&mut tcp, &mut buf)
        .await
        .expect("login answer");
    assert_eq!(status, 200, "login failed");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["token"].as_str().expect("token").to_owned()
}

async fn wait_ready(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the emulator did not start on {addr}");
}

struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn drive(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    offset: usize,
    record: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> ConnResult {
    let mut out = ConnResult {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
    };
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut i = offset;
    while !stop.load(Ordering::Relaxed) {
        let req = &requests[i % requests.len()];
        i += 1;
        let t = Instant::now();
        if tcp.write_all(req).await.is_err() {
            out.errors += 1;
            break;
        }
        match read_response(&mut tcp, &mut buf).await {
            Ok((200, _)) => {
                if record.load(Ordering::Relaxed) {
                    out.latencies_us
                        .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
            }
            Ok(_) => out.errors += 1,
            Err(_) => {
                out.errors += 1;
                break;
            }
        }
    }
    out
}

/// User and system CPU seconds of a process from `/proc/PID/stat` (Linux; `None`
/// elsewhere). Assumes the usual 100 clock ticks per second.
fn cpu_secs(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|t| t / 100.0)
    };
    Some((ticks(11)?, ticks(12)?))
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let secs = env_num("SIM_LOAD_SECS", 10);
    let warmup = env_num("SIM_LOAD_WARMUP_SECS", 1);
    let conns = env_num("SIM_LOAD_CONNS", 32) as usize;
    let threads = env_num("SIM_LOAD_THREADS", 1) as usize;
    let subscribers = 200;

    let target: Option<SocketAddr> = std::env::var("SIM_LOAD_TARGET")
        .ok()
        .and_then(|t| t.parse().ok());
    let addr: SocketAddr =
        target.unwrap_or_else(|| format!("127.0.0.1:{}", free_port()).parse().expect("addr"));
    let server_pid = std::env::var("SIM_LOAD_TARGET_PID").ok();
    let server = target.is_none().then(|| {
        let child = Command::new(env!("CARGO_BIN_EXE_tariscope-sim"))
            .args([
                "--listen",
                &addr.to_string(),
                "--subscribers",
                &subscribers.to_string(),
                "--log-format",
                "json",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tariscope-sim");
        Server(child)
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    let server_pid = server_pid.or_else(|| server.as_ref().map(|s| s.0.id().to_string()));
    rt.block_on(async move {
        wait_ready(addr).await;
        let token = login(addr).await;
        let requests: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..subscribers)
                .map(|i| {
                    format!(
                        "GET /api/subscriber/get/?id={} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n",
                        1201 + i
                    )
                    .into_bytes()
                })
                .collect(),
        );
        let record = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..conns)
            .map(|c| tokio::spawn(drive(addr, requests.clone(), c * 7, record.clone(), stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        record.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let cpu0 = (cpu_secs("self"), server_pid.as_deref().and_then(cpu_secs));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        record.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let cpu1 = (cpu_secs("self"), server_pid.as_deref().and_then(cpu_secs));
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let r = t.await.expect("task");
            all.extend(r.latencies_us);
            errors += r.errors;
        }
        all.sort_unstable();
        let rps = all.len() as f64 / elapsed.as_secs_f64();
        println!("sim_load: subscriber.get over {conns} keep-alive connections, {secs} s (+{warmup} s warm-up), load generator threads {threads}, emulator = separate release process");
        println!("  requests   {}", all.len());
        println!("  errors     {errors}");
        println!("  req/s      {rps:.0}");
        println!(
            "  latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            pct(&all, 0.50),
            pct(&all, 0.90),
            pct(&all, 0.99),
            all.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
        );
        let n = all.len().max(1) as f64;
        let per = |a: Option<(f64, f64)>, b: Option<(f64, f64)>, who: &str| {
            if let (Some((u0, s0)), Some((u1, s1))) = (a, b) {
                println!(
                    "  {who:<10} cpu {:.2} s user + {:.2} s sys = {:.1} us/request ({:.0} % of one core)",
                    u1 - u0,
                    s1 - s0,
                    ((u1 - u0) + (s1 - s0)) * 1e6 / n,
                    ((u1 - u0) + (s1 - s0)) * 100.0 / elapsed.as_secs_f64()
                );
            }
        };
        per(cpu0.1, cpu1.1, "emulator");
        per(cpu0.0, cpu1.0, "generator");
        if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
            println!("  loadavg    {}", load.trim());
        }
    });
    drop(server);
}
