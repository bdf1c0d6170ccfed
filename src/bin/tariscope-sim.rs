//! `tariscope-sim`: the Tariscope API emulator as a standalone server.
//!
//! Owns: command-line parsing, the users and faults files, tracing set-up, signal
//! handling. Must not: hold emulator logic (that is `tariscope_sync::sim`).
//! Exit codes: 0 clean shutdown, 1 runtime failure (e.g. cannot bind), 3 bad options/files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tariscope_sync::sim::{
    DatasetConfig, DateStyle, Envelope, FaultPlan, KeyCase, SimConfig, SimHandle, SimUser,
    SystemFields, WireVariant,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CaseArg {
    Documented,
    Lower,
    Pascal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SystemArg {
    Documented,
    Dotnet,
    Bare,
    Text,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatesArg {
    Iso,
    Dotnet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EnvelopeArg {
    Bare,
    Wrapped,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

/// An emulator of the Tariscope 4.6 HTTP API (see docs/sim.md and docs/wire-profile.md).
#[derive(Debug, Parser)]
#[command(name = "tariscope-sim", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8085")]
    listen: SocketAddr,
    /// Seed of the generated dataset (same seed and sizes = same data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of communication nodes.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Departments per node, the root department included.
    #[arg(long, default_value_t = 4)]
    departments_per_node: usize,
    /// Number of subscribers.
    #[arg(long, default_value_t = 200)]
    subscribers: usize,
    /// Days of payment and charge history.
    #[arg(long, default_value_t = 60)]
    days: u32,
    /// Last day of history, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    end_date: Option<chrono::NaiveDate>,
    /// API users file (JSON list or TOML `[[users]]` of {username, password, rights?});
    /// replaces the default demo/demo user.
    #[arg(long)]
    users_file: Option<PathBuf>,
    /// Token lifetime, e.g. 6h, 30m, 30s.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    token_ttl: Duration,
    /// Casing of response keys.
    #[arg(long, value_enum, default_value = "documented")]
    key_case: CaseArg,
    /// Send ids, integers and amounts as JSON strings, flags as "0"/"1".
    #[arg(long)]
    numbers_as_strings: bool,
    /// Date format in responses: iso (2023-05-17) or dotnet (2023-05-17T00:00:00).
    #[arg(long, value_enum, default_value = "iso")]
    dates: DatesArg,
    /// Lists as bare arrays or wrapped in {"count", "items"}.
    #[arg(long, value_enum, default_value = "bare")]
    envelope: EnvelopeArg,
    /// subscriber.list.* return only id and fullname per subscriber.
    #[arg(long)]
    partial_lists: bool,
    /// Subscriber records (get, both lists, update's answer) carry no `dns` field.
    #[arg(long)]
    records_without_dns: bool,
    /// subscriber.dnadd of a number already assigned adds a second assignment (not 409).
    #[arg(long)]
    accept_duplicate_dns: bool,
    /// Book balance adjustments that no list shows on random days (about one per
    /// subscriber a month): accounts.summary shows them, accounts.charges/payments do not.
    #[arg(long)]
    hidden_adjustments: bool,
    /// How tariscope.* answer: documented ({"database": ...}), dotnet (DatabaseVersion,
    /// BuildDate, ... also in tariscope.summary), bare (a bare value), text (a text/plain body).
    #[arg(long, value_enum, default_value = "documented")]
    system_fields: SystemArg,
    /// Fault plan (JSON, as PUT /_sim/faults takes it) active from the start.
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Log output format.
    #[arg(long, value_enum, default_value = "pretty")]
    log_format: LogFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with a unit, e.g. 6h, 30m, 30s"))?;
    let secs = match unit {
        "h" => n * 3600,
        "m" => n * 60,
        "s" | "" => n,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use h, m or s)")),
    };
    Ok(Duration::from_secs(secs))
}

#[derive(serde::Deserialize)]
struct UsersToml {
    users: Vec<SimUser>,
}

fn load_users(path: &Path) -> anyhow::Result<Vec<SimUser>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read users file {}", path.display()))?;
    let users =
        if text.trim_start().starts_with('[') && path.extension().is_none_or(|e| e == "json") {
            serde_json::from_str::<Vec<SimUser>>(&text).with_context(|| {
                format!(
                    "{}: expected a JSON list of {{username, password, rights?}}",
                    path.display()
                )
            })?
        } else if text.trim_start().starts_with('{') {
            serde_json::from_str::<UsersToml>(&text)
                .with_context(|| format!("{}: expected {{\"users\": [...]}}", path.display()))?
                .users
        } else {
            config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .build()
                .and_then(|c| c.try_deserialize::<UsersToml>())
                .with_context(|| {
                    format!(
                        "{}: expected TOML [[users]] tables with username, password, rights",
                        path.display()
                    )
                })?
                .users
        };
    if users.is_empty() {
        bail!("{}: the users file lists no user", path.display());
    }
    Ok(users)
}

fn build_config(cli: &Cli) -> anyhow::Result<SimConfig> {
    let mut config = SimConfig {
        dataset: DatasetConfig {
            seed: cli.seed,
            nodes: cli.nodes,
            departments_per_node: cli.departments_per_node,
            subscribers: cli.subscribers,
            days: cli.days,
            end_date: cli.end_date,
        },
        wire: WireVariant {
            key_case: match cli.key_case {
                CaseArg::Documented => KeyCase::Documented,
                CaseArg::Lower => KeyCase::Lower,
                CaseArg::Pascal => KeyCase::Pascal,
            },
            numbers_as_strings: cli.numbers_as_strings,
            dates: match cli.dates {
                DatesArg::Iso => DateStyle::Iso,
                DatesArg::Dotnet => DateStyle::DotNet,
            },
            envelope: match cli.envelope {
                EnvelopeArg::Bare => Envelope::Bare,
                EnvelopeArg::Wrapped => Envelope::Wrapped,
            },
            partial_lists: cli.partial_lists,
            records_without_dns: cli.records_without_dns,
            accept_duplicate_dns: cli.accept_duplicate_dns,
            system_fields: match cli.system_fields {
                SystemArg::Documented => SystemFields::Documented,
                SystemArg::Dotnet => SystemFields::DotNet,
                SystemArg::Bare => SystemFields::Bare,
                SystemArg::Text => SystemFields::Text,
            },
        },
        token_ttl: cli.token_ttl,
        hidden_adjustments: cli.hidden_adjustments,
        ..SimConfig::default()
    };
    if let Some(path) = &cli.users_file {
        config.users = load_users(path)?;
    }
    if let Some(path) = &cli.faults {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read faults file {}", path.display()))?;
        config.faults = serde_json::from_str::<FaultPlan>(&text)
            .with_context(|| format!("{}: invalid fault plan", path.display()))?;
    }
    Ok(config)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(cli: Cli) -> ExitCode {
    let config = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(3);
        }
    };
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", cli.listen);
            return ExitCode::from(1);
        }
    };
    let users: Vec<&str> = config.users.iter().map(|u| u.username.as_str()).collect();
    tracing::info!(
        ?users,
        seed = cli.seed,
        subscribers = cli.subscribers,
        "generating the dataset"
    );
    let sim = match SimHandle::start_on(listener, config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    shutdown_signal().await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn users_files() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("users.json");
        std::fs::write(
            &json,
            r#"[{"username": "a", "password": "b", "rights": ["subscriber.get"]}]"#,
        )
        .unwrap();
        let users = load_users(&json).unwrap();
        assert_eq!(
            users[0].rights.as_deref(),
            Some(&["subscriber.get".to_owned()][..])
        );
        let toml = dir.path().join("users.toml");
        std::fs::write(&toml, "[[users]]\nusername = \"x\"\npassword = \"y\"\n").unwrap();
        let users = load_users(&toml).unwrap();
        assert_eq!(users[0].username, "x");
        assert_eq!(users[0].rights, None);
        std::fs::write(&toml, "[[users]]\nusername = 1\n").unwrap();
        assert!(load_users(&toml).is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
