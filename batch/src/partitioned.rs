//! The drill-down table's writer: Hive-partitioned Parquet (`region=<value>/part-0.parquet`),
//! one file and one writer task per partition value, fed by every partition of the scan.
//!
//! DataFusion's own partitioned write funnels all partitions into one stream and splits it row
//! by row with an allocation per row; here each scan partition splits its own batches (a hash
//! lookup per row, then one `take` per value) and the files are encoded in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use stockflight_proto::layout::TableManifest;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::memory::SNAPSHOT_WRITER_PREFIX;
use crate::write::WrittenFile;

/// Batches queued per partition value before the scan waits for its writer.
const QUEUE_DEPTH: usize = 8;

/// How every Parquet file of a snapshot is written: zstd(3), page-level statistics, row groups
/// of `row_group_rows`.
pub fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build()
}

/// A table being written, partitioned by one string column.
pub struct PartitionedWriter {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    column: String,
    column_index: usize,
    file_schema: SchemaRef,
    properties: WriterProperties,
    pool: Arc<dyn MemoryPool>,
    file_name: String,
    files: Mutex<HashMap<String, mpsc::Sender<RecordBatch>>>,
    tasks: Mutex<JoinSet<Result<WrittenFile, Error>>>,
}

impl std::fmt::Debug for PartitionedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWriter")
            .field("prefix", &self.prefix)
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

impl PartitionedWriter {
    /// A writer of rows with `schema` under `prefix` (relative to the storage root), one
    /// directory per value of the `Utf8` column `column`, which the files themselves omit.
    /// Each file writer reserves its buffers in `pool` as a `SnapshotWriter` consumer, which
    /// [`crate::memory::RunPool`] gives a share of its own.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        schema: &Schema,
        column: &str,
        row_group_rows: usize,
        pool: Arc<dyn MemoryPool>,
    ) -> Result<Self, Error> {
        let column_index = schema
            .index_of(column)
            .map_err(|e| Error::Query(datafusion::error::DataFusionError::ArrowError(Box::new(e), None)))?;
        if schema.field(column_index).data_type() != &DataType::Utf8 {
            return Err(Error::Query(datafusion::error::DataFusionError::Internal(format!(
                "partition column {column} is {}, not Utf8",
                schema.field(column_index).data_type()
            ))));
        }
        let file_schema = Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != column_index)
                .map(|(_, f)| f.clone())
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        );
        Ok(Self {
            store,
            prefix: prefix.to_string(),
            column: column.to_string(),
            column_index,
            file_schema: Arc::new(file_schema),
            properties: writer_properties(row_group_rows),
            pool,
            file_name: crate::write::TABLE_FILE.to_string(),
            files: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
        })
    }

    /// The same writer naming each partition's file `name` (default `part-0.parquet`): the
    /// tasks of a distributed run each write their own file per partition value.
    pub fn with_file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// Splits `batch` by the partition column and queues each part for its file.
    pub async fn write(&self, batch: &RecordBatch) -> Result<(), Error> {
        let values = batch.column(self.column_index).as_string::<i32>();
        let mut data = batch.clone();
        data.remove_column(self.column_index);
        // Rows of one value usually come in runs of many values: group indices per value.
        let mut groups: HashMap<&str, Vec<u32>> = HashMap::new();
        for (row, value) in values.iter().enumerate() {
            groups.entry(value.unwrap_or_default()).or_default().push(row as u32);
        }
        for (value, rows) in groups {
            let part = if rows.len() == data.num_rows() {
                data.clone()
            } else {
                take_record_batch(&data, &UInt32Array::from(rows))
                    .map_err(|e| Error::Query(datafusion::error::DataFusionError::ArrowError(Box::new(e), None)))?
            };
            let sender = self.sender(value);
            if sender.send(part).await.is_err() {
                // The file's writer stopped: its error is reported by `finish`.
                return self.first_error().await;
            }
        }
        Ok(())
    }

    /// Closes every file and describes the table: the files its writers wrote, with their sizes.
    pub async fn finish(&self) -> Result<TableManifest, Error> {
        let files = self.finish_files().await?;
        Ok(TableManifest {
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
            files: files.into_iter().map(|f| f.path).collect(),
            partition_columns: vec![self.column.clone()],
        })
    }

    /// Closes every file and returns each as its writer wrote it, sorted by path.
    pub async fn finish_files(&self) -> Result<Vec<WrittenFile>, Error> {
        self.files.lock().expect("writer map lock").clear();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("writer tasks lock"));
        let mut files = Vec::new();
        while let Some(done) = tasks.join_next().await {
            files.push(done.map_err(|e| Error::Storage(format!("a Parquet writer failed: {e}")))??);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    async fn first_error(&self) -> Result<(), Error> {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("writer tasks lock"));
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| Error::Storage(format!("a Parquet writer failed: {e}")))??;
        }
        Err(Error::Storage(format!("{}: a Parquet writer stopped", self.prefix)))
    }

    /// The queue of the file for `value`, starting its writer on first use.
    fn sender(&self, value: &str) -> mpsc::Sender<RecordBatch> {
        let mut files = self.files.lock().expect("writer map lock");
        if let Some(sender) = files.get(value) {
            return sender.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        // `Path::join` percent-encodes what may not appear in a path segment, as Hive does.
        let path = Path::from(self.prefix.as_str())
            .join(format!("{}={value}", self.column).as_str())
            .join(self.file_name.as_str());
        let reservation = MemoryConsumer::new(format!("{SNAPSHOT_WRITER_PREFIX}({path})")).register(&self.pool);
        let file = FileWriter {
            store: self.store.clone(),
            path,
            schema: self.file_schema.clone(),
            properties: self.properties.clone(),
            reservation,
        };
        self.tasks.lock().expect("writer tasks lock").spawn(file.run(rx));
        files.insert(value.to_string(), tx.clone());
        tx
    }
}

struct FileWriter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    schema: SchemaRef,
    properties: WriterProperties,
    reservation: MemoryReservation,
}

impl FileWriter {
    async fn run(self, mut rx: mpsc::Receiver<RecordBatch>) -> Result<WrittenFile, Error> {
        let batches = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, Error>)));
        crate::write::write_file(
            self.store,
            self.path,
            self.schema,
            self.properties,
            self.reservation,
            batches,
        )
        .await
    }
}
