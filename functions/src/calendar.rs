//! Tableau's calendar rules on plain `chrono` values: what DATEPART, DATENAME, DATETRUNC, DATEADD
//! and DATEDIFF mean for each date part and start of week. No Arrow here; the functions in
//! [`crate::date`] apply these row by row.
//!
//! Tableau's rules (help.tableau.com, "Date functions"; checked against TDVT's expected results):
//! - weeks start on the data source's start of week (Sunday unless given); week 1 of a year is
//!   the week that holds 1 January, so it may be short;
//! - `weekday` counts 1 to 7 from the start of week;
//! - DATEDIFF counts the part boundaries crossed between the two values (calendar years, months,
//!   weeks starting on the start of week, whole hours of the clock...), not elapsed durations;
//! - the ISO-8601 parts (`iso-year`, `iso-quarter`, `iso-week`, `iso-weekday`) use Monday weeks
//!   and the year of the week's Thursday; ISO quarters are weeks 1-13, 14-26, 27-39 and 40-52
//!   (or 40-53 in a long year). DATENAME writes ISO weeks with two digits (`"01"`) and ISO
//!   weekdays as numbers.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

/// A Tableau date part (`'year'`, `'week'`, `'iso-week'`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    /// Calendar year.
    Year,
    /// Calendar quarter, 1-4.
    Quarter,
    /// Month, 1-12.
    Month,
    /// Day of the year, 1-366.
    DayOfYear,
    /// Day of the month.
    Day,
    /// Day of the week, 1-7 from the start of week.
    Weekday,
    /// Week of the year, week 1 holding 1 January.
    Week,
    /// Hour, 0-23.
    Hour,
    /// Minute, 0-59.
    Minute,
    /// Whole second, 0-59.
    Second,
    /// ISO-8601 week-numbering year.
    IsoYear,
    /// ISO-8601 quarter (13-week blocks of ISO weeks).
    IsoQuarter,
    /// ISO-8601 week, 1-53.
    IsoWeek,
    /// ISO-8601 day of week, Monday 1 to Sunday 7.
    IsoWeekday,
}

impl DatePart {
    /// Parses a Tableau date part name, ignoring case and surrounding spaces.
    pub fn parse(name: &str) -> Option<Self> {
        let part = match name.trim().to_ascii_lowercase().as_str() {
            "year" => Self::Year,
            "quarter" => Self::Quarter,
            "month" => Self::Month,
            "dayofyear" => Self::DayOfYear,
            "day" => Self::Day,
            "weekday" => Self::Weekday,
            "week" => Self::Week,
            "hour" => Self::Hour,
            "minute" => Self::Minute,
            "second" => Self::Second,
            "iso-year" => Self::IsoYear,
            "iso-quarter" => Self::IsoQuarter,
            "iso-week" => Self::IsoWeek,
            "iso-weekday" => Self::IsoWeekday,
            _ => return None,
        };
        Some(part)
    }
}

/// The first day of the week, as Tableau numbers it for dialects: Sunday 0 to Saturday 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartOfWeek(u32);

impl StartOfWeek {
    /// Sunday, Tableau's default (and the one TDVT's data sources use).
    pub const SUNDAY: Self = Self(0);

    /// From Tableau's number (Sunday 0 ... Saturday 6); other numbers wrap around the week.
    pub fn from_number(n: i64) -> Self {
        Self(n.rem_euclid(7) as u32)
    }

    /// From a day name (`'monday'`, `'Mon'`), as a calculation spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        let day: Weekday = name.trim().parse().ok()?;
        Some(Self(day.num_days_from_sunday()))
    }

    /// Days from the start of week back to `date`'s weekday (0 when `date` starts a week).
    fn days_into_week(self, date: NaiveDate) -> u32 {
        (date.weekday().num_days_from_sunday() + 7 - self.0) % 7
    }
}

/// DATEPART: the part's number.
pub fn date_part(part: DatePart, value: NaiveDateTime, start: StartOfWeek) -> i64 {
    let date = value.date();
    match part {
        DatePart::Year => i64::from(date.year()),
        DatePart::Quarter => i64::from(date.month0() / 3 + 1),
        DatePart::Month => i64::from(date.month()),
        DatePart::DayOfYear => i64::from(date.ordinal()),
        DatePart::Day => i64::from(date.day()),
        DatePart::Weekday => i64::from(start.days_into_week(date) + 1),
        DatePart::Week => week_of_year(date, start),
        DatePart::Hour => i64::from(value.hour()),
        DatePart::Minute => i64::from(value.minute()),
        DatePart::Second => i64::from(value.second()),
        DatePart::IsoYear => i64::from(date.iso_week().year()),
        DatePart::IsoQuarter => iso_quarter(date),
        DatePart::IsoWeek => i64::from(date.iso_week().week()),
        DatePart::IsoWeekday => i64::from(date.weekday().number_from_monday()),
    }
}

/// Week of the year: week 1 runs from the start of week on or before 1 January.
fn week_of_year(date: NaiveDate, start: StartOfWeek) -> i64 {
    let jan1 = NaiveDate::from_yo_opt(date.year(), 1).expect("1 January exists");
    let offset = start.days_into_week(jan1);
    i64::from((date.ordinal0() + offset) / 7 + 1)
}

fn iso_quarter(date: NaiveDate) -> i64 {
    i64::from(((date.iso_week().week() - 1) / 13).min(3) + 1)
}

/// DATENAME: the part as Tableau shows it: month and weekday names in English, every other
/// part as its number without padding.
pub fn date_name(part: DatePart, value: NaiveDateTime, start: StartOfWeek) -> String {
    match part {
        DatePart::Month => MONTHS[value.month0() as usize].to_string(),
        DatePart::Weekday => WEEKDAYS[value.weekday().num_days_from_sunday() as usize].to_string(),
        DatePart::IsoWeek => format!("{:02}", value.date().iso_week().week()),
        _ => date_part(part, value, start).to_string(),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// DATETRUNC: the first instant of the part holding `value`.
pub fn date_trunc(part: DatePart, value: NaiveDateTime, start: StartOfWeek) -> NaiveDateTime {
    let date = value.date();
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
    match part {
        DatePart::Year => midnight(NaiveDate::from_yo_opt(date.year(), 1).expect("1 January exists")),
        DatePart::Quarter => midnight(first_of_month(date.year(), date.month0() / 3 * 3 + 1)),
        DatePart::Month => midnight(first_of_month(date.year(), date.month())),
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday | DatePart::IsoWeekday => midnight(date),
        DatePart::Week => midnight(date - Duration::days(i64::from(start.days_into_week(date)))),
        DatePart::Hour => date.and_hms_opt(value.hour(), 0, 0).expect("a valid hour"),
        DatePart::Minute => date
            .and_hms_opt(value.hour(), value.minute(), 0)
            .expect("a valid minute"),
        DatePart::Second => date
            .and_hms_opt(value.hour(), value.minute(), value.second())
            .expect("a valid second"),
        DatePart::IsoYear => midnight(iso_monday(date.iso_week().year(), 1)),
        DatePart::IsoQuarter => {
            let quarter = iso_quarter(date) as u32;
            midnight(iso_monday(date.iso_week().year(), (quarter - 1) * 13 + 1))
        }
        DatePart::IsoWeek => midnight(date - Duration::days(i64::from(date.weekday().num_days_from_monday()))),
    }
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month exists")
}

fn iso_monday(iso_year: i32, week: u32) -> NaiveDate {
    NaiveDate::from_isoywd_opt(iso_year, week, Weekday::Mon).expect("an ISO week that exists")
}

fn iso_weeks_in_year(iso_year: i32) -> u32 {
    // 28 December always lies in the last ISO week of its year.
    NaiveDate::from_ymd_opt(iso_year, 12, 28)
        .expect("28 December exists")
        .iso_week()
        .week()
}

/// The first and last ISO weeks of ISO quarter `quarter` (0-3) of `iso_year`.
fn iso_quarter_weeks(iso_year: i32, quarter: u32) -> (u32, u32) {
    let last = if quarter == 3 {
        iso_weeks_in_year(iso_year)
    } else {
        quarter * 13 + 13
    };
    (quarter * 13 + 1, last)
}

/// DATEADD: `value` moved by `n` parts; `None` when the result leaves chrono's range.
/// Month-based parts keep the day of month, clamped to the last day of a shorter month.
pub fn date_add(part: DatePart, n: i64, value: NaiveDateTime) -> Option<NaiveDateTime> {
    match part {
        DatePart::Year => add_months(value, n.checked_mul(12)?),
        DatePart::Quarter => add_months(value, n.checked_mul(3)?),
        DatePart::Month => add_months(value, n),
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday | DatePart::IsoWeekday => {
            value.checked_add_signed(Duration::try_days(n)?)
        }
        DatePart::Week | DatePart::IsoWeek => value.checked_add_signed(Duration::try_weeks(n)?),
        DatePart::Hour => value.checked_add_signed(Duration::try_hours(n)?),
        DatePart::Minute => value.checked_add_signed(Duration::try_minutes(n)?),
        DatePart::Second => value.checked_add_signed(Duration::try_seconds(n)?),
        DatePart::IsoYear => add_iso_years(value, n),
        DatePart::IsoQuarter => add_iso_quarters(value, n),
    }
}

fn add_months(value: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 {
        value.checked_add_months(months)
    } else {
        value.checked_sub_months(months)
    }
}

/// Moves by whole ISO years, keeping the ISO week and weekday; week 53 into a 52-week year
/// becomes week 52.
fn add_iso_years(value: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let date = value.date();
    let year = i32::try_from(i64::from(date.iso_week().year()).checked_add(n)?).ok()?;
    let week = date.iso_week().week().min(iso_weeks_in_year(year));
    let target = NaiveDate::from_isoywd_opt(year, week, date.weekday())?;
    Some(target.and_time(value.time()))
}

/// Moves by whole ISO quarters, keeping the weekday and how many weeks before its quarter's end
/// the week is. Counting from the end is what Tableau does: TDVT expects Thursday of week 37 of
/// 1976 (a 53-week year) plus one ISO quarter to be Thursday of week 51, two weeks before the end
/// of the 14-week fourth quarter, as week 37 is two weeks before the end of the third. A week
/// before a shorter target quarter's start becomes its first week.
fn add_iso_quarters(value: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let date = value.date();
    let (year, week) = (date.iso_week().year(), date.iso_week().week());
    let quarter = iso_quarter(date) as u32 - 1;
    let before_end = iso_quarter_weeks(year, quarter).1 - week;
    let index = i64::from(year)
        .checked_mul(4)?
        .checked_add(i64::from(quarter))?
        .checked_add(n)?;
    let (year, quarter) = (i32::try_from(index.div_euclid(4)).ok()?, index.rem_euclid(4) as u32);
    let (first, last) = iso_quarter_weeks(year, quarter);
    let target_week = last.saturating_sub(before_end).max(first);
    let target = NaiveDate::from_isoywd_opt(year, target_week, date.weekday())?;
    Some(target.and_time(value.time()))
}

/// DATEDIFF: the number of `part` boundaries between `start` and `end` (negative when `end` is
/// earlier).
pub fn date_diff(part: DatePart, start: NaiveDateTime, end: NaiveDateTime, week_start: StartOfWeek) -> i64 {
    let months = |v: NaiveDateTime| i64::from(v.year()) * 12 + i64::from(v.month0());
    let iso_quarters = |v: NaiveDateTime| i64::from(v.date().iso_week().year()) * 4 + iso_quarter(v.date()) - 1;
    let between = |p: DatePart, unit: i64| {
        let (a, b) = (date_trunc(p, start, week_start), date_trunc(p, end, week_start));
        (b - a).num_seconds().div_euclid(unit)
    };
    match part {
        DatePart::Year => i64::from(end.year()) - i64::from(start.year()),
        DatePart::Quarter => months(end).div_euclid(3) - months(start).div_euclid(3),
        DatePart::Month => months(end) - months(start),
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday | DatePart::IsoWeekday => {
            between(DatePart::Day, 86_400)
        }
        DatePart::Week => between(DatePart::Week, 7 * 86_400),
        DatePart::Hour => between(DatePart::Hour, 3_600),
        DatePart::Minute => between(DatePart::Minute, 60),
        DatePart::Second => between(DatePart::Second, 1),
        DatePart::IsoYear => i64::from(end.date().iso_week().year()) - i64::from(start.date().iso_week().year()),
        DatePart::IsoQuarter => iso_quarters(end) - iso_quarters(start),
        DatePart::IsoWeek => between(DatePart::IsoWeek, 7 * 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("a test timestamp")
    }

    const MONDAY: StartOfWeek = StartOfWeek(1);

    #[test]
    fn parts_parse_case_insensitively_and_refuse_unknown_names() {
        assert_eq!(DatePart::parse(" Week "), Some(DatePart::Week));
        assert_eq!(DatePart::parse("ISO-WEEKDAY"), Some(DatePart::IsoWeekday));
        assert_eq!(DatePart::parse("fortnight"), None);
        assert_eq!(StartOfWeek::from_name("monday"), Some(MONDAY));
        assert_eq!(StartOfWeek::from_name("Sun"), Some(StartOfWeek::SUNDAY));
        assert_eq!(StartOfWeek::from_name("someday"), None);
        assert_eq!(StartOfWeek::from_number(-6), MONDAY);
    }

    #[test]
    fn date_parts_of_a_thursday() {
        // 2004-04-15 is a Thursday, the 106th day of a leap year.
        let v = at("2004-04-15 13:45:59");
        let part = |p| date_part(p, v, StartOfWeek::SUNDAY);
        assert_eq!(part(DatePart::Year), 2004);
        assert_eq!(part(DatePart::Quarter), 2);
        assert_eq!(part(DatePart::Month), 4);
        assert_eq!(part(DatePart::DayOfYear), 106);
        assert_eq!(part(DatePart::Day), 15);
        assert_eq!(part(DatePart::Weekday), 5); // Sun 1, Mon 2, ... Thu 5
        assert_eq!(date_part(DatePart::Weekday, v, MONDAY), 4);
        assert_eq!(part(DatePart::Hour), 13);
        assert_eq!(part(DatePart::Minute), 45);
        assert_eq!(part(DatePart::Second), 59);
    }

    #[test]
    fn week_one_holds_the_first_of_january() {
        // 1 January 2004 was a Thursday: week 1 is Sun 28 Dec 2003 - Sat 3 Jan 2004.
        assert_eq!(
            date_part(DatePart::Week, at("2004-01-03 00:00:00"), StartOfWeek::SUNDAY),
            1
        );
        assert_eq!(
            date_part(DatePart::Week, at("2004-01-04 00:00:00"), StartOfWeek::SUNDAY),
            2
        );
        // Monday weeks: week 1 is Mon 29 Dec 2003 - Sun 4 Jan 2004.
        assert_eq!(date_part(DatePart::Week, at("2004-01-04 00:00:00"), MONDAY), 1);
        assert_eq!(date_part(DatePart::Week, at("2004-01-05 00:00:00"), MONDAY), 2);
        // 31 December 2004, a Friday, closes week 53 of Sunday weeks (week 1 began 28 Dec 2003).
        assert_eq!(
            date_part(DatePart::Week, at("2004-12-31 00:00:00"), StartOfWeek::SUNDAY),
            53
        );
    }

    #[test]
    fn iso_parts_follow_the_thursday_rule() {
        // 1 January 2005 (a Saturday) belongs to ISO week 53 of 2004.
        let v = at("2005-01-01 10:00:00");
        assert_eq!(date_part(DatePart::IsoYear, v, StartOfWeek::SUNDAY), 2004);
        assert_eq!(date_part(DatePart::IsoWeek, v, StartOfWeek::SUNDAY), 53);
        assert_eq!(date_part(DatePart::IsoQuarter, v, StartOfWeek::SUNDAY), 4);
        assert_eq!(date_part(DatePart::IsoWeekday, v, StartOfWeek::SUNDAY), 6);
        // 29 December 2008 (a Monday) starts ISO week 1 of 2009.
        let v = at("2008-12-29 00:00:00");
        assert_eq!(date_part(DatePart::IsoYear, v, StartOfWeek::SUNDAY), 2009);
        assert_eq!(date_part(DatePart::IsoWeek, v, StartOfWeek::SUNDAY), 1);
        assert_eq!(date_part(DatePart::IsoQuarter, v, StartOfWeek::SUNDAY), 1);
    }

    #[test]
    fn names_are_english_words_or_plain_numbers() {
        let v = at("2004-07-04 08:05:09");
        let name = |p| date_name(p, v, StartOfWeek::SUNDAY);
        assert_eq!(name(DatePart::Month), "July");
        assert_eq!(name(DatePart::Weekday), "Sunday");
        assert_eq!(name(DatePart::Year), "2004");
        assert_eq!(name(DatePart::Quarter), "3");
        assert_eq!(name(DatePart::DayOfYear), "186");
        assert_eq!(name(DatePart::Hour), "8");
        assert_eq!(name(DatePart::Minute), "5");
        assert_eq!(name(DatePart::Second), "9");
        assert_eq!(name(DatePart::Week), "28");
        // ISO weeks with two digits, ISO weekdays as numbers (Sunday is 7).
        let sunday = at("2004-01-04 00:00:00");
        assert_eq!(date_name(DatePart::IsoWeek, sunday, StartOfWeek::SUNDAY), "01");
        assert_eq!(date_name(DatePart::IsoWeekday, sunday, StartOfWeek::SUNDAY), "7");
        assert_eq!(date_name(DatePart::IsoYear, sunday, StartOfWeek::SUNDAY), "2004");
    }

    #[test]
    fn truncation_goes_back_to_the_start_of_the_part() {
        let v = at("2004-07-14 07:43:21"); // a Wednesday
        let trunc = |p, s| date_trunc(p, v, s);
        assert_eq!(trunc(DatePart::Year, StartOfWeek::SUNDAY), at("2004-01-01 00:00:00"));
        assert_eq!(trunc(DatePart::Quarter, StartOfWeek::SUNDAY), at("2004-07-01 00:00:00"));
        assert_eq!(trunc(DatePart::Month, StartOfWeek::SUNDAY), at("2004-07-01 00:00:00"));
        assert_eq!(trunc(DatePart::Week, StartOfWeek::SUNDAY), at("2004-07-11 00:00:00"));
        assert_eq!(trunc(DatePart::Week, MONDAY), at("2004-07-12 00:00:00"));
        assert_eq!(trunc(DatePart::Weekday, MONDAY), at("2004-07-14 00:00:00"));
        assert_eq!(trunc(DatePart::Hour, StartOfWeek::SUNDAY), at("2004-07-14 07:00:00"));
        assert_eq!(trunc(DatePart::Minute, StartOfWeek::SUNDAY), at("2004-07-14 07:43:00"));
        // A Sunday is its own week start for Sunday weeks, the last day for Monday weeks.
        let sunday = at("2004-07-04 22:49:28");
        assert_eq!(
            date_trunc(DatePart::Week, sunday, StartOfWeek::SUNDAY),
            at("2004-07-04 00:00:00")
        );
        assert_eq!(date_trunc(DatePart::Week, sunday, MONDAY), at("2004-06-28 00:00:00"));
        // ISO: 2005-01-01 is in ISO week 53 of 2004, whose year began on Monday 29 Dec 2003.
        let jan1 = at("2005-01-01 12:00:00");
        assert_eq!(
            date_trunc(DatePart::IsoYear, jan1, StartOfWeek::SUNDAY),
            at("2003-12-29 00:00:00")
        );
        assert_eq!(
            date_trunc(DatePart::IsoWeek, jan1, StartOfWeek::SUNDAY),
            at("2004-12-27 00:00:00")
        );
        // ISO Q4 of 2004 starts with week 40: Monday 27 Sep 2004.
        assert_eq!(
            date_trunc(DatePart::IsoQuarter, jan1, StartOfWeek::SUNDAY),
            at("2004-09-27 00:00:00")
        );
    }

    #[test]
    fn adding_months_clamps_to_the_end_of_a_shorter_month() {
        let v = at("2004-01-31 10:00:00");
        assert_eq!(date_add(DatePart::Month, 1, v), Some(at("2004-02-29 10:00:00")));
        assert_eq!(date_add(DatePart::Quarter, -1, v), Some(at("2003-10-31 10:00:00")));
        assert_eq!(
            date_add(DatePart::Year, 1, at("2004-02-29 00:00:00")),
            Some(at("2005-02-28 00:00:00"))
        );
        assert_eq!(date_add(DatePart::Week, 2, v), Some(at("2004-02-14 10:00:00")));
        assert_eq!(date_add(DatePart::Weekday, 1, v), Some(at("2004-02-01 10:00:00")));
        assert_eq!(date_add(DatePart::Hour, -11, v), Some(at("2004-01-30 23:00:00")));
        assert_eq!(date_add(DatePart::Second, 61, v), Some(at("2004-01-31 10:01:01")));
        assert_eq!(date_add(DatePart::Year, i64::MAX, v), None);
    }

    #[test]
    fn adding_iso_years_keeps_the_iso_week_and_weekday() {
        // Friday of ISO week 53 of 2004 (31 Dec 2004) -> 2005 has 52 weeks: Friday of week 52.
        assert_eq!(
            date_add(DatePart::IsoYear, 1, at("2004-12-31 08:00:00")),
            Some(at("2005-12-30 08:00:00"))
        );
        // Monday of ISO week 2 of 2004 (5 Jan 2004, 11 weeks before the end of Q1) + 1 ISO
        // quarter = Monday of week 15 (5 Apr), 11 weeks before the end of Q2 (week 26).
        assert_eq!(
            date_add(DatePart::IsoQuarter, 1, at("2004-01-05 00:00:00")),
            Some(at("2004-04-05 00:00:00"))
        );
        // Thursday 9 Sep 1976 is in week 37, two weeks before the end of ISO Q3 (week 39); 1976
        // has 53 weeks, so two weeks before the end of Q4 is week 51: Thursday 16 Dec.
        assert_eq!(
            date_add(DatePart::IsoQuarter, 1, at("1976-09-09 00:00:00")),
            Some(at("1976-12-16 00:00:00"))
        );
        // Monday of week 40 of 1976 (13 weeks before the end of its Q4) + 1 ISO quarter: the
        // 13-week Q1 of 1977 has no such week, so its first: Monday 3 Jan 1977.
        assert_eq!(
            date_add(DatePart::IsoQuarter, 1, at("1976-09-27 00:00:00")),
            Some(at("1977-01-03 00:00:00"))
        );
    }

    #[test]
    fn differences_count_boundaries_not_durations() {
        let a = at("2004-12-31 23:59:59");
        let b = at("2005-01-01 00:00:00");
        for part in [
            DatePart::Year,
            DatePart::Quarter,
            DatePart::Month,
            DatePart::Day,
            DatePart::Hour,
        ] {
            assert_eq!(date_diff(part, a, b, StartOfWeek::SUNDAY), 1, "{part:?}");
        }
        assert_eq!(date_diff(DatePart::Second, a, b, StartOfWeek::SUNDAY), 1);
        assert_eq!(date_diff(DatePart::Year, b, a, StartOfWeek::SUNDAY), -1);
        // Friday 31 Dec 2004 and Saturday 1 Jan 2005 share a Sunday week, not an ISO year.
        assert_eq!(date_diff(DatePart::Week, a, b, StartOfWeek::SUNDAY), 0);
        assert_eq!(date_diff(DatePart::IsoYear, a, b, StartOfWeek::SUNDAY), 0);
        // Saturday -> Sunday crosses a Sunday-week boundary but not a Monday-week one.
        let sat = at("2004-07-03 12:00:00");
        let sun = at("2004-07-04 01:00:00");
        assert_eq!(date_diff(DatePart::Week, sat, sun, StartOfWeek::SUNDAY), 1);
        assert_eq!(date_diff(DatePart::Week, sat, sun, MONDAY), 0);
        // 22:30 -> 23:10 crosses one clock hour although 40 minutes passed.
        assert_eq!(
            date_diff(
                DatePart::Hour,
                at("2004-07-03 22:30:00"),
                at("2004-07-03 23:10:00"),
                MONDAY
            ),
            1
        );
        assert_eq!(
            date_diff(
                DatePart::Minute,
                at("2004-07-03 22:30:59"),
                at("2004-07-03 22:31:00"),
                MONDAY
            ),
            1
        );
        // Quarters: Mar 1996 (Q1) -> Jul 2004 (Q3) = 8 years and 2 quarters.
        assert_eq!(
            date_diff(
                DatePart::Quarter,
                at("1996-03-07 00:00:00"),
                at("2004-07-01 00:00:00"),
                MONDAY
            ),
            34
        );
    }
}
