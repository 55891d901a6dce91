//! The token-range scan as a plan node that crosses the network: the coordinator plans it with
//! every split of the ring, the distributed planner cuts the splits into one share per task
//! ([`CassandraScanExec::split`]), and each worker reads its share with the same reader as a
//! single-process run (`scan.parallelism` partitions pulling from one queue of the task's
//! ranges), then records what it read ([`Receipt::Scan`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_distributed::DistributedTaskContext;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use stockflight_common::sections::Consistency;
use tokio::sync::OnceCell;

use super::receipts::{Receipt, ReceiptBook, session};
use crate::scan::{PageOptions, Scan, ScanProgress, TableReader, TokenRange, availability_schema};

/// What a worker needs to read its share of the table: sent in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSpec {
    /// Rows per Cassandra page.
    pub page_size: i32,
    /// Retries of a failed page.
    pub retries: usize,
    /// Page request timeout in milliseconds.
    pub request_timeout_ms: u64,
    /// Read consistency.
    pub consistency: Consistency,
    /// Concurrent readers (partitions) per task.
    pub parallelism: usize,
    /// The token ranges of each task, `(start, end]`; one entry before the plan is split.
    pub ranges_per_task: Vec<Vec<(i64, i64)>>,
    /// Columns of [`availability_schema`] produced, all when `None`.
    pub projection: Option<Vec<usize>>,
    /// Where the task's scan receipt goes (and the Cassandra cluster it reads).
    pub book: ReceiptBook,
}

/// Reads the availability table's token ranges of the task it runs in.
pub struct CassandraScanExec {
    spec: ScanSpec,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// The task's scan, opened by the first partition executed.
    scan: Arc<OnceCell<std::result::Result<Scan, String>>>,
    progress: Arc<ScanProgress>,
    /// Partitions still reading: the last one to finish records the receipt.
    running: Arc<AtomicUsize>,
}

impl fmt::Debug for CassandraScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraScanExec")
            .field("keyspace", &self.spec.book.keyspace)
            .field("tasks", &self.spec.ranges_per_task.len())
            .finish_non_exhaustive()
    }
}

impl CassandraScanExec {
    /// A scan of `spec`.
    pub fn new(spec: ScanSpec) -> Result<Self> {
        let full = availability_schema();
        let schema = match &spec.projection {
            Some(columns) => Arc::new(full.project(columns)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(spec.parallelism.max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            running: Arc::new(AtomicUsize::new(spec.parallelism.max(1))),
            spec,
            schema,
            properties,
            scan: Arc::new(OnceCell::new()),
            progress: Arc::new(ScanProgress::default()),
        })
    }

    /// What the node sends to its worker.
    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }

    /// The same scan with its ranges dealt to `tasks` tasks in turn (neighbouring ranges go to
    /// different tasks, so a dense stretch of the ring is shared).
    pub fn split(&self, tasks: usize) -> Result<Self> {
        let tasks = tasks.max(1);
        let mut shares = vec![Vec::new(); tasks];
        for (i, range) in self.spec.ranges_per_task.iter().flatten().enumerate() {
            shares[i % tasks].push(*range);
        }
        Self::new(ScanSpec {
            ranges_per_task: shares,
            ..self.spec.clone()
        })
    }

    /// Every range of the scan, over all tasks.
    pub fn range_count(&self) -> usize {
        self.spec.ranges_per_task.iter().map(Vec::len).sum()
    }

    async fn open(&self, task: usize) -> std::result::Result<Scan, String> {
        let ranges: Vec<TokenRange> = self
            .spec
            .ranges_per_task
            .get(task)
            .ok_or_else(|| format!("no token ranges for task {task}"))?
            .iter()
            .map(|&(start, end)| TokenRange { start, end })
            .collect();
        let session = session(&self.spec.book.nodes).await.map_err(|e| e.to_string())?;
        let options = PageOptions {
            page_size: self.spec.page_size,
            retries: self.spec.retries,
            request_timeout: std::time::Duration::from_millis(self.spec.request_timeout_ms),
            consistency: self.spec.consistency,
        };
        let reader = TableReader::new(session, &self.spec.book.keyspace, options)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(task, ranges = ranges.len(), "scanning this task's token ranges");
        Ok(Scan::new(
            Arc::new(reader),
            ranges,
            self.spec.parallelism,
            self.progress.clone(),
        ))
    }

    fn receipt(&self, task: usize) -> Receipt {
        Receipt::Scan {
            task,
            rows: self.progress.rows.load(Ordering::Relaxed),
            ranges: self.progress.ranges_done.load(Ordering::Relaxed),
            page_retries: self.progress.page_retries.load(Ordering::Relaxed),
        }
    }
}

impl DisplayAs for CassandraScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let shares: Vec<usize> = self.spec.ranges_per_task.iter().map(Vec::len).collect();
        write!(
            f,
            "CassandraScanExec: keyspace={}, parallelism={}, ranges per task={shares:?}",
            self.spec.book.keyspace, self.spec.parallelism
        )
    }
}

impl ExecutionPlan for CassandraScanExec {
    fn name(&self) -> &str {
        "CassandraScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let task = DistributedTaskContext::from_ctx(&context).task_index;
        let (cell, me) = (self.scan.clone(), self.clone_shared());
        let projection = self.spec.projection.clone();
        let opened = async move {
            let scan = cell
                .get_or_init(|| async { me.open(task).await })
                .await
                .clone()
                .map_err(|e| DataFusionError::External(Box::new(crate::error::Error::Cassandra(e))))?;
            Ok::<_, DataFusionError>((scan.execute(context), me))
        };
        let stream = futures::stream::once(opened)
            .map_ok(move |(batches, me)| {
                let projection = projection.clone();
                let projected = batches.map(move |batch| match &projection {
                    Some(columns) => Ok(batch?.project(columns)?),
                    None => batch,
                });
                // The last partition to finish records the task's receipt before it ends.
                let done = futures::stream::once(async move {
                    if me.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                        me.spec
                            .book
                            .record(&me.receipt(task))
                            .await
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    }
                    Ok(None)
                });
                projected.map_ok(Some).chain(done).try_filter_map(futures::future::ok)
            })
            .try_flatten();
        let _ = partition;
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

impl CassandraScanExec {
    /// A handle sharing this node's scan, progress and partition count.
    fn clone_shared(&self) -> Arc<Self> {
        Arc::new(Self {
            spec: self.spec.clone(),
            schema: self.schema.clone(),
            properties: self.properties.clone(),
            scan: self.scan.clone(),
            progress: self.progress.clone(),
            running: self.running.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ranges: usize) -> ScanSpec {
        ScanSpec {
            page_size: 100,
            retries: 1,
            request_timeout_ms: 1000,
            consistency: Consistency::Auto,
            parallelism: 2,
            ranges_per_task: vec![
                crate::scan::split_ring(ranges)
                    .iter()
                    .map(|r| (r.start, r.end))
                    .collect(),
            ],
            projection: None,
            book: ReceiptBook {
                nodes: vec!["127.0.0.1:9042".into()],
                keyspace: "k".into(),
                consistency: Consistency::Auto,
                run_id: "r".into(),
                epoch: 1,
            },
        }
    }

    #[test]
    fn a_split_deals_every_range_to_exactly_one_task() {
        let scan = CassandraScanExec::new(spec(9)).unwrap();
        let split = scan.split(2).unwrap();
        let shares = &split.spec().ranges_per_task;
        assert_eq!(shares.len(), 2);
        assert_eq!((shares[0].len(), shares[1].len()), (5, 4));
        let mut all: Vec<_> = shares.iter().flatten().copied().collect();
        all.sort();
        let mut expected: Vec<_> = scan.spec().ranges_per_task[0].clone();
        expected.sort();
        assert_eq!(all, expected, "no range lost or read twice");
        assert_eq!(split.range_count(), 9);
    }
}
