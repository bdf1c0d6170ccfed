//! Logging setup: `tracing` to where the logs go (issue 12): JSON lines for containers
//! ([`json::FlatJson`]: span fields such as `job` and `run_id` as top-level keys), the
//! systemd journal natively under systemd (structured fields `JOB=`, `RUN_ID=`, `PRIORITY=`),
//! else text on stderr, coloured only on a terminal.
//!
//! Owns: choosing the sink ([`choose`], pure) and installing the global subscriber once.
//! Must not: be called by library code other than the binaries' entry points (tests install
//! their own).

pub mod json;

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Text on stderr with ANSI colours: stderr is a terminal.
    Terminal,
    /// Text on stderr without escapes: a file, a pipe, or `NO_COLOR`.
    Plain,
    /// One JSON object per line on stderr (`log.format = "json"`).
    Json,
    /// The systemd journal's native protocol, fields as journal fields.
    Journal,
}

/// What [`choose`] looks at, read from the process by [`Facts::of_process`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `log.format = "json"` (or `--log-format json`).
    pub json: bool,
    /// `JOURNAL_STREAM`: the `device:inode` of the stream systemd connected to the journal.
    pub journal_stream: Option<String>,
    /// stderr's `(device, inode)`.
    pub stderr_id: Option<(u64, u64)>,
    pub stderr_is_terminal: bool,
    /// `NO_COLOR` is set (and not empty).
    pub no_color: bool,
}

impl Facts {
    pub fn of_process(json: bool) -> Facts {
        let stderr_id = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        Facts {
            json,
            journal_stream: std::env::var("JOURNAL_STREAM").ok(),
            stderr_id,
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// JSON when asked for; the journal when stderr is still the stream systemd connected to it
/// (`JOURNAL_STREAM` names stderr: a child whose stderr was redirected is not logged to the
/// journal); else text, coloured only on a terminal and without `NO_COLOR`.
pub fn choose(f: &Facts) -> Sink {
    if f.json {
        return Sink::Json;
    }
    let journal = f.journal_stream.as_deref().and_then(|s| {
        let (dev, ino) = s.trim().split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    });
    if journal.is_some() && journal == f.stderr_id {
        Sink::Journal
    } else if f.stderr_is_terminal && !f.no_color {
        Sink::Terminal
    } else {
        Sink::Plain
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(level: &str, json: bool) {
    let filter = || {
        std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| EnvFilter::try_new(v).ok())
            .or_else(|| EnvFilter::try_new(level).ok())
            .unwrap_or_else(|| EnvFilter::new("info"))
    };
    let text = |ansi: bool| {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .try_init()
            .is_ok()
    };
    let installed = match choose(&Facts::of_process(json)) {
        Sink::Terminal => text(true),
        Sink::Plain => text(false),
        Sink::Json => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .fmt_fields(JsonFields::new())
            .event_format(json::FlatJson)
            .try_init()
            .is_ok(),
        Sink::Journal => match journal_layer() {
            Ok(layer) => tracing_subscriber::registry()
                .with(filter())
                .with(layer)
                .try_init()
                .is_ok(),
            Err(e) => {
                let r = text(false);
                tracing::warn!(error = %e, "cannot log to the systemd journal; logging to stderr");
                r
            }
        },
    };
    if !installed {
        // Already installed (tests, demo inside another command): keep the existing one.
    }
}

/// The journal layer: fields by their own names (`JOB=`, `RUN_ID=`, `DETAIL=`), levels as
/// syslog priorities (error 3, warn 4, info 6, debug and trace 7).
fn journal_layer() -> std::io::Result<tracing_journald::Layer> {
    Ok(tracing_journald::layer()?
        .with_field_prefix(None)
        .with_syslog_identifier("tariscope-sync".into())
        .with_priority_mappings(PriorityMappings {
            error: Priority::Error,
            warn: Priority::Warning,
            info: Priority::Informational,
            debug: Priority::Debug,
            trace: Priority::Debug,
        }))
}

/// Records the run id of the job running on this task into its `job` span (declared with an
/// empty `run_id` by `daemon::jobs`), so every later event of the run carries it. Called by
/// the pull and push code right after the store recorded the run; a no-op outside a job span.
pub fn record_run_id(run_id: i64) {
    tracing::Span::current().record("run_id", run_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_follows_the_stream() {
        let base = Facts {
            stderr_id: Some((23, 4711)),
            ..Facts::default()
        };
        let with = |f: fn(&mut Facts)| {
            let mut x = base.clone();
            f(&mut x);
            choose(&x)
        };
        assert_eq!(with(|_| {}), Sink::Plain, "a file or pipe: no colour");
        assert_eq!(with(|f| f.stderr_is_terminal = true), Sink::Terminal);
        assert_eq!(
            with(|f| {
                f.stderr_is_terminal = true;
                f.no_color = true;
            }),
            Sink::Plain
        );
        assert_eq!(
            with(|f| f.journal_stream = Some("23:4711".into())),
            Sink::Journal,
            "stderr is systemd's journal stream"
        );
        assert_eq!(
            with(|f| f.journal_stream = Some("23:4712".into())),
            Sink::Plain,
            "inherited JOURNAL_STREAM, stderr redirected elsewhere"
        );
        assert_eq!(
            with(|f| f.journal_stream = Some("garbage".into())),
            Sink::Plain
        );
        assert_eq!(
            with(|f| {
                f.journal_stream = Some("23:4711".into());
                f.json = true;
            }),
            Sink::Json,
            "JSON when asked for, even under systemd"
        );
    }
}
