//! The snapshot's drill-down rows indexed by (item, node): what a change replaces, found in
//! O(log n) without scanning. The columns are the snapshot table's own arrays (shared with the
//! memory cache when the table is held there); the index costs 16 bytes a row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

/// The drill-down table of a snapshot.
pub const SNAPSHOT_TABLE: &str = "availability_snapshot";

/// Columns read from the snapshot, in this order.
const COLUMNS: [&str; 8] = [
    "item_id",
    "node_id",
    "available_qty",
    "reserved_qty",
    "status",
    "event_time",
    "source",
    "sequence",
];

/// The hash of every (item, node) pair: one function for whole columns and single pairs.
pub fn pair_hashes(items: &ArrayRef, nodes: &ArrayRef) -> datafusion::error::Result<Vec<u64>> {
    let mut hashes = vec![0u64; items.len()];
    create_hashes([items, nodes], &RandomState::with_seed(0x5f0c_a11e), &mut hashes)?;
    Ok(hashes)
}

/// The hash of one pair, equal to [`pair_hashes`]' for the same ids.
pub fn pair_hash(item_id: &str, node_id: &str) -> u64 {
    let items: ArrayRef = Arc::new(StringArray::from(vec![item_id]));
    let nodes: ArrayRef = Arc::new(StringArray::from(vec![node_id]));
    pair_hashes(&items, &nodes).map_or(0, |h| h[0])
}

/// One snapshot row's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Units that can be promised.
    pub available_qty: Option<i64>,
    /// Units held for open orders.
    pub reserved_qty: Option<i64>,
    /// Status code.
    pub status: Option<i8>,
    /// Event time in microseconds (millisecond precision: Cassandra keeps milliseconds).
    pub event_time_us: Option<i64>,
    /// Publishing system.
    pub source: Option<String>,
    /// The source's sequence number.
    pub sequence: Option<i64>,
}

/// The snapshot's rows and their index.
#[derive(Debug)]
pub struct SnapshotRows {
    /// Per batch, the [`COLUMNS`] as Utf8 (ids, source) and Int64 (the rest).
    batches: Vec<RecordBatch>,
    /// (pair hash, batch, row), sorted.
    index: Vec<(u64, u32, u32)>,
}

impl SnapshotRows {
    /// Reads the snapshot's `availability_snapshot` and indexes it.
    pub async fn load(ctx: &SessionContext) -> Result<Self, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{SNAPSHOT_TABLE}: {e}");
        let df = ctx
            .table(SNAPSHOT_TABLE)
            .await
            .map_err(|e| fail(&e))?
            .select_columns(&COLUMNS)
            .map_err(|e| fail(&e))?;
        let mut stream = df.execute_stream().await.map_err(|e| fail(&e))?;
        let (mut batches, mut index) = (Vec::new(), Vec::new());
        while let Some(batch) = stream.try_next().await.map_err(|e| fail(&e))? {
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = canonical(&batch).map_err(|e| fail(&e))?;
            let hashes = pair_hashes(batch.column(0), batch.column(1)).map_err(|e| fail(&e))?;
            let b = batches.len() as u32;
            index.extend(hashes.into_iter().enumerate().map(|(row, h)| (h, b, row as u32)));
            batches.push(batch);
        }
        index.sort_unstable();
        Ok(Self { batches, index })
    }

    /// Rows in the snapshot.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the snapshot has no rows.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The snapshot's row of `(item_id, node_id)`, if it has one.
    pub fn get(&self, item_id: &str, node_id: &str) -> Option<SnapshotRow> {
        let hash = pair_hash(item_id, node_id);
        let start = self.index.partition_point(|(h, _, _)| *h < hash);
        self.index[start..]
            .iter()
            .take_while(|(h, _, _)| *h == hash)
            .find_map(|(_, b, r)| {
                let (batch, row) = (&self.batches[*b as usize], *r as usize);
                let text = |c: usize| {
                    let a = batch.column(c).as_string::<i32>();
                    a.is_valid(row).then(|| a.value(row))
                };
                let int = |c: usize| {
                    let a = batch.column(c).as_primitive::<Int64Type>();
                    a.is_valid(row).then(|| a.value(row))
                };
                (text(0) == Some(item_id) && text(1) == Some(node_id)).then(|| SnapshotRow {
                    available_qty: int(2),
                    reserved_qty: int(3),
                    status: int(4).map(|s| s as i8),
                    event_time_us: int(5),
                    source: text(6).map(str::to_string),
                    sequence: int(7),
                })
            })
    }
}

/// The columns in the types [`SnapshotRows::get`] reads (no copy when they already are).
fn canonical(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(COLUMNS)
        .map(|(column, name)| match name {
            "item_id" | "node_id" | "source" => cast(column, &DataType::Utf8),
            "event_time" => cast(
                &cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?,
                &DataType::Int64,
            ),
            _ => cast(column, &DataType::Int64),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fields: Vec<_> = COLUMNS
        .iter()
        .zip(&columns)
        .map(|(n, c)| arrow::datatypes::Field::new(*n, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}
