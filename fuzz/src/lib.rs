//! What the fuzz targets assert about `stockflight_ingest::decode::decode`, the function ingest
//! calls on every Kafka record, and about the clock guard ingest applies to what it accepts.
//!
//! Not only "no panic": every outcome is checked against the documented contract.
//!
//! - An accepted update satisfies `stockflight_proto::validate::validate` and, checked again
//!   independently here, every rule of `availability.proto`; its protobuf re-encoding decodes to
//!   the same update (with and without a content-type header) and re-encodes to the same bytes;
//!   its JSON re-encoding decodes to the same update; the clock guard accepts it exactly when its
//!   event time lies within the guard's bounds, and otherwise refuses it with kind `clock`.
//! - A rejection has a non-empty reason and one of the kinds decode documents (`empty`,
//!   `content_type`, `protobuf`, `json`, `invalid`), and the kind is the right one: `empty` for a
//!   missing or empty value, `content_type` (naming the media type) for an unsupported header,
//!   `protobuf`/`json` only when the bytes really do not parse in that encoding, `invalid` only
//!   when they parse and `validate` refuses the result, with `validate`'s own message.
//! - decode is deterministic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use stockflight_ingest::decode::{Rejection, decode};
use stockflight_ingest::guard::ClockGuard;
use stockflight_proto::v1::{AvailabilityStatus, AvailabilityUpdate};
use stockflight_proto::validate::{MAX_EVENT_TIME_US, MAX_ID_BYTES, validate};
use stockflight_proto::{JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, json};

/// The kinds `decode` may return (`clock` and `rejected` come from later stages).
pub const DECODE_KINDS: [&str; 5] = ["empty", "content_type", "protobuf", "json", "invalid"];

/// The content types the `decode` target chooses from with its first byte (values 0..=6); 7
/// takes the header from the input itself (next byte: its length, then its bytes).
pub const CONTENT_TYPES: [Option<&[u8]>; 7] = [
    None,
    Some(b"application/x-protobuf"),
    Some(b"application/json"),
    Some(b"Application/JSON; charset=utf-8"),
    Some(b"text/csv"),
    Some(b"application/protobuf"),
    Some(b""),
];

/// Splits a `decode` target input into (record value, content-type header).
///
/// First byte: `% 8` picks the header from [`CONTENT_TYPES`], or 7 for a fuzzed header; its high
/// bit turns an empty value into a missing one (a tombstone). The rest is the record value.
pub fn split(data: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let Some((&selector, rest)) = data.split_first() else {
        return (None, None);
    };
    let (content_type, value) = match (selector % 8) as usize {
        i @ 0..=6 => (CONTENT_TYPES[i], rest),
        _ => {
            let (len, rest) = rest.split_first().map_or((0, rest), |(&n, r)| (n as usize, r));
            let len = len.min(rest.len());
            (Some(&rest[..len]), &rest[len..])
        }
    };
    let value = if value.is_empty() && selector & 0x80 != 0 {
        None
    } else {
        Some(value)
    };
    (value, content_type)
}

/// Which decoder a header selects, as `ingest/README.md` documents it: protobuf without a header
/// (or with a protobuf one), JSON for `application/json` (any case, any parameters).
#[derive(Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
    Unsupported(String),
}

fn encoding(content_type: Option<&[u8]>) -> Encoding {
    let Some(header) = content_type else {
        return Encoding::Protobuf;
    };
    let header = String::from_utf8_lossy(header).trim().to_ascii_lowercase();
    let media_type = header.split(';').next().unwrap_or_default().trim();
    match media_type {
        "" | PROTOBUF_CONTENT_TYPE | "application/protobuf" => Encoding::Protobuf,
        JSON_CONTENT_TYPE => Encoding::Json,
        other => Encoding::Unsupported(other.to_string()),
    }
}

/// Decodes one record like ingest does and checks every invariant; panics on a violation.
pub fn check(value: Option<&[u8]>, content_type: Option<&[u8]>) {
    let result = decode(value, content_type);
    assert_eq!(result, decode(value, content_type), "decode is not deterministic");
    let bytes = value.filter(|v| !v.is_empty());
    let encoding = encoding(content_type);
    match (&result, bytes) {
        (Ok(update), Some(_)) => {
            assert!(
                !matches!(encoding, Encoding::Unsupported(_)),
                "accepted under unsupported content-type {content_type:?}: {update:?}"
            );
            accepted(update);
        }
        (Ok(update), None) => panic!("an empty value was accepted: {update:?}"),
        (Err(rejection), bytes) => rejected(rejection, bytes, &encoding),
    }
}

fn rejected(rejection: &Rejection, bytes: Option<&[u8]>, encoding: &Encoding) {
    let Rejection { kind, reason } = rejection;
    assert!(!reason.trim().is_empty(), "rejection without a reason: {rejection:?}");
    assert!(
        DECODE_KINDS.contains(kind),
        "undocumented rejection kind: {rejection:?}"
    );
    let Some(bytes) = bytes else {
        assert_eq!(*kind, "empty", "missing or empty value: {rejection:?}");
        return;
    };
    // What the named decoder makes of the bytes on its own.
    let parsed = match encoding {
        Encoding::Protobuf => {
            let parsed = AvailabilityUpdate::decode(bytes);
            assert!(
                *kind == if parsed.is_ok() { "invalid" } else { "protobuf" },
                "protobuf record, parse {}: {rejection:?}",
                if parsed.is_ok() { "ok" } else { "failed" }
            );
            parsed.ok()
        }
        Encoding::Json => {
            let parsed = json::decode(bytes);
            assert!(
                *kind == if parsed.is_ok() { "invalid" } else { "json" },
                "JSON record, parse {parsed:?}: {rejection:?}"
            );
            parsed.ok()
        }
        Encoding::Unsupported(media_type) => {
            assert_eq!(*kind, "content_type", "unsupported content type: {rejection:?}");
            assert!(
                reason.contains(media_type.as_str()),
                "reason does not name `{media_type}`: {rejection:?}"
            );
            return;
        }
    };
    if let Some(update) = parsed {
        let invalid = validate(&update).expect_err("decode rejected as invalid what validate accepts");
        assert_eq!(*reason, invalid.to_string(), "the reason is not validate's");
        assert!(reason.starts_with("invalid field `"), "{rejection:?}");
    }
}

fn accepted(update: &AvailabilityUpdate) {
    assert_eq!(validate(update), Ok(()), "accepted an invalid update: {update:?}");
    follows_the_proto_rules(update);

    // Protobuf: the canonical re-encoding decodes to the same update and is stable.
    let protobuf = update.encode_to_vec();
    let again = decode(Some(&protobuf), Some(PROTOBUF_CONTENT_TYPE.as_bytes()));
    assert_eq!(again.as_ref(), Ok(update), "protobuf re-encoding does not round-trip");
    assert_eq!(
        decode(Some(&protobuf), None).as_ref(),
        Ok(update),
        "no header means protobuf"
    );
    assert_eq!(
        again.unwrap().encode_to_vec(),
        protobuf,
        "protobuf re-encoding is not stable"
    );

    // JSON: the canonical encoding decodes to the same update.
    let text = json::encode(update);
    assert_eq!(
        decode(Some(&text), Some(JSON_CONTENT_TYPE.as_bytes())).as_ref(),
        Ok(update),
        "JSON re-encoding does not round-trip: {}",
        String::from_utf8_lossy(&text)
    );

    clock_guard(update);
}

/// The rules of `availability.proto`, spelled out once more independently of `validate`.
fn follows_the_proto_rules(u: &AvailabilityUpdate) {
    for (field, id) in [("item_id", &u.item_id), ("node_id", &u.node_id), ("source", &u.source)] {
        assert!(
            !id.is_empty() && id.len() <= MAX_ID_BYTES,
            "{field} length {}",
            id.len()
        );
        assert!(
            !id.chars().any(char::is_control),
            "{field} has control characters: {id:?}"
        );
    }
    assert!(u.available_qty >= 0 && u.reserved_qty >= 0, "negative quantity: {u:?}");
    let status = AvailabilityStatus::try_from(u.status);
    assert!(
        matches!(status, Ok(s) if s != AvailabilityStatus::Unspecified),
        "status {}",
        u.status
    );
    assert!(
        0 < u.event_time_us && u.event_time_us <= MAX_EVENT_TIME_US,
        "event time {}",
        u.event_time_us
    );
    assert!(i64::try_from(u.sequence).is_ok(), "sequence {}", u.sequence);
}

/// The guard as ingest configures it by default (`5m`, `2000-01-01T00:00:00Z`), at this
/// process's clock and at a fixed instant.
fn clock_guard(update: &AvailabilityUpdate) {
    let guard = ClockGuard {
        max_future_skew: Duration::from_secs(300),
        min_event_time_us: 946_684_800_000_000,
    };
    for now in [SystemTime::now(), UNIX_EPOCH + Duration::from_secs(1_764_000_000)] {
        let now_us = now.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
        let t = update.event_time_us;
        let believable = guard.min_event_time_us <= t && t <= now_us + 300_000_000;
        match guard.check(update, now) {
            Ok(()) => assert!(believable, "guard let through event time {t} at {now_us}"),
            Err(rejection) => {
                assert!(!believable, "guard refused event time {t} at {now_us}: {rejection:?}");
                assert_eq!(rejection.kind, "clock", "{rejection:?}");
                assert!(
                    rejection.reason.contains("ingest.max_future_skew")
                        || rejection.reason.contains("ingest.min_event_time"),
                    "{rejection:?}"
                );
            }
        }
    }
}
