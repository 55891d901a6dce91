//! The load generator's error type and how each kind ends the process.

use stockflight_common::config::ConfigError;
use stockflight_common::exit::{self, ExitStatus};
use stockflight_common::storage::StorageError;

/// Everything that stops `stockflight-loadgen`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No command was given.
    #[error("name a command: reference, produce or all (see --help)")]
    NoCommand,
    /// The object store could not be opened.
    #[error(transparent)]
    OpenStorage(#[from] StorageError),
    /// Writing reference data to the object store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Encoding Parquet failed.
    #[error("parquet: {0}")]
    Parquet(String),
    /// Kafka refused or lost messages.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::NoCommand => exit::CONFIG,
            Self::OpenStorage(_) | Self::Storage(_) | Self::Kafka(_) => exit::UNAVAILABLE,
            Self::Parquet(_) | Self::Runtime(_) => exit::SOFTWARE,
        }
    }
}
