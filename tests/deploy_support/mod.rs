//! What the deployment tests need from the machine, prepared by the tests themselves so that
//! `cargo test` on a fresh clone needs no step before it (issue 12): the Docker images (made
//! once per test run by `scripts/build-images.sh`, which makes the base images and installs
//! debootstrap when missing; a lock in the script keeps parallel test processes from building
//! at the same time) and the rule for a missing tool: skip with the reason printed, except
//! under `TARISCOPE_CI=1` (set by `.ci/run`), where it fails (issue 17).
//!
//! Progress is written straight to the process's stderr (libtest captures only the print
//! macros), and the script's stderr is inherited, so a slow first run says why without
//! `--nocapture`.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The base images `deploy/Dockerfile` starts from (made by `scripts/make-bases.sh`).
pub const BASE_IMAGES: [&str; 2] = ["debian:bookworm-slim", "rust:1-slim-bookworm"];

/// One line on the real stderr, visible without `--nocapture`.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether `TARISCOPE_CI=1`: a missing tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("TARISCOPE_CI").as_deref() == Ok("1")
}

/// A test cannot run here for `reason`: prints SKIPPED, or panics under `TARISCOPE_CI=1`.
pub fn skip(reason: &str) {
    assert!(
        !in_ci(),
        "TARISCOPE_CI=1 and {reason} (CI must run this test, not skip it)"
    );
    say(&format!("SKIPPED: {reason}"));
}

/// Whether `tool` is on PATH.
pub fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn have_image(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the Docker images cannot be made here, if they cannot: tests opted out, no engine, or
/// base images missing with no way to make them (debootstrap absent and not installable).
pub fn docker_unavailable() -> Option<String> {
    if std::env::var("TARISCOPE_DOCKER_TESTS").as_deref() == Ok("0") {
        return Some("TARISCOPE_DOCKER_TESTS=0".into());
    }
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "no Docker engine reachable ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Err(e) => return Some(format!("no docker CLI ({e})")),
    }
    if BASE_IMAGES.iter().all(|t| have_image(t)) {
        return None;
    }
    if !is_root() {
        return Some(
            "the base images are missing and making them (debootstrap) needs root; run \
             scripts/make-bases.sh as root once"
                .into(),
        );
    }
    if !on_path("debootstrap") && !on_path("apt-get") {
        return Some("debootstrap is not installed and there is no apt-get to install it".into());
    }
    None
}

/// Builds the daemon and emulator images under these tags once per test process (the script
/// reuses images built from the same inputs, so later processes and runs are quick). `Err` is
/// the reason the Docker tests cannot run here; a failed build with an engine present panics.
pub fn docker_images(sim_tag: &str, sync_tag: &str) -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(reason) = docker_unavailable() {
                return Err(reason);
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let started = Instant::now();
            say(&format!(
                "deploy tests: preparing the Docker images {sim_tag} and {sync_tag} \
                 (scripts/build-images.sh; the first time on a machine this installs \
                 debootstrap, makes the base images and compiles the crates: minutes)"
            ));
            let status = Command::new(root.join("scripts/build-images.sh"))
                .env("SIM_IMAGE", sim_tag)
                .env("SYNC_IMAGE", sync_tag)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .status()
                .expect("run scripts/build-images.sh");
            assert!(
                status.success(),
                "scripts/build-images.sh failed ({status}; its log is above). A Docker engine \
                 is here, so this is a failure, not a skip"
            );
            say(&format!(
                "deploy tests: Docker images ready in {:.0?}",
                started.elapsed()
            ));
            Ok(())
        })
        .clone()
}
