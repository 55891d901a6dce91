//! Stockflight's shared contracts: what crosses a process boundary.
//!
//! - [`v1`]: the protobuf messages applications publish to Kafka;
//! - [`cassandra`]: the table that holds current availability;
//! - [`changes`]: the change log of applied updates the server's live tables follow;
//! - [`layout`]: where snapshots live in object storage;
//! - [`json`]: the JSON encoding of the update, for producers that cannot do protobuf;
//! - [`validate`]: the rules an update must meet to be ingested;
//! - [`tables`]: what each published table means, as SQL.

pub mod cassandra;
pub mod changes;
pub mod json;
pub mod layout;
pub mod tables;
pub mod validate;

/// Kafka record header that names the payload's encoding. Absent (or
/// [`PROTOBUF_CONTENT_TYPE`]) means protobuf; [`JSON_CONTENT_TYPE`] means [`json`].
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// Content type of a protobuf-encoded `AvailabilityUpdate` (the default).
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// Content type of a JSON-encoded `AvailabilityUpdate` (see [`json`]).
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Version 1 of the availability contract (`proto/stockflight/v1/availability.proto`).
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/stockflight.v1.rs"));
}

/// Kafka record key of an update: all updates of one (item, node) pair share it, so they land
/// in one partition and stay in order.
pub fn kafka_key(item_id: &str, node_id: &str) -> String {
    format!("{node_id}/{item_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn unknown_fields_are_tolerated() {
        // A newer producer's message: field 12 is unknown to this version.
        let mut bytes = v1::AvailabilityUpdate {
            item_id: "sku-1".into(),
            node_id: "store-7".into(),
            available_qty: 5,
            ..Default::default()
        }
        .encode_to_vec();
        bytes.extend_from_slice(&[12 << 3, 42]); // field 12, varint 42
        let decoded = v1::AvailabilityUpdate::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded.item_id, "sku-1");
        assert_eq!(decoded.available_qty, 5);
    }

    #[test]
    fn key_is_stable_per_pair() {
        assert_eq!(kafka_key("sku-1", "store-7"), kafka_key("sku-1", "store-7"));
        assert_ne!(kafka_key("sku-1", "store-7"), kafka_key("sku-1", "store-8"));
    }
}
