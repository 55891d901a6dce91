//! The built-in schedule: slots aligned to 00:00 UTC, catch-up at start, one run at a time.
//!
//! Pure decisions over an injected [`Clock`], so tests check alignment and catch-up without
//! sleeping; the loop in `main` only sleeps until the instant a decision names.

use chrono::{DateTime, TimeDelta, Utc};

/// Source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Parses `90m`, `6h`, `1d` into a duration that divides a day (so slots align to midnight).
pub fn parse_interval(text: &str) -> Result<TimeDelta, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 6h or 1d"))?;
    let delta = match unit {
        "m" => TimeDelta::minutes(n),
        "h" => TimeDelta::hours(n),
        "d" => TimeDelta::days(n),
        _ => return Err(format!("`{text}`: unit must be m, h or d")),
    };
    let divides_a_day = n > 0 && (unit == "d" || TimeDelta::days(1).num_seconds() % delta.num_seconds() == 0);
    if !divides_a_day {
        return Err(format!(
            "`{text}` must be positive and divide a day (e.g. 1h, 4h, 6h, 12h, 1d)"
        ));
    }
    Ok(delta)
}

/// What the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run now, for the slot that started at this instant (it names the run).
    RunNow(DateTime<Utc>),
    /// Nothing due: wait until this instant, then decide again.
    WaitUntil(DateTime<Utc>),
}

/// Slots every `interval`, aligned to the Unix epoch (a midnight UTC).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    interval: TimeDelta,
}

impl Schedule {
    /// A schedule with the given interval (see [`parse_interval`]).
    pub fn new(interval: TimeDelta) -> Self {
        Self { interval }
    }

    /// The latest slot start at or before `t`.
    pub fn slot_of(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = self.interval.num_seconds();
        let secs = t.timestamp().div_euclid(step) * step;
        DateTime::from_timestamp(secs, 0).expect("slot in range")
    }

    /// The first slot start strictly after `t`.
    pub fn next_slot(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.slot_of(t) + self.interval
    }

    /// Runs now when the current slot has no successful run yet (at start this is the
    /// catch-up: the last success is older than the current slot), else waits for the next slot.
    pub fn decide(&self, now: DateTime<Utc>, last_success: Option<DateTime<Utc>>) -> Decision {
        let current = self.slot_of(now);
        match last_success {
            Some(last) if self.slot_of(last) >= current => Decision::WaitUntil(self.next_slot(now)),
            _ => Decision::RunNow(current),
        }
    }

    /// After a failed run: try again after `retry_after`, but no later than the next slot.
    pub fn retry_at(&self, now: DateTime<Utc>, retry_after: TimeDelta) -> DateTime<Utc> {
        (now + retry_after).min(self.next_slot(now))
    }
}

/// Run id of a run started at `t`: `20261125T060000Z` (sortable, safe in object keys).
pub fn run_id_at(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A clock frozen at one instant, as the scheduler's callers inject it.
    struct FixedClock(DateTime<Utc>);
    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn six_hours() -> Schedule {
        Schedule::new(parse_interval("6h").unwrap())
    }

    #[test]
    fn slots_align_to_00_06_12_18_utc() {
        let s = six_hours();
        assert_eq!(s.slot_of(at("2026-11-25T07:42:10Z")), at("2026-11-25T06:00:00Z"));
        assert_eq!(s.slot_of(at("2026-11-25T06:00:00Z")), at("2026-11-25T06:00:00Z"));
        assert_eq!(s.next_slot(at("2026-11-25T23:59:59Z")), at("2026-11-26T00:00:00Z"));
        assert_eq!(s.next_slot(at("2026-11-25T12:00:00Z")), at("2026-11-25T18:00:00Z"));
    }

    #[test]
    fn first_start_without_history_runs_now_for_the_current_slot() {
        let clock = FixedClock(at("2026-11-25T09:30:00Z"));
        assert_eq!(
            six_hours().decide(clock.now(), None),
            Decision::RunNow(at("2026-11-25T06:00:00Z"))
        );
    }

    #[test]
    fn start_catches_up_when_the_last_success_is_older_than_the_slot() {
        let clock = FixedClock(at("2026-11-25T13:05:00Z"));
        let last = Some(at("2026-11-25T00:00:04Z"));
        assert_eq!(
            six_hours().decide(clock.now(), last),
            Decision::RunNow(at("2026-11-25T12:00:00Z"))
        );
    }

    #[test]
    fn a_fresh_success_waits_for_the_next_aligned_slot() {
        let clock = FixedClock(at("2026-11-25T13:05:00Z"));
        let last = Some(at("2026-11-25T12:00:01Z"));
        assert_eq!(
            six_hours().decide(clock.now(), last),
            Decision::WaitUntil(at("2026-11-25T18:00:00Z"))
        );
        // Waking at the slot boundary: the slot is due.
        assert_eq!(
            six_hours().decide(at("2026-11-25T18:00:00Z"), last),
            Decision::RunNow(at("2026-11-25T18:00:00Z"))
        );
    }

    #[test]
    fn retry_never_passes_the_next_slot() {
        let s = six_hours();
        let retry = parse_interval("15m").unwrap();
        assert_eq!(
            s.retry_at(at("2026-11-25T13:00:00Z"), retry),
            at("2026-11-25T13:15:00Z")
        );
        assert_eq!(
            s.retry_at(at("2026-11-25T17:50:00Z"), retry),
            at("2026-11-25T18:00:00Z")
        );
    }

    #[test]
    fn other_intervals_align_to_midnight() {
        let s = Schedule::new(parse_interval("4h").unwrap());
        assert_eq!(s.slot_of(at("2026-11-25T03:59:59Z")), at("2026-11-25T00:00:00Z"));
        assert_eq!(s.next_slot(at("2026-11-25T21:00:00Z")), at("2026-11-26T00:00:00Z"));
    }

    #[test]
    fn intervals_must_divide_a_day() {
        assert!(parse_interval("7h").is_err());
        assert!(parse_interval("0h").is_err());
        assert!(parse_interval("6 hours").is_err());
        assert_eq!(parse_interval("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_interval("1d").unwrap(), TimeDelta::days(1));
    }

    #[test]
    fn run_ids_sort_by_time() {
        assert_eq!(run_id_at(at("2026-11-25T06:00:00Z")), "20261125T060000Z");
        assert!(run_id_at(at("2026-11-25T06:00:00Z")) < run_id_at(at("2026-11-25T12:00:00Z")));
    }
}
