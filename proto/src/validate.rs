//! What ingest accepts: the rules of `availability.proto`, checked in one place.

use crate::v1::{AvailabilityStatus, AvailabilityUpdate};

/// Longest accepted `item_id`, `node_id` and `source`, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Latest accepted `event_time_us` (2100-01-01T00:00:00Z), whatever the clock: catches unit
/// mix-ups (nanoseconds sent as microseconds). Ingest's clock guard (`ingest.max_future_skew`)
/// bounds event times far tighter, relative to the present.
pub const MAX_EVENT_TIME_US: i64 = 4_102_444_800_000_000;

/// Why an update was refused; the text goes into the dead-letter record's reason header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The offending field, as named in the `.proto`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {MAX_ID_BYTES} allowed", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Checks every rule the `.proto` documents; returns the first violation.
pub fn validate(update: &AvailabilityUpdate) -> Result<(), Invalid> {
    check_id("item_id", &update.item_id)?;
    check_id("node_id", &update.node_id)?;
    check_id("source", &update.source)?;
    if update.available_qty < 0 {
        return Err(invalid(
            "available_qty",
            format!("{} is negative", update.available_qty),
        ));
    }
    if update.reserved_qty < 0 {
        return Err(invalid("reserved_qty", format!("{} is negative", update.reserved_qty)));
    }
    match AvailabilityStatus::try_from(update.status) {
        Ok(AvailabilityStatus::Unspecified) => return Err(invalid("status", "is required (UNSPECIFIED)")),
        Ok(_) => {}
        Err(_) => return Err(invalid("status", format!("{} is not a known status", update.status))),
    }
    if update.event_time_us <= 0 {
        return Err(invalid("event_time_us", "is required (> 0)"));
    }
    if update.event_time_us > MAX_EVENT_TIME_US {
        return Err(invalid(
            "event_time_us",
            format!("{} is after 2100-01-01 (microseconds expected)", update.event_time_us),
        ));
    }
    if update.sequence > i64::MAX as u64 {
        return Err(invalid("sequence", "exceeds 2^63-1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> AvailabilityUpdate {
        AvailabilityUpdate {
            item_id: "sku-1".into(),
            node_id: "store-7".into(),
            available_qty: 3,
            reserved_qty: 1,
            status: AvailabilityStatus::InStock as i32,
            event_time_us: 1_764_000_000_000_000,
            source: "pos".into(),
            sequence: 9,
        }
    }

    #[test]
    fn accepts_a_complete_update() {
        assert_eq!(validate(&good()), Ok(()));
    }

    #[test]
    fn names_the_offending_field() {
        type Spoil = Box<dyn Fn(&mut AvailabilityUpdate)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("item_id", Box::new(|u| u.item_id.clear())),
            ("node_id", Box::new(|u| u.node_id = "x".repeat(65))),
            ("source", Box::new(|u| u.source = "a\nb".into())),
            ("available_qty", Box::new(|u| u.available_qty = -1)),
            ("reserved_qty", Box::new(|u| u.reserved_qty = -5)),
            ("status", Box::new(|u| u.status = 0)),
            ("status", Box::new(|u| u.status = 17)),
            ("event_time_us", Box::new(|u| u.event_time_us = 0)),
            (
                "event_time_us",
                Box::new(|u| u.event_time_us = 1_764_000_000_000_000_000),
            ),
            ("sequence", Box::new(|u| u.sequence = u64::MAX)),
        ];
        for (field, spoil) in cases {
            let mut u = good();
            spoil(&mut u);
            let err = validate(&u).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
