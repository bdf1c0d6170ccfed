//! What the daemon's log says, read as an operator's tools read it: the JSON lines of a real
//! `--run-once` (every event of a job names its job and run, issue 20).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

mod cli_support;
use cli_support::{BIN, small_sim};

/// A config for the emulator at `base_url` with these `[log]` lines.
fn write_config(dir: &Path, base_url: &str, log: &str) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{base_url}\"\nusername = \"demo\"\npassword = \"demo\"\n\
             rate_per_sec = 0\n[mirror]\npath = \"{}\"\n[scope]\nnodes = [1]\n\
             [serve]\nlisten = \"\"\n[log]\n{log}\n",
            dir.join("mirror.db").display()
        ),
    )
    .unwrap();
    config
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_job_names_its_job_and_run_in_json() {
    let sim = small_sim(20, 12, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.base_url(),
        "format = \"json\"\nlevel = \"info,tariscope_sync::api=debug\"",
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--run-once")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();

    let mut current: Option<String> = None;
    let mut finished = BTreeSet::new();
    let mut inside = 0;
    let mut requests = 0;
    for e in &events {
        let message = text(e, "message");
        if message == "job started" {
            assert!(current.is_none(), "a job started inside another: {e}");
            current = Some(text(e, "job"));
            assert!(!text(e, "job").is_empty(), "job started names no job: {e}");
            continue;
        }
        let Some(job) = &current else { continue };
        inside += 1;
        assert_eq!(
            &text(e, "job"),
            job,
            "an event of job {job} without it: {e}"
        );
        assert!(
            e.get("run_id").is_some_and(Value::is_i64),
            "an event of job {job} without its run_id: {e}"
        );
        if text(e, "target") == "tariscope_sync::api::http"
            || text(e, "span") == "tariscope_request"
        {
            requests += 1;
            assert!(
                e.get("method").is_some_and(Value::is_string)
                    && e.get("attempt").is_some_and(Value::is_u64),
                "an API request event without method and attempt: {e}"
            );
        }
        if message.starts_with("job finished") {
            finished.insert(job.clone());
            current = None;
        }
    }
    let want: BTreeSet<String> = [
        "reference",
        "subscribers",
        "payments",
        "charges",
        "summaries",
        "push",
    ]
    .map(String::from)
    .into();
    assert_eq!(finished, want, "every job finished, named:\n{stderr}");
    assert!(
        inside > finished.len() && requests > 0,
        "events inside jobs: {inside}, API request events: {requests}:\n{stderr}"
    );
}
