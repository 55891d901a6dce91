//! The rows the changes since a snapshot touch, in the snapshot's columns: the changed rows as
//! they are now, and the snapshot rows they replaced. Built from the follower's state once per
//! version of it (not once per query) and served as two small tables, which is all an
//! aggregate over `availability_current` needs beside the snapshot's own aggregate
//! ([`super::aggregate`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use scylla::value::CqlTimestamp;
use stockflight_proto::cassandra::State;

use super::current::Current;
use super::merge::Pair;
use super::rows::{Joiner, Pairs};
use super::snapshot_rows::{SnapshotRow, pair_hashes};

/// The changed pairs' rows, now and in the snapshot.
#[derive(Debug)]
pub struct ChangeRows {
    /// The winners' rows (every changed pair, new pairs included).
    pub changed: RecordBatch,
    /// The snapshot's rows of the changed pairs it has.
    pub replaced: RecordBatch,
    /// The changed pairs.
    pub pairs: HashSet<Pair>,
    /// Their hashes ([`super::snapshot_rows::pair_hashes`]), for a quick probe.
    pub hashes: HashSet<u64>,
}

/// [`ChangeRows`] of the state's version it was built at.
#[derive(Debug, Default)]
pub struct ChangeRowsCache(Mutex<Option<(u64, Arc<ChangeRows>)>>);

impl Current {
    /// The changed pairs' rows as of now, built with `joiner`.
    pub fn change_rows(&self, joiner: &Joiner) -> Result<Arc<ChangeRows>> {
        let merged = self.state.merged();
        let mut cache = self.rows.0.lock().expect("change rows lock");
        if let Some((version, rows)) = cache.as_ref()
            && *version == merged.version()
        {
            return Ok(rows.clone());
        }
        let winners = merged.winners();
        let changed = Pairs::from_states(winners.iter().map(|((i, n), c)| (i.as_str(), n.as_str(), &c.state)));
        let snapshot = self.state.snapshot();
        let old: Vec<(&str, &str, State)> = winners
            .keys()
            .filter_map(|(i, n)| snapshot.get(i, n).map(|row| (i.as_str(), n.as_str(), state_of(row))))
            .collect();
        let replaced = Pairs::from_states(old.iter().map(|(i, n, s)| (*i, *n, s)));
        let changed = joiner.join(&changed)?;
        let hashes = pair_hashes(
            changed.column(changed.schema().index_of("item_id")?),
            changed.column(changed.schema().index_of("node_id")?),
        )?;
        let rows = Arc::new(ChangeRows {
            replaced: joiner.join(&replaced)?,
            pairs: winners.keys().cloned().collect(),
            hashes: hashes.into_iter().collect(),
            changed,
        });
        *cache = Some((merged.version(), rows.clone()));
        Ok(rows)
    }
}

/// A snapshot row as the update it holds (its event time has milliseconds only, as Cassandra's).
fn state_of(row: SnapshotRow) -> State {
    State {
        sequence: row.sequence,
        source: row.source,
        available_qty: row.available_qty,
        reserved_qty: row.reserved_qty,
        status: row.status,
        event_time: row.event_time_us.map(|t| CqlTimestamp(t.div_euclid(1000))),
    }
}

/// Which rows a [`ChangeTable`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The changed rows, now.
    Changed,
    /// The snapshot rows they replaced.
    Replaced,
}

/// One side of the changes as a table (never listed: the rewritten aggregates read it).
#[derive(Debug)]
pub struct ChangeTable {
    current: Arc<Current>,
    joiner: Joiner,
    side: Side,
}

impl ChangeTable {
    /// The `side` rows of `current`, shaped by `joiner`.
    pub fn new(current: Arc<Current>, joiner: Joiner, side: Side) -> Self {
        Self { current, joiner, side }
    }
}

#[async_trait]
impl TableProvider for ChangeTable {
    fn schema(&self) -> SchemaRef {
        self.joiner.schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.current.check()?;
        let rows = self.current.change_rows(&self.joiner)?;
        let batch = match self.side {
            Side::Changed => rows.changed.clone(),
            Side::Replaced => rows.replaced.clone(),
        };
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
