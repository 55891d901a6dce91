//! The drill-down table written where the rows are: a pass-through node in the scan's stage
//! that hands every joined batch to the task's Hive-partitioned writer on its way to the
//! aggregation above, so the rows of `availability_snapshot` never cross the network. Each task
//! writes one file per region (`region=<r>/part-<task>.parquet`); the last of the task's
//! partitions to finish closes the files and records them ([`Receipt::File`]) before it ends.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use datafusion_distributed::DistributedTaskContext;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::receipts::{Receipt, ReceiptBook};
use super::worker::worker_store;
use crate::error::Error;
use crate::partitioned::PartitionedWriter;

/// What the drill-down table's writer of a task needs: sent in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSpec {
    /// The table's name in the manifest.
    pub table: String,
    /// Object prefix of the table (`snapshots/<run>/availability_snapshot`).
    pub prefix: String,
    /// The partition column.
    pub column: String,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// The coordinator's storage root; a worker on another one refuses the plan.
    pub storage: String,
    /// Where the file receipts go.
    pub book: ReceiptBook,
}

/// Passes its input on unchanged while writing it as the drill-down table.
#[derive(Debug)]
pub struct SnapshotWriteExec {
    spec: SnapshotSpec,
    input: Arc<dyn ExecutionPlan>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    writer: OnceCell<std::result::Result<Arc<PartitionedWriter>, String>>,
    /// Partitions still writing: the last one closes the files.
    running: AtomicUsize,
}

impl SnapshotWriteExec {
    /// Writes `input` as described by `spec`.
    pub fn new(spec: SnapshotSpec, input: Arc<dyn ExecutionPlan>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        Self {
            spec,
            input,
            shared: Arc::new(Shared {
                writer: OnceCell::new(),
                running: AtomicUsize::new(partitions),
            }),
        }
    }

    /// What the node sends to its worker.
    pub fn spec(&self) -> &SnapshotSpec {
        &self.spec
    }

    async fn open(&self, task: usize, ctx: &TaskContext) -> std::result::Result<Arc<PartitionedWriter>, String> {
        let store = worker_store(ctx, &self.spec.storage).map_err(|e| e.to_string())?;
        let writer = PartitionedWriter::new(
            store,
            &self.spec.prefix,
            &self.input.schema(),
            &self.spec.column,
            self.spec.row_group_rows,
            ctx.memory_pool().clone(),
        )
        .map_err(|e| e.to_string())?
        .with_file_name(format!("part-{task}.parquet"));
        Ok(Arc::new(writer))
    }

    /// Closes the task's files and records each.
    async fn finish(&self, writer: &PartitionedWriter) -> std::result::Result<(), Error> {
        let files = writer.finish_files().await?;
        for file in &files {
            self.spec
                .book
                .record(&Receipt::File {
                    table: self.spec.table.clone(),
                    path: file.path.clone(),
                    rows: file.rows,
                    bytes: file.bytes,
                })
                .await?;
        }
        tracing::info!(table = %self.spec.table, files = files.len(), rows = files.iter().map(|f| f.rows).sum::<u64>(), "task's files written");
        Ok(())
    }
}

fn external(err: impl Into<Error>) -> DataFusionError {
    DataFusionError::External(Box::new(err.into()))
}

impl DisplayAs for SnapshotWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SnapshotWriteExec: table={}, partitioned by {}",
            self.spec.table, self.spec.column
        )
    }
}

impl ExecutionPlan for SnapshotWriteExec {
    fn name(&self) -> &str {
        "SnapshotWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
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

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("SnapshotWriteExec has one child".into()))?;
        Ok(Arc::new(Self::new(self.spec.clone(), input)))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let task = DistributedTaskContext::from_ctx(&context).task_index;
        let input = self.input.execute(partition, context.clone())?;
        let me = Arc::new(Self {
            spec: self.spec.clone(),
            input: self.input.clone(),
            shared: self.shared.clone(),
        });
        let schema = self.input.schema();
        let stream = futures::stream::once(async move {
            let writer = me
                .shared
                .writer
                .get_or_init(|| async { me.open(task, &context).await })
                .await
                .clone()
                .map_err(|e| external(Error::Storage(e)))?;
            let me_end = me.clone();
            let writer_end = writer.clone();
            let rows = input.and_then(move |batch| {
                let writer = writer.clone();
                async move {
                    if batch.num_rows() > 0 {
                        writer.write(&batch).await.map_err(external)?;
                    }
                    Ok(batch)
                }
            });
            let end = futures::stream::once(async move {
                if me_end.shared.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me_end.finish(&writer_end).await.map_err(external)?;
                }
                Ok(None)
            });
            Ok::<_, DataFusionError>(rows.map_ok(Some).chain(end).try_filter_map(futures::future::ok))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
