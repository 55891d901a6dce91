//! The JSON encoding of [`AvailabilityUpdate`], for producers that cannot do protobuf.
//!
//! It follows protobuf's canonical JSON mapping, so any protobuf JSON printer produces it:
//!
//! ```json
//! {"itemId": "sku-1", "nodeId": "store-7", "availableQty": "5", "reservedQty": "0",
//!  "status": "AVAILABILITY_STATUS_IN_STOCK", "eventTimeUs": "1764000000000000",
//!  "source": "pos", "sequence": "42"}
//! ```
//!
//! Like protobuf parsers, the reader also accepts the `.proto` field names (`item_id`), 64-bit
//! numbers as JSON numbers, the status as its number or its short name (`IN_STOCK`), and
//! ignores unknown fields. A missing field takes its protobuf default (and then usually fails
//! [`crate::validate::validate`]). On Kafka, a record carries JSON when its
//! [`crate::CONTENT_TYPE_HEADER`] header is [`crate::JSON_CONTENT_TYPE`].

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::v1::{AvailabilityStatus, AvailabilityUpdate};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Json {
    #[serde(default, alias = "item_id")]
    item_id: String,
    #[serde(default, alias = "node_id")]
    node_id: String,
    #[serde(default, alias = "available_qty", deserialize_with = "int64")]
    available_qty: Int64,
    #[serde(default, alias = "reserved_qty", deserialize_with = "int64")]
    reserved_qty: Int64,
    #[serde(default, deserialize_with = "status")]
    status: Status,
    #[serde(default, alias = "event_time_us", deserialize_with = "int64")]
    event_time_us: Int64,
    #[serde(default)]
    source: String,
    #[serde(default, deserialize_with = "uint64")]
    sequence: Uint64,
}

/// 64-bit integers travel as decimal strings (JSON numbers lose precision past 2^53).
#[derive(Default, Serialize)]
struct Int64(#[serde(serialize_with = "as_string")] i64);
#[derive(Default, Serialize)]
struct Uint64(#[serde(serialize_with = "as_string")] u64);
#[derive(Default, Serialize)]
struct Status(String);

fn as_string<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Signed(i64),
    Unsigned(u64),
    Text(String),
}

fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<Int64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(v) => Ok(Int64(v)),
        NumberOrString::Unsigned(v) => i64::try_from(v)
            .map(Int64)
            .map_err(|_| de::Error::custom(format!("{v} does not fit int64"))),
        NumberOrString::Text(s) => s
            .parse()
            .map(Int64)
            .map_err(|_| de::Error::custom(format!("`{s}` is not an int64"))),
    }
}

fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<Uint64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(v) => u64::try_from(v)
            .map(Uint64)
            .map_err(|_| de::Error::custom(format!("{v} is negative, uint64 expected"))),
        NumberOrString::Unsigned(v) => Ok(Uint64(v)),
        NumberOrString::Text(s) => s
            .parse()
            .map(Uint64)
            .map_err(|_| de::Error::custom(format!("`{s}` is not a uint64"))),
    }
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Signed(v) => Ok(Status(v.to_string())),
        NumberOrString::Unsigned(v) => Ok(Status(v.to_string())),
        NumberOrString::Text(s) => Ok(Status(s)),
    }
}

/// The enum number of a status given as number, full name or short name.
fn status_number(text: &str) -> Result<i32, String> {
    if let Ok(number) = text.parse::<i32>() {
        return Ok(number);
    }
    let full = if text.starts_with("AVAILABILITY_STATUS_") {
        text.to_string()
    } else {
        format!("AVAILABILITY_STATUS_{text}")
    };
    AvailabilityStatus::from_str_name(&full)
        .map(|s| s as i32)
        .ok_or_else(|| format!("unknown status `{text}`"))
}

/// Decodes one JSON-encoded update. Does not validate: see [`crate::validate::validate`].
pub fn decode(bytes: &[u8]) -> Result<AvailabilityUpdate, String> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let status = if json.status.0.is_empty() {
        0
    } else {
        status_number(&json.status.0)?
    };
    Ok(AvailabilityUpdate {
        item_id: json.item_id,
        node_id: json.node_id,
        available_qty: json.available_qty.0,
        reserved_qty: json.reserved_qty.0,
        status,
        event_time_us: json.event_time_us.0,
        source: json.source,
        sequence: json.sequence.0,
    })
}

/// Encodes one update in the canonical JSON mapping (camelCase, 64-bit numbers as strings).
pub fn encode(update: &AvailabilityUpdate) -> Vec<u8> {
    let status = AvailabilityStatus::try_from(update.status)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| update.status.to_string());
    let json = Json {
        item_id: update.item_id.clone(),
        node_id: update.node_id.clone(),
        available_qty: Int64(update.available_qty),
        reserved_qty: Int64(update.reserved_qty),
        status: Status(status),
        event_time_us: Int64(update.event_time_us),
        source: update.source.clone(),
        sequence: Uint64(update.sequence),
    };
    serde_json::to_vec(&json).expect("an update serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> AvailabilityUpdate {
        AvailabilityUpdate {
            item_id: "sku-1".into(),
            node_id: "store-7".into(),
            available_qty: 5,
            reserved_qty: 2,
            status: AvailabilityStatus::LowStock as i32,
            event_time_us: 1_764_000_000_123_456,
            source: "pos".into(),
            sequence: u64::MAX - 1,
        }
    }

    #[test]
    fn round_trips() {
        let u = update();
        assert_eq!(decode(&encode(&u)).unwrap(), u);
    }

    #[test]
    fn canonical_form_uses_camel_case_and_strings() {
        let text = String::from_utf8(encode(&update())).unwrap();
        assert!(text.contains(r#""itemId":"sku-1""#), "{text}");
        assert!(text.contains(r#""eventTimeUs":"1764000000123456""#), "{text}");
        assert!(text.contains(r#""status":"AVAILABILITY_STATUS_LOW_STOCK""#), "{text}");
    }

    #[test]
    fn accepts_proto_names_numbers_short_enums_and_unknown_fields() {
        let text = br#"{"item_id":"sku-1","node_id":"store-7","available_qty":5,"reservedQty":"2",
            "status":"LOW_STOCK","event_time_us":1764000000123456,"source":"pos",
            "sequence":18446744073709551614,"futureField":{"x":1}}"#;
        assert_eq!(decode(text).unwrap(), update());
        let numeric = br#"{"itemId":"a","status":3}"#;
        assert_eq!(decode(numeric).unwrap().status, AvailabilityStatus::OutOfStock as i32);
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(decode(b"{not json").unwrap_err().contains("invalid JSON"));
        assert!(
            decode(br#"{"status":"MAYBE"}"#)
                .unwrap_err()
                .contains("unknown status `MAYBE`")
        );
        assert!(
            decode(br#"{"availableQty":"lots"}"#)
                .unwrap_err()
                .contains("`lots` is not an int64")
        );
        assert!(decode(br#"{"sequence":-1}"#).unwrap_err().contains("negative"));
    }
}
