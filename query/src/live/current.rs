//! `availability_current` and the aggregate tables over it: the snapshot with the changes since
//! its cut-off applied ([`super::merge`]), read at query time from the follower's state.
//!
//! - `availability_current` is the snapshot's drill-down table without the rows a change
//!   replaced, plus the changed rows joined with the reference data. A scan costs what the
//!   snapshot's costs, plus a hash probe per row and the changed rows.
//! - `availability_by_node_current`, `availability_by_item_current` and
//!   `availability_by_region_category_current` are the published aggregates plus the deltas the
//!   follower keeps per node, item and region x department x category, computed with the batch's
//!   own definitions (`stockflight_proto::tables`): their cost follows the aggregate's size and
//!   the number of changed pairs, never the drill-down table's.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;
use stockflight_proto::tables::{
    BY_ITEM, BY_NODE, BY_REGION_CATEGORY, PARTIAL_COLUMNS, REGION_CATEGORY_MEASURES, by_item_of_partials_sql,
    by_node_of_partials_sql, by_region_category_sql, summed_partials_sql,
};

use super::changes::{ChangeRows, ChangeRowsCache};
use super::exec::MapExec;
use super::follower::{CurrentState, Follower};
use super::merge::Partials;
use super::rows::Joiner;
use super::snapshot_rows::pair_hashes;

/// The drill-down table as of now.
pub const CURRENT_TABLE: &str = "availability_current";

/// A snapshot's state as of now and the follower that keeps it.
#[derive(Debug)]
pub struct Current {
    /// Keeps `state` fed and says whether it can answer.
    pub follower: Arc<Follower>,
    /// The merged changes.
    pub state: Arc<CurrentState>,
    /// The changed pairs' rows, built once per version of `state`.
    pub(crate) rows: ChangeRowsCache,
}

impl Current {
    /// The state `follower` keeps.
    pub fn new(follower: Arc<Follower>, state: Arc<CurrentState>) -> Self {
        Self {
            follower,
            state,
            rows: ChangeRowsCache::default(),
        }
    }

    /// Ok while the state can answer; UNAVAILABLE (as a DataFusion error) while it cannot.
    pub(crate) fn check(&self) -> Result<()> {
        Ok(self.follower.check(&self.state)?)
    }
}

/// `availability_current`.
#[derive(Debug)]
pub struct CurrentTable {
    current: Arc<Current>,
    snapshot: Arc<dyn TableProvider>,
    joiner: Joiner,
}

impl CurrentTable {
    /// The snapshot table `snapshot` as of now; changed rows are built by `joiner`.
    pub fn new(current: Arc<Current>, snapshot: Arc<dyn TableProvider>, joiner: Joiner) -> Self {
        Self {
            current,
            snapshot,
            joiner,
        }
    }
}

/// The pairs a change replaced: their hashes for a quick probe, the pairs to confirm a hit.
struct Replaced(Arc<ChangeRows>);

impl Replaced {
    /// `batch` without the rows of replaced pairs (its columns `item`, `node` hold the ids),
    /// projected to its first `keep` columns.
    fn drop_from(&self, batch: RecordBatch, item: usize, node: usize, keep: usize) -> Result<RecordBatch> {
        let (items, nodes) = (batch.column(item), batch.column(node));
        let hashes = pair_hashes(items, nodes)?;
        let (items, nodes) = (cast(items, &DataType::Utf8)?, cast(nodes, &DataType::Utf8)?);
        let (items, nodes) = (items.as_string::<i32>(), nodes.as_string::<i32>());
        let kept: BooleanArray = hashes
            .iter()
            .enumerate()
            .map(|(row, hash)| {
                let replaced = self.0.hashes.contains(hash)
                    && items.is_valid(row)
                    && nodes.is_valid(row)
                    && self
                        .0
                        .pairs
                        .contains(&(items.value(row).to_string(), nodes.value(row).to_string()));
                Some(!replaced)
            })
            .collect();
        let kept = filter_record_batch(&batch, &kept)?;
        Ok(kept.project(&(0..keep).collect::<Vec<_>>())?)
    }
}

#[async_trait]
impl TableProvider for CurrentTable {
    fn schema(&self) -> SchemaRef {
        self.joiner.schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter prunes the snapshot's read where it can and is applied again above.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.current.check()?;
        let rows = self.current.change_rows(&self.joiner)?;
        let schema = self.joiner.schema().clone();
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let out_schema = Arc::new(schema.project(&wanted)?);

        // The snapshot's rows, without those a change replaced.
        let refs: Vec<&Expr> = filters.iter().collect();
        let pushable: Vec<Expr> = self
            .snapshot
            .supports_filters_pushdown(&refs)?
            .into_iter()
            .zip(filters)
            .filter(|(s, _)| !matches!(s, TableProviderFilterPushDown::Unsupported))
            .map(|(_, f)| f.clone())
            .collect();
        let mut read = wanted.clone();
        let mut key_at = |name: &str| -> Result<usize> {
            let index = schema.index_of(name)?;
            Ok(match read.iter().position(|c| *c == index) {
                Some(at) => at,
                None => {
                    read.push(index);
                    read.len() - 1
                }
            })
        };
        let (item, node) = (key_at("item_id")?, key_at("node_id")?);
        let snapshot_rows = self.snapshot.scan(state, Some(&read), &pushable, None).await?;
        let keep = wanted.len();
        let snapshot_rows: Arc<dyn ExecutionPlan> = if rows.pairs.is_empty() && read.len() == keep {
            snapshot_rows
        } else {
            let replaced = Replaced(rows.clone());
            let drop = Arc::new(move |batch: RecordBatch| replaced.drop_from(batch, item, node, keep));
            Arc::new(MapExec::new(
                "availability_snapshot without the rows changed since",
                snapshot_rows,
                out_schema.clone(),
                drop,
                |e| e,
            ))
        };

        // The changed rows, in the snapshot's columns.
        let changed = rows.changed.project(&wanted)?;
        let changed = MemorySourceConfig::try_new_exec(&[vec![changed]], out_schema, None)?;
        UnionExec::try_new(vec![snapshot_rows, changed])
    }
}

/// Which deltas a [`DeltaTable`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// Per region x department x category.
    RegionCategory,
    /// Per node.
    Node,
    /// Per item.
    Item,
}

impl DeltaKind {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::RegionCategory => &["region", "department", "category"],
            Self::Node => &["node_id"],
            Self::Item => &["item_id"],
        }
    }

    /// The name the aggregate views read it by.
    fn table(self) -> &'static str {
        match self {
            Self::RegionCategory => "live_delta_by_region_category",
            Self::Node => "live_delta_by_node",
            Self::Item => "live_delta_by_item",
        }
    }
}

/// The measure deltas of the changes since the snapshot, per group (never listed: the views
/// over it are).
#[derive(Debug)]
pub struct DeltaTable {
    current: Arc<Current>,
    kind: DeltaKind,
    schema: SchemaRef,
}

impl DeltaTable {
    fn new(current: Arc<Current>, kind: DeltaKind) -> Self {
        let fields: Vec<Field> = kind
            .keys()
            .iter()
            .map(|k| Field::new(*k, DataType::Utf8, false))
            .chain(PARTIAL_COLUMNS.iter().map(|c| Field::new(*c, DataType::Int64, false)))
            .collect();
        Self {
            current,
            kind,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let merged = self.current.state.merged();
        let rows: Vec<(Vec<&str>, &Partials)> = match self.kind {
            DeltaKind::RegionCategory => rows_of(merged.by_region_category(), |(r, d, c)| vec![r, d, c]),
            DeltaKind::Node => rows_of(merged.by_node(), |n| vec![n]),
            DeltaKind::Item => rows_of(merged.by_item(), |i| vec![i]),
        };
        let mut columns: Vec<ArrayRef> = Vec::new();
        for k in 0..self.kind.keys().len() {
            columns.push(Arc::new(
                rows.iter().map(|(keys, _)| Some(keys[k])).collect::<StringArray>(),
            ));
        }
        for m in 0..PARTIAL_COLUMNS.len() {
            columns.push(Arc::new(rows.iter().map(|(_, p)| p[m]).collect::<Int64Array>()));
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

fn rows_of<'a, K>(
    deltas: &'a HashMap<K, Partials>,
    keys: impl Fn(&'a K) -> Vec<&'a str>,
) -> Vec<(Vec<&'a str>, &'a Partials)> {
    deltas.iter().map(|(k, p)| (keys(k), p)).collect()
}

#[async_trait]
impl TableProvider for DeltaTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.current.check()?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![self.batch()?]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// A view over the snapshot's tables and the deltas: one of the aggregate tables as of now.
#[derive(Debug)]
pub struct LiveView(ViewTable);

#[async_trait]
impl TableProvider for LiveView {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}

/// The partial measures of a published aggregate table (`filter` selects its finest rows)
/// stacked on the deltas of `kind`.
fn stacked(kind: DeltaKind, published: &str, filter: &str) -> String {
    let columns = kind
        .keys()
        .iter()
        .chain(PARTIAL_COLUMNS.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns} FROM {published}{filter} UNION ALL SELECT {columns} FROM {}",
        kind.table()
    )
}

/// The aggregate tables as of now: (name, the published table it follows, its SQL).
pub fn aggregate_views() -> Vec<(&'static str, &'static str, String)> {
    let summed = |kind: DeltaKind, published: &str| {
        let key = kind.keys()[0];
        summed_partials_sql(key, &format!("({}) AS p", stacked(kind, published, "")))
    };
    vec![
        (
            "availability_by_node_current",
            BY_NODE,
            by_node_of_partials_sql(&summed(DeltaKind::Node, BY_NODE)),
        ),
        (
            "availability_by_item_current",
            BY_ITEM,
            by_item_of_partials_sql(&summed(DeltaKind::Item, BY_ITEM)),
        ),
        (
            "availability_by_region_category_current",
            BY_REGION_CATEGORY,
            format!(
                "WITH {REGION_CATEGORY_MEASURES} AS ({}) {}",
                stacked(
                    DeltaKind::RegionCategory,
                    BY_REGION_CATEGORY,
                    " WHERE level = 'category'"
                ),
                by_region_category_sql()
            ),
        ),
    ]
}

/// Registers in `ctx` the aggregate views whose published tables `ctx` has, planned over those
/// tables, the reference tables and `current`'s deltas; returns their names.
pub async fn register_views(ctx: &SessionContext, current: &Arc<Current>) -> Result<Vec<&'static str>> {
    let planning = SessionContext::new_with_config(crate::catalog::session_config());
    for kind in [DeltaKind::RegionCategory, DeltaKind::Node, DeltaKind::Item] {
        planning.register_table(kind.table(), Arc::new(DeltaTable::new(current.clone(), kind)))?;
    }
    for table in [
        stockflight_proto::layout::reference::ITEMS,
        stockflight_proto::layout::reference::NODES,
        BY_NODE,
        BY_ITEM,
        BY_REGION_CATEGORY,
    ] {
        if let Ok(provider) = ctx.table_provider(table).await {
            planning.register_table(table, provider)?;
        }
    }
    let mut registered = Vec::new();
    for (name, published, sql) in aggregate_views() {
        if !ctx.table_exist(published)? {
            continue;
        }
        let plan = match planning.state().create_logical_plan(&sql).await {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(view = name, error = %e, "live: the snapshot's tables do not fit this view; not served");
                continue;
            }
        };
        ctx.register_table(name, Arc::new(LiveView(ViewTable::new(plan, Some(sql)))))?;
        registered.push(name);
    }
    Ok(registered)
}
