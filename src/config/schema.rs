//! The typed configuration and the one function that reads and validates it.
//!
//! Owns: every key's name, type, default and check. Must not: read files other than the
//! password file, or touch the network.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;

use super::choices::{self, LogFormat, NaturalKey};
use super::reader::{Problem, Reader};
use crate::api::{ApiProfile, Format, RetrySettings, Secret};
use crate::store::RemovalLimit;
use crate::sync::plan::ConflictPolicy;
use crate::sync::{Job, Scope, SummariesMode};

/// File name of the API password under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const CREDENTIAL_NAME: &str = "tariscope-api-password";
/// File name of the PostgreSQL mirror's password under `$CREDENTIALS_DIRECTORY`.
pub const MIRROR_CREDENTIAL_NAME: &str = "tariscope-mirror-password";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiSettings,
    pub retry: RetrySettings,
    pub mirror: MirrorSettings,
    pub scope: Scope,
    /// Settings per job (every [`Job`] is present).
    pub jobs: BTreeMap<Job, JobSettings>,
    /// `jobs.summaries.mode`: which days the summaries job fetches.
    pub summaries_mode: SummariesMode,
    pub push: PushSettings,
    pub payments: PaymentSettings,
    pub serve: ServeSettings,
    pub log: LogSettings,
    /// Time zone of Tariscope's calendar dates and of the cron schedules.
    pub timezone: chrono_tz::Tz,
    /// How long running jobs may take to finish their batch after SIGTERM.
    pub shutdown_grace: Duration,
}

/// `[api]`: how to reach and log in to Tariscope.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    pub format: Format,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub token_lifetime: Duration,
    pub token_margin: Duration,
    pub rate_per_sec: f64,
    pub concurrency: usize,
    pub ca_file: Option<PathBuf>,
    pub local_address: Option<IpAddr>,
    /// `[api.profile]`: the reference wire profile with the configured overrides.
    pub profile: ApiProfile,
}

/// `[mirror]`: the SQLite file, or the PostgreSQL database (`mirror.url`).
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// The SQLite file (unused when `postgres` is set).
    pub path: PathBuf,
    /// `mirror.url` (with `mirror.password_file` or the systemd credential
    /// `tariscope-mirror-password`): the mirror lives in PostgreSQL.
    pub postgres: Option<crate::store::pg::Target>,
    /// `ha.takeover_secs`: how soon a standby daemon leads after the leader is gone
    /// (PostgreSQL only).
    pub takeover: Duration,
    /// Warn when the WAL passes this many MiB because checkpoints cannot complete (a reader
    /// holds an old snapshot); 0 never warns.
    pub wal_warn_mib: u64,
}

impl MirrorSettings {
    /// Where the per-job lock files go (`<base>.<job>.lock`): beside the SQLite file. On
    /// PostgreSQL no job takes one (the leader lock, which every process that runs jobs
    /// there holds, keeps the others out on every host); the name is a host-local one in
    /// the temp folder, one per database, where `status` finds none.
    pub fn lock_base(&self) -> PathBuf {
        match &self.postgres {
            None => self.path.clone(),
            Some(target) => std::env::temp_dir().join(format!(
                "tariscope-sync-{:016x}",
                crate::store::pg::leader::lock_key(target.shown())
            )),
        }
    }

    /// The mirror for messages: the file, or `postgres://user@host:port/db` (no password).
    pub fn shown(&self) -> String {
        match &self.postgres {
            None => self.path.display().to_string(),
            Some(target) => format!("postgres://{}", target.shown()),
        }
    }
}

/// `[jobs.<name>]`.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub enabled: bool,
    /// The schedule as written (5-field crontab lines get a leading `0` seconds field).
    pub schedule: String,
    /// Parsed schedule (six or seven fields, seconds first).
    pub cron: Option<cron::Schedule>,
    /// Days re-fetched before the last successful window (payments, charges, summaries).
    pub lookback_days: u32,
    /// Concurrent per-subscriber requests of this job.
    pub concurrency: usize,
    /// Subscribers and reference: how much one run may remove from one list's scope
    /// (`"10%"` or a count); `None` for the other jobs, or with `--allow-mass-removal`.
    pub max_removals: Option<RemovalLimit>,
}

/// `[push]`.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub conflict_policy: ConflictPolicy,
    /// How an existing Tariscope subscriber is found for a desired row.
    pub natural_key: NaturalKey,
    /// How many times a failed write is retried on later runs before it is terminal.
    pub max_attempts: u32,
}

/// `[payments]`: posting `desired_payments` into Tariscope (issue 15).
#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Whether the push job posts desired payments.
    pub post: bool,
    /// Payments dated before this day are rejected (`None`: no lower bound).
    pub earliest_day: Option<NaiveDate>,
}

/// `[serve]`: metrics and health endpoints.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: Option<SocketAddr>,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// A `tracing` filter (`info`, `tariscope_sync=debug`, ...).
    pub level: String,
    pub format: LogFormat,
    /// Seconds between progress lines of a running job when stderr is not a terminal
    /// (`log.progress_secs`; 0 = none).
    pub progress_secs: u64,
}

struct JobDefaults {
    schedule: &'static str,
    lookback_days: u64,
}

fn job_defaults(job: Job) -> JobDefaults {
    let (schedule, lookback_days) = match job {
        Job::Reference => ("0 0 3 * * *", 0),
        Job::Subscribers => ("0 */15 * * * *", 0),
        Job::Payments => ("0 5 * * * *", 3),
        Job::Charges => ("0 10 * * * *", 3),
        Job::Summaries => ("0 30 2 * * *", 1),
        Job::Push => ("0 */5 * * * *", 0),
    };
    JobDefaults {
        schedule,
        lookback_days,
    }
}

/// Reads and validates the merged tree; returns every problem found.
pub(super) fn read(tree: &Value, env: &HashMap<String, String>) -> Result<Config, Vec<Problem>> {
    let mut r = Reader::new(tree);
    let config = read_all(&mut r, env);
    let problems = r.finish();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// What the schema knows about its keys, read off an empty configuration.
pub struct KeySet {
    /// Every leaf key the schema reads.
    pub known: Vec<String>,
    /// The default of every key that has one.
    pub defaults: BTreeMap<String, Value>,
    /// The keys without a default that must be set (some as one of a group).
    pub required: Vec<String>,
}

pub fn key_set() -> KeySet {
    let empty = Value::Object(Default::default());
    let mut r = Reader::new(&empty);
    let _ = read_all(&mut r, &HashMap::new());
    KeySet {
        known: r.known_keys().iter().cloned().collect(),
        defaults: r.defaults().clone(),
        required: r.required_keys().iter().cloned().collect(),
    }
}

fn read_all(r: &mut Reader<'_>, env: &HashMap<String, String>) -> Config {
    let api = read_api(r, env);
    let retry = RetrySettings {
        max_attempts: r.u64_in("retry.max_attempts", 5, 1, 100) as u32,
        initial_delay: Duration::from_millis(r.u64_in("retry.initial_delay_ms", 200, 1, 60_000)),
        max_delay: Duration::from_millis(r.u64_in("retry.max_delay_ms", 10_000, 1, 600_000)),
        max_elapsed: Duration::from_secs(r.u64_in("retry.max_elapsed_secs", 60, 1, 86_400)),
    };
    if retry.max_delay < retry.initial_delay {
        r.problem(
            "retry.max_delay_ms",
            "must not be smaller than retry.initial_delay_ms",
        );
    }
    let mirror = MirrorSettings {
        postgres: read_mirror_url(r, env),
        takeover: Duration::from_secs(r.u64_in("ha.takeover_secs", 15, 3, 3600)),
        path: PathBuf::from(r.string("mirror.path", "./tariscope-mirror.db")),
        wal_warn_mib: r.u64_in(
            "mirror.wal_warn_mib",
            crate::store::DEFAULT_WARN_MIB,
            0,
            1 << 20,
        ),
    };
    let scope = Scope {
        nodes: r.id_list("scope.nodes"),
        departments: r.id_list("scope.departments"),
    };
    r.require("scope.nodes");
    r.require("scope.departments");
    let jobs = Job::ALL
        .into_iter()
        .map(|job| (job, read_job(r, job)))
        .collect::<BTreeMap<_, _>>();
    let summaries_mode = r.choice(
        "jobs.summaries.mode",
        SummariesMode::ActiveDays,
        choices::SUMMARIES_MODES,
    );
    let pulls_subscribers = [
        Job::Subscribers,
        Job::Payments,
        Job::Charges,
        Job::Summaries,
    ]
    .iter()
    .any(|j| jobs[j].enabled);
    if pulls_subscribers && scope.nodes.is_empty() && scope.departments.is_empty() {
        r.missing(
            "scope",
            "no nodes and no departments: set scope.nodes and/or scope.departments to the ids to mirror (or disable the subscribers, payments, charges and summaries jobs)",
        );
    }
    let push = PushSettings {
        conflict_policy: r.choice(
            "push.conflict_policy",
            ConflictPolicy::RemoteWins,
            choices::CONFLICT_POLICIES,
        ),
        natural_key: r.choice(
            "push.natural_key",
            NaturalKey::AccountNumber,
            choices::NATURAL_KEYS,
        ),
        max_attempts: r.u64_in("push.max_attempts", 5, 1, 1000) as u32,
    };
    let payments = read_payments(r);
    let serve = ServeSettings {
        listen: r.string_or_off("serve.listen", "127.0.0.1:9184").and_then(|s| match s.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                r.problem(
                    "serve.listen",
                    format!("{s:?} is not an address like 127.0.0.1:9184 (leave empty to turn the endpoints off)"),
                );
                None
            }
        }),
    };
    let log = LogSettings {
        level: r.string("log.level", "info"),
        format: r.choice("log.format", LogFormat::Pretty, choices::LOG_FORMATS),
        progress_secs: r.u64_in("log.progress_secs", 30, 0, 86_400),
    };
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        r.problem(
            "log.level",
            format!(
                "{:?} is not a valid log filter (try info, debug or tariscope_sync=debug)",
                log.level
            ),
        );
    }
    let tz_text = r.string("timezone", "Europe/Kyiv");
    let timezone = chrono_tz::Tz::from_str(&tz_text).unwrap_or_else(|_| {
        r.problem(
            "timezone",
            format!("{tz_text:?} is not an IANA time zone name like Europe/Kyiv or UTC"),
        );
        chrono_tz::UTC
    });
    let shutdown_grace = Duration::from_secs(r.u64_in("shutdown_grace_secs", 30, 0, 3600));
    Config {
        api,
        retry,
        mirror,
        scope,
        jobs,
        summaries_mode,
        push,
        payments,
        serve,
        log,
        timezone,
        shutdown_grace,
    }
}

fn read_payments(r: &mut Reader<'_>) -> PaymentSettings {
    let post = r.bool("payments.post", true);
    let text = r.string("payments.earliest_day", "");
    let earliest_day = match text.trim() {
        "" => None,
        t => match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                r.problem(
                    "payments.earliest_day",
                    format!("{t:?} is not a date yyyy-mm-dd (leave empty for no lower bound)"),
                );
                None
            }
        },
    };
    PaymentSettings { post, earliest_day }
}

fn read_api(r: &mut Reader<'_>, env: &HashMap<String, String>) -> ApiSettings {
    let base_url = r.string("api.base_url", "http://127.0.0.1:8085");
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        r.problem(
            "api.base_url",
            format!("{base_url:?} must start with http:// or https://"),
        );
    }
    let username = r.required_string("api.username", "the Tariscope API user name");
    let password = read_password(r, env);
    let format = r.choice("api.format", Format::Json, choices::FORMATS);
    let connect_timeout = Duration::from_secs(r.u64_in("api.connect_timeout_secs", 10, 1, 600));
    let request_timeout = Duration::from_secs(r.u64_in("api.request_timeout_secs", 30, 1, 3600));
    let token_lifetime =
        Duration::from_secs(r.u64_in("api.token_lifetime_secs", 6 * 3600, 60, 7 * 86_400));
    let token_margin = Duration::from_secs(r.u64_in("api.token_margin_secs", 300, 0, 86_400));
    if token_margin >= token_lifetime {
        r.problem(
            "api.token_margin_secs",
            "must be smaller than api.token_lifetime_secs",
        );
    }
    // 0: no rate limit (the limiter's own rule, docs/client.md).
    let rate_per_sec = r.non_negative_f64("api.rate_per_sec", 20.0);
    let concurrency = r.u64_in("api.concurrency", 8, 1, 1024) as usize;
    let ca_file = r.opt_string("api.ca_file").map(PathBuf::from);
    if let Some(p) = ca_file.as_ref().filter(|p| !p.is_file()) {
        r.problem(
            "api.ca_file",
            format!("{} does not exist or is not a file", p.display()),
        );
    }
    let local_address = r
        .opt_string("api.local_address")
        .and_then(|s| match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                r.problem("api.local_address", format!("{s:?} is not an IP address"));
                None
            }
        });
    let profile = match r.opaque("api.profile").cloned() {
        None => ApiProfile::default(),
        Some(v) => serde_json::from_value::<ApiProfile>(v).unwrap_or_else(|e| {
            r.problem(
                "api.profile",
                format!("{e} (docs/client.md lists the profile keys)"),
            );
            ApiProfile::default()
        }),
    };
    ApiSettings {
        base_url,
        username,
        password,
        format,
        connect_timeout,
        request_timeout,
        token_lifetime,
        token_margin,
        rate_per_sec,
        concurrency,
        ca_file,
        local_address,
        profile,
    }
}

/// `mirror.url`: a PostgreSQL mirror instead of the SQLite file; its password from the URL,
/// `mirror.password_file`, or `$CREDENTIALS_DIRECTORY/tariscope-mirror-password`.
fn read_mirror_url(
    r: &mut Reader<'_>,
    env: &HashMap<String, String>,
) -> Option<crate::store::pg::Target> {
    // Empty stands for unset (as the example file writes them).
    let url = r.opt_string("mirror.url").filter(|u| !u.trim().is_empty());
    let file = r
        .opt_string("mirror.password_file")
        .filter(|f| !f.trim().is_empty())
        .map(PathBuf::from);
    let url = match url {
        Some(url) => url,
        None => {
            if file.is_some() {
                r.problem(
                    "mirror.password_file",
                    "is the password of mirror.url, which is not set: set mirror.url too, or remove it",
                );
            }
            return None;
        }
    };
    if r.opt_string("mirror.path").is_some() {
        r.problem(
            "mirror.path",
            "set either mirror.path (a SQLite file) or mirror.url (PostgreSQL), not both",
        );
    }
    // A password in the URL itself wins over the credential.
    let in_url = postgres::Config::from_str(&url).is_ok_and(|c| c.get_password().is_some());
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join(MIRROR_CREDENTIAL_NAME))
        .filter(|p| p.is_file() && !in_url);
    match crate::store::pg::Target::parse(&url, file.as_deref().or(credential.as_deref())) {
        Ok(target) => Some(target),
        Err(e) => {
            let key = match e {
                crate::store::pg::PgError::PasswordFile { .. } if file.is_some() => {
                    "mirror.password_file"
                }
                _ => "mirror.url",
            };
            r.problem(key, e.to_string());
            None
        }
    }
}

/// The password, from (first found) `api.password_file`, `api.password` (file or
/// `TARISCOPE_SYNC__API__PASSWORD`), or `$CREDENTIALS_DIRECTORY/tariscope-api-password`.
fn read_password(r: &mut Reader<'_>, env: &HashMap<String, String>) -> Secret {
    let file = r.opt_string("api.password_file");
    let inline = r.opt_string("api.password");
    r.require("api.password");
    r.require("api.password_file");
    if file.is_some() && inline.is_some() {
        r.problem(
            "api.password",
            "set either api.password or api.password_file, not both",
        );
    }
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join(CREDENTIAL_NAME))
        .filter(|p| p.is_file());
    let from_file = |r: &mut Reader<'_>, key: &str, path: &Path| match std::fs::read_to_string(path)
    {
        Ok(text) => Secret::new(text.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => {
            r.problem(
                key,
                format!("cannot read the password file {}: {e}", path.display()),
            );
            Secret::new(String::new())
        }
    };
    if let Some(f) = file {
        from_file(r, "api.password_file", Path::new(&f))
    } else if let Some(p) = inline {
        Secret::new(p)
    } else if let Some(c) = credential {
        from_file(r, "api.password", &c)
    } else {
        r.missing(
            "api.password",
            "set api.password_file, the environment variable TARISCOPE_SYNC__API__PASSWORD, or a systemd credential named tariscope-api-password",
        );
        Secret::new(String::new())
    }
}

fn read_job(r: &mut Reader<'_>, job: Job) -> JobSettings {
    let d = job_defaults(job);
    let name = job.as_str();
    let key = |k: &str| format!("jobs.{name}.{k}");
    let enabled = r.bool(&key("enabled"), true);
    let schedule = r.string(&key("schedule"), d.schedule);
    let cron = match parse_schedule(&schedule) {
        Ok(s) => Some(s),
        Err(e) => {
            r.problem(&key("schedule"), format!("{schedule:?} is not a valid cron expression ({e}); use 5 fields (min hour day month weekday) or 6 with seconds first"));
            None
        }
    };
    let lookback_days = r.u64_in(&key("lookback_days"), d.lookback_days, 0, 366) as u32;
    let concurrency = r.u64_in(&key("concurrency"), 8, 1, 256) as usize;
    let max_removals = match job {
        Job::Subscribers => Some("10%"),
        Job::Reference => Some("25%"),
        _ => None,
    }
    .and_then(|default| {
        let path = key("max_removals");
        let text = r.string(&path, default);
        RemovalLimit::parse(&text)
            .map_err(|e| r.problem(&path, format!("{e}: how much one run may remove from one list (an empty list where the mirror holds rows is always over it)")))
            .ok()
    });
    JobSettings {
        enabled,
        schedule,
        cron,
        lookback_days,
        concurrency,
        max_removals,
    }
}

/// Parses a cron line: 6 or 7 fields (seconds first) as the `cron` crate takes them, or a
/// standard 5-field crontab line (seconds = 0).
pub fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let line = if fields == 5 {
        format!("0 {text}")
    } else {
        text.to_string()
    };
    cron::Schedule::from_str(&line).map_err(|e| {
        // The cron crate's message draws a caret under the bad field; keep the last line.
        let text = e.to_string();
        text.lines().last().unwrap_or_default().trim().to_string()
    })
}
