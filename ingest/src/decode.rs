//! From a Kafka record's bytes to a valid update, or the reason it is a dead letter.

use prost::Message;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_proto::{JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, json, validate};

/// Why a record cannot be ingested; becomes the dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Short class for the metrics label: `empty`, `content_type`, `protobuf`, `json`, `invalid`,
    /// `clock` (see [`crate::guard`]), `rejected` (refused by Cassandra).
    pub kind: &'static str,
    /// Human-readable reason, written to the dead-letter record's header.
    pub reason: String,
}

impl Rejection {
    /// A rejection of class `kind`.
    pub fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

/// Decodes a record's value according to its `content-type` header and validates it.
pub fn decode(payload: Option<&[u8]>, content_type: Option<&[u8]>) -> Result<AvailabilityUpdate, Rejection> {
    let payload = match payload {
        Some(p) if !p.is_empty() => p,
        _ => return Err(Rejection::new("empty", "empty record value (no update)")),
    };
    let content_type = content_type.map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase());
    // Parameters such as `; charset=utf-8` do not change the encoding.
    let media_type = content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or_default().trim());
    let update = match media_type {
        None | Some("") | Some(PROTOBUF_CONTENT_TYPE) | Some("application/protobuf") => {
            AvailabilityUpdate::decode(payload)
                .map_err(|e| Rejection::new("protobuf", format!("undecodable protobuf: {e}")))?
        }
        Some(JSON_CONTENT_TYPE) => json::decode(payload).map_err(|e| Rejection::new("json", e))?,
        Some(other) => {
            return Err(Rejection::new(
                "content_type",
                format!("unsupported content-type `{other}` (use {PROTOBUF_CONTENT_TYPE} or {JSON_CONTENT_TYPE})"),
            ));
        }
    };
    validate::validate(&update).map_err(|e| Rejection::new("invalid", e.to_string()))?;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockflight_proto::v1::AvailabilityStatus;

    fn update() -> AvailabilityUpdate {
        AvailabilityUpdate {
            item_id: "sku-1".into(),
            node_id: "store-7".into(),
            available_qty: 3,
            reserved_qty: 0,
            status: AvailabilityStatus::InStock as i32,
            event_time_us: 1_764_000_000_000_000,
            source: "pos".into(),
            sequence: 1,
        }
    }

    #[test]
    fn protobuf_is_the_default() {
        let bytes = update().encode_to_vec();
        assert_eq!(decode(Some(&bytes), None).unwrap(), update());
        assert_eq!(decode(Some(&bytes), Some(b"application/x-protobuf")).unwrap(), update());
    }

    #[test]
    fn json_is_chosen_by_header() {
        let bytes = json::encode(&update());
        assert_eq!(
            decode(Some(&bytes), Some(b"Application/JSON; charset=utf-8")).unwrap(),
            update()
        );
        // The same bytes without the header are not protobuf.
        assert_eq!(decode(Some(&bytes), None).unwrap_err().kind, "protobuf");
    }

    #[test]
    fn rejections_say_why() {
        assert_eq!(decode(None, None).unwrap_err().kind, "empty");
        assert_eq!(decode(Some(b"\xff\xff\xff"), None).unwrap_err().kind, "protobuf");
        let r = decode(Some(b"x"), Some(b"text/csv")).unwrap_err();
        assert!(r.reason.contains("text/csv"), "{r:?}");
        let mut bad = update();
        bad.item_id.clear();
        let r = decode(Some(&bad.encode_to_vec()), None).unwrap_err();
        assert_eq!(r.kind, "invalid");
        assert!(r.reason.contains("item_id"), "{r:?}");
    }
}
