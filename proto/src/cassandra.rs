//! The Cassandra table that holds the current availability of every (item, node) pair.
//!
//! Partitioned by item so a per-item look-up reads one partition; the batch job scans the whole
//! table by token ranges, which works for any partition key.
//!
//! # Last write wins, exactly
//!
//! A row is `(item_id, node_id, state)`, where `state` is one frozen UDT value holding the whole
//! update: Cassandra reconciles it as a single cell, so a row always equals one whole update,
//! never a mix of two. Its write timestamp is the update's `event_time_us`, on Cassandra's
//! ordinary microsecond scale, so a newer event wins whatever order updates arrive in, and an
//! operator's plain CQL `DELETE`, `UPDATE` and TTL behave as usual.
//!
//! When two updates carry the same event time, their cells have equal timestamps and Cassandra
//! keeps the one whose serialized value is greater (an unsigned byte comparison, the same on
//! every replica, in memtables and in compaction). The UDT's first field is `sequence` (a
//! non-negative bigint, serialized big-endian after a fixed 4-byte length), so among equal event
//! times the higher sequence wins, for all sequences `0..2^63`. Equal `(event_time, sequence)`
//! from different sources resolve by the next field, `source`, as Cassandra serializes it (its
//! byte length first, then its bytes: see [`tie_order`]), then by the remaining fields in UDT
//! order. `tests/tests/ingest_lww_property.rs` checks this rule against the real Cassandra.

/// Table name inside the configured keyspace.
pub const AVAILABILITY_TABLE: &str = "availability";

/// The UDT of the `state` column: one whole update.
pub const STATE_TYPE: &str = "availability_state";

/// `CREATE KEYSPACE IF NOT EXISTS` with the given replication map, e.g.
/// `{'class': 'SimpleStrategy', 'replication_factor': 1}`.
pub fn create_keyspace(keyspace: &str, replication: &str) -> String {
    format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")
}

/// `CREATE TYPE IF NOT EXISTS` for the state UDT. The field order is the tie order (see the
/// module docs): never reorder it.
pub fn create_state_type(keyspace: &str) -> String {
    format!(
        "CREATE TYPE IF NOT EXISTS {keyspace}.{STATE_TYPE} (
            sequence bigint,
            source text,
            available_qty bigint,
            reserved_qty bigint,
            status tinyint,
            event_time timestamp
        )"
    )
}

/// `CREATE TABLE IF NOT EXISTS` for the availability table (create the type first).
pub fn create_availability_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{AVAILABILITY_TABLE} (
            item_id text,
            node_id text,
            state frozen<{STATE_TYPE}>,
            PRIMARY KEY ((item_id), node_id)
        )"
    )
}

/// Every statement that creates the schema, in order.
pub fn create_schema(keyspace: &str, replication: &str) -> [String; 3] {
    [
        create_keyspace(keyspace, replication),
        create_state_type(keyspace),
        create_availability_table(keyspace),
    ]
}

/// The upsert of one update: bind `(item_id, node_id, state, write_timestamp)`.
pub fn upsert(keyspace: &str) -> String {
    format!("INSERT INTO {keyspace}.{AVAILABILITY_TABLE} (item_id, node_id, state) VALUES (?, ?, ?) USING TIMESTAMP ?")
}

/// The write timestamp of an update: its event time, in microseconds (Cassandra's own scale).
pub fn write_timestamp(update: &crate::v1::AvailabilityUpdate) -> i64 {
    update.event_time_us
}

/// The key by which Cassandra orders two states of equal write timestamp (the greater wins):
/// the serialized UDT's bytes compare like this tuple.
pub fn tie_order(update: &crate::v1::AvailabilityUpdate) -> (u64, usize, &[u8], i64, i64, i32) {
    (
        update.sequence,
        update.source.len(),
        update.source.as_bytes(),
        update.available_qty,
        update.reserved_qty,
        update.status,
    )
}

/// The `state` value as the driver reads and writes it. Ingest sets every field; each is an
/// `Option` so that a value an operator wrote by hand with fields left out (null) still reads.
#[cfg(feature = "cql")]
#[derive(Debug, Clone, PartialEq, Eq, scylla::SerializeValue, scylla::DeserializeValue)]
pub struct State {
    /// The source's sequence number (`< 2^63`).
    pub sequence: Option<i64>,
    /// Publishing system.
    pub source: Option<String>,
    /// Units that can be promised.
    pub available_qty: Option<i64>,
    /// Units held for open orders.
    pub reserved_qty: Option<i64>,
    /// `AvailabilityStatus` as its number.
    pub status: Option<i8>,
    /// Event time, in Cassandra's millisecond `timestamp` (the write timestamp keeps the microseconds).
    pub event_time: Option<scylla::value::CqlTimestamp>,
}

#[cfg(feature = "cql")]
impl State {
    /// The state of a validated update.
    pub fn of(update: &crate::v1::AvailabilityUpdate) -> Self {
        Self {
            sequence: Some(update.sequence as i64),
            source: Some(update.source.clone()),
            available_qty: Some(update.available_qty),
            reserved_qty: Some(update.reserved_qty),
            status: Some(update.status as i8),
            event_time: Some(scylla::value::CqlTimestamp(update.event_time_us.div_euclid(1000))),
        }
    }
}

#[cfg(feature = "cql")]
impl State {
    /// The value as Cassandra serializes the frozen UDT: each field as a 4-byte big-endian
    /// length (-1 for null) and its bytes, in type order. Of two cells with the same write
    /// timestamp Cassandra keeps the one whose bytes are greater (unsigned): comparing these
    /// vectors is that rule (see the module docs).
    pub fn cell_bytes(&self) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
            match bytes {
                Some(b) => {
                    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    out.extend_from_slice(b);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        let mut out = Vec::with_capacity(64);
        field(&mut out, self.sequence.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
        field(&mut out, self.source.as_deref().map(str::as_bytes));
        field(
            &mut out,
            self.available_qty.map(i64::to_be_bytes).as_ref().map(|b| &b[..]),
        );
        field(
            &mut out,
            self.reserved_qty.map(i64::to_be_bytes).as_ref().map(|b| &b[..]),
        );
        field(&mut out, self.status.map(i8::to_be_bytes).as_ref().map(|b| &b[..]));
        field(
            &mut out,
            self.event_time.map(|t| t.0.to_be_bytes()).as_ref().map(|b| &b[..]),
        );
        out
    }
}

#[cfg(all(test, feature = "cql"))]
mod tests {
    use super::*;
    use crate::v1::AvailabilityUpdate;

    fn update(sequence: u64, source: &str, available_qty: i64) -> AvailabilityUpdate {
        AvailabilityUpdate {
            item_id: "i".into(),
            node_id: "n".into(),
            available_qty,
            reserved_qty: 1,
            status: 1,
            event_time_us: 1_764_000_000_123_456,
            source: source.into(),
            sequence,
        }
    }

    /// The byte order of two states agrees with [`tie_order`], the documented rule.
    #[test]
    fn cell_bytes_order_like_the_tie_rule() {
        let cases = [
            (update(5, "pos", 1), update(1005, "pos", 1)),
            (update(999, "pos", 1), update(1000, "pos", 1)),
            (update(1, "pos", 1), update(1 << 40, "pos", 1)),
            (update(7, "pos", 1), update(7, "wms", 1)),
            (update(7, "wms", 1), update(7, "oms-eu", 1)),
            (update(7, "pos", 1), update(7, "pos", 2)),
        ];
        for (low, high) in cases {
            assert!(tie_order(&low) < tie_order(&high));
            assert!(
                State::of(&low).cell_bytes() < State::of(&high).cell_bytes(),
                "{low:?} vs {high:?}"
            );
        }
        let mut nulls = State::of(&update(1, "pos", 1));
        nulls.sequence = None;
        // A null field (an operator's hand-written row) serializes as length -1: greatest.
        assert!(nulls.cell_bytes() > State::of(&update(u64::MAX >> 1, "pos", 1)).cell_bytes());
    }
}
