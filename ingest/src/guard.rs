//! The clock guard: an update whose event time cannot be true is dead-lettered, never written.
//!
//! The event time is the update's Cassandra write timestamp, so one update from a clock set to
//! 2099 would beat every correct update of its pair for decades. An event time more than
//! `ingest.max_future_skew` ahead of this process's clock, or before `ingest.min_event_time`,
//! is refused with its reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use stockflight_proto::v1::AvailabilityUpdate;

use crate::decode::Rejection;

/// Bounds on a believable event time.
#[derive(Debug, Clone, Copy)]
pub struct ClockGuard {
    /// Most an event may be ahead of this process's clock.
    pub max_future_skew: Duration,
    /// Earliest accepted event time, in microseconds since the epoch.
    pub min_event_time_us: i64,
}

impl ClockGuard {
    /// Checks `update` against the bounds at `now`.
    pub fn check(&self, update: &AvailabilityUpdate, now: SystemTime) -> Result<(), Rejection> {
        let now_us = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        let latest = now_us.saturating_add(self.max_future_skew.as_micros() as i64);
        let t = update.event_time_us;
        if t > latest {
            let ahead = Duration::from_micros((t - now_us) as u64);
            return Err(Rejection::new(
                "clock",
                format!(
                    "event_time_us {t} ({}) is {} ahead of the ingest clock ({}); at most {} (ingest.max_future_skew) allowed",
                    show(t),
                    humantime::format_duration(Duration::from_secs(ahead.as_secs())),
                    show(now_us),
                    humantime::format_duration(self.max_future_skew),
                ),
            ));
        }
        if t < self.min_event_time_us {
            return Err(Rejection::new(
                "clock",
                format!(
                    "event_time_us {t} ({}) is before {} (ingest.min_event_time)",
                    show(t),
                    show(self.min_event_time_us)
                ),
            ));
        }
        Ok(())
    }
}

fn show(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us).map_or_else(|| format!("{us} us"), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(event_time_us: i64) -> AvailabilityUpdate {
        AvailabilityUpdate {
            event_time_us,
            ..Default::default()
        }
    }

    #[test]
    fn refuses_the_future_and_the_distant_past() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let now_us = 1_764_000_000_000_000;
        let guard = ClockGuard {
            max_future_skew: Duration::from_secs(300),
            min_event_time_us: 946_684_800_000_000, // 2000-01-01
        };
        assert!(guard.check(&at(now_us), now).is_ok());
        assert!(
            guard.check(&at(now_us + 300_000_000), now).is_ok(),
            "exactly at the bound"
        );
        let ahead = guard.check(&at(now_us + 300_000_001), now).unwrap_err();
        assert_eq!(ahead.kind, "clock");
        assert!(ahead.reason.contains("ingest.max_future_skew"), "{}", ahead.reason);
        let poisoned = guard.check(&at(4_070_908_800_000_000), now).unwrap_err(); // 2099
        assert!(poisoned.reason.contains("2099-01-01"), "{}", poisoned.reason);
        let old = guard.check(&at(946_684_799_999_999), now).unwrap_err();
        assert!(old.reason.contains("ingest.min_event_time"), "{}", old.reason);
        assert!(guard.check(&at(946_684_800_000_000), now).is_ok());
    }
}
