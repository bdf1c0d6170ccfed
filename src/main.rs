//! `tariscope-sync`: thin entry point. Parses the command line, loads the configuration,
//! sets up logging, calls the library and maps the outcome to a documented exit code
//! (0 ok, 1 runtime failure, 2 partial failure, 3 configuration error).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use tariscope_sync::cli::{Cli, Command, LogFormat};
use tariscope_sync::clock::Clock;
use tariscope_sync::daemon::{self, Exit};
use tariscope_sync::{cmd, config, logging, notify::Notifier};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Completions { shell }) = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "tariscope-sync",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tariscope-sync: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Runtime.code());
        }
    };
    ExitCode::from(runtime.block_on(run(cli)).code())
}

async fn run(cli: Cli) -> Exit {
    if let Some(Command::Demo { dir, subscribers }) = &cli.command {
        logging::init(
            cli.log_level.as_deref().unwrap_or("warn"),
            cli.log_format == Some(LogFormat::Json),
        );
        return cmd::demo::run(dir, *subscribers).await;
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let (config, source) = match config::load(cli.config.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tariscope-sync: {e}");
            return Exit::Config;
        }
    };
    let json_logs = cli.log_format.unwrap_or(config.log.format) == LogFormat::Json;
    logging::init(
        cli.log_level.as_deref().unwrap_or(&config.log.level),
        json_logs,
    );
    match cli.command {
        Some(Command::CheckConfig) => {
            let from = match source {
                config::Source::File(p) => p.display().to_string(),
                config::Source::DefaultsAndEnvironment => "defaults and environment".into(),
            };
            println!(
                "configuration OK ({from}); mirror: {}",
                config.mirror.path.display()
            );
            Exit::Ok
        }
        Some(Command::Status { json }) => cmd::status::run(&config, json).await,
        Some(Command::Plan { limit }) => cmd::plan::run(&config, limit).await,
        Some(Command::Import { file }) => cmd::import::run(&config, &file).await,
        Some(Command::Doctor) => cmd::doctor::run(&config).await,
        Some(Command::Demo { .. } | Command::Completions { .. }) => Exit::Ok,
        None if cli.run_once => run_once(config, &cli).await,
        None => run_daemon(config).await,
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(i32::from(Exit::Runtime.code()));
    });
}

async fn run_daemon(config: config::Config) -> Exit {
    let listener = match config.serve.listen {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(source) => {
                tracing::error!("{}", daemon::StartError::Listen { addr, source });
                return Exit::Runtime;
            }
        },
    };
    let jobs = match daemon::open(&config, Clock::system()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!("{e}");
            return Exit::Runtime;
        }
    };
    daemon::run(jobs, listener, Notifier::from_env(), signals()).await
}

async fn run_once(config: config::Config, cli: &Cli) -> Exit {
    let selected = config.select_jobs(&cli.jobs);
    let mut jobs = match daemon::open(&config, Clock::system()) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("tariscope-sync: {e}");
            return Exit::Runtime;
        }
    };
    jobs.range = cli.from.map(|f| (f, cli.to));
    let jobs = Arc::new(jobs);
    let stop = CancellationToken::new();
    let interrupted = CancellationToken::new();
    {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        tokio::spawn(async move {
            signals().await;
            interrupted.cancel();
            stop.cancel();
        });
    }
    let bars_stop = CancellationToken::new();
    let bars = daemon::progress::spawn_bars(jobs.clone(), selected.clone(), bars_stop.clone());
    let summaries = daemon::run_once(&jobs, &selected, stop).await;
    bars_stop.cancel();
    if let Some(b) = bars {
        let _ = b.await;
    }
    cmd::print_summaries(&summaries);
    if interrupted.is_cancelled() {
        println!("interrupted: committed work is kept; run again to resume from the checkpoints");
        return Exit::Ok;
    }
    Exit::of(summaries.iter().map(|s| s.outcome))
}
