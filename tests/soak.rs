//! Soak (issue 16.3): the real daemon against the in-process emulator, every job scheduled
//! every 5 seconds, light faults (2 % 503s, 1 % 429s, 1 ms latency), `/metrics` served but
//! never scraped, for `SOAK_SECS` (default 1800). Every 10 s (`SOAK_SAMPLE_SECS`) it samples
//! the daemon's resident memory (all of it, and the anonymous part: heap and stacks, not the
//! code pages the kernel maps in as new paths run), its open file descriptors, the mirror's
//! and the WAL's size and the job runs, and prints the sample. After the warm-up
//! (`SOAK_WARMUP_SECS`, default 300, at most a sixth of the run) it must stay flat: the
//! median of the last six samples of resident memory and of descriptors at most 5 % above
//! the median of the first six; its anonymous part (heap and stacks) must not keep rising:
//! at most 5 % above the median of the six samples halfway (see `flat_checks` for why
//! halfway); the WAL never above 64 MiB and at the end no more than 5 %
//! (or 1 MiB) above its size after the warm-up (checkpoints work); no run `failed`, and every
//! job finished `ok` runs in the last third. SIGTERM then ends the daemon with exit 0.
//!
//! Ignored by default (it takes half an hour):
//! `SOAK_SECS=1800 cargo test --release --test soak -- --ignored --nocapture`.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{BIN, kill};
use tariscope_sync::sim::{DatasetConfig, Fault, FaultPlan, SimConfig, SimHandle};
use tariscope_sync::sync::Job;

#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    /// Anonymous resident memory (`RssAnon`): the heap, stacks; not the binary's code pages,
    /// which the kernel pages in as new code paths run and may drop again.
    anon_kib: u64,
    fds: u64,
    mirror: u64,
    wal: u64,
    runs: u64,
    failed: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 30-minute soak: SOAK_SECS=1800 cargo test --release --test soak -- --ignored --nocapture"]
async fn daemon_stays_flat_under_load() {
    let secs = env_secs("SOAK_SECS", 1800);
    let every = env_secs("SOAK_SAMPLE_SECS", 10);
    let warmup = env_secs("SOAK_WARMUP_SECS", 300).min(secs / 6);
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed: 16,
            nodes: 1,
            departments_per_node: 3,
            subscribers: 300,
            days: 30,
            end_date: None,
        },
        faults: FaultPlan {
            global: Fault {
                latency: Duration::from_millis(1),
                error_rate: 0.02,
                error_status: 503,
                rate_limit_rate: 0.01,
                retry_after_secs: 1,
                ..Fault::default()
            },
            ..FaultPlan::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let mirror = dir.path().join("mirror.db");
    let wal = dir.path().join("mirror.db-wal");

    // Desired rows the first push creates; after that the data stays as it is.
    let department = sim.state().departments[0].id;
    let mut csv = String::from("key,fullname,departmentid,subscribertype,accountnumber,street\n");
    for i in 0..20 {
        csv.push_str(&format!(
            "soak-{i},Soak Subscriber {i},{department},0,SOAK-{i},Vulytsia {i}\n"
        ));
    }
    let desired = dir.path().join("desired.csv");
    std::fs::write(&desired, csv).unwrap();
    let imported = cli_support::run(&config, &["import", desired.to_str().unwrap()]).await;
    assert!(
        imported.status.success(),
        "import: {}",
        cli_support::text(&imported)
    );

    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut daemon = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // A failed check panics before the orderly stop below: the daemon must not outlive it
        // (one did, and kept loading the machine).
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = daemon.id().unwrap();
    eprintln!(
        "soak: {secs} s, sample every {every} s, warm-up {warmup} s, daemon pid {pid}, mirror {}",
        mirror.display()
    );
    eprintln!(
        "{:>6} {:>9} {:>9} {:>5} {:>10} {:>10} {:>6} {:>6}",
        "t (s)", "rss KiB", "anon KiB", "fds", "mirror B", "wal B", "runs", "failed"
    );
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(every)).await;
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited during the soak; its log: {}",
            std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
        );
        let (runs, failed) = run_counts(&mirror);
        let s = Sample {
            at: start.elapsed(),
            rss_kib: status_kib(pid, "VmRSS:"),
            anon_kib: status_kib(pid, "RssAnon:"),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count() as u64,
            mirror: size(&mirror),
            wal: size(&wal),
            runs,
            failed,
        };
        eprintln!(
            "{:>6} {:>9} {:>9} {:>5} {:>10} {:>10} {:>6} {:>6}",
            s.at.as_secs(),
            s.rss_kib,
            s.anon_kib,
            s.fds,
            s.mirror,
            s.wal,
            s.runs,
            s.failed
        );
        samples.push(s);
    }
    let warm: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= Duration::from_secs(warmup))
        .collect();
    assert!(
        warm.len() >= 12,
        "too few samples after the warm-up: {}",
        warm.len()
    );
    let (first, last) = (warm[0], warm[warm.len() - 1]);
    eprintln!("first after warm-up: {first:?}");
    eprintln!("last:                {last:?}");
    eprintln!(
        "max after warm-up: rss {} KiB, anon {} KiB, fds {}, mirror {} B, wal {} B",
        warm.iter().map(|s| s.rss_kib).max().unwrap(),
        warm.iter().map(|s| s.anon_kib).max().unwrap(),
        warm.iter().map(|s| s.fds).max().unwrap(),
        warm.iter().map(|s| s.mirror).max().unwrap(),
        warm.iter().map(|s| s.wal).max().unwrap()
    );

    let median = |f: fn(&Sample) -> u64, from: &[&Sample]| {
        let mut v: Vec<u64> = from.iter().map(|s| f(s)).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let curve: Vec<String> = warm
        .chunks(30)
        .map(|c| {
            format!(
                "{}-{} s: rss {} anon {}",
                c[0].at.as_secs(),
                c[c.len() - 1].at.as_secs(),
                median(|s| s.rss_kib, c),
                median(|s| s.anon_kib, c)
            )
        })
        .collect();
    eprintln!(
        "medians per 30 samples, 5 minutes at the default rate (KiB): {}",
        curve.join("; ")
    );
    for c in flat_checks(&warm) {
        let (a, b) = (median(c.of, c.from), median(c.of, &warm[warm.len() - 6..]));
        eprintln!("{}: median {a} {}, {b} in the last minute", c.what, c.since);
        assert!(
            b * 100 <= a * 105,
            "{} grew: median {a} {}, {b} in the last minute (more than 5 %)",
            c.what,
            c.since
        );
    }
    let wal_max = warm.iter().map(|s| s.wal).max().unwrap();
    assert!(
        wal_max <= 64 << 20,
        "the WAL reached {wal_max} bytes: checkpoints do not keep it bounded"
    );
    assert!(
        last.wal <= (first.wal * 105 / 100).max(first.wal + (1 << 20)),
        "the WAL grew from {} to {} bytes after the warm-up",
        first.wal,
        last.wal
    );
    let failed_during = last.failed - first.failed;
    assert_eq!(
        failed_during,
        0,
        "{failed_during} job runs failed after the warm-up (see job_runs in {})",
        mirror.display()
    );
    for job in Job::ALL.map(Job::as_str) {
        let ok = ok_runs_in_last_third(&mirror, job);
        assert!(
            ok > 0,
            "job {job} finished no ok run in the last third of the soak"
        );
    }

    kill("-TERM", pid);
    let status = tokio::time::timeout(Duration::from_secs(60), daemon.wait())
        .await
        .expect("the daemon stops within 60 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    sim.shutdown().await;
}

/// What must stay flat, from which six samples on.
///
/// Resident memory and descriptors: from the first minute after the warm-up (issue 16's
/// measure). The anonymous part is judged from halfway: glibc's heap keeps free pages
/// resident where live allocations share them, and that share rises while the runs' mix of
/// allocations settles (fast, then slowly), within an extent that does not move (a 30-minute
/// soak on 2026-12-04: malloc_stats' "system bytes" 8,695,808 from minute 1 to minute 27,
/// the bytes in use 3.9-5.8 MB at every sample with no trend, the heap's resident part
/// 4.8 MB at minute 3 and 5.3-5.5 MB at minute 16). A leak keeps rising in the second half
/// too; settling does not.
/// (The job-runs leak this soak found grew the live heap by a third in 14 minutes.)
fn flat_checks<'a>(warm: &'a [&'a Sample]) -> [Check<'a>; 3] {
    let first = &warm[..6];
    let half = &warm[warm.len() / 2 - 3..warm.len() / 2 + 3];
    let after = "in the first minute after the warm-up";
    [
        Check {
            what: "resident memory (KiB)",
            of: |s| s.rss_kib,
            from: first,
            since: after,
        },
        Check {
            what: "open file descriptors",
            of: |s| s.fds,
            from: first,
            since: after,
        },
        Check {
            what: "anonymous resident memory (KiB)",
            of: |s| s.anon_kib,
            from: half,
            since: "halfway after the warm-up",
        },
    ]
}

/// One measure, the samples its last minute is compared with, and what they are.
struct Check<'a> {
    what: &'static str,
    of: fn(&Sample) -> u64,
    from: &'a [&'a Sample],
    since: &'static str,
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A `kB` line of `/proc/PID/status` (`VmRSS:`, `RssAnon:`).
fn status_kib(pid: u32, line: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{line} in /proc/{pid}/status"))
}

fn open_mirror(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Finished runs, and failed ones, so far.
fn run_counts(path: &std::path::Path) -> (u64, u64) {
    if !path.exists() {
        return (0, 0);
    }
    open_mirror(path)
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'failed') FROM job_runs WHERE outcome != 'running'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or((0, 0))
}

/// `ok` runs among the last third of `job`'s runs.
fn ok_runs_in_last_third(path: &std::path::Path, job: &str) -> u64 {
    let c = open_mirror(path);
    let total: u64 = c
        .query_row("SELECT count(*) FROM job_runs WHERE job = ?1", [job], |r| {
            r.get(0)
        })
        .unwrap();
    c.query_row(
        "SELECT count(*) FROM (SELECT outcome FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2) WHERE outcome = 'ok'",
        (job, (total / 3).max(1)),
        |r| r.get(0),
    )
    .unwrap()
}

/// Every job every 5 s, retries that absorb the light faults, `/metrics` served as by
/// default but never scraped (its histograms must not pile up).
fn write_config(dir: &std::path::Path, sim: &SimHandle) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let mut text = format!(
        "shutdown_grace_secs = 20\n\
         [api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0.0\nconcurrency = 8\n\
         [retry]\nmax_attempts = 6\ninitial_delay_ms = 20\nmax_delay_ms = 1500\nmax_elapsed_secs = 30\n\
         [mirror]\npath = \"{}\"\n\
         [scope]\nnodes = [1]\n\
         [serve]\nlisten = \"127.0.0.1:{}\"\n",
        sim.base_url(),
        dir.join("mirror.db").display(),
        cli_support::free_port()
    );
    for job in Job::ALL.map(Job::as_str) {
        text.push_str(&format!(
            "[jobs.{job}]\nenabled = true\nschedule = \"*/5 * * * * *\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}
