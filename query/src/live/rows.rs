//! Live rows in the snapshot's columns: the state of (item, node) pairs as Cassandra holds it,
//! joined with the reference data the way the batch joins it
//! (`stockflight_proto::tables::snapshot_sql`), so `availability_live`, `availability_current`
//! and `availability_snapshot` have the same columns, types and values for the same state.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
    new_null_array,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use stockflight_proto::cassandra::State;

use super::reference::{Reference, or_unknown};

/// Item attributes of a snapshot row: (its column, the catalog's column, `unknown` when NULL).
const ITEM_ATTRIBUTES: [(&str, &str, bool); 5] = [
    ("item_name", "name", false),
    ("department", "department", true),
    ("category", "category", true),
    ("brand", "brand", false),
    ("price", "price", false),
];
/// Node attributes of a snapshot row, likewise.
const NODE_ATTRIBUTES: [(&str, &str, bool); 6] = [
    ("node_type", "node_type", true),
    ("state", "state", false),
    ("city", "city", false),
    ("latitude", "latitude", false),
    ("longitude", "longitude", false),
    ("region", "region", true),
];

/// The fields of the `state` UDT the live tables read, typed as the snapshot publishes them
/// (the event time in microseconds; Cassandra keeps milliseconds).
pub fn state_fields() -> Fields {
    Fields::from(vec![
        Field::new("sequence", DataType::Int64, true),
        Field::new("source", DataType::Utf8, true),
        Field::new("available_qty", DataType::Int64, true),
        Field::new("reserved_qty", DataType::Int64, true),
        Field::new("status", DataType::Int8, true),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ])
}

/// The availability table's columns as the live scan reads them: keys and the whole state.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("item_id", DataType::Utf8, false),
        Field::new("node_id", DataType::Utf8, false),
        Field::new("state", DataType::Struct(state_fields()), true),
    ]))
}

/// The state of some (item, node) pairs, column by column.
#[derive(Debug, Clone)]
pub struct Pairs {
    item_id: ArrayRef,
    node_id: ArrayRef,
    available_qty: ArrayRef,
    reserved_qty: ArrayRef,
    status: ArrayRef,
    event_time: ArrayRef,
    source: ArrayRef,
    sequence: ArrayRef,
}

impl Pairs {
    /// Pairs from a batch of [`raw_schema`] (what the Cassandra scan returns).
    pub fn from_raw(batch: &RecordBatch) -> Result<Self, ArrowError> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| ArrowError::SchemaError(format!("live scan without column {name}")))
        };
        let state = column("state")?;
        let state = state
            .as_struct_opt()
            .ok_or_else(|| ArrowError::SchemaError("live scan: state is not a struct".into()))?;
        let field = |name: &str| -> Result<ArrayRef, ArrowError> {
            let child = state
                .column_by_name(name)
                .ok_or_else(|| ArrowError::SchemaError(format!("live scan: state without {name}")))?;
            // A NULL state (a row written by hand without one) has NULL fields.
            Ok(match state.nulls() {
                Some(nulls) if nulls.null_count() > 0 => {
                    let mask = arrow::array::BooleanArray::from(nulls.inner().clone());
                    arrow::compute::nullif(child, &arrow::compute::not(&mask)?)?
                }
                _ => child.clone(),
            })
        };
        Ok(Self {
            item_id: column("item_id")?,
            node_id: column("node_id")?,
            available_qty: field("available_qty")?,
            reserved_qty: field("reserved_qty")?,
            status: field("status")?,
            event_time: field("event_time")?,
            source: field("source")?,
            sequence: field("sequence")?,
        })
    }

    /// Pairs from `(item_id, node_id, state)` triples.
    pub fn from_states<'a>(rows: impl ExactSizeIterator<Item = (&'a str, &'a str, &'a State)> + Clone) -> Self {
        let strings = |f: fn(&(&'a str, &'a str, &'a State)) -> Option<&'a str>| -> ArrayRef {
            Arc::new(rows.clone().map(|r| f(&r)).collect::<StringArray>())
        };
        let ints = |f: fn(&State) -> Option<i64>| -> ArrayRef {
            Arc::new(rows.clone().map(|(_, _, s)| f(s)).collect::<Int64Array>())
        };
        Self {
            item_id: strings(|r| Some(r.0)),
            node_id: strings(|r| Some(r.1)),
            source: strings(|r| r.2.source.as_deref()),
            available_qty: ints(|s| s.available_qty),
            reserved_qty: ints(|s| s.reserved_qty),
            sequence: ints(|s| s.sequence),
            status: Arc::new(rows.clone().map(|(_, _, s)| s.status).collect::<Int8Array>()),
            event_time: Arc::new(
                rows.clone()
                    .map(|(_, _, s)| s.event_time.map(|t| t.0.saturating_mul(1000)))
                    .collect::<TimestampMicrosecondArray>(),
            ),
        }
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.item_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds snapshot-shaped rows from [`Pairs`] with one snapshot's reference data.
#[derive(Debug, Clone)]
pub struct Joiner {
    schema: SchemaRef,
    reference: Arc<Reference>,
}

impl Joiner {
    /// Rows shaped like `schema` (the snapshot's `availability_snapshot`).
    pub fn new(schema: SchemaRef, reference: Arc<Reference>) -> Self {
        Self { schema, reference }
    }

    /// The schema of the rows it builds.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The reference data it joins.
    pub fn reference(&self) -> &Arc<Reference> {
        &self.reference
    }

    /// Whether the rows it builds hold the batch's own values in column `name` (a column of
    /// the snapshot it does not know is NULL in them).
    pub fn reproduces(&self, name: &str) -> bool {
        matches!(
            name,
            "item_id"
                | "node_id"
                | "available_qty"
                | "reserved_qty"
                | "status"
                | "status_name"
                | "event_time"
                | "source"
                | "sequence"
        ) || ITEM_ATTRIBUTES
            .iter()
            .any(|(to, from, _)| *to == name && self.reference.item_column(from).is_some())
            || NODE_ATTRIBUTES
                .iter()
                .any(|(to, from, _)| *to == name && self.reference.node_column(from).is_some())
    }

    /// The rows of `pairs`, every column of the snapshot's schema.
    pub fn join(&self, pairs: &Pairs) -> Result<RecordBatch, ArrowError> {
        let n = pairs.len();
        let rows_of = |ids: &ArrayRef, look: &dyn Fn(&str) -> Option<u32>| -> Result<UInt32Array, ArrowError> {
            let ids = cast(ids, &DataType::Utf8)?;
            let ids = ids.as_string::<i32>();
            Ok(ids.iter().map(|id| id.and_then(look)).collect())
        };
        let item_rows = rows_of(&pairs.item_id, &|id| self.reference.item_row(id))?;
        let node_rows = rows_of(&pairs.node_id, &|id| self.reference.node_row(id))?;
        let attribute =
            |column: Option<&ArrayRef>, rows: &UInt32Array, unknown: bool| -> Result<Option<ArrayRef>, ArrowError> {
                let Some(column) = column else {
                    return Ok(None);
                };
                let taken = take(column.as_ref(), rows, None)?;
                Ok(Some(if unknown { or_unknown(&taken)? } else { taken }))
            };
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let name = field.name().as_str();
            let value: Option<ArrayRef> = match name {
                "item_id" => Some(pairs.item_id.clone()),
                "node_id" => Some(pairs.node_id.clone()),
                "available_qty" => Some(pairs.available_qty.clone()),
                "reserved_qty" => Some(pairs.reserved_qty.clone()),
                "status" => Some(pairs.status.clone()),
                "status_name" => Some(status_names(&pairs.status)?),
                "event_time" => Some(pairs.event_time.clone()),
                "source" => Some(pairs.source.clone()),
                "sequence" => Some(pairs.sequence.clone()),
                _ => {
                    if let Some((_, from, unknown)) = ITEM_ATTRIBUTES.iter().find(|(to, _, _)| *to == name) {
                        attribute(self.reference.item_column(from), &item_rows, *unknown)?
                    } else if let Some((_, from, unknown)) = NODE_ATTRIBUTES.iter().find(|(to, _, _)| *to == name) {
                        attribute(self.reference.node_column(from), &node_rows, *unknown)?
                    } else {
                        None
                    }
                }
            };
            let value = match value {
                Some(v) if v.data_type() == field.data_type() => v,
                Some(v) => cast(&v, field.data_type())?,
                None => new_null_array(field.data_type(), n),
            };
            columns.push(value);
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// `status_name` as the batch writes it: the status code's name, `unknown` for any other code.
fn status_names(status: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let codes = cast(status, &DataType::Int64)?;
    let codes = codes.as_primitive::<arrow::datatypes::Int64Type>();
    Ok(Arc::new(
        codes
            .iter()
            .map(|code| {
                Some(match code {
                    Some(1) => "in_stock",
                    Some(2) => "low_stock",
                    Some(3) => "out_of_stock",
                    Some(4) => "discontinued",
                    _ => "unknown",
                })
            })
            .collect::<StringArray>(),
    ))
}
