//! The change log: every update ingest applies to the availability table is also recorded by the
//! minute it was applied, so a reader finds what changed since a moment (a snapshot's cut-off)
//! by reading the minutes since, never by scanning the availability table.
//!
//! ```text
//! availability_changes (
//!     bucket     bigint,   -- the minute of applied_us (applied_us / 60 s)
//!     shard      tinyint,  -- shard_of(item_id): a minute's writes spread over CHANGE_SHARDS partitions
//!     applied_us bigint,   -- ingest's clock when it wrote the update, microseconds since the epoch
//!     item_id    text,
//!     node_id    text,
//!     state      frozen<availability_state>,  -- the whole update, as in the availability table
//!     PRIMARY KEY ((bucket, shard), applied_us, item_id, node_id)
//! ) WITH default_time_to_live = <ingest.change_log_ttl>, time-window compaction
//! ```
//!
//! A row is written `USING TIMESTAMP event_time_us`, like the availability row, and read with
//! `WRITETIME(state)`: the reader gets each update's exact last-write-wins rank (its event time
//! in microseconds, then its cell bytes, [`crate::cassandra::State::cell_bytes`]). Two updates
//! of one pair written in the same microsecond resolve by that rank too, as in the availability
//! table. Rows expire after the table's `default_time_to_live`, which ingest sets from its
//! configuration and readers read back (`system_schema.tables`) to know how far back the log
//! reaches.
//!
//! Changing [`CHANGE_BUCKET_SECS`] or [`CHANGE_SHARDS`] moves rows where readers do not look:
//! both are part of the contract.

use crate::cassandra::STATE_TYPE;

/// Table name inside the configured keyspace.
pub const CHANGES_TABLE: &str = "availability_changes";
/// Width of one bucket: a reader of the changes since `t` reads the buckets from `t`'s on.
pub const CHANGE_BUCKET_SECS: i64 = 60;
/// Partitions per bucket, so a minute's writes do not all land on one node.
pub const CHANGE_SHARDS: i8 = 8;

/// The bucket of an update applied at `applied_us` (microseconds since the epoch).
pub fn bucket_of(applied_us: i64) -> i64 {
    applied_us.div_euclid(CHANGE_BUCKET_SECS * 1_000_000)
}

/// The first microsecond of `bucket`.
pub fn bucket_start_us(bucket: i64) -> i64 {
    bucket.saturating_mul(CHANGE_BUCKET_SECS * 1_000_000)
}

/// The shard of an item's changes: FNV-1a of its id, the same in every process.
pub fn shard_of(item_id: &str) -> i8 {
    let hash = item_id
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (hash % CHANGE_SHARDS as u32) as i8
}

/// `CREATE TABLE IF NOT EXISTS` for the change log (create the state type first), rows expiring
/// after `ttl_secs`.
pub fn create_changes_table(keyspace: &str, ttl_secs: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{CHANGES_TABLE} (
            bucket bigint,
            shard tinyint,
            applied_us bigint,
            item_id text,
            node_id text,
            state frozen<{STATE_TYPE}>,
            PRIMARY KEY ((bucket, shard), applied_us, item_id, node_id)
        ) WITH default_time_to_live = {ttl_secs}
          AND compaction = {{'class': 'TimeWindowCompactionStrategy',
                            'compaction_window_unit': 'HOURS', 'compaction_window_size': 1}}"
    )
}

/// Sets the change log's row lifetime (an existing table keeps its rows' own expiry).
pub fn set_ttl(keyspace: &str, ttl_secs: u32) -> String {
    format!("ALTER TABLE {keyspace}.{CHANGES_TABLE} WITH default_time_to_live = {ttl_secs}")
}

/// The change log's row lifetime: bind `(keyspace, table)`, read one `int`.
pub const SELECT_TTL: &str =
    "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?";

/// The insert of one applied update: bind `(bucket, shard, applied_us, item_id, node_id, state,
/// write_timestamp)`.
pub fn insert(keyspace: &str) -> String {
    format!(
        "INSERT INTO {keyspace}.{CHANGES_TABLE} (bucket, shard, applied_us, item_id, node_id, state) \
         VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
}

/// The changes of one bucket and shard applied after a moment: bind `(bucket, shard,
/// applied_us)`; rows are `(applied_us, item_id, node_id, state, writetime)`.
pub fn select_since(keyspace: &str) -> String {
    format!(
        "SELECT applied_us, item_id, node_id, state, WRITETIME(state) FROM {keyspace}.{CHANGES_TABLE} \
         WHERE bucket = ? AND shard = ? AND applied_us > ?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_minutes() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(59_999_999), 0);
        assert_eq!(bucket_of(60_000_000), 1);
        assert_eq!(bucket_of(-1), -1);
        assert_eq!(bucket_start_us(bucket_of(1_764_000_123_456_789)), 1_764_000_120_000_000);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed values: ingest and the server must agree across builds and machines.
        assert_eq!(shard_of(""), (0x811c_9dc5u32 % 8) as i8);
        assert_eq!(shard_of("sku-1"), shard_of("sku-1"));
        let mut seen = [0usize; CHANGE_SHARDS as usize];
        for i in 0..800 {
            seen[shard_of(&format!("it-{i:05}")) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }
}
