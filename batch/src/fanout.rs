//! One pass over the joined availability feeding every output at once.
//!
//! DataFusion plans are trees: one plan has one output. The run needs the joined rows four
//! times (the drill-down table and three aggregations), and reading them back from the written
//! Parquet costs a pass per aggregate. Instead each partition of the joined stream is copied
//! (record batches are reference-counted: a copy is a few pointers) to every consumer as it
//! goes by. A consumer is either a [`ChannelTable`], read by a DataFusion plan like any table,
//! or the drill-down table's writer. Channels are bounded, so the slowest consumer paces the
//! scan and memory stays bounded.

use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::partitioned::PartitionedWriter;

/// Batches in flight per partition and consumer.
const CHANNEL_DEPTH: usize = 2;

/// A table whose partitions are fed by [`tee`]; each partition can be read once.
pub struct ChannelTable {
    schema: SchemaRef,
    partitions: Vec<Arc<dyn PartitionStream>>,
}

/// The sending ends of a [`ChannelTable`], one per partition.
pub type Senders = Vec<mpsc::Sender<RecordBatch>>;

impl ChannelTable {
    /// A table of `partitions` partitions with `schema`, and the senders feeding them.
    pub fn new(schema: SchemaRef, partitions: usize) -> (Self, Senders) {
        let (senders, partitions): (Vec<_>, Vec<_>) = (0..partitions)
            .map(|_| {
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let partition = Arc::new(ChannelPartition {
                    schema: schema.clone(),
                    rx: Mutex::new(Some(rx)),
                }) as Arc<dyn PartitionStream>;
                (tx, partition)
            })
            .unzip();
        (Self { schema, partitions }, senders)
    }

    /// The table for DataFusion.
    pub fn into_table(self) -> Result<StreamingTable, DataFusionError> {
        StreamingTable::try_new(self.schema, self.partitions)
    }
}

struct ChannelPartition {
    schema: SchemaRef,
    rx: Mutex<Option<mpsc::Receiver<RecordBatch>>>,
}

impl fmt::Debug for ChannelPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelPartition").finish_non_exhaustive()
    }
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().expect("channel partition lock").take();
        let stream = match rx {
            Some(rx) => {
                futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) }).boxed()
            }
            None => futures::stream::once(async {
                Err(DataFusionError::Internal("a channel partition was read twice".into()))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// Where one partition's batches go.
pub struct Outputs {
    /// One sender per channel-table consumer.
    pub channels: Vec<mpsc::Sender<RecordBatch>>,
    /// The drill-down table's writer, shared by all partitions.
    pub writer: Arc<PartitionedWriter>,
}

/// Spawns one task per input partition that hands every batch to all of that partition's
/// outputs. A task ends with the first error of its input (a scan that failed for good) or of
/// the writer; a channel whose consumer went away means that consumer failed, and its own
/// error ends the run, so the task just stops.
pub fn tee(inputs: Vec<SendableRecordBatchStream>, outputs: Vec<Outputs>) -> JoinSet<Result<(), Error>> {
    let mut tasks = JoinSet::new();
    for (mut input, out) in inputs.into_iter().zip(outputs) {
        tasks.spawn(async move {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                if batch.num_rows() == 0 {
                    continue;
                }
                for channel in &out.channels {
                    if channel.send(batch.clone()).await.is_err() {
                        return Ok(());
                    }
                }
                out.writer.write(&batch).await?;
            }
            Ok(())
        });
    }
    tasks
}

/// Waits for every task of `tasks`; the first error wins.
pub async fn join_all(mut tasks: JoinSet<Result<(), Error>>) -> Result<(), Error> {
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| Error::Query(DataFusionError::Internal(format!("a pipeline task failed: {e}"))))??;
    }
    Ok(())
}
