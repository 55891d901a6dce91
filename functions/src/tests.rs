//! The functions as SQL sees them: registered in a session, called on literals and columns of
//! each temporal type, with NULLs and bad arguments. Expected values are worked out by hand from
//! Tableau's documented rules (see the module tests for the calendar arithmetic).

use arrow::util::display::array_value_to_string;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::Volatility;
use datafusion::prelude::SessionContext;

fn session() -> SessionContext {
    let ctx = SessionContext::new();
    super::register(&ctx);
    ctx
}

/// The first column of `sql`'s result, each value as Arrow displays it ("NULL" for null).
async fn column(sql: &str) -> Vec<String> {
    let batches = session()
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for batch in batches {
        let col = batch.column(0);
        for row in 0..batch.num_rows() {
            out.push(if col.is_null(row) {
                "NULL".to_string()
            } else {
                array_value_to_string(col, row).expect("displayable")
            });
        }
    }
    out
}

async fn one(sql: &str) -> String {
    let mut values = column(sql).await;
    assert_eq!(values.len(), 1, "{sql} returned {values:?}");
    values.remove(0)
}

async fn error(sql: &str) -> String {
    let ctx = session();
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(sql).to_string()
}

#[tokio::test]
async fn every_function_is_registered_and_deterministic() {
    let udfs = super::udfs();
    assert!(udfs.len() >= 20, "{} functions", udfs.len());
    for udf in &udfs {
        assert!(udf.name().starts_with("tableau_"), "{}", udf.name());
        assert_eq!(udf.signature().volatility, Volatility::Immutable, "{}", udf.name());
    }
    let ctx = session();
    for udf in &udfs {
        assert!(ctx.udf(udf.name()).is_ok(), "{} not registered", udf.name());
    }
}

#[tokio::test]
async fn date_parts_of_dates_timestamps_and_times() {
    assert_eq!(one("SELECT tableau_datepart('week', DATE '2004-01-04')").await, "2");
    assert_eq!(one("SELECT tableau_datepart('week', DATE '2004-01-04', 1)").await, "1");
    assert_eq!(
        one("SELECT tableau_datepart('weekday', TIMESTAMP '2004-04-15 13:45:59')").await,
        "5"
    );
    assert_eq!(
        one("SELECT tableau_datepart('second', arrow_cast(TIMESTAMP '2010-10-10 10:10:10.4', 'Timestamp(Millisecond, None)'))").await,
        "10"
    );
    assert_eq!(
        one("SELECT tableau_datepart('iso-week', DATE '2005-01-01')").await,
        "53"
    );
    assert_eq!(
        one("SELECT tableau_datepart('hour', CAST('19:36:22' AS TIME))").await,
        "19"
    );
    // A time of day sits on 30 December 1899.
    assert_eq!(
        one("SELECT tableau_datepart('year', CAST('19:36:22' AS TIME))").await,
        "1899"
    );
    assert_eq!(
        one("SELECT tableau_datename('weekday', DATE '2004-07-04')").await,
        "Sunday"
    );
    assert_eq!(
        one("SELECT tableau_datename('month', DATE '2004-07-04', 1)").await,
        "July"
    );
    assert_eq!(
        one("SELECT tableau_datename('dayofyear', DATE '1974-02-04')").await,
        "35"
    );
}

#[tokio::test]
async fn truncation_addition_and_differences() {
    assert_eq!(
        one("SELECT tableau_datetrunc('week', TIMESTAMP '2004-07-04 22:49:28', 1)").await,
        "2004-06-28T00:00:00"
    );
    assert_eq!(
        one("SELECT tableau_datetrunc('quarter', DATE '1977-05-20')").await,
        "1977-04-01T00:00:00"
    );
    assert_eq!(
        one("SELECT tableau_dateadd('month', 1, DATE '2004-01-31')").await,
        "2004-02-29T00:00:00"
    );
    assert_eq!(
        one("SELECT tableau_dateadd('minute', -1, DATE '2004-01-01')").await,
        "2003-12-31T23:59:00"
    );
    assert_eq!(
        one("SELECT tableau_dateadd('day', 2.9, DATE '2004-01-01')").await,
        "2004-01-03T00:00:00"
    );
    assert_eq!(
        one("SELECT tableau_datediff('week', DATE '2004-07-03', DATE '2004-07-04')").await,
        "1"
    );
    assert_eq!(
        one("SELECT tableau_datediff('week', DATE '2004-07-03', DATE '2004-07-04', 1)").await,
        "0"
    );
    assert_eq!(
        one("SELECT tableau_datediff('week', DATE '2004-07-03', DATE '2004-07-04', 'Monday')").await,
        "0"
    );
    assert_eq!(
        one("SELECT tableau_datediff('hour', TIMESTAMP '2004-07-03 22:30:00', TIMESTAMP '2004-07-03 23:10:00')").await,
        "1"
    );
    assert_eq!(
        one("SELECT tableau_datediff('day', DATE '2004-07-09', TIMESTAMP '2004-07-04 23:00:00')").await,
        "-5"
    );
}

#[tokio::test]
async fn nulls_give_null_and_bad_parts_or_types_are_errors() {
    assert_eq!(one("SELECT tableau_datepart('year', NULL)").await, "NULL");
    assert_eq!(one("SELECT tableau_datepart(NULL, DATE '2004-01-01')").await, "NULL");
    assert_eq!(
        one("SELECT tableau_datepart('week', DATE '2004-01-01', NULL)").await,
        "NULL"
    );
    assert_eq!(
        one("SELECT tableau_dateadd('year', 1, CAST(NULL AS DATE))").await,
        "NULL"
    );
    let bad_part = error("SELECT tableau_datepart('fortnight', DATE '2004-01-01')").await;
    assert!(
        bad_part.contains("'fortnight' is not a Tableau date part"),
        "{bad_part}"
    );
    let bad_type = error("SELECT tableau_datepart('year', 'yesterday')").await;
    assert!(
        bad_type.contains("argument 2 must be a date, timestamp or time"),
        "{bad_type}"
    );
    let bad_day = error("SELECT tableau_datepart('week', DATE '2004-01-01', 'someday')").await;
    assert!(bad_day.contains("'someday' is not a day of the week"), "{bad_day}");
    let bad_arity = error("SELECT tableau_datepart('year')").await;
    assert!(bad_arity.contains("takes 2 or 3 arguments, not 1"), "{bad_arity}");
}

#[tokio::test]
async fn day_numbers_and_date_arithmetic() {
    assert_eq!(one("SELECT tableau_to_days(DATE '2050-01-01')").await, "54787.0");
    assert_eq!(one("SELECT tableau_to_days(CAST('12:00:00' AS TIME))").await, "-1.5");
    assert_eq!(one("SELECT tableau_from_days(2.5)").await, "1900-01-03T12:00:00");
    assert_eq!(
        one("SELECT tableau_add_days(DATE '1972-07-04', 10.85)").await,
        "1972-07-14T20:24:00"
    );
    assert_eq!(
        one("SELECT tableau_days_between(TIMESTAMP '2004-07-02 06:00:00', DATE '2004-07-01')").await,
        "1.25"
    );
    assert_eq!(one("SELECT tableau_datetime('4/12/2010')").await, "2010-04-12T00:00:00");
    assert_eq!(one("SELECT tableau_datetime('data')").await, "NULL");
    assert_eq!(
        one("SELECT tableau_dateparse('dd.MM.yyyy HH:mm', '04.07.2004 22:49')").await,
        "2004-07-04T22:49:00"
    );
    assert_eq!(one("SELECT tableau_makedate(2004, 2, 29)").await, "2004-02-29");
    assert_eq!(one("SELECT tableau_makedate(2005, 2, 29)").await, "NULL");
    assert_eq!(
        one("SELECT tableau_makedatetime(DATE '2004-07-04', TIMESTAMP '1899-12-30 22:49:28')").await,
        "2004-07-04T22:49:28"
    );
    assert_eq!(
        one("SELECT tableau_maketime(22, 49, 28.5)").await,
        "1899-12-30T22:49:28.500"
    );
}

#[tokio::test]
async fn string_functions_on_columns() {
    let sql = "SELECT tableau_left(s, n) FROM (VALUES ('TECHNOLOGY', 6.75), ('abc', -1.0), (NULL, 1.0), ('abc', NULL)) t(s, n)";
    assert_eq!(column(sql).await, ["TECHNO", "NULL", "NULL", "NULL"]);
    let sql = "SELECT tableau_mid(s, p, 4) FROM (VALUES ('CD-R MEDIA', 2), ('DVD', 6), ('two', -2)) t(s, p)";
    assert_eq!(column(sql).await, ["D-R ", "", "two"]);
    assert_eq!(one("SELECT tableau_right('Data', 2)").await, "ta");
    assert_eq!(one("SELECT tableau_find('This is ™ find test.', '™')").await, "9");
    assert_eq!(one("SELECT tableau_find('Calculation', 'a', 3)").await, "7");
    assert_eq!(one("SELECT tableau_findnth('Calculation', 'a', 2)").await, "7");
    assert_eq!(one("SELECT tableau_split('a-b-c', '-', -1)").await, "c");
    assert_eq!(one("SELECT tableau_replace('abc', '', 'x')").await, "abc");
    assert_eq!(
        one("SELECT tableau_replace('This is ® test', '®', 'R')").await,
        "This is R test"
    );
    assert_eq!(one("SELECT tableau_proper('tHE big-DATA')").await, "The Big-Data");
}

#[tokio::test]
async fn hexagonal_bins() {
    assert_eq!(one("SELECT tableau_hexbinx(5, 2)").await, "4.5");
    assert_eq!(one("SELECT round(tableau_hexbiny(5, 2), 3)").await, "2.598");
    assert_eq!(one("SELECT tableau_hexbinx(NULL, 2)").await, "NULL");
}
