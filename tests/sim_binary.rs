//! The `tariscope-sim` binary end to end: `--help`, options, users and faults files,
//! the control API over HTTP, and a clean exit on SIGTERM.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tariscope-sim");

#[test]
fn help_lists_every_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen",
        "--seed",
        "--nodes",
        "--departments-per-node",
        "--subscribers",
        "--days",
        "--end-date",
        "--users-file",
        "--token-ttl",
        "--key-case",
        "--numbers-as-strings",
        "--dates",
        "--envelope",
        "--partial-lists",
        "--faults",
        "--log-format",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    let bad = Command::new(BIN)
        .args(["--key-case", "shouty"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn bad_files_exit_with_3() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.json");
    std::fs::write(&users, "[]").unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--users-file"])
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let faults = dir.path().join("faults.json");
    std::fs::write(&faults, r#"{"global": {"nope": 1}}"#).unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--faults"])
        .arg(&faults)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test]
async fn runs_with_files_and_variants_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        "[[users]]\nusername = \"sync\"\npassword = \"pw\"\nrights = [\"subscriber.get\"]\n",
    )
    .unwrap();
    let faults = dir.path().join("faults.json");
    std::fs::write(
        &faults,
        r#"{"methods": {"tariscope.version": {"error_rate": 1.0, "error_status": 500}}}"#,
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--subscribers",
            "20",
            "--end-date",
            "2025-05-31",
            "--key-case",
            "pascal",
            "--token-ttl",
            "30s",
            "--log-format",
            "json",
        ])
        .arg("--users-file")
        .arg(&users)
        .arg("--faults")
        .arg(&faults)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/_sim/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the binary did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["counts"]["subscribers"], serde_json::json!(20));
    assert_eq!(stats["end_date"], serde_json::json!("2025-05-31"));
    // demo is replaced by the users file
    let r = http
        .post(format!("{base}/api/auth"))
        .json(&serde_json::json!({"username": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r: serde_json::Value = http
        .post(format!("{base}/api/auth"))
        .json(&serde_json::json!({"username": "sync", "password": "pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["Token"]
        .as_str()
        .expect("pascal-cased token key")
        .to_owned();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        30
    );
    let rec: serde_json::Value = http
        .get(format!("{base}/api/subscriber/get/?id=1201"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["Id"], serde_json::json!(1201));
    let r = http
        .get(format!("{base}/api/tariscope/version/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500, "the faults file is active");
    // SIGTERM: clean exit 0
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code.code(), Some(0));
}
