//! `tariscope-sync`: thin entry point. Parses the command line, loads the configuration,
//! calls the library and maps the outcome to a documented exit code
//! (0 ok, 1 runtime failure, 2 partial failure, 3 configuration error).

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use tariscope_sync::cli::{Cli, Command};
use tariscope_sync::config;

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let (config, source) = match config::load(cli.config.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tariscope-sync: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
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
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("tariscope-sync: the daemon is not built yet; see README.md");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
