//! The data layer's error type, and the [`Kind`] of each error: what a front end needs to choose
//! its protocol's code (gRPC status, HTTP status) without knowing the variants.

use std::time::Duration;

use datafusion::error::DataFusionError;

/// Everything that fails a request to the data layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No snapshot has been published yet.
    #[error("no snapshot is published yet ({0})")]
    NoSnapshot(String),
    /// `CURRENT` or a file it lists is unusable.
    #[error("snapshot {run_id}: {reason}")]
    Snapshot { run_id: String, reason: String },
    /// A query names a snapshot this replica no longer (or not yet) serves: it was planned on
    /// another one, so running it here would mix two snapshots.
    #[error("the query was planned on snapshot {0}, which this server no longer serves; run the statement again")]
    SnapshotGone(String),
    /// The SQL does not parse.
    #[error("SQL parse error: {0}")]
    Sql(String),
    /// The statement would change something: the data layer is read-only.
    #[error("read-only server: {0}")]
    ReadOnly(String),
    /// A table, schema or catalog that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request that is malformed or names something meaningless.
    #[error("{0}")]
    InvalidArgument(String),
    /// The query ran longer than its time limit.
    #[error("query exceeded the time limit of {0:?} (limits.query_timeout_secs)")]
    Timeout(Duration),
    /// The query waited longer than the queue allows for a slot.
    #[error("server busy: no query slot within {0:?} (limits.max_concurrent_queries)")]
    Busy(Duration),
    /// The result has more rows than allowed.
    #[error("result exceeds {0} rows (limits.max_result_rows)")]
    TooManyRows(u64),
    /// The client cancelled the query.
    #[error("query cancelled")]
    Cancelled,
    /// DataFusion failed planning or running a query.
    #[error(transparent)]
    Query(#[from] DataFusionError),
    /// Arrow failed (parameters, results).
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A live table cannot answer now: Cassandra (or its change log) is unreachable, or the
    /// changes since the snapshot are not loaded yet.
    #[error("live table unavailable: {0}")]
    LiveUnavailable(String),
    /// A query on a live table would read all of Cassandra's table (no key filter, no limit
    /// within `live.max_scan_rows`).
    #[error("{0}")]
    FullScan(String),
    /// A fault of the data layer itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for DataFusionError {
    /// Carries a data-layer error through DataFusion (a table provider's scan or stream), so
    /// its kind survives: [`Error::kind`] finds it again below `External`.
    fn from(err: Error) -> Self {
        DataFusionError::External(Box::new(err))
    }
}

/// What kind of failure an [`Error`] is, for a front end's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is wrong (SQL, parameters, names).
    InvalidArgument,
    /// What it names does not exist (or nothing is published yet).
    NotFound,
    /// It asks for something not allowed here (writes, paths).
    PermissionDenied,
    /// It ran out of time.
    DeadlineExceeded,
    /// It needs more than the limits allow (memory, slots, rows).
    ResourceExhausted,
    /// The client cancelled it.
    Cancelled,
    /// It cannot run here any more; retrying the whole statement helps.
    Aborted,
    /// A dependency (object store, snapshot files) failed; retrying may help.
    Unavailable,
    /// The engine does not support it.
    Unimplemented,
    /// A fault of ours.
    Internal,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> Kind {
        match self {
            Self::NoSnapshot(_) | Self::NotFound(_) => Kind::NotFound,
            Self::Sql(_) | Self::InvalidArgument(_) | Self::Arrow(_) | Self::FullScan(_) => Kind::InvalidArgument,
            Self::ReadOnly(_) => Kind::PermissionDenied,
            Self::Timeout(_) => Kind::DeadlineExceeded,
            Self::Busy(_) | Self::TooManyRows(_) => Kind::ResourceExhausted,
            Self::Cancelled => Kind::Cancelled,
            Self::SnapshotGone(_) => Kind::Aborted,
            Self::Snapshot { .. } | Self::LiveUnavailable(_) => Kind::Unavailable,
            Self::Query(e) => datafusion_kind(e),
            Self::Internal(_) => Kind::Internal,
        }
    }
}

/// DataFusion's error kinds: the planner's complaints are the client's fault, resources and
/// faults of the engine are not.
fn datafusion_kind(err: &DataFusionError) -> Kind {
    match err.find_root() {
        DataFusionError::SQL(..) => Kind::InvalidArgument,
        DataFusionError::Plan(msg) if is_missing_table(msg) => Kind::NotFound,
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => Kind::InvalidArgument,
        DataFusionError::NotImplemented(_) => Kind::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Kind::ResourceExhausted,
        DataFusionError::Execution(msg) if msg.contains("Cancelled") => Kind::Cancelled,
        DataFusionError::External(e) => match e.downcast_ref::<Error>() {
            Some(inner) => inner.kind(),
            None => Kind::Internal,
        },
        DataFusionError::ObjectStore(_) => Kind::Unavailable,
        _ => Kind::Internal,
    }
}

/// DataFusion reports a missing table as a plan error `table '…' not found`.
fn is_missing_table(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    lower.contains("not found") && (lower.contains("table") || lower.contains("schema") || lower.contains("catalog"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_deliberate() {
        assert_eq!(Error::Sql("x".into()).kind(), Kind::InvalidArgument);
        assert_eq!(Error::ReadOnly("x".into()).kind(), Kind::PermissionDenied);
        assert_eq!(Error::SnapshotGone("r@t".into()).kind(), Kind::Aborted);
        assert_eq!(
            Error::Query(DataFusionError::Plan(
                "table 'stockflight.public.nope' not found".into()
            ))
            .kind(),
            Kind::NotFound
        );
        assert_eq!(
            Error::Query(DataFusionError::Context(
                "ctx".into(),
                Box::new(DataFusionError::ResourcesExhausted("pool".into()))
            ))
            .kind(),
            Kind::ResourceExhausted
        );
        assert_eq!(
            Error::Query(DataFusionError::Internal("x".into())).kind(),
            Kind::Internal
        );
        // Raised inside a live table's scan, wrapped by DataFusion on the way out.
        let wrapped = |e: Error| Error::Query(DataFusionError::Context("scan".into(), Box::new(e.into())));
        assert_eq!(wrapped(Error::LiveUnavailable("down".into())).kind(), Kind::Unavailable);
        assert_eq!(wrapped(Error::FullScan("no key".into())).kind(), Kind::InvalidArgument);
    }
}
