//! `tariscope-sync`: thin entry point. Parses the command line, loads the configuration,
//! sets up logging, calls the library and maps the outcome to a documented exit code
//! (0 ok, 1 runtime failure, 2 partial failure, 3 configuration or command-line error,
//! 75 a job runs in another process).
//! Output goes through `cmd::out::Out`, so a closed pipe or a full disk never panics.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tariscope_sync::cli::{Cli, Command, LogFormat, MirrorAction};
use tariscope_sync::clock::Clock;
use tariscope_sync::cmd::out::Out;
use tariscope_sync::daemon::{self, Exit};
use tariscope_sync::{cmd, config, errln, logging, notify::Notifier, outln};

fn main() -> ExitCode {
    tariscope_sync::memory::one_arena();
    let mut out = Out::stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // A usage error exits 3 like a configuration error, not clap's 2 (which means
            // "partial failure" here).
            let _ = e.print();
            return ExitCode::from(Exit::Config.code());
        }
        Err(help_or_version) => {
            out.bytes(help_or_version.render().to_string().as_bytes());
            return ExitCode::from(out.finish(Exit::Ok).code());
        }
    };
    if let Some(Command::Completions { shell }) = &cli.command {
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "tariscope-sync", &mut script);
        out.bytes(&script);
        return ExitCode::from(out.finish(Exit::Ok).code());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("tariscope-sync: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Runtime.code());
        }
    };
    let exit = runtime.block_on(run(cli, &mut out));
    ExitCode::from(out.finish(exit).code())
}

async fn run(cli: Cli, out: &mut Out) -> Exit {
    if let Some(Command::Demo { dir, subscribers }) = &cli.command {
        logging::init(
            cli.log_level.as_deref().unwrap_or("warn"),
            cli.log_format == Some(LogFormat::Json),
        );
        return cmd::demo::run(dir, *subscribers, out).await;
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let (config, source) = match config::load(cli.config.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            errln!("tariscope-sync: {e}");
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
            outln!(
                out,
                "configuration OK ({from}); mirror: {}",
                config.mirror.shown()
            );
            Exit::Ok
        }
        Some(Command::Status { json }) => cmd::status::run(&config, json, out).await,
        Some(Command::Plan { limit }) => cmd::plan::run(&config, limit, out).await,
        Some(Command::Import { file, encoding }) => {
            cmd::import::run(&config, &file, encoding, out).await
        }
        Some(Command::ImportPayments { file, encoding }) => {
            cmd::import_payments::run(&config, &file, encoding, out).await
        }
        Some(Command::Resolve {
            reference,
            landed,
            not_landed: _,
        }) => cmd::resolve::run(&config, &reference, landed, out).await,
        Some(Command::Doctor) => cmd::doctor::run(&config, out).await,
        Some(Command::Mirror {
            action:
                MirrorAction::Copy {
                    to,
                    password_file,
                    force,
                },
        }) => cmd::mirror_copy::run(&config, &to, password_file.as_deref(), force, out).await,
        Some(Command::ConfirmRemovals { run }) => {
            cmd::confirm_removals::run(&config, run, out).await
        }
        Some(Command::Demo { .. } | Command::Completions { .. }) => Exit::Ok,
        None if cli.run_once => {
            let mut config = config;
            if cli.allow_mass_removal {
                config.jobs.values_mut().for_each(|j| j.max_removals = None);
            }
            let wait = cli.lock_wait();
            cmd::run_once::run(&config, &cli.jobs, (cli.from, cli.to), wait, signals(), out).await
        }
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
    if config.mirror.postgres.is_some() {
        // Leader or standby: the store is opened when this daemon leads.
        return daemon::run_ha(
            &config,
            Clock::system(),
            listener,
            Notifier::from_env(),
            signals(),
        )
        .await;
    }
    let jobs = match daemon::open(&config, Clock::system()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!("{e}");
            return Exit::Runtime;
        }
    };
    daemon::run(jobs, listener, Notifier::from_env(), signals()).await
}
