//! The snapshot's reference tables (`items`, `nodes`) in memory, indexed by id: a live row gets
//! its item's and node's attributes by two look-ups, as the batch's joins give them to the
//! snapshot's rows (`stockflight_proto::tables::snapshot_sql`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use stockflight_proto::layout::reference::{ITEMS, NODES};

/// Attribute value of a missing reference row or a NULL grouping attribute.
pub const UNKNOWN: &str = "unknown";

/// One reference table: its rows and where each id is.
#[derive(Debug)]
struct Indexed {
    rows: RecordBatch,
    by_id: HashMap<String, u32>,
}

impl Indexed {
    async fn load(ctx: &SessionContext, table: &str, key: &str) -> Result<Self, String> {
        let df = ctx.table(table).await.map_err(|e| format!("{table}: {e}"))?;
        let batches = df.collect().await.map_err(|e| format!("{table}: {e}"))?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => return Err(format!("{table} is empty")),
        };
        let rows = plain_strings(&concat_batches(&schema, &batches).map_err(|e| e.to_string())?)?;
        let ids = rows
            .column_by_name(key)
            .ok_or_else(|| format!("{table} has no column {key}"))?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("{table}.{key} is not text"))?;
        let by_id = (0..ids.len())
            .filter(|i| ids.is_valid(*i))
            .map(|i| (ids.value(i).to_string(), i as u32))
            .collect();
        Ok(Self { rows, by_id })
    }

    fn text(&self, row: Option<u32>, column: &str) -> Option<&str> {
        let array = self.rows.column_by_name(column)?.as_string_opt::<i32>()?;
        let row = row? as usize;
        array.is_valid(row).then(|| array.value(row))
    }
}

/// Text columns as plain `Utf8` (views and dictionaries cast), so look-ups read one layout.
fn plain_strings(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let text = matches!(
            field.data_type(),
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _)
        );
        if text {
            columns.push(cast(column, &DataType::Utf8).map_err(|e| e.to_string())?);
            fields.push(Field::new(field.name(), DataType::Utf8, true));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// The item catalog and the node dimension of one snapshot.
#[derive(Debug)]
pub struct Reference {
    items: Indexed,
    nodes: Indexed,
}

/// The grouping attributes of a row: region, department, category (`unknown` where missing).
pub type Group = (String, String, String);

impl Reference {
    /// Reads `items` and `nodes` from the snapshot's context.
    pub async fn load(ctx: &SessionContext) -> Result<Self, String> {
        Ok(Self {
            items: Indexed::load(ctx, ITEMS, "item_id").await?,
            nodes: Indexed::load(ctx, NODES, "node_id").await?,
        })
    }

    /// Row of `item_id` in the item catalog.
    pub fn item_row(&self, item_id: &str) -> Option<u32> {
        self.items.by_id.get(item_id).copied()
    }

    /// Row of `node_id` in the node dimension.
    pub fn node_row(&self, node_id: &str) -> Option<u32> {
        self.nodes.by_id.get(node_id).copied()
    }

    /// A column of the item catalog.
    pub fn item_column(&self, name: &str) -> Option<&ArrayRef> {
        self.items.rows.column_by_name(name)
    }

    /// A column of the node dimension.
    pub fn node_column(&self, name: &str) -> Option<&ArrayRef> {
        self.nodes.rows.column_by_name(name)
    }

    /// Region, department and category of `(item_id, node_id)`, as the batch groups it.
    pub fn group(&self, item_id: &str, node_id: &str) -> Group {
        let (item, node) = (self.item_row(item_id), self.node_row(node_id));
        let or_unknown = |v: Option<&str>| v.unwrap_or(UNKNOWN).to_string();
        (
            or_unknown(self.nodes.text(node, "region")),
            or_unknown(self.items.text(item, "department")),
            or_unknown(self.items.text(item, "category")),
        )
    }
}

/// `values` with every NULL replaced by `unknown` (the batch's `COALESCE(x, 'unknown')`).
pub fn or_unknown(values: &ArrayRef) -> Result<ArrayRef, arrow::error::ArrowError> {
    let text = cast(values, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    Ok(Arc::new(
        text.iter().map(|v| Some(v.unwrap_or(UNKNOWN))).collect::<StringArray>(),
    ))
}
