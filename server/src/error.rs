//! The server's error type: what stops start-up (and its exit code), and what fails a request
//! (and its gRPC code, chosen deliberately in [`Error::into_status`]).

use stockflight_common::config::ConfigError;
use stockflight_common::exit::{self, ExitStatus};
use stockflight_common::http::HttpError;
use stockflight_common::storage::StorageError;
use stockflight_query::Kind;
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
    /// The data layer refused or failed the request.
    #[error(transparent)]
    Data(#[from] stockflight_query::Error),
    /// A request that is malformed (a handle, ticket or parameter batch that does not decode).
    #[error("{0}")]
    InvalidArgument(String),
    /// Missing, wrong or expired credentials.
    #[error("{0}")]
    Unauthenticated(String),
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
            Self::Data(e) => kind_code(e.kind()),
            Self::InvalidArgument(_) | Self::Arrow(_) => Code::InvalidArgument,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Storage(_) => Code::Unavailable,
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

/// The gRPC code of each kind of data-layer failure.
fn kind_code(kind: Kind) -> tonic::Code {
    use tonic::Code;
    match kind {
        Kind::InvalidArgument => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::DeadlineExceeded => Code::DeadlineExceeded,
        Kind::ResourceExhausted => Code::ResourceExhausted,
        Kind::Cancelled => Code::Cancelled,
        Kind::Aborted => Code::Aborted,
        Kind::Unavailable => Code::Unavailable,
        Kind::Unimplemented => Code::Unimplemented,
        Kind::Internal => Code::Internal,
    }
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
    use datafusion::error::DataFusionError;
    use stockflight_query::Error as DataError;
    use tonic::Code;

    #[test]
    fn codes_are_deliberate() {
        assert_eq!(Error::from(DataError::Sql("x".into())).code(), Code::InvalidArgument);
        assert_eq!(
            Error::from(DataError::ReadOnly("x".into())).code(),
            Code::PermissionDenied
        );
        assert_eq!(Error::from(DataError::SnapshotGone("r".into())).code(), Code::Aborted);
        assert_eq!(
            Error::from(DataError::Query(DataFusionError::Plan(
                "table 'stockflight.public.nope' not found".into()
            )))
            .code(),
            Code::NotFound
        );
        assert_eq!(
            Error::from(DataError::Query(DataFusionError::Context(
                "ctx".into(),
                Box::new(DataFusionError::ResourcesExhausted("pool".into()))
            )))
            .code(),
            Code::ResourceExhausted
        );
        assert_eq!(Error::Unauthenticated("x".into()).code(), Code::Unauthenticated);
        assert_eq!(Error::Internal("x".into()).code(), Code::Internal);
    }

    #[test]
    fn long_messages_are_capped() {
        let status = Error::InvalidArgument("x".repeat(10_000)).into_status();
        assert!(status.message().len() <= MAX_MESSAGE + 4);
    }
}
