//! Tableau's calculation semantics as DataFusion scalar functions, for the SQL that Tableau's
//! Stockflight connector (`clients/tableau/connector/dialect.tdd`) generates.
//!
//! DataFusion's own functions cover most of Tableau's calculation language; these cover what they
//! do not: date parts with a start of week and ISO-8601 parts (`tableau_datepart`,
//! `tableau_datename`, `tableau_datetrunc`, `tableau_dateadd`, `tableau_datediff`), Tableau's
//! day numbers and date arithmetic (`tableau_to_days`, `tableau_add_days`...), dates read from
//! strings (`tableau_datetime`, `tableau_dateparse`), string functions with Tableau's edge cases
//! (`tableau_left`, `tableau_mid`, `tableau_find`, `tableau_split`...) and hexagonal bins.
//!
//! Every function is deterministic ([`Volatility::Immutable`](datafusion::logical_expr::Volatility)):
//! plans that use them stay cacheable.

mod calendar;
mod date;
mod datetime;
mod hexbin;
mod kernel;
mod string;
mod temporal;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every function of this crate.
pub fn udfs() -> Vec<ScalarUDF> {
    let mut all = date::udfs();
    all.extend(datetime::udfs());
    all.extend(string::udfs());
    all.extend(hexbin::udfs());
    all
}

/// Registers every function of this crate in `ctx`.
pub fn register(ctx: &SessionContext) {
    for udf in udfs() {
        ctx.register_udf(udf);
    }
}

#[cfg(test)]
mod tests;
