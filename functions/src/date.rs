//! DATEPART, DATENAME, DATETRUNC, DATEADD and DATEDIFF with Tableau's date parts and start of
//! week ([`crate::calendar`]), as `tableau_datepart(part, value[, start_of_week])` and friends.
//!
//! The start of week is Tableau's number for it (Sunday 0 ... Saturday 6, as dialects pass it)
//! or a day name (`'monday'`); without it weeks start on Sunday. A NULL argument gives NULL; an
//! unknown date part is an error.

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::DataType;
use chrono::NaiveDateTime;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::ScalarUDF;

use crate::calendar::{self, DatePart, StartOfWeek};
use crate::kernel::{Arg, Rows, TableauUdf, done, micros, timestamp_type};

/// The date-part functions.
pub fn udfs() -> Vec<ScalarUDF> {
    use Arg::{Int, Temporal, Text, WeekStart};
    vec![
        TableauUdf::udf(
            "tableau_datepart",
            &[&[Text, Temporal], &[Text, Temporal, WeekStart]],
            DataType::Int64,
            datepart,
        ),
        TableauUdf::udf(
            "tableau_datename",
            &[&[Text, Temporal], &[Text, Temporal, WeekStart]],
            DataType::Utf8,
            datename,
        ),
        TableauUdf::udf(
            "tableau_datetrunc",
            &[&[Text, Temporal], &[Text, Temporal, WeekStart]],
            timestamp_type(),
            datetrunc,
        ),
        TableauUdf::udf("tableau_dateadd", &[&[Text, Int, Temporal]], timestamp_type(), dateadd),
        TableauUdf::udf(
            "tableau_datediff",
            &[&[Text, Temporal, Temporal], &[Text, Temporal, Temporal, WeekStart]],
            DataType::Int64,
            datediff,
        ),
    ]
}

fn part(rows: &Rows, row: usize) -> Result<Option<DatePart>> {
    match rows.text(0, row) {
        None => Ok(None),
        Some(name) => match DatePart::parse(name) {
            Some(part) => Ok(Some(part)),
            None => exec_err!(
                "'{name}' is not a Tableau date part (year, quarter, month, dayofyear, day, weekday, week, hour, \
                 minute, second, iso-year, iso-quarter, iso-week, iso-weekday)"
            ),
        },
    }
}

/// `f` of each row's date part, value and start of week; NULL where any of them is.
fn each_part<T>(rows: &Rows, f: impl Fn(DatePart, NaiveDateTime, StartOfWeek) -> T) -> Result<Vec<Option<T>>> {
    (0..rows.len)
        .map(|r| {
            let (Some(part), Some(value), Some(start)) = (part(rows, r)?, rows.time(1, r), rows.week_start(2, r)?)
            else {
                return Ok(None);
            };
            Ok(Some(f(part, value, start)))
        })
        .collect()
}

fn datepart(rows: &Rows) -> Result<ArrayRef> {
    done(Int64Array::from(each_part(rows, calendar::date_part)?))
}

fn datename(rows: &Rows) -> Result<ArrayRef> {
    done(StringArray::from(each_part(rows, calendar::date_name)?))
}

fn datetrunc(rows: &Rows) -> Result<ArrayRef> {
    let trunc = |part, value, start| micros(calendar::date_trunc(part, value, start));
    done(TimestampMicrosecondArray::from(each_part(rows, trunc)?))
}

fn dateadd(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| {
            let (Some(part), Some(n), Some(value)) = (part(rows, r)?, rows.int(1, r), rows.time(2, r)) else {
                return Ok(None);
            };
            Ok(calendar::date_add(part, n, value).map(micros))
        })
        .collect::<Result<_>>()?;
    done(out)
}

fn datediff(rows: &Rows) -> Result<ArrayRef> {
    let out: Int64Array = (0..rows.len)
        .map(|r| {
            let (Some(part), Some(start), Some(end), Some(week)) =
                (part(rows, r)?, rows.time(1, r), rows.time(2, r), rows.week_start(3, r)?)
            else {
                return Ok(None);
            };
            Ok(Some(calendar::date_diff(part, start, end, week)))
        })
        .collect::<Result<_>>()?;
    done(out)
}
