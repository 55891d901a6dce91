//! One shape for every function in this crate: a name, the argument lists it takes, a fixed
//! result type and a row-by-row kernel. DataFusion casts each argument to what the kernel reads
//! ([`Arg`]); dates, timestamps and times of day reach the kernel as `chrono` values.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use chrono::{DateTime, NaiveDateTime, NaiveTime};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::calendar::StartOfWeek;
use crate::temporal::time_only_day;

/// How a kernel reads one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A string (Utf8).
    Text,
    /// An integer (Int64); fractional numbers are truncated towards zero on the way in.
    Int,
    /// A number (Float64).
    Float,
    /// A date, timestamp (any unit; a zone's value is read as UTC) or time of day (on
    /// 30 December 1899, as Tableau keeps it), kept in its own type.
    Temporal,
    /// A start of week: Tableau's number for it (Sunday 0 ... Saturday 6) or a day name.
    WeekStart,
}

/// Computes a whole result column from the argument columns.
pub type Kernel = fn(&Rows) -> Result<ArrayRef>;

/// A Tableau function as a DataFusion scalar UDF.
#[derive(Debug)]
pub struct TableauUdf {
    name: &'static str,
    arities: &'static [&'static [Arg]],
    returns: DataType,
    kernel: Kernel,
    signature: Signature,
}

impl TableauUdf {
    /// A deterministic function (the same arguments always give the same result), so plans
    /// using it may be cached and constant arguments folded.
    pub fn udf(name: &'static str, arities: &'static [&'static [Arg]], returns: DataType, kernel: Kernel) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            name,
            arities,
            returns,
            kernel,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }

    fn arity(&self, count: usize) -> Result<&'static [Arg]> {
        match self.arities.iter().find(|a| a.len() == count) {
            Some(args) => Ok(args),
            None => {
                let counts: Vec<String> = self.arities.iter().map(|a| a.len().to_string()).collect();
                plan_err!("{} takes {} arguments, not {count}", self.name, counts.join(" or "))
            }
        }
    }
}

// Names are unique among the functions registered, so they identify a function.
impl PartialEq for TableauUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TableauUdf {}

impl Hash for TableauUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TableauUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let args = self.arity(arg_types.len())?;
        args.iter()
            .zip(arg_types)
            .enumerate()
            .map(|(i, (arg, given))| match coerce(*arg, given) {
                Some(ty) => Ok(ty),
                None => plan_err!(
                    "{}: argument {} must be {}, not {given}",
                    self.name,
                    i + 1,
                    describe(*arg)
                ),
            })
            .collect()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let kinds = self.arity(args.args.len())?;
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = Rows::new(&arrays, kinds)?;
        let out = (self.kernel)(&rows)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn coerce(arg: Arg, given: &DataType) -> Option<DataType> {
    let numeric = given.is_numeric() || given.is_null();
    match arg {
        Arg::Text => matches!(
            given,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
        )
        .then_some(DataType::Utf8),
        Arg::Int => numeric.then_some(DataType::Int64),
        Arg::Float => numeric.then_some(DataType::Float64),
        Arg::Temporal => match given {
            DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Time32(_)
            | DataType::Time64(_) => Some(given.clone()),
            DataType::Null => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
            _ => None,
        },
        Arg::WeekStart => match given {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
            _ => numeric.then_some(DataType::Int64),
        },
    }
}

fn describe(arg: Arg) -> &'static str {
    match arg {
        Arg::Text => "a string",
        Arg::Int | Arg::Float => "a number",
        Arg::Temporal => "a date, timestamp or time",
        Arg::WeekStart => "a start of week (0 for Sunday ... 6 for Saturday, or a day name)",
    }
}

/// The argument columns of one call, read per row.
pub struct Rows {
    columns: Vec<Column>,
    /// Number of rows.
    pub len: usize,
}

enum Column {
    Text(StringArray),
    Int(Int64Array),
    Float(Float64Array),
    Temporal(Vec<Option<NaiveDateTime>>),
}

impl Rows {
    fn new(arrays: &[ArrayRef], kinds: &[Arg]) -> Result<Self> {
        let len = arrays.first().map_or(1, |a| a.len());
        let columns = arrays
            .iter()
            .zip(kinds)
            .map(|(array, kind)| {
                Ok(match kind {
                    Arg::Text => Column::Text(array.as_string::<i32>().clone()),
                    Arg::Int => Column::Int(array.as_primitive().clone()),
                    Arg::Float => Column::Float(array.as_primitive().clone()),
                    Arg::Temporal => Column::Temporal(temporal_values(array.as_ref())?),
                    Arg::WeekStart if array.data_type() == &DataType::Utf8 => {
                        Column::Text(array.as_string::<i32>().clone())
                    }
                    Arg::WeekStart => Column::Int(array.as_primitive().clone()),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { columns, len })
    }

    /// Whether the call passed argument `i` (optional trailing arguments).
    pub fn has(&self, i: usize) -> bool {
        i < self.columns.len()
    }

    /// Argument `i` of `row` as a string; `None` for NULL.
    pub fn text(&self, i: usize, row: usize) -> Option<&str> {
        match &self.columns[i] {
            Column::Text(a) => a.is_valid(row).then(|| a.value(row)),
            _ => unreachable!("argument {i} is read as text"),
        }
    }

    /// Argument `i` of `row` as an integer; `None` for NULL.
    pub fn int(&self, i: usize, row: usize) -> Option<i64> {
        match &self.columns[i] {
            Column::Int(a) => a.is_valid(row).then(|| a.value(row)),
            _ => unreachable!("argument {i} is read as an integer"),
        }
    }

    /// Argument `i` of `row` as a number; `None` for NULL.
    pub fn float(&self, i: usize, row: usize) -> Option<f64> {
        match &self.columns[i] {
            Column::Float(a) => a.is_valid(row).then(|| a.value(row)),
            _ => unreachable!("argument {i} is read as a number"),
        }
    }

    /// Argument `i` of `row` as a start of week: Sunday when the call has no argument `i`, `None`
    /// for NULL, an error for a name that is not a day's.
    pub fn week_start(&self, i: usize, row: usize) -> Result<Option<StartOfWeek>> {
        match self.columns.get(i) {
            None => Ok(Some(StartOfWeek::SUNDAY)),
            Some(Column::Int(a)) => Ok(a.is_valid(row).then(|| StartOfWeek::from_number(a.value(row)))),
            Some(Column::Text(a)) if a.is_null(row) => Ok(None),
            Some(Column::Text(a)) => match StartOfWeek::from_name(a.value(row)) {
                Some(start) => Ok(Some(start)),
                None => exec_err!("'{}' is not a day of the week", a.value(row)),
            },
            Some(_) => unreachable!("argument {i} is read as a start of week"),
        }
    }

    /// Argument `i` of `row` as a date and time; `None` for NULL.
    pub fn time(&self, i: usize, row: usize) -> Option<NaiveDateTime> {
        match &self.columns[i] {
            Column::Temporal(values) => values[row],
            _ => unreachable!("argument {i} is read as a date or time"),
        }
    }
}

fn temporal_values(array: &dyn Array) -> Result<Vec<Option<NaiveDateTime>>> {
    fn each<T, F>(array: &dyn Array, f: F) -> Vec<Option<NaiveDateTime>>
    where
        T: arrow::datatypes::ArrowPrimitiveType,
        F: Fn(T::Native) -> Option<NaiveDateTime>,
    {
        array.as_primitive::<T>().iter().map(|v| v.and_then(&f)).collect()
    }
    let from_micros = |us: i64| DateTime::from_timestamp_micros(us).map(|t| t.naive_utc());
    let on_time_only_day = |nanos: i64| {
        let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let frac = nanos.rem_euclid(1_000_000_000) as u32;
        NaiveTime::from_num_seconds_from_midnight_opt(secs, frac).map(|t| time_only_day().and_time(t))
    };
    Ok(match array.data_type() {
        DataType::Date32 => each::<Date32Type, _>(array, |d| {
            Date32Type::to_naive_date_opt(d).map(|d| d.and_time(NaiveTime::MIN))
        }),
        DataType::Date64 => {
            each::<Date64Type, _>(array, |ms| DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc()))
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            each::<TimestampSecondType, _>(array, |s| DateTime::from_timestamp(s, 0).map(|t| t.naive_utc()))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            each::<TimestampMillisecondType, _>(array, |ms| DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc()))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => each::<TimestampMicrosecondType, _>(array, from_micros),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            each::<TimestampNanosecondType, _>(array, |ns| Some(DateTime::from_timestamp_nanos(ns).naive_utc()))
        }
        DataType::Time32(TimeUnit::Second) => {
            each::<Time32SecondType, _>(array, |s| on_time_only_day(i64::from(s) * 1_000_000_000))
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            each::<Time32MillisecondType, _>(array, |ms| on_time_only_day(i64::from(ms) * 1_000_000))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            each::<Time64MicrosecondType, _>(array, |us| on_time_only_day(us.saturating_mul(1_000)))
        }
        DataType::Time64(TimeUnit::Nanosecond) => each::<Time64NanosecondType, _>(array, on_time_only_day),
        DataType::Null => vec![None; array.len()],
        other => return exec_err!("not a date, timestamp or time: {other}"),
    })
}

/// Microseconds since 1970 of a timestamp result (chrono's range fits in them).
pub fn micros(value: NaiveDateTime) -> i64 {
    value.and_utc().timestamp_micros()
}

/// The result type of functions that return a Tableau datetime.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Wraps a finished result column.
pub fn done(array: impl Array + 'static) -> Result<ArrayRef> {
    Ok(Arc::new(array))
}
