//! The scan as a DataFusion source: `parallelism` partitions that pull token ranges from one
//! shared queue (so a slow range never leaves a reader idle) and stream a record batch per page.

use std::collections::VecDeque;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use scylla::response::PagingState;
use tokio::sync::mpsc;

use super::cassandra::{Page, PageMode, TableReader, availability_schema};
use super::ranges::TokenRange;
use crate::error::Error;

/// Counters of a running scan, read by the progress display and the summary.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Token ranges in the scan.
    pub ranges_total: AtomicU64,
    /// Token ranges read completely.
    pub ranges_done: AtomicU64,
    /// Rows read so far.
    pub rows: AtomicU64,
    /// Page requests that failed and were retried.
    pub page_retries: AtomicU64,
}

/// The token ranges still to read, shared by all readers of one scan.
#[derive(Debug)]
struct WorkQueue(Mutex<VecDeque<TokenRange>>);

impl WorkQueue {
    fn pop(&self) -> Option<TokenRange> {
        self.0.lock().expect("work queue lock").pop_front()
    }
}

/// One scan of the table: built per run, consumed once.
#[derive(Clone)]
pub struct Scan {
    reader: Arc<TableReader>,
    queue: Arc<WorkQueue>,
    progress: Arc<ScanProgress>,
    parallelism: usize,
}

impl fmt::Debug for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scan").field("parallelism", &self.parallelism).finish()
    }
}

impl Scan {
    /// A scan of `ranges` with `parallelism` concurrent readers.
    pub fn new(
        reader: Arc<TableReader>,
        ranges: Vec<TokenRange>,
        parallelism: usize,
        progress: Arc<ScanProgress>,
    ) -> Self {
        progress.ranges_total.store(ranges.len() as u64, Ordering::Relaxed);
        for gauge in [
            "stockflight_batch_scan_rows",
            "stockflight_batch_scan_ranges_done",
            "stockflight_batch_scan_page_retries",
        ] {
            metrics::gauge!(gauge).set(0.0);
        }
        metrics::gauge!("stockflight_batch_scan_ranges_total").set(ranges.len() as f64);
        Self {
            reader,
            queue: Arc::new(WorkQueue(Mutex::new(ranges.into()))),
            progress,
            parallelism: parallelism.max(1),
        }
    }

    /// The scan as a table for DataFusion, one partition per reader.
    pub fn into_table(self) -> Result<StreamingTable, DataFusionError> {
        let partitions: Vec<Arc<dyn PartitionStream>> = (0..self.parallelism)
            .map(|_| Arc::new(self.clone()) as Arc<dyn PartitionStream>)
            .collect();
        StreamingTable::try_new(availability_schema(), partitions)
    }

    /// Reads every range without building Arrow data and returns the row count: the reference
    /// the benchmark compares the whole job with.
    pub async fn count_rows(self) -> Result<u64, Error> {
        let readers: Vec<_> = (0..self.parallelism)
            .map(|_| {
                let scan = self.clone();
                tokio::spawn(async move { scan.drain(PageMode::CountOnly, None).await })
            })
            .collect();
        let mut total = 0;
        for reader in readers {
            total += reader
                .await
                .map_err(|e| Error::Cassandra(format!("scan task: {e}")))??;
        }
        Ok(total)
    }

    /// Reads ranges from the queue until it is empty, sending every page's batch to `out` (if
    /// given); stops early when the consumer went away. Returns the rows read.
    async fn drain(&self, mode: PageMode, out: Option<&mpsc::Sender<BatchResult>>) -> Result<u64, Error> {
        let mut total = 0u64;
        while let Some(range) = self.queue.pop() {
            let mut paging = PagingState::start();
            loop {
                let (page, next) = self
                    .reader
                    .page(range, paging, mode, &self.progress.page_retries)
                    .await?;
                let rows = page.rows() as u64;
                total += rows;
                let scanned = self.progress.rows.fetch_add(rows, Ordering::Relaxed) + rows;
                // Live progress for the metrics endpoint (a gauge update per page is cheap).
                metrics::gauge!("stockflight_batch_scan_rows").set(scanned as f64);
                if let (Some(out), Page::Batch(batch)) = (out, page)
                    && rows > 0
                    && out.send(Ok(batch)).await.is_err()
                {
                    return Ok(total);
                }
                match next.into_paging_control_flow() {
                    ControlFlow::Continue(state) => paging = state,
                    ControlFlow::Break(()) => break,
                }
            }
            let done = self.progress.ranges_done.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::gauge!("stockflight_batch_scan_ranges_done").set(done as f64);
        }
        Ok(total)
    }
}

type BatchResult = Result<arrow::record_batch::RecordBatch, DataFusionError>;

impl PartitionStream for Scan {
    fn schema(&self) -> &SchemaRef {
        static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(availability_schema)
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // Two pages in flight per reader: enough to overlap Cassandra with DataFusion, and a
        // bound on memory whatever the table's size.
        let (tx, rx) = mpsc::channel::<BatchResult>(2);
        let scan = self.clone();
        tokio::spawn(async move {
            if let Err(err) = scan.drain(PageMode::Arrow, Some(&tx)).await {
                let _ = tx.send(Err(DataFusionError::External(Box::new(err)))).await;
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(availability_schema(), stream.boxed()))
    }
}
