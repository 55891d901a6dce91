//! Tableau's date arithmetic and conversions ([`crate::temporal`]): day numbers
//! (`FLOAT(date)`, `DATE(number)`), `date + 1.5`, `datetime - datetime`, dates read from strings
//! (`DATETIME(str)`, `DATEPARSE`) and MAKEDATE / MAKEDATETIME / MAKETIME.

use arrow::array::{ArrayRef, Date32Array, Float64Array, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Date32Type};
use chrono::{NaiveDate, NaiveTime, Timelike};
use datafusion::common::Result;
use datafusion::logical_expr::ScalarUDF;

use crate::kernel::{Arg, Rows, TableauUdf, done, micros, timestamp_type};
use crate::temporal::{self, time_only_day};

/// The date arithmetic and conversion functions.
pub fn udfs() -> Vec<ScalarUDF> {
    use Arg::{Float, Int, Temporal, Text};
    vec![
        TableauUdf::udf("tableau_to_days", &[&[Temporal]], DataType::Float64, to_days),
        TableauUdf::udf("tableau_from_days", &[&[Float]], timestamp_type(), from_days),
        TableauUdf::udf("tableau_add_days", &[&[Temporal, Float]], timestamp_type(), add_days),
        TableauUdf::udf(
            "tableau_days_between",
            &[&[Temporal, Temporal]],
            DataType::Float64,
            days_between,
        ),
        TableauUdf::udf("tableau_datetime", &[&[Text]], timestamp_type(), datetime),
        TableauUdf::udf("tableau_dateparse", &[&[Text, Text]], timestamp_type(), dateparse),
        TableauUdf::udf("tableau_makedate", &[&[Int, Int, Int]], DataType::Date32, makedate),
        TableauUdf::udf(
            "tableau_makedatetime",
            &[&[Temporal, Temporal]],
            timestamp_type(),
            makedatetime,
        ),
        TableauUdf::udf("tableau_maketime", &[&[Int, Int, Float]], timestamp_type(), maketime),
    ]
}

fn to_days(rows: &Rows) -> Result<ArrayRef> {
    let out: Float64Array = (0..rows.len)
        .map(|r| rows.time(0, r).map(temporal::to_serial))
        .collect();
    done(out)
}

fn from_days(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| rows.float(0, r).and_then(temporal::from_serial).map(micros))
        .collect();
    done(out)
}

fn add_days(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| {
            let (value, days) = (rows.time(0, r)?, rows.float(1, r)?);
            temporal::plus_days(value, days).map(micros)
        })
        .collect();
    done(out)
}

fn days_between(rows: &Rows) -> Result<ArrayRef> {
    let out: Float64Array = (0..rows.len)
        .map(|r| Some(temporal::days_between(rows.time(0, r)?, rows.time(1, r)?)))
        .collect();
    done(out)
}

fn datetime(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| rows.text(0, r).and_then(temporal::parse_datetime).map(micros))
        .collect();
    done(out)
}

fn dateparse(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| temporal::parse_with_icu(rows.text(0, r)?, rows.text(1, r)?).map(micros))
        .collect();
    done(out)
}

fn makedate(rows: &Rows) -> Result<ArrayRef> {
    let out: Date32Array = (0..rows.len)
        .map(|r| {
            let (y, m, d) = (rows.int(0, r)?, rows.int(1, r)?, rows.int(2, r)?);
            let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, u32::try_from(m).ok()?, u32::try_from(d).ok()?)?;
            Some(Date32Type::from_naive_date(date))
        })
        .collect();
    done(out)
}

fn makedatetime(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| {
            let (date, time) = (rows.time(0, r)?, rows.time(1, r)?);
            Some(micros(date.date().and_time(time.time())))
        })
        .collect();
    done(out)
}

fn maketime(rows: &Rows) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = (0..rows.len)
        .map(|r| {
            let (h, m, s) = (rows.int(0, r)?, rows.int(1, r)?, rows.float(2, r)?);
            if !(0.0..60.0).contains(&s) {
                return None;
            }
            let whole = NaiveTime::from_hms_opt(u32::try_from(h).ok()?, u32::try_from(m).ok()?, s.trunc() as u32)?;
            let time = whole.with_nanosecond(((s.fract() * 1e6).round() as u32).min(999_999) * 1_000)?;
            Some(micros(time_only_day().and_time(time)))
        })
        .collect();
    done(out)
}
