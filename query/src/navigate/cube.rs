//! Cubes: a fact table pre-aggregated over a set of dimension columns, with the measures every
//! rewritable aggregate needs: `__rows` (rows per cell) and, for every other column, its count
//! of non-NULL values, its minimum and maximum when it is a number, time or boolean, and its sum
//! when it is an integer (sums of floats are left out: a different order of additions could
//! change the last bits).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;

use crate::catalog::memory::HeldTable;

/// Column of a cube: rows of the fact table in the cell.
pub const ROWS: &str = "__rows";

/// A measure column's name: `__count_qty`, `__sum_qty`, `__min_qty`, `__max_qty`.
pub fn measure(kind: &str, column: &str) -> String {
    format!("__{kind}_{column}")
}

/// A built cube.
#[derive(Debug)]
pub struct Cube {
    /// The fact table it aggregates.
    pub fact: String,
    /// Its dimension columns.
    pub dims: BTreeSet<String>,
    /// Its rows (cells).
    pub rows: usize,
    /// Bytes it holds.
    pub bytes: usize,
    /// The cells, held like any table (sorted by the dimensions, chunks with statistics).
    pub table: Arc<dyn TableProvider>,
    /// Measures it has, by name, for checks.
    pub schema: SchemaRef,
}

/// Whether a column's sum is exact and kept.
pub fn summable(ty: &DataType) -> bool {
    ty.is_integer() || matches!(ty, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// Whether min/max are kept for a column of this type.
pub fn orderable(ty: &DataType) -> bool {
    ty.is_primitive()
        || matches!(
            ty,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
        )
}

/// Estimated distinct values of each column of `fact` (`approx_distinct`, one pass), but its
/// floating-point ones: DataFusion cannot count those, and a price or a rate is a measure, never
/// a default dimension (a query that groups by one still gets its cube on first use).
pub async fn distinct_counts(ctx: &SessionContext, fact: &str) -> Result<std::collections::HashMap<String, usize>> {
    let df = ctx.table(fact).await?;
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.data_type().is_floating())
        .map(|f| f.name().clone())
        .collect();
    let exprs: Vec<Expr> = names
        .iter()
        .map(|n| datafusion::functions_aggregate::expr_fn::approx_distinct(col(format!("\"{n}\""))).alias(n.as_str()))
        .collect();
    let batches = df.aggregate(vec![], exprs)?.collect().await?;
    let mut out = std::collections::HashMap::new();
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        for (name, column) in names.iter().zip(batch.columns()) {
            let column = arrow::compute::cast(column, &DataType::UInt64)?;
            let values = column
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .expect("cast to UInt64");
            out.insert(name.clone(), values.value(0) as usize);
        }
    }
    Ok(out)
}

/// Aggregates `fact` (as `ctx` serves it) over `dims`; `None` when the cube would have more than
/// `max_rows` cells (it would not be much smaller than the table).
pub async fn build(ctx: &SessionContext, fact: &str, dims: &BTreeSet<String>, max_rows: usize) -> Result<Option<Cube>> {
    let df = ctx.table(fact).await?;
    let schema = df.schema().as_arrow().clone();
    let mut measures: Vec<Expr> = vec![count(lit(1)).alias(ROWS)];
    for field in schema.fields() {
        let name = field.name();
        if dims.contains(name) {
            continue;
        }
        let c = col(format!("\"{name}\""));
        measures.push(count(c.clone()).alias(measure("count", name)));
        if summable(field.data_type()) {
            measures.push(sum(c.clone()).alias(measure("sum", name)));
        }
        if orderable(field.data_type()) {
            measures.push(min(c.clone()).alias(measure("min", name)));
            measures.push(max(c).alias(measure("max", name)));
        }
    }
    let group: Vec<Expr> = dims.iter().map(|d| col(format!("\"{d}\""))).collect();
    let batches = df.aggregate(group, measures)?.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 || rows > max_rows {
        return Ok(None);
    }
    let out_schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
    // Sorted by the dimensions, so filters on them skip chunks of the cube too.
    let sorted = if batches.is_empty() {
        batches
    } else {
        let order: Vec<_> = dims.iter().map(|d| col(format!("\"{d}\"")).sort(true, false)).collect();
        ctx.read_batches(batches)?.sort(order)?.collect().await?
    };
    let table = HeldTable::new(out_schema.clone(), &sorted, dims.iter().cloned().collect())?;
    let bytes = table.bytes();
    Ok(Some(Cube {
        fact: fact.to_string(),
        dims: dims.clone(),
        rows,
        bytes,
        table: Arc::new(table),
        schema: out_schema,
    }))
}
