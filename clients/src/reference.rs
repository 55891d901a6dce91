//! Reference data as Parquet: `reference/items/items.parquet` and `reference/nodes/nodes.parquet`
//! (columns: `stockflight_proto::layout::reference`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use indicatif::ProgressBar;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use stockflight_common::storage::Storage;
use stockflight_proto::layout::{self, reference};

use crate::catalog;
use crate::error::Error;
use crate::settings::DatasetSection;

/// Rows per record batch (and Parquet row group slice).
const BATCH_ROWS: u64 = 65_536;

/// Object path of a reference table's single file, e.g. `reference/items/items.parquet`.
pub fn table_path(table: &str) -> Path {
    Path::from(format!("{}/{table}.parquet", layout::reference_table(table)))
}

fn schema(columns: &[(&str, &str)]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, ty)| {
            let ty = match *ty {
                "Utf8" => DataType::Utf8,
                "Float64" => DataType::Float64,
                other => unreachable!("reference column type {other} is not produced by the load generator"),
            };
            Field::new(*name, ty, false)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn items_batch(schema: &SchemaRef, seed: u64, rows: std::ops::Range<u64>) -> Result<RecordBatch, Error> {
    let n = (rows.end - rows.start) as usize;
    let mut id = StringBuilder::with_capacity(n, n * 12);
    let mut name = StringBuilder::with_capacity(n, n * 24);
    let mut department = StringBuilder::with_capacity(n, n * 8);
    let mut category = StringBuilder::with_capacity(n, n * 8);
    let mut brand = StringBuilder::with_capacity(n, n * 8);
    let mut price = Float64Builder::with_capacity(n);
    for i in rows {
        let item = catalog::item(seed, i);
        id.append_value(&item.item_id);
        name.append_value(&item.name);
        department.append_value(item.department);
        category.append_value(item.category);
        brand.append_value(item.brand);
        price.append_value(item.price);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(department.finish()),
        Arc::new(category.finish()),
        Arc::new(brand.finish()),
        Arc::new(price.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| Error::Parquet(e.to_string()))
}

fn nodes_batch(schema: &SchemaRef, seed: u64, rows: std::ops::Range<u64>) -> Result<RecordBatch, Error> {
    let n = (rows.end - rows.start) as usize;
    let mut id = StringBuilder::with_capacity(n, n * 12);
    let mut node_type = StringBuilder::with_capacity(n, n * 10);
    let mut region = StringBuilder::with_capacity(n, n * 8);
    let mut state = StringBuilder::with_capacity(n, n * 2);
    let mut city = StringBuilder::with_capacity(n, n * 10);
    let mut latitude = Float64Builder::with_capacity(n);
    let mut longitude = Float64Builder::with_capacity(n);
    for i in rows {
        let node = catalog::node(seed, i);
        id.append_value(&node.node_id);
        node_type.append_value(node.node_type.as_str());
        region.append_value(node.region);
        state.append_value(node.state);
        city.append_value(node.city);
        latitude.append_value(node.latitude);
        longitude.append_value(node.longitude);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(node_type.finish()),
        Arc::new(region.finish()),
        Arc::new(state.finish()),
        Arc::new(city.finish()),
        Arc::new(latitude.finish()),
        Arc::new(longitude.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| Error::Parquet(e.to_string()))
}

type BatchFn = fn(&SchemaRef, u64, std::ops::Range<u64>) -> Result<RecordBatch, Error>;

/// Encodes one table into a Parquet file in memory and stores it.
async fn write_table(
    storage: &Storage,
    table: &str,
    columns: &[(&str, &str)],
    rows: u64,
    seed: u64,
    batch: BatchFn,
    bar: &ProgressBar,
) -> Result<u64, Error> {
    let schema = schema(columns);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let parquet_err = |e: parquet::errors::ParquetError| Error::Parquet(format!("{table}: {e}"));
    let mut writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props)).map_err(parquet_err)?;
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH_ROWS).min(rows);
        writer.write(&batch(&schema, seed, start..end)?).map_err(parquet_err)?;
        bar.inc(end - start);
        start = end;
    }
    let bytes = writer.into_inner().map_err(parquet_err)?;
    let size = bytes.len() as u64;
    let path = table_path(table);
    storage
        .store()
        .put(&path, bytes.into())
        .await
        .map_err(|e| Error::Storage(format!("put {path} to {}: {e}", storage.location())))?;
    tracing::info!(%path, rows, bytes = size, "reference table written");
    Ok(size)
}

/// Writes both reference tables for the dataset.
pub async fn write(storage: &Storage, dataset: &DatasetSection, bar: &ProgressBar) -> Result<(), Error> {
    bar.set_length(dataset.items + dataset.nodes);
    write_table(
        storage,
        reference::NODES,
        reference::NODES_COLUMNS,
        dataset.nodes,
        dataset.seed,
        nodes_batch,
        bar,
    )
    .await?;
    write_table(
        storage,
        reference::ITEMS,
        reference::ITEMS_COLUMNS,
        dataset.items,
        dataset.seed,
        items_batch,
        bar,
    )
    .await?;
    bar.finish_and_clear();
    Ok(())
}
