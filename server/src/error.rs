//! The server's error type: what stops start-up (and its exit code), and what fails a request
//! (and its gRPC code, chosen deliberately in [`Error::into_status`]).

use std::time::Duration;

use datafusion::error::DataFusionError;
use stockflight_common::config::ConfigError;
use stockflight_common::exit::{self, ExitStatus};
use stockflight_common::http::HttpError;
use stockflight_common::storage::StorageError;
use tonic::Status;

/// Longest message a client gets; parser and planner messages are short, chains can be long.
const MAX_MESSAGE: usize = 4096;

/// Everything that stops `stockflight-server` or fails one request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The object store could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A file (TLS material, port file) could not be read or written.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// The gRPC server failed to bind or serve.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// No snapshot has been published yet.
    #[error("no snapshot is published yet ({0})")]
    NoSnapshot(String),
    /// `CURRENT` or a file it lists is unusable.
    #[error("snapshot {run_id}: {reason}")]
    Snapshot { run_id: String, reason: String },
    /// A ticket names a snapshot this replica no longer (or not yet) serves: the query was
    /// planned on another one, so running it here would mix two snapshots.
    #[error("the query was planned on snapshot {0}, which this server no longer serves; run the statement again")]
    SnapshotGone(String),
    /// The SQL does not parse.
    #[error("SQL parse error: {0}")]
    Sql(String),
    /// The statement would change something: this server is read-only.
    #[error("read-only server: {0}")]
    ReadOnly(String),
    /// A table, schema or catalog that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request that is malformed or names something meaningless.
    #[error("{0}")]
    InvalidArgument(String),
    /// Missing, wrong or expired credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// The query ran longer than `limits.query_timeout_secs`.
    #[error("query exceeded the time limit of {0:?} (limits.query_timeout_secs)")]
    Timeout(Duration),
    /// The query waited longer than `limits.queue_timeout_secs` for a slot.
    #[error("server busy: no query slot within {0:?} (limits.max_concurrent_queries)")]
    Busy(Duration),
    /// The result has more rows than `limits.max_result_rows`.
    #[error("result exceeds {0} rows (limits.max_result_rows)")]
    TooManyRows(u64),
    /// The client cancelled the query.
    #[error("query cancelled")]
    Cancelled,
    /// DataFusion failed planning or running a query.
    #[error(transparent)]
    Query(#[from] DataFusionError),
    /// Arrow failed (encoding results or parameters).
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// arrow-flight failed building a response.
    #[error(transparent)]
    Flight(#[from] arrow_flight::error::FlightError),
    /// A fault of the server itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExitStatus for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit::CONFIG,
            Self::Storage(StorageError::Config(_)) => exit::CONFIG,
            Self::Storage(_) | Self::Http(_) | Self::Serve(_) => exit::UNAVAILABLE,
            _ => exit::SOFTWARE,
        }
    }
}

impl Error {
    /// The gRPC code a client sees for this error.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::NoSnapshot(_) | Self::NotFound(_) => Code::NotFound,
            Self::Sql(_) | Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::ReadOnly(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Timeout(_) => Code::DeadlineExceeded,
            Self::Busy(_) | Self::TooManyRows(_) => Code::ResourceExhausted,
            Self::Cancelled => Code::Cancelled,
            Self::SnapshotGone(_) => Code::Aborted,
            Self::Query(e) => datafusion_code(e),
            Self::Arrow(_) => Code::InvalidArgument,
            Self::Storage(_) | Self::Snapshot { .. } => Code::Unavailable,
            _ => Code::Internal,
        }
    }

    /// The gRPC status: the code from [`Error::code`], the message with its source chain, capped.
    pub fn into_status(self) -> Status {
        let code = self.code();
        let mut message = self.to_string();
        let mut source = std::error::Error::source(&self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        metrics::counter!("stockflight_server_errors_total", "code" => code_name(code)).increment(1);
        Status::new(code, message)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        err.into_status()
    }
}

/// Maps DataFusion's error kinds: the planner's complaints are the client's fault, resources and
/// faults of the engine are not.
fn datafusion_code(err: &DataFusionError) -> tonic::Code {
    use tonic::Code;
    match err.find_root() {
        DataFusionError::SQL(..) => Code::InvalidArgument,
        DataFusionError::Plan(msg) if is_missing_table(msg) => Code::NotFound,
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::Execution(msg) if msg.contains("Cancelled") => Code::Cancelled,
        DataFusionError::External(e) => match e.downcast_ref::<Error>() {
            Some(inner) => inner.code(),
            None => Code::Internal,
        },
        DataFusionError::ObjectStore(_) => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// DataFusion reports a missing table as a plan error `table '…' not found`.
fn is_missing_table(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    lower.contains("not found") && (lower.contains("table") || lower.contains("schema") || lower.contains("catalog"))
}

/// The canonical upper-case name of a code, for metrics labels.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn codes_are_deliberate() {
        assert_eq!(Error::Sql("x".into()).code(), Code::InvalidArgument);
        assert_eq!(Error::ReadOnly("x".into()).code(), Code::PermissionDenied);
        assert_eq!(
            Error::Query(DataFusionError::Plan(
                "table 'stockflight.public.nope' not found".into()
            ))
            .code(),
            Code::NotFound
        );
        assert_eq!(
            Error::Query(DataFusionError::Context(
                "ctx".into(),
                Box::new(DataFusionError::ResourcesExhausted("pool".into()))
            ))
            .code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            Error::Query(DataFusionError::Internal("x".into())).code(),
            Code::Internal
        );
    }

    #[test]
    fn long_messages_are_capped() {
        let status = Error::InvalidArgument("x".repeat(10_000)).into_status();
        assert!(status.message().len() <= MAX_MESSAGE + 4);
    }
}
