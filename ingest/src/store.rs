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
use stockflight_proto::changes::{self, CHANGES_TABLE};
use stockflight_proto::v1::AvailabilityUpdate;

use crate::error::Error;

/// The availability table, written with one prepared statement, and the change log
/// (`stockflight_proto::changes`) when it is on.
pub struct CassandraStore {
    session: Session,
    insert: PreparedStatement,
    change: Option<PreparedStatement>,
}

impl CassandraStore {
    /// Connects, creates the keyspace, type and table if missing, and prepares the upsert; with
    /// `change_log_ttl_secs`, also the change log (its rows living that long) and its insert.
    pub async fn open(
        nodes: &[String],
        keyspace: &str,
        replication: &str,
        consistency: Consistency,
        change_log_ttl_secs: Option<u32>,
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
        if let Some(ttl) = change_log_ttl_secs {
            create_change_log(&session, keyspace, ttl).await?;
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
        let change = match change_log_ttl_secs {
            None => None,
            Some(_) => {
                let mut change = session.prepare(changes::insert(keyspace)).await.map_err(|e| {
                    Error::Cassandra(format!("prepare the insert into {keyspace}.{CHANGES_TABLE}: {e}"))
                })?;
                // A replay writes another row of the same update: harmless to readers, which
                // keep the last write per pair.
                change.set_is_idempotent(true);
                change.set_consistency(level);
                Some(change)
            }
        };
        tracing::info!(
            keyspace,
            replication_factor = cql::replication_factor(&session, keyspace),
            consistency = ?level,
            change_log = change.is_some(),
            "writes prepared (token-aware routing)"
        );
        Ok(Self {
            session,
            insert,
            change,
        })
    }

    /// Upserts one validated update, and records it in the change log when that is on; an
    /// older update than the stored one changes nothing (it is still logged: readers rank).
    pub async fn upsert(&self, u: &AvailabilityUpdate) -> Result<(), ExecutionError> {
        let state = State::of(u);
        let values = (
            u.item_id.as_str(),
            u.node_id.as_str(),
            &state,
            cassandra::write_timestamp(u),
        );
        let upsert = self.session.execute_unpaged(&self.insert, values);
        let Some(change) = &self.change else {
            return upsert.await.map(|_| ());
        };
        // Stamped at each attempt: a retried write is logged at the minute it was written in.
        let applied_us = now_us();
        let logged = (
            changes::bucket_of(applied_us),
            changes::shard_of(&u.item_id),
            applied_us,
            u.item_id.as_str(),
            u.node_id.as_str(),
            &state,
            cassandra::write_timestamp(u),
        );
        // Both before the offset commits (the caller retries until both succeed); in parallel,
        // so the update's latency is one write's.
        let log = self.session.execute_unpaged(change, logged);
        tokio::try_join!(upsert, log).map(|_| ())
    }
}

/// Microseconds since the epoch by this process's clock.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Creates the change log if missing and gives it `ttl` (an existing table's rows keep theirs).
async fn create_change_log(session: &Session, keyspace: &str, ttl: u32) -> Result<(), Error> {
    let ddl = changes::create_changes_table(keyspace, ttl);
    session
        .query_unpaged(ddl.as_str(), ())
        .await
        .map_err(|e| Error::Cassandra(format!("schema `{ddl}`: {e}")))?;
    let current = session
        .query_unpaged(changes::SELECT_TTL, (keyspace, CHANGES_TABLE))
        .await
        .ok()
        .and_then(|r| r.into_rows_result().ok())
        .and_then(|rows| rows.maybe_first_row::<(i32,)>().ok().flatten())
        .map(|(ttl,)| ttl);
    if current != i32::try_from(ttl).ok() {
        let alter = changes::set_ttl(keyspace, ttl);
        session
            .query_unpaged(alter.as_str(), ())
            .await
            .map_err(|e| Error::Cassandra(format!("schema `{alter}`: {e}")))?;
        tracing::info!(keyspace, ttl_secs = ttl, previous = ?current, "change log lifetime set");
    }
    Ok(())
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
