//! The reference tables (item catalog, node dimension) from the object store, Parquet or CSV.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use stockflight_proto::layout::{self, reference};

use crate::engine::url_of;
use crate::error::Error;

/// Registers `items` and `nodes` in `ctx` from `reference/items/` and `reference/nodes/`.
pub async fn register(ctx: &SessionContext, store: &Arc<dyn ObjectStore>) -> Result<(), Error> {
    register_one(ctx, store, reference::ITEMS, reference::ITEMS_COLUMNS).await?;
    register_one(ctx, store, reference::NODES, reference::NODES_COLUMNS).await
}

async fn register_one(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    table: &str,
    columns: &[(&str, &str)],
) -> Result<(), Error> {
    let prefix = layout::reference_table(table);
    let files: Vec<String> = store
        .list(Some(&Path::from(prefix.as_str())))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .map_err(|e| Error::Reference(format!("list {prefix}/: {e}")))?;
    let url = url_of(&format!("{prefix}/"));
    if files.iter().any(|f| f.ends_with(".parquet")) {
        ctx.register_parquet(table, &url, ParquetReadOptions::default())
            .await
            .map_err(|e| Error::Reference(format!("{prefix}/*.parquet: {e}")))?;
    } else if files.iter().any(|f| f.ends_with(".csv")) {
        let schema = schema_of(columns);
        ctx.register_csv(table, &url, CsvReadOptions::new().has_header(true).schema(&schema))
            .await
            .map_err(|e| Error::Reference(format!("{prefix}/*.csv: {e}")))?;
    } else {
        return Err(Error::Reference(format!(
            "no {table} table: {prefix}/ holds no .parquet or .csv file (stockflight-loadgen writes it)"
        )));
    }
    check_columns(ctx, table, columns).await
}

/// Fails early, naming the column, when the reference table lacks one the job joins on or
/// publishes.
async fn check_columns(ctx: &SessionContext, table: &str, columns: &[(&str, &str)]) -> Result<(), Error> {
    let provider = ctx.table_provider(table).await?;
    let schema = provider.schema();
    for (name, _) in columns {
        if schema.field_with_name(name).is_err() {
            return Err(Error::Reference(format!(
                "{table} has no column `{name}` (has: {})",
                names(&schema)
            )));
        }
    }
    Ok(())
}

fn names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn schema_of(columns: &[(&str, &str)]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(name, ty)| {
                let ty = match *ty {
                    "Float64" => DataType::Float64,
                    "Int64" => DataType::Int64,
                    _ => DataType::Utf8,
                };
                Field::new(*name, ty, true)
            })
            .collect::<Vec<_>>(),
    )
}
