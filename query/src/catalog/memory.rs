//! Tables held in memory while their snapshot is served, laid out for dashboard queries.
//!
//! A snapshot does not change for hours, so its Parquet is decoded once at load and every query
//! reads Arrow memory. The layout is built for the filters dashboards send:
//!
//! - rows are sorted by the table's partition columns, then its first column (the key:
//!   `item_id`, `node_id`, …), and cut into chunks of [`CHUNK_ROWS`];
//! - every chunk has min/max/null statistics per column, so a scan skips the chunks a filter
//!   rules out (`region = 'west'` reads one region's chunks, `item_id = '…'` one chunk per
//!   region) with DataFusion's own pruning predicate;
//! - partition values (Hive `region=…` directories) are plain strings, not dictionaries;
//! - each scan declares the sort order, so DataFusion streams aggregations and top-N over it.
//!
//! Tables are loaded smallest first until `catalog.memory_cache_mb` is used up; the rest stay on
//! Parquet. The budget is per snapshot: during a swap the old snapshot's tables stay in memory
//! until its last query ends.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::pruning::PrunableStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DFSchema, Result, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Accumulator, Expr, TableProviderFilterPushDown, col};
use datafusion::physical_expr::expressions::col as physical_col;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

/// Rows per chunk: the unit a filter skips and a scan hands out.
pub const CHUNK_ROWS: usize = 16 * 1024;

/// What loading one table into memory came to.
pub enum Loaded {
    /// The table, in memory, and the bytes it takes.
    Table(Arc<HeldTable>, usize),
    /// More than the budget left: the table stays on Parquet.
    TooBig,
}

/// A table held in memory, sorted and cut into chunks with statistics (see the module docs).
#[derive(Debug)]
pub struct HeldTable {
    schema: SchemaRef,
    chunks: Vec<RecordBatch>,
    stats: Vec<Arc<Statistics>>,
    whole: Statistics,
    sort: Vec<String>,
}

/// Reads all of `provider` into memory in the layout above, unless it takes more than `budget`
/// bytes of Arrow memory. `sort` names the columns to sort by, in order (columns missing from the
/// table are skipped).
pub async fn load(
    ctx: &SessionContext,
    provider: Arc<dyn TableProvider>,
    sort: &[String],
    budget: usize,
) -> Result<Loaded> {
    let schema = plain_schema(&provider.schema());
    let mut stream = ctx.read_table(provider)?.execute_stream().await?;
    let mut batches = Vec::new();
    let mut used = 0usize;
    while let Some(batch) = stream.try_next().await? {
        used += batch.get_array_memory_size();
        if used > budget {
            return Ok(Loaded::TooBig);
        }
        if batch.num_rows() > 0 {
            batches.push(plain_batch(&schema, &batch)?);
        }
    }
    let sort: Vec<String> = sort
        .iter()
        .filter(|c| schema.field_with_name(c).is_ok())
        .cloned()
        .collect();
    let sorted = if sort.is_empty() || batches.is_empty() {
        batches
    } else {
        let exprs = sort
            .iter()
            .map(|c| col(c.as_str()).sort(true, false))
            .collect::<Vec<_>>();
        ctx.read_batches(batches)?.sort(exprs)?.collect().await?
    };
    let table = HeldTable::new(schema, &sorted, sort)?;
    let bytes = table.bytes();
    Ok(Loaded::Table(Arc::new(table), bytes))
}

impl HeldTable {
    /// A held table of `batches` (already in `sort` order), cut into chunks.
    pub fn new(schema: SchemaRef, batches: &[RecordBatch], sort: Vec<String>) -> Result<Self> {
        let mut chunks = Vec::new();
        if !batches.is_empty() {
            let all = concat_batches(&schema, batches)?;
            let mut offset = 0;
            while offset < all.num_rows() {
                let len = CHUNK_ROWS.min(all.num_rows() - offset);
                // A copy, not a slice: each chunk owns compact buffers (memory accounting,
                // and no chunk keeps the whole concatenation alive).
                let slice = all.slice(offset, len);
                chunks.push(RecordBatch::try_new(schema.clone(), compact(slice.columns())?)?);
                offset += len;
            }
        }
        let stats = chunks
            .iter()
            .map(|c| chunk_statistics(c).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let whole = merged(&schema, &stats);
        Ok(Self {
            schema,
            chunks,
            stats,
            whole,
            sort,
        })
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(RecordBatch::num_rows).sum()
    }

    /// Bytes of Arrow memory held.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(RecordBatch::get_array_memory_size).sum()
    }

    /// Chunks that may hold rows matching all of `filters` (all of them when no filter can prune).
    fn candidates(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<RecordBatch>> {
        let Some(predicate) = conjunction(filters.to_vec()) else {
            return Ok(self.chunks.clone());
        };
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let physical = state.create_physical_expr(predicate, &df_schema)?;
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(self.schema.clone())
            .try_build(physical)?;
        if pruning.always_true() {
            return Ok(self.chunks.clone());
        }
        let keep = pruning.prune(&PrunableStatistics::new(self.stats.clone(), self.schema.clone()))?;
        Ok(self
            .chunks
            .iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(chunk, _)| chunk.clone())
            .collect())
    }
}

#[async_trait]
impl TableProvider for HeldTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters only choose chunks here; DataFusion still applies them row by row.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(self.whole.clone())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let chunks = self.candidates(state, filters)?;
        // Contiguous runs of chunks per partition: each partition stays in sort order.
        let partitions = state.config().target_partitions().clamp(1, chunks.len().max(1));
        let per = chunks.len().div_ceil(partitions).max(1);
        let parts: Vec<Vec<RecordBatch>> = chunks.chunks(per).map(<[RecordBatch]>::to_vec).collect();
        let parts = if parts.is_empty() { vec![Vec::new()] } else { parts };
        let mut source = MemorySourceConfig::try_new(&parts, self.schema.clone(), projection.cloned())?
            .with_limit(if filters.is_empty() { limit } else { None });
        if !self.sort.is_empty() {
            let exprs = self
                .sort
                .iter()
                .map(|c| {
                    Ok(PhysicalSortExpr::new_default(physical_col(c, &self.schema)?)
                        .asc()
                        .nulls_last())
                })
                .collect::<Result<Vec<_>>>()?;
            if let Some(ordering) = LexOrdering::new(exprs) {
                source = source.try_with_sort_information(vec![ordering])?;
            }
        }
        Ok(DataSourceExec::from_data_source(source))
    }
}

/// The schema with dictionary columns (Hive partition values) as their plain value type.
fn plain_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, value) => f.as_ref().clone().with_data_type(value.as_ref().clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn plain_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                Ok(cast(c, f.data_type())?)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Copies of `columns` whose buffers hold exactly their rows (a slice shares, and keeps alive,
/// the whole buffers it was cut from).
fn compact(columns: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
    columns
        .iter()
        .map(|c| {
            let all = arrow::array::UInt32Array::from_iter_values(0..c.len() as u32);
            Ok(arrow::compute::take(c.as_ref(), &all, None)?)
        })
        .collect()
}

/// Min, max and null count of every column of `chunk`.
fn chunk_statistics(chunk: &RecordBatch) -> Result<Statistics> {
    let mut columns = Vec::with_capacity(chunk.num_columns());
    for array in chunk.columns() {
        let (min, max) = match (
            MinAccumulator::try_new(array.data_type()),
            MaxAccumulator::try_new(array.data_type()),
        ) {
            (Ok(mut min), Ok(mut max)) => {
                min.update_batch(std::slice::from_ref(array))?;
                max.update_batch(std::slice::from_ref(array))?;
                (exact(min.evaluate()?), exact(max.evaluate()?))
            }
            _ => (Precision::Absent, Precision::Absent),
        };
        columns.push(ColumnStatistics {
            null_count: Precision::Exact(array.null_count()),
            min_value: min,
            max_value: max,
            ..ColumnStatistics::new_unknown()
        });
    }
    Ok(Statistics {
        num_rows: Precision::Exact(chunk.num_rows()),
        total_byte_size: Precision::Exact(chunk.get_array_memory_size()),
        column_statistics: columns,
    })
}

fn exact(value: ScalarValue) -> Precision<ScalarValue> {
    if value.is_null() {
        Precision::Absent
    } else {
        Precision::Exact(value)
    }
}

/// The whole table's statistics from its chunks'.
fn merged(schema: &Schema, stats: &[Arc<Statistics>]) -> Statistics {
    if stats.is_empty() {
        let mut empty = Statistics::new_unknown(schema);
        empty.num_rows = Precision::Exact(0);
        return empty;
    }
    Statistics::try_merge_iter(stats.iter().map(Arc::as_ref), schema)
        .unwrap_or_else(|_| Statistics::new_unknown(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use datafusion::datasource::MemTable;

    /// 100k rows over 4 regions; `item` ascending within each region after sorting.
    async fn context() -> SessionContext {
        let ctx = SessionContext::new();
        let n = 100_000i64;
        let batch = RecordBatch::try_from_iter([
            (
                "item",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("sku-{:06}", (i * 7919) % n)),
                )) as ArrayRef,
            ),
            (
                "region",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["n", "s", "e", "w"][(i % 4) as usize]),
                )),
            ),
            ("qty", Arc::new(Int64Array::from_iter_values(0..n))),
        ])
        .unwrap();
        let mem = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        let Loaded::Table(table, _) = load(&ctx, Arc::new(mem), &["region".into(), "item".into()], usize::MAX)
            .await
            .unwrap()
        else {
            panic!("fits");
        };
        ctx.register_table("t", table).unwrap();
        ctx
    }

    async fn scalar(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    #[tokio::test]
    async fn filters_read_only_the_chunks_that_can_match_and_answer_exactly() {
        let ctx = context().await;
        // Every row is still there, and filters answer as on the unsorted data.
        assert_eq!(scalar(&ctx, "SELECT count(*) FROM t").await, 100_000);
        assert_eq!(scalar(&ctx, "SELECT count(*) FROM t WHERE region = 'w'").await, 25_000);
        assert_eq!(
            scalar(&ctx, "SELECT sum(qty) FROM t WHERE item = 'sku-000007'").await,
            {
                // item i*7919 % n == 7 for exactly one i
                (0..100_000i64).find(|i| (i * 7919) % 100_000 == 7).unwrap()
            }
        );
        // The point lookup's scan keeps one chunk of the region it falls in, at most.
        let plan = ctx
            .sql("EXPLAIN ANALYZE SELECT * FROM t WHERE region = 'w' AND item = 'sku-000007'")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
        assert!(text.contains("DataSourceExec"), "{text}");
        let table = ctx.table_provider("t").await.unwrap();
        let held = table.downcast_ref::<HeldTable>().unwrap();
        let state = ctx.state();
        let kept = held
            .candidates(
                &state,
                &[
                    col("region").eq(datafusion::prelude::lit("w")),
                    col("item").eq(datafusion::prelude::lit("sku-000007")),
                ],
            )
            .unwrap();
        assert!(
            kept.len() <= 1 && held.chunks.len() >= 6,
            "{} of {}",
            kept.len(),
            held.chunks.len()
        );
    }
}
