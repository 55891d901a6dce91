//! The aggregate tables written where they are finished: the top node of the workers' last
//! stage. Each partition receives the final rows of its share of the groups of the one
//! `GROUPING SETS` aggregation (see `plan.rs`), already joined with the node and item
//! attributes, and writes them into `availability_by_node`, `availability_by_item`,
//! `availability_by_region_category` and this run's `availability_trend` rows, one file per
//! table and partition (`part-<task>-<partition>.parquet`), each recorded ([`Receipt::File`]).
//! Partition 0 of task 0 also writes every table's file when it has no rows (so each table has
//! a file) and the copies: `items`, `nodes` and the earlier runs' trend rows.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::compute::{filter_record_batch, kernels::cmp::eq};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_distributed::DistributedTaskContext;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use stockflight_proto::layout::{reference, snapshot_table};
use tokio::sync::mpsc;

use super::receipts::{Receipt, ReceiptBook};
use super::worker::worker_store;
use crate::error::Error;
use crate::partitioned::writer_properties;
use crate::tables::{BY_ITEM, BY_NODE, BY_REGION_CATEGORY, TREND};
use crate::write::{self, WrittenFile};

/// Column of the aggregation's rows naming the grouping set (and roll-up level) of a row.
pub const LEVEL: &str = "grouping_level";
/// [`LEVEL`] of the per-node rows.
pub const LEVEL_NODE: &str = "by_node";
/// [`LEVEL`] of the per-item rows.
pub const LEVEL_ITEM: &str = "by_item";
/// Levels of `availability_by_region_category`, as its `level` column spells them.
pub const REGION_CATEGORY_LEVELS: [&str; 4] = ["category", "department", "region", "total"];
/// The level whose rows are this run's trend rows (region x department).
const TREND_LEVEL: &str = "department";
/// The published measures, in their order in every aggregate table.
pub const MEASURES: [&str; 8] = [
    "items_tracked",
    "in_stock",
    "low_stock",
    "out_of_stock",
    "discontinued",
    "in_stock_rate",
    "units_available",
    "units_reserved",
];

/// Each output table's columns: (column of the aggregation's rows, name in the table), then the
/// measures.
fn columns_of(table: &str) -> Vec<(&'static str, &'static str)> {
    let keys: &[(&'static str, &'static str)] = match table {
        BY_NODE => &[
            ("node_id", "node_id"),
            ("node_type", "node_type"),
            ("node_region", "region"),
            ("state", "state"),
            ("city", "city"),
        ],
        BY_ITEM => &[
            ("item_id", "item_id"),
            ("item_name", "item_name"),
            ("item_department", "department"),
            ("item_category", "category"),
            ("brand", "brand"),
        ],
        BY_REGION_CATEGORY => &[
            ("region", "region"),
            ("department", "department"),
            ("category", "category"),
            (LEVEL, "level"),
        ],
        _ => &[("region", "region"), ("department", "department")],
    };
    keys.iter().copied().chain(MEASURES.iter().map(|m| (*m, *m))).collect()
}

/// The tables this node writes, in order.
const TABLES: [&str; 4] = [BY_NODE, BY_ITEM, BY_REGION_CATEGORY, TREND];

/// What the aggregate tables' writers need: sent in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablesSpec {
    /// The run id (directory and the trend's `run_id`).
    pub run_id: String,
    /// The run's start, microseconds since the epoch, UTC (the trend's `run_time`).
    pub run_time_micros: i64,
    /// Files of the current snapshot's trend table, carried forward (none for the first run).
    pub previous_trend: Vec<String>,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// The coordinator's storage root; a worker on another one refuses the plan.
    pub storage: String,
    /// Where the file receipts go.
    pub book: ReceiptBook,
}

/// Writes the aggregate tables from the final rows of the grouping-sets aggregation.
#[derive(Debug)]
pub struct TablesWriteExec {
    spec: TablesSpec,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

/// One row per file written: what the node returns to the coordinator (for its log; the
/// receipts are what the manifest is made of).
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]))
}

impl TablesWriteExec {
    /// Writes `input` (rows shaped by `plan::aggregate_sql`) as described by `spec`.
    pub fn new(spec: TablesSpec, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            spec,
            input,
            properties,
        }
    }

    /// What the node sends to its worker.
    pub fn spec(&self) -> &TablesSpec {
        &self.spec
    }
}

/// The schema of `table`'s file, from the aggregation's rows.
fn table_schema(table: &str, input: &Schema) -> Result<SchemaRef> {
    let mut fields = Vec::new();
    if table == TREND {
        fields.push(Field::new(
            "run_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ));
        fields.push(Field::new("run_id", DataType::Utf8, false));
    }
    for (from, to) in columns_of(table) {
        let field = input.field_with_name(from)?;
        fields.push(Field::new(to, field.data_type().clone(), true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// One open file of a table: batches go to its writer task.
struct OpenFile {
    schema: SchemaRef,
    tx: mpsc::Sender<RecordBatch>,
    task: tokio::task::JoinHandle<std::result::Result<WrittenFile, Error>>,
}

/// The files of one partition, opened as their first rows arrive.
struct PartitionFiles {
    store: Arc<dyn ObjectStore>,
    ctx: Arc<TaskContext>,
    spec: TablesSpec,
    input: SchemaRef,
    name: String,
    open: BTreeMap<&'static str, OpenFile>,
}

impl PartitionFiles {
    fn file(&mut self, table: &'static str) -> Result<&OpenFile> {
        if !self.open.contains_key(table) {
            let schema = table_schema(table, &self.input)?;
            let path = Path::from(snapshot_table(&self.spec.run_id, table)).join(self.name.as_str());
            let reservation = MemoryConsumer::new(format!("ParquetSink({path})")).register(self.ctx.memory_pool());
            let (tx, mut rx) = mpsc::channel::<RecordBatch>(2);
            let batches = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, Error>)));
            let task = tokio::spawn(write::write_file(
                self.store.clone(),
                path,
                schema.clone(),
                writer_properties(self.spec.row_group_rows),
                reservation,
                batches,
            ));
            self.open.insert(table, OpenFile { schema, tx, task });
        }
        Ok(&self.open[table])
    }

    /// Splits `batch` by level and queues each table's rows.
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let levels = batch
            .column_by_name(LEVEL)
            .ok_or_else(|| DataFusionError::Internal(format!("no {LEVEL} column")))?
            .clone();
        for table in TABLES {
            let mask = mask_of(table, &levels)?;
            if mask.true_count() == 0 {
                continue;
            }
            let rows = filter_record_batch(batch, &mask)?;
            let file = self.file(table)?;
            let (schema, tx) = (file.schema.clone(), file.tx.clone());
            let out = self.project(table, &rows, &schema)?;
            if tx.send(out).await.is_err() {
                // The writer stopped: its error is reported when the files are closed.
                break;
            }
        }
        Ok(())
    }

    fn project(&self, table: &str, rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
        let n = rows.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if table == TREND {
            columns.push(Arc::new(TimestampMicrosecondArray::from(vec![
                self.spec.run_time_micros;
                n
            ])));
            columns.push(Arc::new(StringArray::from(vec![self.spec.run_id.as_str(); n])));
        }
        for (from, _) in columns_of(table) {
            columns.push(rows.column_by_name(from).expect("checked by table_schema").clone());
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    async fn close(self) -> std::result::Result<Vec<(&'static str, WrittenFile)>, Error> {
        let mut written = Vec::new();
        for (table, file) in self.open {
            drop(file.tx);
            let done = file
                .task
                .await
                .map_err(|e| Error::Storage(format!("a Parquet writer failed: {e}")))??;
            written.push((table, done));
        }
        Ok(written)
    }
}

fn mask_of(table: &str, levels: &ArrayRef) -> Result<BooleanArray> {
    let levels = levels.as_string::<i32>();
    let is = |value: &str| -> Result<BooleanArray> { Ok(eq(levels, &StringArray::new_scalar(value))?) };
    Ok(match table {
        BY_NODE => is(LEVEL_NODE)?,
        BY_ITEM => is(LEVEL_ITEM)?,
        BY_REGION_CATEGORY => {
            let mut any = is(REGION_CATEGORY_LEVELS[0])?;
            for level in &REGION_CATEGORY_LEVELS[1..] {
                any = arrow::compute::or(&any, &is(level)?)?;
            }
            any
        }
        _ => is(TREND_LEVEL)?,
    })
}

/// Copies the reference tables and the earlier runs' trend rows into the snapshot, as a
/// single-process run does.
async fn write_copies(
    spec: &TablesSpec,
    store: &Arc<dyn ObjectStore>,
    ctx: &Arc<TaskContext>,
) -> std::result::Result<Vec<(&'static str, WrittenFile)>, Error> {
    let mut config = SessionConfig::new();
    config.options_mut().execution.parquet.schema_force_view_types = false;
    let session = SessionContext::new_with_config_rt(config, ctx.runtime_env());
    crate::reference::register(&session, store).await?;
    let mut copies = vec![
        (reference::ITEMS, format!("SELECT * FROM {}", reference::ITEMS)),
        (reference::NODES, format!("SELECT * FROM {}", reference::NODES)),
    ];
    if crate::run::register_trend_files(&session, store, &spec.previous_trend).await? {
        copies.push((
            TREND,
            format!("SELECT * FROM previous_trend WHERE run_id <> '{}'", spec.run_id),
        ));
    }
    let mut written = Vec::new();
    for (table, sql) in copies {
        let df = session.sql(&sql).await?;
        let prefix = snapshot_table(&spec.run_id, table);
        let (manifest, _) = write::write_table(df, store, &prefix, spec.row_group_rows).await?;
        written.push((
            table,
            WrittenFile {
                path: manifest.files[0].clone(),
                rows: manifest.rows,
                bytes: manifest.bytes,
            },
        ));
    }
    Ok(written)
}

impl DisplayAs for TablesWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TablesWriteExec: run={}, tables={TABLES:?}", self.spec.run_id)
    }
}

impl ExecutionPlan for TablesWriteExec {
    fn name(&self) -> &str {
        "TablesWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("TablesWriteExec has one child".into()))?;
        Ok(Arc::new(Self::new(self.spec.clone(), input)))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let task = DistributedTaskContext::from_ctx(&context).task_index;
        let mut input = self.input.execute(partition, context.clone())?;
        let spec = self.spec.clone();
        let input_schema = self.input.schema();
        let fail = |e: Error| DataFusionError::External(Box::new(e));
        let written = async move {
            let store = worker_store(&context, &spec.storage).map_err(fail)?;
            let first = task == 0 && partition == 0;
            let mut files = PartitionFiles {
                store: store.clone(),
                ctx: context.clone(),
                spec: spec.clone(),
                input: input_schema,
                name: format!("part-{task}-{partition}.parquet"),
                open: BTreeMap::new(),
            };
            if first {
                for table in TABLES {
                    files.file(table)?;
                }
            }
            while let Some(batch) = input.next().await {
                files.write(&batch?).await?;
            }
            let mut written = files.close().await.map_err(fail)?;
            if first {
                written.extend(write_copies(&spec, &store, &context).await.map_err(fail)?);
            }
            for (table, file) in &written {
                spec.book
                    .record(&Receipt::File {
                        table: table.to_string(),
                        path: file.path.clone(),
                        rows: file.rows,
                        bytes: file.bytes,
                    })
                    .await
                    .map_err(fail)?;
            }
            let column = |f: fn(&(&'static str, WrittenFile)) -> String| {
                Arc::new(StringArray::from_iter_values(written.iter().map(f))) as ArrayRef
            };
            let batch = RecordBatch::try_new(
                output_schema(),
                vec![
                    column(|(t, _)| t.to_string()),
                    column(|(_, f)| f.path.clone()),
                    Arc::new(UInt64Array::from_iter_values(written.iter().map(|(_, f)| f.rows))),
                    Arc::new(UInt64Array::from_iter_values(written.iter().map(|(_, f)| f.bytes))),
                ],
            )?;
            Ok(batch)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output_schema(),
            futures::stream::once(written),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_takes_its_own_levels() {
        let levels: ArrayRef = Arc::new(StringArray::from(vec![
            "by_node",
            "by_item",
            "category",
            "department",
            "region",
            "total",
        ]));
        let rows = |table| -> Vec<bool> { mask_of(table, &levels).unwrap().iter().map(|v| v.unwrap()).collect() };
        assert_eq!(rows(BY_NODE), [true, false, false, false, false, false]);
        assert_eq!(rows(BY_ITEM), [false, true, false, false, false, false]);
        assert_eq!(rows(BY_REGION_CATEGORY), [false, false, true, true, true, true]);
        assert_eq!(rows(TREND), [false, false, false, true, false, false]);
    }
}
