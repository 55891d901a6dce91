//! The ingest job's error type and how each kind ends the process.

use stockflight_common::config::ConfigError;
use stockflight_common::exit::{self, ExitStatus};
use stockflight_common::http::HttpError;

/// Everything that stops `stockflight-ingest`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operations endpoint could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Kafka refused something that retrying cannot fix (bad client settings, topic creation).
    #[error("kafka: {0}")]
    Kafka(String),
    /// Cassandra refused something that retrying cannot fix, or could not be reached at start.
    #[error("cassandra: {0}")]
    Cassandra(String),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit::CONFIG,
            Self::Http(_) | Self::Kafka(_) | Self::Cassandra(_) => exit::UNAVAILABLE,
            Self::Runtime(_) => exit::SOFTWARE,
        }
    }
}
