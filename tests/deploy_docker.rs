//! The Docker images from `deploy/Dockerfile`, run for real: the emulator container and the
//! daemon container on a private network, the mirror on a volume, non-root with a read-only
//! root filesystem, `docker stop`, the health check, an emulator outage.
//!
//! Owns: the container plumbing. The images are prepared by the tests themselves, once per
//! test run (`deploy_support::docker_images`: `scripts/build-images.sh`, which installs
//! debootstrap and makes the local base images when missing), so `cargo test` on a fresh
//! machine needs no step before it. The emulator container is run
//! by `testcontainers` (its docker-CLI client: the engine here speaks API 1.41, too old for the
//! bollard-based releases); the daemon container by the docker CLI, since it needs
//! `--read-only`, `--tmpfs` and a secret file that testcontainers' CLI client cannot pass.
//! Must not: touch containers, networks or volumes it did not create (all are named
//! `tsync-test-<pid>-<n>-...` and removed on drop), or reach beyond the private network.
//!
//! Skips (passing, with a printed reason) when no Docker engine answers, when the base images
//! cannot be made (not root, no apt-get), or when `TARISCOPE_DOCKER_TESTS=0`; under
//! `TARISCOPE_CI=1` a missing engine or tool fails instead. With an engine, an image that
//! cannot be built is a failure.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod deploy_support;

use testcontainers::clients::Cli;
use testcontainers::core::WaitFor;
use testcontainers::{GenericImage, RunnableImage};

/// Image tags of this work tree: `tariscope-sim:test-<hash of the tree's path>`, so test runs
/// of different work trees sharing one engine never use each other's images.
fn tag(repo: &str) -> &'static str {
    static TAGS: OnceLock<(String, String)> = OnceLock::new();
    let (sim, sync) = TAGS.get_or_init(|| {
        // FNV-1a: stable across runs and toolchains (DefaultHasher is not guaranteed to be).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in env!("CARGO_MANIFEST_DIR").bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        (
            format!("tariscope-sim:test-{h:016x}"),
            format!("tariscope-sync:test-{h:016x}"),
        )
    });
    if repo == "sim" { sim } else { sync }
}

fn sim_image() -> &'static str {
    tag("sim")
}

fn sync_image() -> &'static str {
    tag("sync")
}
const MIRROR: &str = "/var/lib/tariscope-sync/tariscope-mirror.db";
const SECRET: &str = "/run/secrets/tariscope-api-password";

// ---------------------------------------------------------------- docker plumbing

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// Runs docker and returns trimmed stdout; panics with stderr on failure.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds both images once per test run (`deploy_support`); `Err` = why the tests cannot run.
fn images() -> Result<(), String> {
    deploy_support::docker_images(sim_image(), sync_image())
}

/// `let Some(_) = ready!()` at the top of each test: builds the images or skips.
macro_rules! ready {
    () => {
        match images() {
            Ok(()) => (),
            Err(reason) => {
                deploy_support::skip(&reason);
                return;
            }
        }
    };
}

/// A unique name prefix per test: `tsync-test-<pid>-<n>`.
fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "tsync-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Something docker made for one test, removed on drop (containers before networks/volumes:
/// declare them after the network and volume so they drop first).
struct Removed(&'static str, String);

impl Drop for Removed {
    fn drop(&mut self) {
        let args: Vec<&str> = match self.0 {
            "container" => vec!["rm", "-f", "-v", &self.1],
            "network" => vec!["network", "rm", &self.1],
            _ => vec!["volume", "rm", "-f", &self.1],
        };
        let _ = docker(&args);
    }
}

/// A private network and a mirror volume for one test.
struct Stage {
    name: String,
    _volume: Removed,
    _network: Removed,
    secret_dir: tempfile::TempDir,
}

impl Stage {
    fn new() -> Self {
        let name = prefix();
        docker_ok(&["network", "create", &format!("{name}-net")]);
        let network = Removed("network", format!("{name}-net"));
        docker_ok(&["volume", "create", &format!("{name}-mirror")]);
        let volume = Removed("volume", format!("{name}-mirror"));
        // The Docker secret: a file the container's user (10001) can read.
        let secret_dir = tempfile::tempdir().unwrap();
        let secret = secret_dir.path().join("api-password");
        std::fs::write(&secret, "demo\n").unwrap();
        set_mode(&secret, 0o644);
        set_mode(secret_dir.path(), 0o755);
        Self {
            name,
            _volume: volume,
            _network: network,
            secret_dir,
        }
    }

    fn network(&self) -> String {
        format!("{}-net", self.name)
    }

    fn volume(&self) -> String {
        format!("{}-mirror", self.name)
    }

    fn sim_host(&self) -> String {
        format!("{}-sim", self.name)
    }

    fn secret(&self) -> PathBuf {
        self.secret_dir.path().join("api-password")
    }

    /// `docker run` arguments for the daemon image as an operator runs it: non-root (the
    /// image's user), read-only root filesystem, tmpfs /tmp, the mirror volume, the password
    /// as a secret file, the emulator by its name on the private network.
    fn daemon_args(&self, name: &str, detached: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into()];
        if detached {
            a.push("-d".into());
        }
        for s in [
            format!("--name={name}"),
            format!("--network={}", self.network()),
            "--read-only".into(),
            "--tmpfs=/tmp".into(),
            format!("--volume={}:/var/lib/tariscope-sync", self.volume()),
            format!("--volume={}:{SECRET}:ro", self.secret().display()),
            format!(
                "--env=TARISCOPE_SYNC__API__BASE_URL=http://{}:8085",
                self.sim_host()
            ),
            "--env=TARISCOPE_SYNC__API__USERNAME=demo".into(),
            format!("--env=TARISCOPE_SYNC__API__PASSWORD_FILE={SECRET}"),
            "--env=TARISCOPE_SYNC__SCOPE__NODES=1".into(),
        ] {
            a.push(s);
        }
        a
    }

    /// Copies the mirror out of the volume (through a throwaway container of the image).
    fn mirror_copy(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o777);
        let out = format!("{}:/out", dir.path().display());
        let vol = format!("{}:/var/lib/tariscope-sync:ro", self.volume());
        docker_ok(&[
            "run",
            "--rm",
            "--user=0",
            "--volume",
            &vol,
            "--volume",
            &out,
            "--entrypoint=bash",
            sync_image(),
            "-c",
            "cp -a /var/lib/tariscope-sync/. /out/",
        ]);
        let db = dir.path().join("tariscope-mirror.db");
        (dir, db)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The emulator container (testcontainers), named `<stage>-sim` on the stage's network,
/// its port 8085 published on the host's loopback.
fn start_sim<'d>(cli: &'d Cli, stage: &Stage) -> testcontainers::Container<'d, GenericImage> {
    let (name, tag) = sim_image().split_once(':').unwrap();
    let image = GenericImage::new(name, tag)
        .with_exposed_port(8085)
        .with_wait_for(WaitFor::message_on_stderr("tariscope-sim listening"));
    // 20 days of history: within the first incremental window of the payments job (30 days).
    let args = [
        "--listen",
        "0.0.0.0:8085",
        "--log-format",
        "json",
        "--days",
        "20",
    ];
    let runnable = RunnableImage::from((image, args.map(String::from).to_vec()))
        .with_network(stage.network())
        .with_container_name(stage.sim_host());
    cli.run(runnable)
}

/// One HTTP/1.0 GET over loopback: (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

fn sim_json(port: u16, path: &str) -> serde_json::Value {
    let (status, body) = http_get(port, path).unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_until(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    wait_until_explained(what, limit, f, String::new);
}

/// `wait_until`, with `explain()` (the state that matters) in the message when it times out.
fn wait_until_explained(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() >= limit {
            panic!("timed out waiting for {what}; {}", explain());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn inspect(container: &str, format: &str) -> String {
    docker_ok(&["inspect", "-f", format, container])
}

// ---------------------------------------------------------------- tests that run today

#[test]
fn images_are_non_root_with_volume_healthcheck_and_stopsignal() {
    ready!();
    for image in [sim_image(), sync_image()] {
        assert_eq!(inspect(image, "{{.Config.User}}"), "10001:10001", "{image}");
        assert_eq!(
            inspect(image, "{{.Config.StopSignal}}"),
            "SIGTERM",
            "{image}"
        );
        // The user really is unprivileged inside, even with a read-only root filesystem.
        let id = docker_ok(&["run", "--rm", "--read-only", "--entrypoint=id", image, "-u"]);
        assert_eq!(id, "10001", "{image}");
    }
    let volumes = inspect(sync_image(), "{{json .Config.Volumes}}");
    assert!(volumes.contains("/var/lib/tariscope-sync"), "{volumes}");
    let health = inspect(sync_image(), "{{json .Config.Healthcheck.Test}}");
    assert!(health.contains("/healthz"), "{health}");
    let entry = inspect(sync_image(), "{{json .Config.Entrypoint}}");
    assert_eq!(entry, r#"["/usr/local/bin/tariscope-sync"]"#);
}

/// The daemon image's size limit: the runtime base (73.9 MB) plus a stripped daemon (issue 18:
/// 162.6 MB with debug info in the binary, 93.0 MB stripped, measured; see docs/deploy.md).
const DAEMON_IMAGE_MAX_BYTES: u64 = 100_000_000;

#[test]
fn daemon_image_is_slim_and_its_binary_carries_no_debug_info() {
    ready!();
    let size: u64 = inspect(sync_image(), "{{.Size}}").parse().unwrap();
    assert!(
        size <= DAEMON_IMAGE_MAX_BYTES,
        "the daemon image is {:.1} MB, over {:.0} MB",
        size as f64 / 1e6,
        DAEMON_IMAGE_MAX_BYTES as f64 / 1e6
    );
    // The binary itself: no DWARF sections, a link to its separate debug file instead.
    let name = format!("{}-bin", prefix());
    docker_ok(&["create", "--name", &name, sync_image()]);
    let _container = Removed("container", name.clone());
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tariscope-sync");
    docker_ok(&[
        "cp",
        &format!("{name}:/usr/local/bin/tariscope-sync"),
        bin.to_str().unwrap(),
    ]);
    let sections = elf_sections(&std::fs::read(&bin).unwrap());
    // DWARF sections; `.debug_gdb_scripts` is not one (34 loaded bytes naming rustc's gdb
    // pretty-printers, kept by `objcopy --strip-debug`).
    assert!(
        !sections
            .iter()
            .any(|s| s.starts_with(".debug_") && s != ".debug_gdb_scripts"),
        "the daemon binary still has debug sections: {sections:?}"
    );
    assert!(
        sections.iter().any(|s| s == ".gnu_debuglink"),
        "no link to the separate debug info: {sections:?}"
    );
}

/// The section names of a 64-bit little-endian ELF file.
fn elf_sections(elf: &[u8]) -> Vec<String> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(|i| {
            let start = names + u32_at(header(i));
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}

#[test]
fn daemon_image_reads_config_from_env_and_secret_on_a_read_only_root() {
    ready!();
    let stage = Stage::new();
    let mut args = stage.daemon_args(&format!("{}-check", stage.name), false);
    args.push("--rm".into());
    args.push(sync_image().into());
    args.push("check-config".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker_ok(&args);
    assert!(out.contains("configuration OK"), "{out}");
    assert!(
        out.contains(MIRROR),
        "the mirror lives on the volume: {out}"
    );

    // A missing secret is a configuration error (exit 3) naming what to do.
    let out = docker(&[
        "run",
        "--rm",
        "--read-only",
        "--env=TARISCOPE_SYNC__API__PASSWORD_FILE=/run/secrets/nope",
        sync_image(),
        "check-config",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api.password_file"), "{stderr}");
}

#[test]
fn emulator_container_serves_its_private_network_and_the_host() {
    ready!();
    let stage = Stage::new();
    let cli = Cli::default();
    let sim = start_sim(&cli, &stage);
    // From the host, through the published port.
    let port = sim.get_host_port_ipv4(8085);
    let stats = sim_json(port, "/_sim/stats");
    assert!(
        stats["counts"]["subscribers"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    // From another container on the private network, by the emulator's name.
    let probe = format!(
        "exec 3<>/dev/tcp/{}/8085 && printf 'GET /_sim/health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3",
        stage.sim_host()
    );
    let net = format!("--network={}", stage.network());
    let out = docker_ok(&[
        "run",
        "--rm",
        "--read-only",
        &net,
        "--entrypoint=bash",
        sync_image(),
        "-c",
        &probe,
    ]);
    assert!(out.contains(" 200 ") && out.contains("ok"), "{out}");
}

// ---------------------------------------------------------------- tests of the daemon

/// Subscriber ids of the scoped node (1) in the emulator.
fn sim_subscribers(port: u16) -> BTreeSet<i64> {
    sim_json(port, "/_sim/subscribers")
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["node_id"] == 1)
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

/// A payment as both sides list it: (subscriber id, payment id, day).
type PaymentRow = (i64, i64, String);

/// (subscriber ids, every payment row, sorted) in a mirror file. The rows are listed one by
/// one, not grouped by the table's key, so a payment stored twice under any key shows.
fn mirror_rows(db: &Path) -> (BTreeSet<i64>, Vec<PaymentRow>) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn.prepare("SELECT id FROM subscribers").unwrap();
    let subs = st
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut st = conn
        .prepare(
            "SELECT subscriber_id, payment_id, COALESCE(payment_day, '') FROM payments \
             ORDER BY 1, 2, 3",
        )
        .unwrap();
    let pays = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (subs, pays)
}

/// The emulator's own payments of the scoped subscribers, as `mirror_rows` lists them: the
/// mirror must hold exactly these, each once.
fn sim_payments(port: u16, subs: &BTreeSet<i64>) -> Vec<PaymentRow> {
    let mut rows: Vec<PaymentRow> = sim_json(port, "/_sim/payments")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["subscriber_id"].as_i64().unwrap(),
                p["payment_id"].as_i64().unwrap(),
                p["payment_day"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(s, _, _)| subs.contains(s))
        .collect();
    rows.sort();
    rows
}

/// The desired subscriber pushed by the tests: a CSV for `tariscope-sync import`.
fn desired_csv(stage: &Stage, department: i64) -> String {
    let csv = format!(
        "key,fullname,departmentid,accountid\nDOCKER-1,Docker Test Subscriber,{department},ACC-DOCKER-1\n"
    );
    let path = stage.secret_dir.path().join("desired.csv");
    std::fs::write(&path, csv).unwrap();
    set_mode(&path, 0o644);
    path.display().to_string()
}

/// Runs the daemon image once with extra args (not detached) and returns its output.
fn run_daemon_once(stage: &Stage, extra_volume: Option<&str>, args: &[&str]) -> Output {
    let name = format!("{}-once-{}", stage.name, prefix());
    let mut a = stage.daemon_args(&name, false);
    a.push("--rm".into());
    if let Some(v) = extra_volume {
        a.push(format!("--volume={v}"));
    }
    a.push(sync_image().into());
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    docker(&a)
}

/// Starts the daemon detached; jobs every 10 s so a test sees several runs.
fn start_daemon(stage: &Stage) -> Removed {
    let name = format!("{}-sync", stage.name);
    let mut a = stage.daemon_args(&name, true);
    for job in ["subscribers", "payments", "push"] {
        a.push(format!(
            "--env=TARISCOPE_SYNC__JOBS__{}__SCHEDULE=*/10 * * * * *",
            job.to_uppercase()
        ));
    }
    a.push(sync_image().into());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    docker_ok(&a);
    Removed("container", name)
}

/// The pushed subscriber, as often as the emulator holds it.
fn pushed_count(port: u16) -> usize {
    sim_json(port, "/_sim/subscribers")
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["account_number"] == "ACC-DOCKER-1")
        .count()
}

#[test]
fn run_once_entry_backfills_the_volume_and_exits_0() {
    ready!();
    let stage = Stage::new();
    let cli = Cli::default();
    let sim = start_sim(&cli, &stage);
    let port = sim.get_host_port_ipv4(8085);
    let out = run_daemon_once(
        &stage,
        None,
        &["--run-once", "--jobs", "subscribers,payments"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (_dir, db) = stage.mirror_copy();
    let (subs, pays) = mirror_rows(&db);
    let want = sim_subscribers(port);
    assert_eq!(subs, want);
    let sim = sim_payments(port, &want);
    assert!(!sim.is_empty(), "the emulator has payments in the window");
    assert_eq!(
        pays, sim,
        "the mirror holds the emulator's payments, each once"
    );
}

#[test]
fn daemon_pulls_pushes_turns_healthy_and_stops_cleanly_on_docker_stop() {
    ready!();
    let stage = Stage::new();
    let cli = Cli::default();
    let sim = start_sim(&cli, &stage);
    let port = sim.get_host_port_ipv4(8085);
    let department = sim_json(port, "/_sim/subscribers")
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node_id"] == 1)
        .and_then(|s| s["department_id"].as_i64())
        .unwrap();
    let csv = desired_csv(&stage, department);
    let out = run_daemon_once(
        &stage,
        Some(&format!("{csv}:/desired.csv:ro")),
        &["import", "/desired.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "import: {out:?}");

    let daemon = start_daemon(&stage);
    wait_until(
        "the health check to turn healthy",
        Duration::from_secs(90),
        || {
            let s = inspect(&daemon.1, "{{.State.Health.Status}}");
            assert_ne!(s, "unhealthy", "{}", docker_ok(&["logs", &daemon.1]));
            s == "healthy"
        },
    );
    wait_until(
        "the push to create the subscriber",
        Duration::from_secs(90),
        || pushed_count(port) == 1,
    );
    // Let a pull cycle finish after the push, then stop as an operator would.
    std::thread::sleep(Duration::from_secs(12));
    docker_ok(&["stop", "--time=45", &daemon.1]);
    assert_eq!(
        inspect(&daemon.1, "{{.State.ExitCode}}"),
        "0",
        "docker stop ends it with exit 0"
    );
    assert_eq!(inspect(&daemon.1, "{{.State.OOMKilled}}"), "false");

    let (_dir, db) = stage.mirror_copy();
    let (subs, pays) = mirror_rows(&db);
    let want = sim_subscribers(port);
    assert_eq!(
        subs, want,
        "the mirror holds the node's subscribers, pushed one included"
    );
    let sim = sim_payments(port, &want);
    assert!(!sim.is_empty(), "the emulator has payments in the window");
    assert_eq!(
        pays, sim,
        "no duplicate payments: the emulator's own, each once"
    );
    assert_eq!(pushed_count(port), 1, "pushed exactly once");
    let (running, ok_jobs) = run_outcomes(&db);
    assert_eq!(running, 0, "SIGTERM left no run unfinished in the mirror");
    for job in ["subscribers", "payments", "push"] {
        assert!(ok_jobs.contains(job), "no ok run of {job}: {ok_jobs:?}");
    }
}

/// (runs still marked running, jobs with at least one ok run) in a mirror file.
fn run_outcomes(db: &Path) -> (i64, BTreeSet<String>) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let running = conn
        .query_row(
            "SELECT COUNT(*) FROM job_runs WHERE outcome = 'running'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut st = conn
        .prepare("SELECT DISTINCT job FROM job_runs WHERE outcome = 'ok'")
        .unwrap();
    let ok = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (running, ok)
}

#[test]
fn emulator_paused_or_stopped_mid_run_daemon_retries_and_recovers_without_duplicates() {
    ready!();
    let stage = Stage::new();
    let cli = Cli::default();
    let sim = start_sim(&cli, &stage);
    let port = sim.get_host_port_ipv4(8085);
    let department = sim_json(port, "/_sim/subscribers")
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node_id"] == 1)
        .and_then(|s| s["department_id"].as_i64())
        .unwrap();
    let csv = desired_csv(&stage, department);
    let out = run_daemon_once(
        &stage,
        Some(&format!("{csv}:/desired.csv:ro")),
        &["import", "/desired.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "import: {out:?}");
    let daemon = start_daemon(&stage);
    let requests = |port: u16| -> u64 {
        sim_json(port, "/_sim/stats")["requests"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0)
    };
    wait_until("the first requests", Duration::from_secs(60), || {
        requests(port) > 0
    });

    // Pause mid-run: connections hang, then time out; the daemon retries.
    docker_ok(&["pause", sim.id()]);
    std::thread::sleep(Duration::from_secs(15));
    docker_ok(&["unpause", sim.id()]);
    let after_pause = requests(port);
    wait_until("requests after the pause", Duration::from_secs(90), || {
        requests(port) > after_pause
    });
    wait_until("the push to land once", Duration::from_secs(90), || {
        pushed_count(port) == 1
    });
    // Stop the emulator only once the daemon has recorded its create as done and read the
    // subscriber back into the mirror. (A create cut off before its answer would be looked
    // up and, not found in the fresh emulator, sent again; one never read back is blocked
    // as "not in the mirror" rather than as removed.)
    wait_until(
        "the daemon to record its create and read the subscriber back",
        Duration::from_secs(90),
        || mirror_count(&stage, CREATED_AND_MIRRORED) == 1,
    );
    assert_eq!(
        inspect(&daemon.1, "{{.State.Running}}"),
        "true",
        "the daemon survives the outage: {}",
        docker_ok(&["logs", &daemon.1])
    );

    // Stop and start it: connection refused, then a fresh emulator with new tokens. (The
    // emulator keeps its data in memory, so the pushed subscriber goes.)
    docker_ok(&["stop", "--time=5", sim.id()]);
    std::thread::sleep(Duration::from_secs(12));
    docker_ok(&["start", sim.id()]);
    let port = sim.get_host_port_ipv4(8085);
    let port = if http_get(port, "/_sim/health").is_ok() {
        port
    } else {
        // Published ports can change on restart.
        inspect(
            sim.id(),
            r#"{{(index (index .NetworkSettings.Ports "8085/tcp") 0).HostPort}}"#,
        )
        .parse()
        .unwrap()
    };
    wait_until(
        "the emulator to answer again",
        Duration::from_secs(30),
        || http_get(port, "/_sim/health").is_ok(),
    );
    wait_until(
        "requests after the restart",
        Duration::from_secs(90),
        || requests(port) > 5,
    );
    // The restarted emulator lost the pushed subscriber, as if an operator had deleted it.
    // The daemon does not create it again on its own: once the subscribers job sees it gone,
    // the push lists the desired row as blocked ("removed in Tariscope", src/sync/plan.rs)
    // for a person to decide.
    wait_until_explained(
        "the push to block the subscriber removed in Tariscope",
        Duration::from_secs(120),
        || mirror_count(&stage, BLOCKED_AS_REMOVED) == 1,
        || {
            format!(
                "outbox {:?}; conflicts {:?}; the daemon's log:\n{}",
                mirror_rows_of(&stage, "SELECT op || ' ' || state FROM outbox"),
                mirror_rows_of(&stage, "SELECT resolution || ': ' || reason FROM conflicts"),
                String::from_utf8_lossy(&docker(&["logs", "--tail=40", &daemon.1]).stderr)
            )
        },
    );
    // A further push cycle (every 10 s) must not create it either.
    std::thread::sleep(Duration::from_secs(12));
    docker_ok(&["stop", "--time=45", &daemon.1]);
    assert_eq!(inspect(&daemon.1, "{{.State.ExitCode}}"), "0");

    let (_dir, db) = stage.mirror_copy();
    let (subs, pays) = mirror_rows(&db);
    let want = sim_subscribers(port);
    assert!(want.is_subset(&subs), "every node subscriber is mirrored");
    assert_eq!(
        pays,
        sim_payments(port, &want),
        "no duplicate payments: the emulator's own, each once, across the outage"
    );
    assert_eq!(
        pushed_count(port),
        0,
        "a subscriber removed in Tariscope is not created again without a person"
    );
}

/// The pushed row's create, recorded as done in the outbox, its subscriber in the mirror.
const CREATED_AND_MIRRORED: &str = "SELECT COUNT(*) FROM desired_subscribers d \
     JOIN outbox o ON o.key = d.key AND o.op = 'create' AND o.state = 'done' \
     JOIN subscribers s ON s.id = d.tariscope_id AND s.removed_at IS NULL WHERE d.key = 'DOCKER-1'";

/// The pushed row, listed as blocked because its subscriber was removed in Tariscope.
const BLOCKED_AS_REMOVED: &str = "SELECT COUNT(*) FROM conflicts WHERE key = 'DOCKER-1' \
     AND resolution = 'blocked' AND reason LIKE '%removed in Tariscope%'";

/// A `SELECT COUNT(*)` on the mirror, copied out of the volume while the daemon runs (-1 when
/// the copy cannot be read yet).
fn mirror_count(stage: &Stage, sql: &str) -> i64 {
    let (_dir, db) = stage.mirror_copy();
    rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(-1)
}

/// The one text column of `sql`'s rows in a copy of the mirror (for failure messages).
fn mirror_rows_of(stage: &Stage, sql: &str) -> Vec<String> {
    let (_dir, db) = stage.mirror_copy();
    let read = || -> rusqlite::Result<Vec<String>> {
        let conn = rusqlite::Connection::open(&db)?;
        let mut st = conn.prepare(sql)?;
        st.query_map([], |r| r.get(0))?.collect()
    };
    read().unwrap_or_else(|e| vec![format!("unreadable: {e}")])
}

/// `deploy/docker-compose.yml` parses and names the images, secret and volume the docs use
/// (with `docker-compose` or `docker compose`, whichever exists; skipped when neither does).
#[test]
fn compose_file_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/docker-compose.yml");
    let file = file.to_str().unwrap();
    let candidates: [&[&str]; 2] = [&["docker-compose"], &["docker", "compose"]];
    for cmd in candidates {
        let Ok(out) = Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["-f", file, "config"])
            .output()
        else {
            continue;
        };
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown") {
            continue; // `docker compose` without the plugin
        }
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{cmd:?} config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for want in [
            "tariscope-sim:local",
            "tariscope-sync:local",
            "tariscope-api-password",
            "/var/lib/tariscope-sync",
            "read_only: true",
        ] {
            assert!(text.contains(want), "compose config lacks {want}:\n{text}");
        }
        return;
    }
    deploy_support::skip("neither docker-compose nor docker compose is installed");
}
