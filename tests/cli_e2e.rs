//! End-to-end tests of the real `tariscope-sync` binary against the in-process emulator:
//! `--run-once`, exit codes, `status`, bad config, SIGTERM during a backfill and resuming,
//! `/metrics` after a run, and `demo`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle};
use tariscope_sync::store::Store;
use tokio::process::Command;

mod cli_support;
use cli_support::{BIN, free_port, kill, run, text};

async fn sim(subscribers: usize, days: u32) -> SimHandle {
    SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed: 5,
            nodes: 1,
            departments_per_node: 2,
            subscribers,
            days,
            end_date: None,
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn write_config(dir: &Path, sim: &SimHandle, extra: &str) -> PathBuf {
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

async fn count(store: &Store, table: &str) -> i64 {
    store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == table)
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_fills_the_mirror_and_exits_0() {
    let sim = sim(25, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let out = run(&config, &["--run-once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    assert_eq!(count(&store, "subscribers").await, 25);
    assert!(count(&store, "payments").await > 0);
    assert!(count(&store, "account_summaries").await > 0);
    assert!(count(&store, "tariff_plans").await > 0);
    let status = run(&config, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .filter(|j| j["job"] != "push")
            .all(|j| j["last_run"]["outcome"] == "ok"),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_method_gives_exit_2_and_status_says_why() {
    let sim = sim(30, 5).await;
    sim.set_method_fault(
        "accounts.charges",
        Fault {
            error_rate: 0.3,
            error_status: 500,
            ..Fault::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let out = run(&config, &["--run-once", "--jobs", "subscribers,charges"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let status = run(&config, &["status"]).await;
    let s = text(&status);
    assert!(s.contains("charges") && s.contains("partial"), "{s}");
    assert!(s.contains("HTTP 500"), "status shows the error: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_exits_3_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[api]\nbase_url = \"ftp://x\"\nformat = \"yaml\"\n[jobs.payments]\nschedule = \"*/61 * * * *\"\n[nonsense]\nx = 1\n").unwrap();
    let out = run(&path, &["check-config"]).await;
    assert_eq!(out.status.code(), Some(3));
    let t = text(&out);
    for needle in [
        "api.base_url",
        "api.format",
        "api.username",
        "api.password",
        "jobs.payments.schedule",
        "nonsense.x",
        "scope",
    ] {
        assert!(t.contains(needle), "{needle} missing from:\n{t}");
    }
    let out = run(&path, &["--run-once"]).await;
    assert_eq!(out.status.code(), Some(3), "the daemon refuses too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_backfill_exits_0_and_the_next_run_resumes() {
    let sim = sim(20, 40).await;
    sim.set_method_fault(
        "accounts.summary",
        Fault {
            latency: Duration::from_millis(20),
            ..Fault::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let first = run(&config, &["--run-once", "--jobs", "subscribers"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(39)).to_string();
    // `--to` too: the daemon's "today" is in its configured time zone, which around
    // midnight UTC is already tomorrow.
    let to = today.to_string();
    let backfill = [
        "--run-once",
        "--jobs",
        "summaries",
        "--from",
        &from,
        "--to",
        &to,
    ];
    // 20 subscribers x 40 days at 20 ms and concurrency 8: about 2 s; stop it after 100 of
    // the 800 days.
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(backfill)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Stop it once it is well under way (a fixed sleep would miss that on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.request_count("accounts.summary") < 100 {
        assert!(Instant::now() < deadline, "the backfill never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = Instant::now();
    kill("-TERM", pid);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "exited within the grace period"
    );
    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    let kept = count(&store, "account_summaries").await;
    assert!(
        kept > 0 && kept < 800,
        "part of the backfill is committed: {kept}"
    );
    let runs = store.job_runs("summaries").await.unwrap();
    assert_eq!(
        runs[0].outcome,
        tariscope_sync::store::Outcome::Failed,
        "{runs:?}"
    );
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted"),
        "{runs:?}"
    );
    drop(store);

    sim.reset_counters();
    let second = run(&config, &backfill).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let store = Store::open(dir.path().join("mirror.db")).unwrap();
    assert_eq!(
        count(&store, "account_summaries").await,
        800,
        "20 subscribers x 40 days"
    );
    let refetched = sim.request_count("accounts.summary");
    assert!(
        refetched < 800,
        "resumed from the checkpoint: fetched {refetched} of 800 again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_metrics_health_and_stops_on_sigterm() {
    let sim = sim(10, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &sim, "");
    let text_cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&config, text_cfg).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // Catch-up runs every job at start (none ran before); wait for the push job's metrics.
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        if let Ok(r) = http.get(url("/metrics")).send().await {
            let body = r.text().await.unwrap_or_default();
            if body.contains("tariscope_sync_job_runs_total{job=\"summaries\"")
                && body.contains("tariscope_sync_job_runs_total{job=\"push\"")
            {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the catch-up runs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metrics.contains(
            "tariscope_sync_api_requests_total{method=\"subscriber.list.node\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("tariscope_sync_job_runs_total{job=\"subscribers\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tariscope_sync_last_success_timestamp_seconds"),
        "{metrics}"
    );
    assert_eq!(
        http.get(url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(http.get(url("/readyz")).send().await.unwrap().status(), 200);
    kill("-TERM", pid);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_and_fills_a_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--subscribers", "60", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("pushed to Tariscope: demo-001 -> #"), "{t}");
    let store = Store::open(dir.path().join("demo/mirror.db")).unwrap();
    assert_eq!(
        count(&store, "subscribers").await,
        65,
        "60 pulled + 5 pushed and read back"
    );
    assert_eq!(count(&store, "desired_subscribers").await, 5);
    assert!(count(&store, "account_summaries").await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_rights_and_reports_what_to_do() {
    use tariscope_sync::sim::SimUser;
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            subscribers: 5,
            days: 2,
            ..DatasetConfig::default()
        },
        users: vec![
            SimUser::demo(),
            SimUser::with_rights(
                "narrow",
                "pw",
                &["claims", "subscriber.list.node", "tariscope.summary"],
            ),
        ],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let out = run(&config, &["doctor"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("all checks passed") && t.contains("edition"),
        "{t}"
    );
    assert!(
        t.contains("may call `sql`"),
        "demo holds every right, sql included: {t}"
    );

    let narrow = std::fs::read_to_string(&config).unwrap().replace(
        "username = \"demo\"\npassword = \"demo\"",
        "username = \"narrow\"\npassword = \"pw\"",
    );
    std::fs::write(&config, narrow).unwrap();
    let out = run(&config, &["doctor"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAIL  rights for the payments job: missing accounts.payments"),
        "{t}"
    );
    assert!(t.contains("Method Rights"), "says what to do: {t}");
    assert!(!t.contains("may call `sql`"), "{t}");
}

#[tokio::test]
async fn completions_are_printed() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("tariscope-sync") && script.contains("--run-once"),
        "{script}"
    );
}
