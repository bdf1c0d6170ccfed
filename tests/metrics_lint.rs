//! `/metrics` as Prometheus' own linter sees it: the real daemon against the emulator, after
//! every job ran once (and some requests were retried), scraped and fed to
//! `promtool check metrics`, which must report nothing (every family has HELP, counters end
//! in `_total`, units in names). Where promtool is missing the test installs Debian's
//! `prometheus` package (root and apt-get), else skips with the reason, except under
//! `TARISCOPE_CI=1`, where a missing promtool fails.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tariscope_sync::sim::Fault;
use tokio::process::Command;

mod cli_support;
use cli_support::{BIN, free_port, small_sim};

fn on_path(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// promtool, installed from Debian's `prometheus` package if missing and possible.
fn promtool() -> Result<(), String> {
    if on_path("promtool") {
        return Ok(());
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root || !on_path("apt-get") {
        return Err("promtool is not installed (Debian: apt-get install prometheus)".into());
    }
    // Straight to stderr: libtest does not capture it, so a slow first run says why.
    let _ = writeln!(
        std::io::stderr(),
        "metrics_lint: installing promtool (Debian package prometheus)..."
    );
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends prometheus >/dev/null",
        ])
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() && on_path("promtool") {
        Ok(())
    } else {
        Err(format!("apt-get install prometheus failed ({status})"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_to_lint_in_a_live_metrics_page() {
    if let Err(reason) = promtool() {
        assert!(
            std::env::var("TARISCOPE_CI").as_deref() != Ok("1"),
            "TARISCOPE_CI=1 and {reason}"
        );
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return;
    }
    let sim = small_sim(9, 10, 3).await;
    // One method always answers 503, so the retry counter has a value too.
    sim.set_method_fault(
        "tariffs.plans",
        Fault {
            error_rate: 1.0,
            ..Fault::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0\n\
             [retry]\nmax_attempts = 3\ninitial_delay_ms = 1\nmax_delay_ms = 5\n\
             [mirror]\npath = \"{}\"\n[scope]\nnodes = [1]\n\
             [serve]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"warn\"\n",
            sim.base_url(),
            dir.path().join("mirror.db").display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Catch-up runs every job at start; wait until the last one (push) is counted.
    let page = loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            let body = r.text().await.unwrap_or_default();
            if body.contains("tariscope_sync_job_runs_total{job=\"push\"") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "the daemon never ran its jobs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    daemon.kill().await.unwrap();
    for family in [
        "tariscope_sync_api_requests_total",
        "tariscope_sync_api_retries_total",
        "tariscope_sync_api_request_duration_seconds",
        "tariscope_sync_job_duration_seconds",
        "tariscope_sync_outbox_depth",
        "tariscope_sync_build_info",
    ] {
        assert!(
            page.contains(&format!("# HELP {family} ")),
            "{family} has no HELP:\n{page}"
        );
    }

    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n--- the page:\n{page}"
    );
}
