//! Outcomes that say what happened: a `--run-once` in which nothing could be done because
//! logging in failed (nothing listening, a web page instead of the API, a refused password)
//! ends `failed` with exit 1, for pull jobs and push alike, and each run's error states the
//! one reason once, not once per item. With the mirror in SQLite and, where a cluster can be
//! started, in PostgreSQL (`mirror.url`).

use std::io::{Read, Write};
use std::path::Path;

use tokio::process::Command;

mod backends;
mod cli_support;
use cli_support::{BIN, small_sim, text};
use tariscope_sync::store::{Store, pg};

/// Answers every request with a 200 HTML page (a wrong api.base_url that hits a web server).
fn html_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let page = "<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs reference, subscribers and push once (with two desired rows to push) against
/// `base_url`, the mirror in PostgreSQL `url` or else in `dir`; returns the run-once output and
/// `status --json`.
async fn run_once(
    dir: &Path,
    url: Option<&str>,
    base_url: &str,
    password: &str,
) -> (std::process::Output, String) {
    eprintln!(
        "--- on {}",
        if url.is_some() { "postgres" } else { "sqlite" }
    );
    let config = dir.join("config.toml");
    let mirror = match url {
        Some(url) => format!("url = \"{url}\""),
        None => format!("path = \"{}\"", dir.join("mirror.db").display()),
    };
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{base_url}\"\nusername = \"demo\"\npassword = \"{password}\"\n\
             [retry]\nmax_attempts = 3\ninitial_delay_ms = 1\nmax_delay_ms = 5\n\
             [mirror]\n{mirror}\n[scope]\nnodes = [1]\n[serve]\nlisten = \"\"\n\
             [log]\nlevel = \"error\"\n",
        ),
    )
    .unwrap();
    let desired = dir.join("desired.csv");
    std::fs::write(
        &desired,
        "key,fullname,departmentid\ncrm-1,Olena Koval,1\ncrm-2,Ivan Bondar,1\n",
    )
    .unwrap();
    let import = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("import")
        .arg(&desired)
        .output()
        .await
        .unwrap();
    assert_eq!(import.status.code(), Some(0), "{}", text(&import));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--run-once", "--jobs", "reference,subscribers,push"])
        .output()
        .await
        .unwrap();
    let status = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .output()
        .await
        .unwrap();
    (out, String::from_utf8_lossy(&status.stdout).into_owned())
}

/// Every job failed, exit 1, and each run's error holds `reason` exactly once.
fn assert_failed_once(out: &std::process::Output, status: &str, reason: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let status: serde_json::Value = serde_json::from_str(status).unwrap();
    for job in ["reference", "subscribers", "push"] {
        let run = status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == job)
            .map(|j| &j["last_run"])
            .unwrap();
        assert_eq!(run["outcome"], "failed", "{job}: {run}\n{t}");
        let error = run["error"].as_str().unwrap_or_default();
        assert_eq!(
            error.matches(reason).count(),
            1,
            "{job}: the reason once in {error:?}"
        );
        let line = t
            .lines()
            .find(|l| l.starts_with(job))
            .unwrap_or_else(|| panic!("no summary line for {job}: {t}"));
        assert_eq!(line.matches(reason).count(), 1, "{job}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_fails_the_run_with_one_reason() {
    let (_cluster, mirrors) = backends::mirror_urls().await;
    for url in mirrors {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let (out, status) = run_once(dir.path(), url.as_deref(), &base_url, "demo").await;
        assert_failed_once(
            &out,
            &status,
            &format!("connection refused by 127.0.0.1:{port}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_instead_of_the_api_fails_the_run_with_one_reason() {
    let (_cluster, mirrors) = backends::mirror_urls().await;
    for url in mirrors {
        let dir = tempfile::tempdir().unwrap();
        let port = html_server();
        let base_url = format!("http://127.0.0.1:{port}");
        let (out, status) = run_once(dir.path(), url.as_deref(), &base_url, "demo").await;
        assert_failed_once(&out, &status, "api.auth: cannot decode the response");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_fails_the_run_with_one_reason() {
    let (_cluster, mirrors) = backends::mirror_urls().await;
    for url in mirrors {
        let sim = small_sim(4, 10, 3).await;
        let dir = tempfile::tempdir().unwrap();
        let (out, status) = run_once(dir.path(), url.as_deref(), &sim.base_url(), "wrong").await;
        assert_failed_once(&out, &status, "login as \"demo\" refused (HTTP 401)");
    }
}
