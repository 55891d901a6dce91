//! Writing one output table as Parquet under a run's prefix, and describing what was written:
//! the manifest lists the files the writers themselves wrote, with the sizes they wrote, never a
//! listing of the store (eventually consistent on OpenStack Swift).

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{cast, ident};
use futures::{Stream, StreamExt};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;
use stockflight_proto::layout::TableManifest;

use crate::error::Error;
use crate::partitioned::writer_properties;

/// Name prefix of the memory consumers of the aggregate tables' writers: the one
/// [`crate::memory::RunPool`] gives the writers' share (it was DataFusion's Parquet sink's).
const TABLE_WRITER_PREFIX: &str = "ParquetSink";
/// The one file of an unpartitioned table.
pub const TABLE_FILE: &str = "part-0.parquet";

/// Casts column types BI drivers map badly to ones they read: string views and large or
/// dictionary strings to `Utf8`.
pub fn bi_types(df: DataFrame) -> Result<DataFrame, Error> {
    let exprs: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
                cast(ident(f.name()), DataType::Utf8).alias(f.name())
            }
            _ => ident(f.name()),
        })
        .collect();
    Ok(df.select(exprs)?)
}

/// What writing one table spilled to disk (operators over the memory limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spill {
    /// Spill files written.
    pub files: usize,
    /// Bytes spilled.
    pub bytes: usize,
}

/// Writes `df` as one Parquet file, `<prefix>/part-0.parquet` (relative to the storage root),
/// and describes exactly what was written.
pub async fn write_table(
    df: DataFrame,
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    row_group_rows: usize,
) -> Result<(TableManifest, Spill), Error> {
    let df = bi_types(df)?;
    let (state, plan) = df.into_parts();
    // Executed by hand (not `DataFrame::write_parquet`) to know the file written and to read
    // the plan's spill metrics after.
    let physical = state.create_physical_plan(&plan).await?;
    tracing::debug!(table = prefix, plan = %datafusion::physical_plan::displayable(physical.as_ref()).indent(false), "plan");
    let task = state.task_ctx();
    let path = Path::from(prefix).join(TABLE_FILE);
    let reservation = MemoryConsumer::new(format!("{TABLE_WRITER_PREFIX}({path})")).register(task.memory_pool());
    let batches = execute_stream(physical.clone(), task)?.map(|b| b.map_err(Error::from));
    let written = write_file(
        store.clone(),
        path,
        physical.schema(),
        writer_properties(row_group_rows),
        reservation,
        batches,
    )
    .await?;
    let manifest = TableManifest {
        bytes: written.bytes,
        rows: written.rows,
        files: vec![written.path],
        partition_columns: vec![],
    };
    Ok((manifest, spill_of(physical.as_ref())))
}

/// One Parquet file as its writer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Object path relative to the storage root.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Bytes of the file, as uploaded.
    pub bytes: u64,
}

/// Writes `input` as one Parquet file at `path`. The encoded row group being built is held in
/// `reservation`; when it cannot grow the row group is ended early rather than exceed it.
pub async fn write_file(
    store: Arc<dyn ObjectStore>,
    path: Path,
    schema: SchemaRef,
    properties: WriterProperties,
    reservation: MemoryReservation,
    input: impl Stream<Item = Result<RecordBatch, Error>>,
) -> Result<WrittenFile, Error> {
    let name = path.to_string();
    let fail = |e: parquet::errors::ParquetError| Error::storage(format!("write {name}"), e);
    let sink = BufWriter::new(store, path);
    let mut writer = AsyncArrowWriter::try_new(sink, schema, Some(properties)).map_err(&fail)?;
    let mut input = std::pin::pin!(input);
    while let Some(batch) = input.next().await {
        writer.write(&batch?).await.map_err(&fail)?;
        if reservation.try_resize(writer.memory_size()).is_err() {
            writer.flush().await.map_err(&fail)?;
            reservation.try_resize(writer.memory_size()).map_err(Error::Query)?;
        }
    }
    // `finish` uploads the footer and completes the upload: the size is then the object's.
    let metadata = writer.finish().await.map_err(&fail)?;
    reservation.free();
    Ok(WrittenFile {
        rows: metadata.file_metadata().num_rows() as u64,
        bytes: writer.bytes_written() as u64,
        path: name,
    })
}

/// Spill totals over every operator of an executed plan.
pub fn spill_of(plan: &dyn ExecutionPlan) -> Spill {
    let own = plan.metrics().map_or(Spill::default(), |m| Spill {
        files: m.spill_count().unwrap_or(0),
        bytes: m.spilled_bytes().unwrap_or(0),
    });
    plan.children().into_iter().fold(own, |acc, child| {
        let c = spill_of(child.as_ref());
        Spill {
            files: acc.files + c.files,
            bytes: acc.bytes + c.bytes,
        }
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::prelude::SessionContext;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn the_manifest_describes_the_file_as_the_writer_wrote_it() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ctx = SessionContext::new();
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values((0..5000).map(|i| format!("sku-{i}"))));
        let qty: ArrayRef = Arc::new(Int64Array::from_iter_values(0..5000));
        let batch = RecordBatch::try_from_iter([("item_id", ids), ("qty", qty)]).unwrap();
        let df = ctx.read_batch(batch).unwrap();
        let (table, _) = write_table(df, &store, "snapshots/r1/t", 1024).await.unwrap();
        assert_eq!(table.files, ["snapshots/r1/t/part-0.parquet"]);
        assert_eq!(table.rows, 5000);
        // The size the writer counted is the stored object's, footer included.
        let meta = store.head(&Path::from(table.files[0].as_str())).await.unwrap();
        assert_eq!(table.bytes, meta.size);
        assert!(table.partition_columns.is_empty());
    }

    #[tokio::test]
    async fn an_empty_input_still_writes_a_readable_file() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "qty",
            DataType::Int64,
            true,
        )]));
        let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let reservation = MemoryConsumer::new("test").register(&pool);
        let written = write_file(
            store.clone(),
            Path::from("x/part-0.parquet"),
            schema,
            writer_properties(1024),
            reservation,
            futures::stream::empty(),
        )
        .await
        .unwrap();
        assert_eq!(written.rows, 0);
        assert_eq!(
            written.bytes,
            store.head(&Path::from("x/part-0.parquet")).await.unwrap().size
        );
    }
}
