//! Per-job locks across processes: a job runs in at most one process at a time per mirror.
//!
//! Owns: the lock file of each job beside the mirror (`<mirror>.<job>.lock`), taking it
//! (at once, or waiting up to a bound while telling who holds it), the holder's facts written
//! into it (pid, host, since when, daemon or run-once), and reading them for `status`.
//! The lock is an OS file lock (`flock`): the kernel releases it when its holder exits, even
//! by SIGKILL, so a crashed holder never blocks the next process. Each job has its own file,
//! so pull jobs of different kinds run side by side while one job (push above all) never runs
//! twice at once. Must not: know what a job does, or print (callers log and report).
//!
//! The mirror must live on a local file system (flock on network file systems is not
//! reliable across hosts).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// Who holds a job's lock, as written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// When the holder took the lock (RFC 3339 UTC).
    pub since: String,
    /// `daemon` or `run-once`.
    pub mode: String,
}

impl Holder {
    /// This process, holding since `now`.
    pub fn this_process(mode: &str, now: chrono::DateTime<chrono::Utc>) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            since: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            mode: mode.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} ({}) since {}",
            self.pid, self.host, self.mode, self.since
        )
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process runs the job. `holder` is `None` while it is still writing its facts.
    #[error("the {job} job is running in another process ({}){hint}", who(.holder))]
    Busy {
        job: &'static str,
        holder: Option<Box<Holder>>,
        /// What to do about it (empty, or `; ...`).
        hint: &'static str,
    },
    /// The lock file cannot be created or locked.
    #[error(
        "cannot use the lock file {path}: {source} (the folder of the mirror must be writable by this user, on a local file system)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Waiting was cut short by shutdown.
    #[error("stopped while waiting for the {job} job's lock")]
    Stopped { job: &'static str },
}

fn who(holder: &Option<Box<Holder>>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "holder unknown: it is just starting".to_owned(),
    }
}

/// How long to wait for a job another process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Until it is free (the default of `--run-once`).
    #[default]
    Forever,
    /// At most this long, then give up (`--wait SECS`).
    Up(Duration),
    /// Not at all (`--no-wait`, and the daemon: it skips the tick).
    No,
}

/// A held job lock; dropping it clears the holder's facts and releases the lock.
#[derive(Debug)]
pub struct JobLock {
    file: File,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        // Cleared while still held, so the next holder's facts are never overwritten; the
        // lock itself goes with the file descriptor.
        let _ = self.file.set_len(0);
    }
}

/// The lock file of `job` beside the mirror at `mirror`: `<mirror>.<job>.lock`.
pub fn lock_path(mirror: &Path, job: &str) -> PathBuf {
    let mut name = mirror.as_os_str().to_owned();
    name.push(format!(".{job}.lock"));
    PathBuf::from(name)
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_owned(),
            source,
        })
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Takes `job`'s lock now, or says who holds it.
pub fn try_acquire(mirror: &Path, job: &'static str, me: &Holder) -> Result<JobLock, LockError> {
    let path = lock_path(mirror, job);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Busy {
                job,
                holder: read_holder(&mut file).map(Box::new),
                hint: "",
            });
        }
        Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
    }
    let facts = serde_json::to_string(me).unwrap_or_default();
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(facts.as_bytes()))
        .and_then(|()| file.flush());
    if let Err(source) = written {
        return Err(LockError::Io { path, source });
    }
    Ok(JobLock { file })
}

/// Takes `job`'s lock, waiting as `wait` says. `on_wait` is called once, with the holder,
/// when the lock is busy and this call is going to wait. `stop` ends the wait.
pub async fn acquire(
    mirror: &Path,
    job: &'static str,
    me: &Holder,
    wait: Wait,
    stop: &CancellationToken,
    on_wait: impl FnOnce(Option<&Holder>),
) -> Result<JobLock, LockError> {
    let deadline = match wait {
        Wait::Up(d) => Some(tokio::time::Instant::now() + d),
        _ => None,
    };
    let mut on_wait = Some(on_wait);
    let mut tries = 0;
    loop {
        let holder = match try_acquire(mirror, job, me) {
            Err(LockError::Busy { holder, .. }) => holder,
            other => return other,
        };
        tries += 1;
        // `status` probes for a moment; a busy answer is only believed when it repeats.
        if wait == Wait::No && tries < 3 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        let give_up = match wait {
            Wait::No => Some("; not waiting for it (--no-wait): try again later"),
            Wait::Up(d) if deadline.is_some_and(|t| tokio::time::Instant::now() >= t) => {
                Some(if d.is_zero() {
                    "; not waiting for it (--wait 0): try again later"
                } else {
                    "; gave up after waiting --wait seconds: try again later, or wait longer"
                })
            }
            _ => None,
        };
        if let Some(hint) = give_up {
            return Err(LockError::Busy { job, holder, hint });
        }
        if let Some(f) = on_wait.take() {
            f(holder.as_deref());
        }
        tokio::select! {
            _ = stop.cancelled() => return Err(LockError::Stopped { job }),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Who holds `job`'s lock now, if anyone (for `status`). Probes with a shared lock for a
/// moment, so it never takes a job's place; a job that tries at that very moment retries.
pub fn holder(mirror: &Path, job: &str) -> Result<Option<Holder>, LockError> {
    let path = lock_path(mirror, job);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LockError::Io { path, source }),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file).unwrap_or(Holder {
            pid: 0,
            host: "?".into(),
            since: "?".into(),
            mode: "starting".into(),
        }))),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

/// The host name (the kernel's), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(mode: &str) -> Holder {
        Holder::this_process(mode, chrono::Utc::now())
    }

    #[test]
    fn a_held_lock_says_who_holds_it_and_is_free_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror.db");
        let held = try_acquire(&mirror, "push", &me("daemon")).unwrap();
        assert!(lock_path(&mirror, "push").ends_with("mirror.db.push.lock"));
        match try_acquire(&mirror, "push", &me("run-once")) {
            Err(LockError::Busy {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.mode, "daemon");
            }
            other => panic!("expected busy, got {other:?}"),
        }
        let seen = holder(&mirror, "push").unwrap().expect("held");
        assert_eq!(seen.mode, "daemon");
        // Another job's lock is independent.
        let other = try_acquire(&mirror, "payments", &me("run-once")).unwrap();
        drop(other);
        drop(held);
        assert_eq!(holder(&mirror, "push").unwrap(), None);
        try_acquire(&mirror, "push", &me("run-once")).expect("free again");
    }

    #[tokio::test]
    async fn no_wait_and_bounded_wait_give_up_while_forever_waits_for_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror.db");
        let stop = CancellationToken::new();
        let held = try_acquire(&mirror, "push", &me("daemon")).unwrap();
        let e = acquire(&mirror, "push", &me("x"), Wait::No, &stop, |_| {
            panic!("no-wait does not wait")
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("--no-wait"), "{e}");
        let mut told = None;
        let e = acquire(
            &mirror,
            "push",
            &me("x"),
            Wait::Up(Duration::from_millis(300)),
            &stop,
            |h| told = h.cloned(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, LockError::Busy { .. }), "{e}");
        assert_eq!(told.map(|h| h.mode), Some("daemon".to_owned()));
        let waiter = {
            let mirror = mirror.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                acquire(&mirror, "push", &me("x"), Wait::Forever, &stop, |_| {}).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while the lock is held");
        drop(held);
        waiter.await.unwrap().expect("taken once released");
    }
}
