//! Logging setup: `tracing` to stderr, human-readable or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;
use crate::sections::{LogFormat, LogSection};

/// Installs the global subscriber. Call once, early in `main`.
pub fn init_logging(log: &LogSection) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&log.level)
        .map_err(|e| ConfigError::invalid("log.level", format!("`{}`: {e}", log.level)))?;
    // Colour only on a terminal: escape codes in a log file or journal are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = result;
    Ok(())
}
