//! The binary as a shell citizen: every subcommand with its stdout closed early (a pipe into
//! `head` that has exited) ends quietly with its usual exit code, and with stdout on
//! `/dev/full` says so in one line and exits 1; none panics. `--run-once` range errors are
//! usage errors found before any work (exit 3), and so are clap's own.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use tariscope_sync::sim::SimHandle;
use tokio::process::Command;

mod cli_support;
use cli_support::{BIN, small_sim};

fn write_config(dir: &Path, sim: &SimHandle) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0\n\
         [retry]\nmax_attempts = 1\n\
         [mirror]\npath = \"{}\"\n\
         [scope]\nnodes = [1]\n\
         [serve]\nlisten = \"\"\n\
         [log]\nlevel = \"warn\"\n",
        sim.base_url(),
        dir.join("mirror.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Where the child's stdout goes.
enum Stdout {
    /// A pipe whose reading end is closed before the child starts: every write is EPIPE.
    ClosedPipe,
    /// `/dev/full`: every write is ENOSPC.
    Full,
    /// Captured (the usual run).
    Captured,
}

async fn run(args: &[String], stdout: Stdout) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stderr(Stdio::piped());
    match stdout {
        Stdout::ClosedPipe => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            cmd.stdout(writer);
        }
        Stdout::Full => {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            cmd.stdout(full);
        }
        Stdout::Captured => {
            cmd.stdout(Stdio::piped());
        }
    }
    // Not `output()`: tokio's makes stdout a pipe whatever was set.
    cmd.spawn().unwrap().wait_with_output().await.unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subcommand_panics_on_a_closed_pipe_or_a_full_disk() {
    let sim = small_sim(3, 10, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim).display().to_string();
    let import = dir.path().join("desired.csv");
    std::fs::write(&import, "key,fullname,departmentid\ncrm-1,Olena Koval,1\n").unwrap();
    let demo = dir.path().join("demo").display().to_string();
    let with_config = |args: &[&str]| -> Vec<String> {
        ["--config", config.as_str()]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    };
    let plain = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<Vec<String>> = vec![
        with_config(&["--run-once", "--jobs", "reference,subscribers"]),
        with_config(&["check-config"]),
        with_config(&["status"]),
        with_config(&["status", "--json"]),
        with_config(&["plan"]),
        with_config(&["import", import.to_str().unwrap()]),
        with_config(&["doctor"]),
        plain(&["demo", "--subscribers", "20", "--dir", &demo]),
        plain(&["completions", "bash"]),
        plain(&["--help"]),
        plain(&["--version"]),
    ];
    for args in &cases {
        let usual = run(args, Stdout::Captured).await;
        assert!(
            !usual.stdout.is_empty(),
            "{args:?} prints something: {}",
            stderr(&usual)
        );

        let piped = run(args, Stdout::ClosedPipe).await;
        let err = stderr(&piped);
        assert_eq!(
            piped.status.code(),
            usual.status.code(),
            "{args:?}: a closed pipe keeps the exit code; stderr: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("output"),
            "{args:?}: a closed pipe ends quietly; stderr: {err}"
        );

        let full = run(args, Stdout::Full).await;
        let err = stderr(&full);
        assert_eq!(full.status.code(), Some(1), "{args:?}: stderr: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("cannot write the output"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line about the output: {err}");
        assert!(
            lines[0].contains("No space left on device"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_range_errors_are_usage_errors_found_before_any_work() {
    let sim = small_sim(3, 10, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim).display().to_string();
    let today = chrono::Utc::now().date_naive();
    let future = (today + chrono::Duration::days(30)).to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--from", "2026-11-30", "--to", "2026-11-01"],
            "--from 2026-11-30 is after --to 2026-11-01: a backfill runs from its first day",
        ),
        (&["--from", &future], "is in the future"),
        (
            &[
                "--jobs",
                "reference,push",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-02",
            ],
            "none of the selected jobs (reference, push) takes a range",
        ),
    ];
    for (extra, want) in cases {
        let args: Vec<String> = ["--config", config.as_str(), "--run-once"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        let out = run(&args, Stdout::Captured).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(
            sim.request_count("api.auth"),
            0,
            "{extra:?}: no work was done"
        );
        assert!(
            !dir.path().join("mirror.db").exists(),
            "{extra:?}: the mirror was not even opened"
        );
    }
    // clap's usage errors exit 3 too (2 means "partial failure").
    let out = run(
        &["--run-once".into(), "--jobs".into(), "bogus".into()],
        Stdout::Captured,
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown job \"bogus\""),
        "{}",
        stderr(&out)
    );
}
