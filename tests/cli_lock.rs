//! Two processes on one mirror (issue 24), with the real binary: a job runs in at most one
//! process at a time. Two `--run-once --jobs push` at once against an emulator that accepts
//! duplicate account numbers create each subscriber once; a backfill started while the
//! daemon runs the same job waits for it (and `--no-wait` exits 75 naming the holder);
//! `status` shows who runs a job; a SIGKILLed holder's lock goes to the next process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle, WireVariant};
use tariscope_sync::store::{Outcome, Store};
use tariscope_sync::sync::import::{Format, parse};
use tokio::io::AsyncReadExt;
use tokio::process::Child;

mod cli_support;
use cli_support::{free_port, kill, read_until, run, spawn, text};

async fn sim(subscribers: usize) -> SimHandle {
    sim_with(subscribers, WireVariant::default()).await
}

async fn sim_with(subscribers: usize, wire: WireVariant) -> SimHandle {
    SimHandle::start(SimConfig {
        wire,
        dataset: DatasetConfig {
            seed: 24,
            nodes: 1,
            departments_per_node: 1,
            subscribers,
            days: 10,
            end_date: None,
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A config whose only scheduled runs are the daemon's catch-up (payments at 03:00, the
/// rest off unless `jobs` names them).
fn write_config(dir: &Path, sim: &SimHandle, jobs: &[&str], concurrency: usize) -> PathBuf {
    let mut text = format!(
        "shutdown_grace_secs = 10\n\
         [api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0.0\nconcurrency = 16\n\
         [retry]\nmax_attempts = 1\n\
         [mirror]\npath = \"{}\"\n\
         [scope]\nnodes = [1]\n\
         [serve]\nlisten = \"\"\n",
        sim.base_url(),
        dir.join("mirror.db").display()
    );
    for job in [
        "reference",
        "subscribers",
        "payments",
        "charges",
        "summaries",
        "push",
    ] {
        text.push_str(&format!(
            "[jobs.{job}]\nenabled = {}\nschedule = \"0 0 3 * * *\"\nconcurrency = {concurrency}\n",
            jobs.contains(&job)
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The entry of `job` in `status --json`.
async fn status_of(config: &Path, job: &str) -> serde_json::Value {
    let out = run(config, &["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == job)
        .unwrap()
        .clone()
}

/// The `running` entry of `job` in `status --json` (null when no process runs it).
async fn running(config: &Path, job: &str) -> serde_json::Value {
    status_of(config, job).await["running"].clone()
}

/// Polls `status` until `job` runs in process `pid`: its lock held by `pid` and its run
/// recorded as running (not merely its lock taken for a moment at the daemon's start).
async fn wait_until_running_in(config: &Path, job: &str, pid: u32) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = status_of(config, job).await;
        if j["running"]["pid"] == pid && j["last_run"]["outcome"] == "running" {
            return j["running"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {job} running in pid {pid}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Slow answers for `method`, so a run of it lasts while the test looks at it.
fn slow(sim: &SimHandle, method: &str, ms: u64) {
    sim.set_method_fault(
        method,
        Fault {
            latency: Duration::from_millis(ms),
            ..Fault::default()
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_pushing_the_same_200_rows_create_each_once() {
    // A server that refuses neither a repeated account number nor a number assigned
    // already: only the lock keeps the second process from creating the same subscribers
    // and numbers again.
    let sim = sim_with(
        5,
        WireVariant {
            accept_duplicate_dns: true,
            ..WireVariant::default()
        },
    )
    .await;
    sim.set_accept_duplicate_accounts(true);
    // Slow enough that the two pushes overlap.
    slow(&sim, "subscriber.create", 5);
    let state = sim.state();
    let dep = state.departments[0].id;
    let pbx = state.pbxs.iter().find(|p| p.node_id == 1).unwrap().id;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &["push"], 8);
    let mut csv = String::from("key,fullname,departmentid,subscribertype,accountnumber,dns\n");
    for i in 0..200 {
        csv.push_str(&format!(
            "k-{i:03},Abonent {i},{dep},0,LOCK-{i},{pbx}/55{i:03}\n"
        ));
    }
    {
        let store = Store::open(dir.path().join("mirror.db")).unwrap();
        let batch = parse(&csv, Format::Csv).unwrap();
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        store
            .import_desired(batch, "desired.csv".into(), "2026-01-01T00:00:00Z".into())
            .await
            .unwrap();
    }

    let args = ["--run-once", "--jobs", "push"];
    let (a, b) = (spawn(&config, &args), spawn(&config, &args));
    let (a, b) = (
        a.wait_with_output().await.unwrap(),
        b.wait_with_output().await.unwrap(),
    );
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));

    let state = sim.state();
    let ours: Vec<_> = state
        .subscribers
        .iter()
        .filter(|s| {
            s.account_number
                .as_deref()
                .is_some_and(|a| a.starts_with("LOCK-"))
        })
        .collect();
    assert_eq!(ours.len(), 200, "exactly one subscriber per desired row");
    let numbers: usize = ours.iter().map(|s| s.dns.len()).sum();
    assert_eq!(numbers, 200, "exactly one number each");
    let creates = sim.request_count("subscriber.create");
    assert!(
        creates <= 200,
        "{creates} subscriber.create sent for 200 rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_started_while_the_daemon_runs_the_job_waits_then_runs() {
    let sim = sim(200).await;
    let dir = tempfile::tempdir().unwrap();
    // One payments call at a time, each slow: the daemon's catch-up run lasts (200 x 100 ms)
    // until the test lets it finish.
    let config = write_config(dir.path(), &sim, &["subscribers", "payments"], 1);
    slow(&sim, "accounts.payments", 100);
    let daemon = spawn(&config, &[]);
    let daemon_pid = daemon.id().unwrap();
    let holder = wait_until_running_in(&config, "payments", daemon_pid).await;
    assert_eq!(holder["mode"], "daemon", "{holder}");

    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(5)).to_string();
    let to = today.to_string();
    let backfill = [
        "--run-once",
        "--jobs",
        "payments",
        "--from",
        &from,
        "--to",
        &to,
    ];
    // --no-wait: exit 75 at once, naming the holder.
    let mut no_wait = backfill.to_vec();
    no_wait.push("--no-wait");
    let out = run(&config, &no_wait).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(75), "{t}");
    assert!(
        t.contains(&format!("pid {daemon_pid} on host")) && t.contains("--no-wait"),
        "{t}"
    );

    // Without it: waits, saying for whom, then runs.
    let mut waiting = spawn(&config, &backfill);
    let mut stderr = waiting.stderr.take().unwrap();
    let mut seen = String::new();
    read_until(&mut stderr, "waiting for it", 1, &mut seen).await;
    assert!(
        seen.contains(&format!("pid {daemon_pid} on host")),
        "{seen}"
    );
    assert_eq!(
        running(&config, "payments").await["pid"],
        daemon_pid,
        "the daemon still runs it"
    );
    sim.clear_faults();
    let status = waiting.wait().await.unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert_eq!(status.code(), Some(0), "{seen}{rest}");

    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    let runs = store.job_runs("payments").await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (backfill_run, daemon_run) = (&runs[0], &runs[1]);
    assert_eq!(backfill_run.outcome, Outcome::Ok, "{runs:?}");
    assert_eq!(daemon_run.outcome, Outcome::Ok, "{runs:?}");
    assert!(
        daemon_run.ended_at.as_deref().unwrap() <= backfill_run.started_at.as_str(),
        "the runs did not overlap: {runs:?}"
    );
    kill("-TERM", daemon_pid);
    let out = daemon.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_holder_releases_the_lock_for_the_next_process() {
    let sim = sim(50).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &["subscribers", "payments"], 1);
    let first = run(&config, &["--run-once", "--jobs", "subscribers"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    slow(&sim, "accounts.payments", 200);
    let holder = spawn(&config, &["--run-once", "--jobs", "payments"]);
    let pid = holder.id().unwrap();
    wait_until_running_in(&config, "payments", pid).await;
    kill("-KILL", pid);
    let out = holder.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(running(&config, "payments").await, serde_json::Value::Null);

    sim.clear_faults();
    let next = run(&config, &["--run-once", "--jobs", "payments", "--no-wait"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    let runs = store.job_runs("payments").await.unwrap();
    assert_eq!(runs[0].outcome, Outcome::Ok, "{runs:?}");
    assert_eq!(runs[1].outcome, Outcome::Failed, "{runs:?}");
    assert!(
        runs[1]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted"),
        "the killed run is closed as interrupted: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_new_mirror_at_once_migrate_it_once() {
    let sim = sim(1).await;
    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sim, &[], 1);
        let children: Vec<Child> = (0..4).map(|_| spawn(&config, &["status"])).collect();
        for child in children {
            let out = child.wait_with_output().await.unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_skips_ticks_of_a_job_another_process_runs_and_says_so_once() {
    use tariscope_sync::lock::{Holder, try_acquire};
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &["payments"], 1);
    // Every second.
    let port = free_port();
    let every_second = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "[jobs.payments]\nenabled = true\nschedule = \"0 0 3 * * *\"",
            "[jobs.payments]\nenabled = true\nschedule = \"* * * * * *\"",
        )
        .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&config, every_second).unwrap();
    // This test process holds the payments job.
    let held = try_acquire(
        &dir.path().join("mirror.db"),
        "payments",
        &Holder::this_process("test", chrono::Utc::now()),
    )
    .unwrap();
    let mut daemon = spawn(&config, &["--log-level", "tariscope_sync=debug"]);
    let pid = daemon.id().unwrap();
    let mut stderr = daemon.stderr.take().unwrap();
    let mut log = String::new();
    // The catch-up run and at least two ticks are skipped.
    read_until(&mut stderr, "skipping this tick", 3, &mut log).await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tariscope_sync_job_skipped_total{job=\"payments\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no skipped count: {metrics}"));
    assert!(skipped >= 3, "{skipped}");
    drop(held);
    read_until(&mut stderr, "the job ran here again", 1, &mut log).await;
    assert_eq!(
        log.matches("later ticks are skipped quietly").count(),
        1,
        "logged once (at warn; the other skips at debug): {log}"
    );
    assert!(log.contains("(test) since"), "names the holder: {log}");
    kill("-TERM", pid);
    assert_eq!(daemon.wait().await.unwrap().code(), Some(0));
}
