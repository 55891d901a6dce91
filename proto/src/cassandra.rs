//! The Cassandra table that holds the current availability of every (item, node) pair.
//!
//! Partitioned by item so a per-item look-up reads one partition; the batch job scans the whole
//! table by token ranges, which works for any partition key.

/// Table name inside the configured keyspace.
pub const AVAILABILITY_TABLE: &str = "availability";

/// `CREATE KEYSPACE IF NOT EXISTS` with the given replication map, e.g.
/// `{'class': 'SimpleStrategy', 'replication_factor': 1}`.
pub fn create_keyspace(keyspace: &str, replication: &str) -> String {
    format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")
}

/// `CREATE TABLE IF NOT EXISTS` for the availability table.
pub fn create_availability_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{AVAILABILITY_TABLE} (
            item_id text,
            node_id text,
            available_qty bigint,
            reserved_qty bigint,
            status tinyint,
            event_time timestamp,
            source text,
            sequence bigint,
            PRIMARY KEY ((item_id), node_id)
        )"
    )
}
