//! The batch job's error type and how each kind ends the process.

use datafusion::error::DataFusionError;
use stockflight_common::config::ConfigError;
use stockflight_common::exit::{self, ExitStatus};
use stockflight_common::http::HttpError;
use stockflight_common::storage::StorageError;

/// Exit code of a run refused because another one holds the lease (sysexits' EX_TEMPFAIL:
/// try again later).
pub const LEASE_HELD: u8 = 75;
/// Exit code of a run that lost its lease, or found a newer holder's snapshot current, and
/// stopped without writing `CURRENT` (sysexits' EX_CANTCREAT: its output could not be
/// published). Not a failure of a dependency: the newer holder's run published instead.
pub const LEASE_LOST: u8 = 73;

/// Everything that stops a `stockflight-batch` run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Cassandra could not be reached or a token range kept failing.
    #[error("cassandra: {0}")]
    Cassandra(String),
    /// The object store could not be opened.
    #[error(transparent)]
    StorageOpen(#[from] StorageError),
    /// Reading or writing an object failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The reference data (items, nodes) is missing or unreadable.
    #[error("reference data: {0}")]
    Reference(String),
    /// Planning or executing the aggregation failed.
    #[error("aggregation: {0}")]
    Query(datafusion::error::DataFusionError),
    /// The operations endpoint could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Another process holds the run lease: a run is in progress elsewhere.
    #[error("another run is in progress (run lease held by {0}); nothing was done")]
    LeaseHeld(String),
    /// The run lease was lost during the run, or a later holder's snapshot is current: the run
    /// stopped without writing `CURRENT`.
    #[error("lost the run lease ({0}); stopped without publishing, CURRENT left as it was")]
    LeaseLost(String),
    /// SIGTERM/SIGINT arrived during a run; nothing was published.
    #[error("interrupted by a shutdown signal; the previous snapshot stays current")]
    Interrupted,
}

impl Error {
    /// A storage error with what was being done.
    pub fn storage(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Storage(format!("{what}: {err}"))
    }
}

impl From<DataFusionError> for Error {
    /// A failure of the scan travels through DataFusion as an external error: unwrap it, so the
    /// message and the exit code name Cassandra, not the query engine.
    fn from(err: DataFusionError) -> Self {
        match err {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Self::Query(DataFusionError::External(other)),
            },
            DataFusionError::Context(context, inner) => match Self::from(*inner) {
                Self::Query(inner) => Self::Query(DataFusionError::Context(context, Box::new(inner))),
                ours => ours,
            },
            other => Self::Query(other),
        }
    }
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit::CONFIG,
            Self::Cassandra(_) | Self::Storage(_) | Self::StorageOpen(_) | Self::Http(_) => exit::UNAVAILABLE,
            Self::LeaseHeld(_) => LEASE_HELD,
            Self::LeaseLost(_) => LEASE_LOST,
            Self::Reference(_) => exit::DATA,
            Self::Query(_) => exit::SOFTWARE,
            Self::Interrupted => 130,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_failures_inside_datafusion_keep_their_kind() {
        let scan = DataFusionError::External(Box::new(Error::Cassandra("token range (1, 2] failed".into())));
        let err = Error::from(DataFusionError::Context("writing".into(), Box::new(scan)));
        assert!(matches!(err, Error::Cassandra(_)), "{err}");
        assert_eq!(err.exit_code(), exit::UNAVAILABLE);
        let plan = Error::from(DataFusionError::Plan("bad".into()));
        assert_eq!(plan.exit_code(), exit::SOFTWARE);
    }

    #[test]
    fn lease_outcomes_have_their_own_exit_codes() {
        assert_eq!(Error::LeaseHeld("x".into()).exit_code(), LEASE_HELD);
        let lost = Error::LeaseLost("now held by y".into());
        assert_eq!(lost.exit_code(), LEASE_LOST);
        assert!(lost.to_string().contains("CURRENT left as it was"), "{lost}");
        assert_ne!(LEASE_LOST, exit::UNAVAILABLE);
    }
}
