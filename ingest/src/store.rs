//! The Cassandra side: schema creation and the last-write-wins upsert.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use stockflight_proto::cassandra::{self, AVAILABILITY_TABLE};
use stockflight_proto::v1::AvailabilityUpdate;

use crate::decode::write_timestamp;
use crate::error::Error;

/// The availability table, written with one prepared statement.
pub struct CassandraStore {
    session: Session,
    insert: PreparedStatement,
}

impl CassandraStore {
    /// Connects, creates the keyspace and table if missing, and prepares the upsert.
    pub async fn open(nodes: &[String], keyspace: &str, replication: &str) -> Result<Self, Error> {
        let session = SessionBuilder::new()
            .known_nodes(nodes)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|e| Error::Cassandra(format!("connect to {}: {e}", nodes.join(","))))?;
        for ddl in [
            cassandra::create_keyspace(keyspace, replication),
            cassandra::create_availability_table(keyspace),
        ] {
            session
                .query_unpaged(ddl.as_str(), ())
                .await
                .map_err(|e| Error::Cassandra(format!("schema `{ddl}`: {e}")))?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| Error::Cassandra(format!("schema agreement: {e}")))?;
        // Last write wins by the update's own time, not by arrival: see `write_timestamp`.
        let cql = format!(
            "INSERT INTO {keyspace}.{AVAILABILITY_TABLE} \
             (item_id, node_id, available_qty, reserved_qty, status, event_time, source, sequence) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        );
        let mut insert = session
            .prepare(cql)
            .await
            .map_err(|e| Error::Cassandra(format!("prepare insert: {e}")))?;
        // Replaying an upsert with its fixed timestamp changes nothing: safe for the driver to retry.
        insert.set_is_idempotent(true);
        Ok(Self { session, insert })
    }

    /// Upserts one validated update; an older update than the stored one changes nothing.
    pub async fn upsert(&self, u: &AvailabilityUpdate) -> Result<(), ExecutionError> {
        let values = (
            u.item_id.as_str(),
            u.node_id.as_str(),
            u.available_qty,
            u.reserved_qty,
            u.status as i8,
            CqlTimestamp(u.event_time_us.div_euclid(1000)),
            u.source.as_str(),
            u.sequence as i64,
            write_timestamp(u),
        );
        self.session.execute_unpaged(&self.insert, values).await.map(|_| ())
    }
}
