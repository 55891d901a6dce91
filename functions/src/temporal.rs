//! Tableau's date and time values on plain `chrono` values: its day numbers (FLOAT(date), counted
//! from 1 January 1900), the day it puts time-only values on (30 December 1899), and reading
//! dates out of strings (DATE(str), DATEPARSE).

use chrono::format::{Parsed, StrftimeItems, parse};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// Day 0 of Tableau's day numbers: FLOAT(#1900-01-01#) is 0, DATE(1) is 2 January 1900.
pub fn serial_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date")
}

/// The day Tableau puts a time of day on when it has no date (and shows without one).
pub fn time_only_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("a valid date")
}

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// FLOAT(datetime): days since [`serial_epoch`], the time of day as a fraction.
pub fn to_serial(value: NaiveDateTime) -> f64 {
    let since = value - serial_epoch().and_time(NaiveTime::MIN);
    match since.num_microseconds() {
        Some(micros) => micros as f64 / MICROS_PER_DAY,
        // Beyond ±292,000 years of microseconds: whole days are precise enough there.
        None => since.num_days() as f64,
    }
}

/// DATETIME(number): the instant `days` after [`serial_epoch`], to the microsecond.
pub fn from_serial(days: f64) -> Option<NaiveDateTime> {
    plus_days(serial_epoch().and_time(NaiveTime::MIN), days)
}

/// `value + days`, where `days` may have a fraction (Tableau's `date + 1.5`).
pub fn plus_days(value: NaiveDateTime, days: f64) -> Option<NaiveDateTime> {
    let micros = (days * MICROS_PER_DAY).round();
    if !micros.is_finite() || micros.abs() > i64::MAX as f64 {
        return None;
    }
    value.checked_add_signed(Duration::microseconds(micros as i64))
}

/// `a - b` in days with a fraction (Tableau's `datetime - datetime`).
pub fn days_between(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    to_serial(a) - to_serial(b)
}

/// Layouts DATE(str), DATETIME(str) and ISDATE accept: ISO with `-` or `/`, US month/day/year,
/// month names in either order, an optional time (24 h or with AM/PM), and `yyyymmdd`.
const DATE_LAYOUTS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%d.%m.%Y",
    "%B %d, %Y",
    "%B %d %Y",
    "%d %B %Y",
    "%d %B, %Y",
    "%Y %B %d",
    "%a, %d %B %Y",
    "%A, %B %d, %Y",
];

const TIME_LAYOUTS: &[&str] = &[
    "%H:%M:%S%.f",
    "%H:%M",
    "%I:%M:%S%.f %p",
    "%I:%M %p",
    "%I:%M:%S%.f%p",
    "%I:%M%p",
];

/// DATETIME(str): a date, a date and time, or a time alone (on [`time_only_day`]); `None` when the
/// text is none of the layouts Tableau reads.
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(text, "%Y%m%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN));
    }
    for date in DATE_LAYOUTS {
        if let Ok(d) = NaiveDate::parse_from_str(text, date) {
            return Some(d.and_time(NaiveTime::MIN));
        }
        for separator in [" ", "T"] {
            for time in TIME_LAYOUTS {
                let layout = format!("{date}{separator}{time}");
                if let Ok(v) = NaiveDateTime::parse_from_str(text, &layout) {
                    return Some(v);
                }
            }
        }
    }
    TIME_LAYOUTS
        .iter()
        .find_map(|time| NaiveTime::parse_from_str(text, time).ok())
        .map(|t| time_only_day().and_time(t))
}

/// DATEPARSE(format, str): `text` read with an ICU date pattern (`'yyyy-MM-dd HH:mm'`,
/// `'dd.MM.yy'`, `"MMM d, yyyy h:mm a"`...). A value without a date part falls on
/// [`time_only_day`]; one without a time is at midnight. `None` when the text does not match, or
/// the pattern uses a field this does not read (era, week-based fields, zones).
pub fn parse_with_icu(pattern: &str, text: &str) -> Option<NaiveDateTime> {
    let layout = icu_to_strftime(pattern)?;
    let mut parsed = Parsed::new();
    parse(&mut parsed, text.trim(), StrftimeItems::new(&layout)).ok()?;
    let has_date = parsed.year().is_some() || parsed.month().is_some() || parsed.day().is_some();
    let date = if has_date {
        if parsed.year().is_none() && parsed.year_mod_100().is_none() {
            parsed.set_year(1900).ok()?;
        }
        if parsed.day().is_none() {
            parsed.set_day(1).ok()?;
        }
        if parsed.month().is_none() {
            parsed.set_month(1).ok()?;
        }
        parsed.to_naive_date().ok()?
    } else {
        time_only_day()
    };
    let time = if parsed.hour_mod_12().is_some() || parsed.hour_div_12().is_some() {
        if parsed.hour_div_12().is_none() {
            parsed.set_ampm(false).ok()?;
        }
        if parsed.minute().is_none() {
            parsed.set_minute(0).ok()?;
        }
        parsed.to_naive_time().ok()?
    } else {
        NaiveTime::MIN
    };
    Some(date.and_time(time))
}

/// Translates an ICU date pattern to a `chrono` strftime layout; `None` for fields it has no
/// counterpart for.
fn icu_to_strftime(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'literal text'; '' is a quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                push_literal(&mut out, chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let field = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) | ('u', _) => "%Y",
            ('M' | 'L', 1 | 2) => "%m",
            ('M' | 'L', 3) => "%b",
            ('M' | 'L', _) => "%B",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H' | 'k', _) => "%H",
            ('h' | 'K', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%f",
            ('a', _) => "%p",
            ('E' | 'e' | 'c', 1..=3) => "%a",
            ('E' | 'e' | 'c', _) => "%A",
            _ => return None,
        };
        // Fractional seconds follow a literal dot in the pattern; chrono reads them as %f.
        out.push_str(field);
        i += run;
    }
    Some(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("a test timestamp")
    }

    #[test]
    fn day_numbers_count_from_the_first_of_january_1900() {
        assert_eq!(to_serial(at("1900-01-01 00:00:00")), 0.0);
        assert_eq!(to_serial(at("1900-01-03 12:00:00")), 2.5);
        // 1 January 2050: 150 years of 365 days and 37 leap days (1904..2048; 1900 was not one).
        assert_eq!(to_serial(at("2050-01-01 00:00:00")), 54_787.0);
        assert_eq!(to_serial(at("1899-12-31 18:00:00")), -0.25);
        assert_eq!(from_serial(2.5), Some(at("1900-01-03 12:00:00")));
        assert_eq!(from_serial(-0.25), Some(at("1899-12-31 18:00:00")));
        assert_eq!(from_serial(f64::NAN), None);
    }

    #[test]
    fn fractional_days_move_by_hours() {
        // 10.85 days = 10 days 20 h 24 min.
        assert_eq!(
            plus_days(at("1972-07-04 00:00:00"), 10.85),
            Some(at("1972-07-14 20:24:00"))
        );
        assert_eq!(
            plus_days(at("2004-07-04 22:49:28"), -1.5),
            Some(at("2004-07-03 10:49:28"))
        );
        assert_eq!(days_between(at("2004-07-02 06:00:00"), at("2004-07-01 00:00:00")), 1.25);
    }

    #[test]
    fn strings_in_the_layouts_tableau_reads() {
        let midnight = |s| Some(at(&format!("{s} 00:00:00")));
        assert_eq!(parse_datetime("2015-01-01"), midnight("2015-01-01"));
        assert_eq!(parse_datetime(" 2015/1/2 "), midnight("2015-01-02"));
        assert_eq!(parse_datetime("4/12/2010"), midnight("2010-04-12"));
        assert_eq!(parse_datetime("20230101"), midnight("2023-01-01"));
        assert_eq!(parse_datetime("September 22, 2018"), midnight("2018-09-22"));
        assert_eq!(parse_datetime("22 Sep 2018"), midnight("2018-09-22"));
        assert_eq!(parse_datetime("2017-01-01 12:12:12.0"), Some(at("2017-01-01 12:12:12")));
        assert_eq!(
            parse_datetime("2010-10-10 10:10:10.4"),
            Some(at("2010-10-10 10:10:10.4"))
        );
        assert_eq!(parse_datetime("2004-07-04T22:49"), Some(at("2004-07-04 22:49:00")));
        assert_eq!(parse_datetime("7/4/2004 10:49 PM"), Some(at("2004-07-04 22:49:00")));
        assert_eq!(parse_datetime("13:48:48"), Some(at("1899-12-30 13:48:48")));
        assert_eq!(parse_datetime("data"), None);
        assert_eq!(parse_datetime(""), None);
        assert_eq!(parse_datetime("2015-02-30"), None);
    }

    #[test]
    fn icu_patterns() {
        assert_eq!(
            parse_with_icu("yyyy-MM-dd HH:mm:ss", "2004-07-04 22:49:28"),
            Some(at("2004-07-04 22:49:28"))
        );
        assert_eq!(parse_with_icu("dd.MM.yy", "04.07.04"), Some(at("2004-07-04 00:00:00")));
        assert_eq!(
            parse_with_icu("MMM d, yyyy h:mm a", "Jul 4, 2004 10:49 PM"),
            Some(at("2004-07-04 22:49:00"))
        );
        assert_eq!(
            parse_with_icu("'Q' yyyy MMMM", "Q 2004 July"),
            Some(at("2004-07-01 00:00:00"))
        );
        assert_eq!(parse_with_icu("HH:mm", "10:30"), Some(at("1899-12-30 10:30:00")));
        assert_eq!(parse_with_icu("yyyy-MM-dd", "July 4"), None);
        assert_eq!(parse_with_icu("G yyyy", "AD 2004"), None);
    }
}
