//! Configuration: defaults, then a TOML file, then `TARISCOPE_SYNC__SECTION__KEY` environment
//! variables, validated in one place.
//!
//! Owns: finding and layering the sources (the `config` crate), turning the merged tree into
//! the typed [`Config`] (choices parsed once into enums, `choices.rs`), reporting **every**
//! problem at once by its key path, and the conversions into the client's and the push
//! executor's settings (`convert.rs`).
//! Must not: open the mirror, reach the network or start anything.
//! The key set is documented in `config/tariscope-sync.example.toml`; a test keeps the two equal.

mod choices;
mod convert;
mod reader;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use choices::{LogFormat, NaturalKey};
pub use reader::Problem;
pub use schema::{
    ApiSettings, Config, JobSettings, KeySet, LogSettings, MirrorSettings, PaymentSettings,
    PushSettings, ServeSettings, parse_schedule,
};

/// Where the daemon looks for a config file when `--config` is not given, in order.
pub const DEFAULT_PATHS: &[&str] = &["./tariscope-sync.toml", "/etc/tariscope-sync/config.toml"];

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "TARISCOPE_SYNC";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist or cannot be read.
    #[error("cannot read config file {path}: {source} (check the path given with --config)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a source could not be merged.
    #[error("cannot parse the configuration: {0} (fix the TOML syntax at the place named)")]
    Parse(#[source] config::ConfigError),
    /// The configuration parsed but some values are wrong.
    #[error("{}", Invalid(.0))]
    Invalid(Vec<Problem>),
}

struct Invalid<'a>(&'a [Problem]);

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for p in self.0 {
            writeln!(f, "  - {p}")?;
        }
        write!(
            f,
            "every key is described in config/tariscope-sync.example.toml (keys marked Required there have no default)"
        )
    }
}

/// Which file was used, if any (for logs and `check-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    DefaultsAndEnvironment,
}

/// Loads the configuration: the explicit `path`, else the first existing default path, else
/// defaults only; then the `TARISCOPE_SYNC__*` entries of `env` on top.
pub fn load(
    path: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<(Config, Source), ConfigError> {
    let source = match path {
        Some(p) => {
            std::fs::metadata(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            Source::File(p.to_path_buf())
        }
        None => DEFAULT_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .map(Source::File)
            .unwrap_or(Source::DefaultsAndEnvironment),
    };
    let text = match &source {
        Source::File(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?,
        Source::DefaultsAndEnvironment => String::new(),
    };
    let config = from_toml_str(&text, env)?;
    Ok((config, source))
}

/// Parses and validates configuration text plus environment overrides. `env` is the whole
/// environment; only `TARISCOPE_SYNC__*` keys and `CREDENTIALS_DIRECTORY` are used.
/// Relative paths in the configuration are relative to the working directory.
pub fn from_toml_str(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let tree = merged_tree(text, env)?;
    schema::read(&tree, env).map_err(ConfigError::Invalid)
}

/// What the schema knows about its keys (every key, the defaults, the required ones), for
/// the example-config test and anyone documenting the configuration.
pub fn key_set() -> KeySet {
    schema::key_set()
}

fn merged_tree(
    text: &str,
    env: &HashMap<String, String>,
) -> Result<serde_json::Value, ConfigError> {
    let env_map: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env_map)),
        )
        .build()
        .map_err(ConfigError::Parse)?;
    built
        .try_deserialize::<serde_json::Value>()
        .map_err(ConfigError::Parse)
}

#[cfg(test)]
mod tests;
