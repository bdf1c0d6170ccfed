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

/// Runs `--run-once --jobs reference` with `env`, stderr into `stderr_file`, through `wrap`
/// (a program and its arguments before the binary, e.g. `unshare`), and returns the exit code.
async fn run_reference(
    config: &Path,
    stderr_file: &Path,
    env: &[(&str, String)],
    wrap: &[&str],
) -> Option<i32> {
    let stderr = std::fs::File::create(stderr_file).unwrap();
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.arg("--config")
        .arg(config)
        .args(["--run-once", "--jobs", "reference"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    cmd.status().await.unwrap().code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_to_a_file_has_no_colour_escapes() {
    let sim = small_sim(21, 5, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.base_url(), "level = \"debug\"");
    let log = dir.path().join("stderr.log");
    let code = run_reference(&config, &log, &[], &[]).await;
    let bytes = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("job finished"), "{text}");
    assert!(
        !bytes.contains(&0x1b),
        "ESC bytes in a log written to a file:\n{text:?}"
    );
}

/// The fields of one journal native-protocol datagram (`KEY=value` lines, or `KEY`, a
/// little-endian u64 length and the value for values with newlines).
fn journal_fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = d.iter().position(|&b| b == b'\n') {
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            d = &d[nl + 1..];
        } else {
            let len = u64::from_le_bytes(d[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &d[nl + 9..nl + 9 + len];
            out.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
            d = &d[nl + 9 + len + 1..];
        }
    }
    out
}

/// Under systemd (JOURNAL_STREAM names stderr) the daemon writes to the journal's socket with
/// structured fields. The journal is faked: a datagram socket of ours, bound over
/// `/run/systemd/journal/socket` in a private mount namespace (`unshare`, root only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_events_go_to_the_journal_with_job_run_and_priority() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let unshare = std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !root || !unshare {
        let reason = "faking the journal needs root and unshare --mount";
        assert!(
            std::env::var("TARISCOPE_CI").as_deref() != Ok("1"),
            "TARISCOPE_CI=1 and {reason}"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return;
    }
    let sim = small_sim(22, 5, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.base_url(), "level = \"info\"");
    let socket_path = dir.path().join("journal.socket");
    let journal = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    journal
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let log = dir.path().join("stderr.log");
    // JOURNAL_STREAM must name the child's stderr: the file, created before the child starts.
    std::fs::File::create(&log).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    use std::os::unix::fs::MetadataExt;
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let script = format!(
        "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || mount -t tmpfs tmpfs /run; \
         mkdir -p /run/systemd/journal && touch /run/systemd/journal/socket && \
         mount --bind '{}' /run/systemd/journal/socket && exec \"$0\" \"$@\"",
        socket_path.display()
    );
    // Drain the socket while the child runs: a unix datagram queue holds only a few entries
    // (net.unix.max_dgram_qlen), and a full one blocks the child's send.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut entries = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match journal.recv(&mut buf) {
                    Ok(n) if n > 0 => entries.push(journal_fields(&buf[..n])),
                    Ok(_) => {}
                    // The read timeout: stop once the child has exited and the queue is empty.
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return entries,
                    Err(_) => {}
                }
            }
        })
    };
    // run_reference truncates the file again (same inode).
    let code = run_reference(
        &config,
        &log,
        &[("JOURNAL_STREAM", stream)],
        &["unshare", "--mount", "sh", "-c", &script],
    )
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let entries = drain.join().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let get = |e: &Vec<(String, String)>, k: &str| {
        e.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let finished = entries
        .iter()
        .find(|e| get(e, "MESSAGE") == "job finished")
        .unwrap_or_else(|| panic!("no 'job finished' in the journal: {entries:?}\n{stderr}"));
    assert_eq!(get(finished, "JOB"), "reference", "{finished:?}");
    assert!(
        get(finished, "RUN_ID").parse::<i64>().is_ok(),
        "{finished:?}"
    );
    assert_eq!(get(finished, "PRIORITY"), "6", "info is 6: {finished:?}");
    assert_eq!(get(finished, "SYSLOG_IDENTIFIER"), "tariscope-sync");
    assert!(
        !stderr.contains("job finished"),
        "events go to the journal, not also to stderr: {stderr}"
    );
}

/// A long job with no terminal to watch it: one progress line per `log.progress_secs` (done,
/// total, rate, ETA, errors, in the job's span) and the same on `/metrics` while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_reports_progress_in_the_log_and_on_metrics() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sim = small_sim(23, 20, 5).await;
    // Every summary takes 150 ms, one at a time: the job runs for seconds.
    sim.set_method_fault(
        "accounts.summary",
        tariscope_sync::sim::Fault {
            latency: std::time::Duration::from_millis(150),
            ..tariscope_sync::sim::Fault::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let port = cli_support::free_port();
    let config = dir.path().join("config.toml");
    let write = |only_summaries: bool| {
        let off = if only_summaries {
            ["reference", "subscribers", "payments", "charges", "push"]
                .map(|j| format!("[jobs.{j}]\nenabled = false\n"))
                .concat()
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\n\
                 rate_per_sec = 0\n[mirror]\npath = \"{}\"\n[scope]\nnodes = [1]\n\
                 [serve]\nlisten = \"127.0.0.1:{port}\"\n[jobs.summaries]\nconcurrency = 1\n\
                 {off}[log]\nformat = \"json\"\nprogress_secs = 1\n",
                sim.base_url(),
                dir.path().join("mirror.db").display()
            ),
        )
        .unwrap();
    };
    // The subscribers first (quick), then the daemon with only the slow summaries job, which
    // its catch-up runs at start.
    write(false);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--run-once", "--jobs", "subscribers"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    write(true);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    let progress = loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no progress line in time:\n{}", seen.join("\n")))
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "the run ended without a progress line:\n{}",
                    seen.join("\n")
                )
            });
        seen.push(line.clone());
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if text(&e, "message").starts_with("progress:") {
            break e;
        }
    };
    assert_eq!(text(&progress, "job"), "summaries", "{progress}");
    assert!(
        progress.get("run_id").is_some_and(Value::is_i64),
        "{progress}"
    );
    let total = progress["total"].as_u64().unwrap_or(0);
    assert!(total > 0, "{progress}");
    assert!(
        progress["done"].as_u64().is_some_and(|d| d <= total),
        "{progress}"
    );
    assert!(progress["errors"].as_u64() == Some(0), "{progress}");
    assert!(
        progress.get("rate").is_some_and(Value::is_number),
        "{progress}"
    );
    assert!(text(&progress, "message").contains("ETA"), "{progress}");

    // The same on /metrics while the job runs.
    let http = reqwest::Client::new();
    let page = loop {
        let body = match http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains("tariscope_sync_job_running{job=\"summaries\"} 1") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no running-job gauges on /metrics:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for gauge in [
        "tariscope_sync_job_items_done{job=\"summaries\"}",
        "tariscope_sync_job_items_expected{job=\"summaries\"}",
        "tariscope_sync_job_item_errors{job=\"summaries\"}",
        "tariscope_sync_job_items_per_second{job=\"summaries\"}",
        "tariscope_sync_job_eta_seconds{job=\"summaries\"}",
    ] {
        assert!(page.contains(gauge), "{gauge} missing:\n{page}");
    }
    child.kill().await.unwrap();
}
