//! The Cassandra side: schema creation, the last-write-wins upsert, and which failures are
//! worth retrying.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::prepared::PreparedStatement;
use stockflight_common::cql;
use stockflight_common::sections::Consistency;
use stockflight_proto::cassandra::{self, AVAILABILITY_TABLE, State};
use stockflight_proto::v1::AvailabilityUpdate;

use crate::error::Error;

/// The availability table, written with one prepared statement.
pub struct CassandraStore {
    session: Session,
    insert: PreparedStatement,
}

impl CassandraStore {
    /// Connects, creates the keyspace, type and table if missing, and prepares the upsert.
    pub async fn open(
        nodes: &[String],
        keyspace: &str,
        replication: &str,
        consistency: Consistency,
    ) -> Result<Self, Error> {
        let session = SessionBuilder::new()
            .known_nodes(nodes)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|e| Error::Cassandra(format!("connect to {}: {e}", nodes.join(","))))?;
        for ddl in cassandra::create_schema(keyspace, replication) {
            session
                .query_unpaged(ddl.as_str(), ())
                .await
                .map_err(|e| Error::Cassandra(format!("schema `{ddl}`: {e}")))?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| Error::Cassandra(format!("schema agreement: {e}")))?;
        // Last write wins by the update's own time, not by arrival: see `stockflight_proto::cassandra`.
        let mut insert = session.prepare(cassandra::upsert(keyspace)).await.map_err(|e| {
            Error::Cassandra(format!(
                "prepare the upsert into {keyspace}.{AVAILABILITY_TABLE} (a table of the old layout, without \
                 the `state` column, must be migrated first: see ingest/README.md): {e}"
            ))
        })?;
        // Replaying an upsert with its fixed timestamp changes nothing: safe for the driver to retry.
        insert.set_is_idempotent(true);
        // The keyspace may predate this instance (its replication then is not ours): read it back.
        session
            .refresh_metadata()
            .await
            .map_err(|e| Error::Cassandra(format!("read the cluster's metadata: {e}")))?;
        let level = cql::consistency(&session, keyspace, consistency);
        insert.set_consistency(level);
        tracing::info!(
            keyspace,
            replication_factor = cql::replication_factor(&session, keyspace),
            consistency = ?level,
            "writes prepared (token-aware routing)"
        );
        Ok(Self { session, insert })
    }

    /// Upserts one validated update; an older update than the stored one changes nothing.
    pub async fn upsert(&self, u: &AvailabilityUpdate) -> Result<(), ExecutionError> {
        let values = (
            u.item_id.as_str(),
            u.node_id.as_str(),
            State::of(u),
            cassandra::write_timestamp(u),
        );
        self.session.execute_unpaged(&self.insert, values).await.map(|_| ())
    }
}

/// What a failed write means for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Cassandra (or the way to it) is down, overloaded or slow: retry until it works.
    Transient(String),
    /// Cassandra refused this write itself (invalid, unauthorized, ...): retrying cannot help
    /// beyond a bounded number of tries; then the record is dead-lettered with this message.
    Rejected(String),
}

/// Classifies a failed write.
pub fn classify(err: &ExecutionError) -> Failure {
    match err {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, message)) => match db {
            DbError::SyntaxError
            | DbError::Invalid
            | DbError::AlreadyExists { .. }
            | DbError::FunctionFailure { .. }
            | DbError::Unauthorized
            | DbError::ConfigError => Failure::Rejected(format!("{db}: {message}")),
            // Unavailable, timeouts, overload, bootstrapping, and replica-side write failures
            // (a replica's disk, say) are the cluster's state, not the record's.
            _ => Failure::Transient(err.to_string()),
        },
        // The driver refused to send it (a value it cannot serialize): no retry changes that.
        ExecutionError::BadQuery(bad) => Failure::Rejected(format!("driver refused the write: {bad}")),
        _ => Failure::Transient(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "server says no".into()))
    }

    #[test]
    fn outages_are_transient_and_refusals_are_not() {
        assert!(matches!(classify(&db(DbError::Invalid)), Failure::Rejected(m) if m.contains("server says no")));
        assert!(matches!(classify(&db(DbError::Unauthorized)), Failure::Rejected(_)));
        for transient in [
            DbError::Overloaded,
            DbError::IsBootstrapping,
            DbError::Unavailable {
                consistency: scylla::statement::Consistency::Quorum,
                required: 2,
                alive: 1,
            },
            DbError::WriteTimeout {
                consistency: scylla::statement::Consistency::Quorum,
                received: 1,
                required: 2,
                write_type: scylla::errors::WriteType::Simple,
            },
        ] {
            assert!(matches!(classify(&db(transient)), Failure::Transient(_)));
        }
        assert!(matches!(
            classify(&ExecutionError::RequestTimeout(Duration::from_secs(1))),
            Failure::Transient(_)
        ));
    }
}
