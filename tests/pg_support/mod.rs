//! A real, throwaway PostgreSQL server for the tests (issue 13: never a mock).
//!
//! Owns: finding the server's binaries (`/usr/lib/postgresql/<version>/bin`, Debian's
//! `postgresql` package) and installing that package once per machine when they are missing
//! (`scripts/install-postgres.sh`, root and apt-get needed), starting a cluster in a temp
//! folder on a free loopback port with `fsync=off` (as the `postgres` user when the tests run
//! as root: `initdb` and `pg_ctl` refuse root), handing out empty databases, and stopping the
//! cluster when the handle drops. Where no server can be had the tests skip with the reason,
//! except under `TARISCOPE_CI=1`, where they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

// The project's rule for a missing tool (skip with the reason, fail under TARISCOPE_CI=1)
// and its stderr progress line: whoever uses this module declares `mod deploy_support` beside
// it (the test binaries at their root; the library's store tests in `store::test_backends`).
use super::deploy_support::{is_root, say, skip};

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running cluster; stopped (immediately, it is throwaway) on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<v>/bin` holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The binaries, installing Debian's `postgresql` package once when they are missing.
fn binaries() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = find_bin() {
            return Ok(bin);
        }
        if !is_root() {
            return Err("PostgreSQL's binaries are missing (/usr/lib/postgresql/*/bin) and \
                 installing them needs root: run scripts/install-postgres.sh as root once"
                .into());
        }
        say("PostgreSQL tests: installing Debian's postgresql package (scripts/install-postgres.sh)");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/install-postgres.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run scripts/install-postgres.sh: {e}"))?;
        if !status.success() {
            return Err(format!(
                "scripts/install-postgres.sh failed ({status}; its log is above)"
            ));
        }
        find_bin().ok_or_else(|| {
            "scripts/install-postgres.sh ran but /usr/lib/postgresql/*/bin is still missing".into()
        })
    })
    .clone()
}

/// A cluster for this test, or `None` after `deploy_support::skip` said why there cannot be
/// one (under `TARISCOPE_CI=1` that panics instead: CI must run these tests).
pub fn cluster() -> Option<PgCluster> {
    PgCluster::start().map_err(|reason| skip(&reason)).ok()
}

/// [`cluster`] from async code: starting one blocks, so it runs on a blocking thread.
pub async fn cluster_from_async() -> Option<PgCluster> {
    tokio::task::spawn_blocking(cluster).await.unwrap()
}

impl PgCluster {
    /// initdb + pg_ctl start in a temp folder on a free loopback port.
    pub fn start() -> Result<PgCluster, String> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("tariscope-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot hand the cluster's folder to the postgres user".into());
            }
        }
        let port = free_port();
        let cluster = PgCluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        )?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log");
        cluster
            .run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            )
            .map_err(|e| {
                format!(
                    "{e}; server log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })?;
        Ok(cluster)
    }

    /// Restarts the server (`pg_ctl restart -m fast`): every session ends; the same port.
    pub fn restart(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        )
        .unwrap();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// [`PgCluster::database`] from async code: the client it uses blocks, and panics when
    /// dropped on the runtime, so it runs on a thread of its own.
    pub fn database_from_async(&self) -> String {
        std::thread::scope(|s| s.spawn(|| self.database()).join().unwrap())
    }

    /// A new, empty database owned by the superuser `postgres`; its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mirror_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A client of `db` (blocking: use from a blocking thread or outside a runtime).
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
