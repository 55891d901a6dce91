//! The coordinator's side of a distributed run: one DataFusion plan for the whole pass, cut into
//! stages by datafusion-distributed and run on the workers.
//!
//! ```text
//! head (coordinator)   CoalescePartitionsExec <- NetworkCoalesce
//! stage (workers)      TablesWriteExec <- joins with nodes, items <- AggregateExec(FinalPartitioned)
//!                        <- NetworkShuffle (hash of the grouping keys)
//! stage (workers)      RepartitionExec <- AggregateExec(Partial, GROUPING SETS) <- SnapshotWriteExec
//!                        <- joins with items, nodes <- CassandraScanExec (the task's token ranges)
//! (workers)            the reference tables' scans, broadcast to the joins above
//! ```
//!
//! The plan is made by DataFusion from SQL (`tables.rs` semantics), with our three nodes put in
//! through tables whose scan is an already planned subtree ([`PlannedTable`]). Only partial
//! aggregates cross the network; every Parquet file is written by a worker and announced by a
//! receipt; the coordinator reads the receipts and publishes (`run.rs`).

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt, ScaleUpLeafNodeEvent,
    ScaleUpLeafNodeEventResponse, SessionStateBuilderExt, WorkerResolver,
};
use object_store::ObjectStore;
use scylla::client::session::Session as CqlSession;
use stockflight_proto::layout::{SnapshotManifest, TableManifest, snapshot_table};
use url::Url;

use super::codec::BatchCodec;
use super::receipts::{self, ReceiptBook, Receipts};
use super::scan_exec::{CassandraScanExec, ScanSpec};
use super::snapshot_exec::{SnapshotSpec, SnapshotWriteExec};
use super::tables_exec::{LEVEL, LEVEL_ITEM, LEVEL_NODE, TablesSpec, TablesWriteExec};
use crate::error::Error;
use crate::run::RunOptions;
use crate::scan::TokenRange;
use crate::tables::{self, SNAPSHOT, SNAPSHOT_PARTITION, TREND};
use crate::{engine, write};

/// The `http://host:port` URL of each worker address of `distributed.workers`.
pub fn worker_urls(addresses: &[String]) -> Result<Vec<Url>, String> {
    addresses
        .iter()
        .map(|a| {
            let url = Url::parse(&format!("http://{a}")).map_err(|e| format!("`{a}`: {e}"))?;
            match (url.host_str(), url.port(), url.path()) {
                (Some(_), Some(port), "/") if port > 0 => Ok(url),
                _ => Err(format!("`{a}`: expected host:port")),
            }
        })
        .collect()
}

/// The workers of `distributed.workers`, as the planner asks for them.
#[derive(Debug, Clone)]
struct StaticWorkers(Vec<Url>);

impl WorkerResolver for StaticWorkers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.0.clone())
    }
}

/// Each stage runs on every worker: the scan's stage on as many tasks as there are ranges (the
/// planner caps that at the workers), the tables' stage likewise.
fn desired_tasks(ev: DesiredTaskCountEvent) -> Option<DfResult<DesiredTaskCountEventResponse>> {
    if let Some(scan) = ev.plan.downcast_ref::<CassandraScanExec>() {
        return Some(Ok(DesiredTaskCountEventResponse::desired(scan.range_count())));
    }
    if ev.plan.is::<TablesWriteExec>() {
        return Some(Ok(DesiredTaskCountEventResponse::desired(usize::from(u16::MAX))));
    }
    None
}

/// Deals the scan's token ranges to the tasks of its stage.
fn split_scan(ev: ScaleUpLeafNodeEvent) -> Option<DfResult<ScaleUpLeafNodeEventResponse>> {
    let scan = ev.plan.downcast_ref::<CassandraScanExec>()?;
    Some(
        scan.split(ev.task_count)
            .map(|split| ScaleUpLeafNodeEventResponse::new(Arc::new(split))),
    )
}

/// A table whose scan is a subtree planned beforehand: how our nodes enter a SQL plan.
#[derive(Debug)]
struct PlannedTable(Arc<dyn ExecutionPlan>);

#[async_trait]
impl TableProvider for PlannedTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
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
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some(columns) = projection else {
            return Ok(self.0.clone());
        };
        let schema = self.0.schema();
        let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = columns
            .iter()
            .map(|&i| {
                let name = schema.field(i).name().clone();
                (Arc::new(Column::new(&name, i)) as _, name)
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, self.0.clone())?))
    }
}

/// The availability table as a scan of every split of the ring, before the planner deals them.
#[derive(Debug)]
struct AvailabilityTable(ScanSpec);

#[async_trait]
impl TableProvider for AvailabilityTable {
    fn schema(&self) -> SchemaRef {
        crate::scan::availability_schema()
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
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(CassandraScanExec::new(ScanSpec {
            projection: projection.cloned(),
            ..self.0.clone()
        })?))
    }
}

/// Every aggregate of the run in one `GROUPING SETS` aggregation of the joined rows `joined`:
/// per node, per item, and region x department x category with its roll-ups (the trend's
/// region x department rows among them), each row named by its [`LEVEL`], joined with the
/// attributes of its node or item. The measures are `tables.rs`'s.
pub fn aggregate_sql(joined: &str) -> String {
    format!(
        "WITH m AS (
            SELECT node_id, item_id, region, department, category,
                CASE WHEN grouping(node_id) = 0 THEN '{LEVEL_NODE}'
                     WHEN grouping(item_id) = 0 THEN '{LEVEL_ITEM}'
                     WHEN grouping(region) = 1 THEN 'total'
                     WHEN grouping(department) = 1 THEN 'region'
                     WHEN grouping(category) = 1 THEN 'department'
                     ELSE 'category' END AS {LEVEL},
                {}
            FROM {joined}
            GROUP BY GROUPING SETS ((node_id), (item_id), (region, department, category),
                (region, department), (region), ())
        )
        SELECT m.{LEVEL},
            m.node_id, COALESCE(n.node_type, 'unknown') AS node_type,
            COALESCE(n.region, 'unknown') AS node_region, n.state, n.city,
            m.item_id, i.name AS item_name, COALESCE(i.department, 'unknown') AS item_department,
            COALESCE(i.category, 'unknown') AS item_category, i.brand,
            m.region, m.department, m.category,
            {}
        FROM m LEFT JOIN nodes n ON m.node_id = n.node_id LEFT JOIN items i ON m.item_id = i.item_id",
        tables::PARTIAL_MEASURES,
        tables::measures_of_partials(false),
    )
}

/// What the coordinator of a distributed run knows when the plan has run.
#[derive(Debug)]
pub struct DistributedPass {
    /// What the workers wrote and read.
    pub receipts: Receipts,
    /// Tasks of the scan's stage.
    pub scan_tasks: usize,
    /// Time the plan took.
    pub duration: Duration,
}

/// The run's pass on the workers: everything a [`DistributedPass`] needs to plan it.
pub struct PassInput<'a> {
    /// The run's options (`workers` among them).
    pub options: &'a RunOptions,
    /// The coordinator's store (the workers must write to the same).
    pub store: &'a Arc<dyn ObjectStore>,
    /// Its location, as the workers compare it with their own.
    pub storage: String,
    /// The run id.
    pub run_id: &'a str,
    /// The run's start (data as of).
    pub started_at: DateTime<Utc>,
    /// The current snapshot, whose trend is carried forward.
    pub previous: Option<&'a SnapshotManifest>,
    /// The run lease's fencing token (keys the receipts).
    pub epoch: u64,
    /// The token ranges of the scan.
    pub ranges: Vec<TokenRange>,
}

/// Plans and runs the pass on the workers, then reads what they wrote.
pub async fn run_pass(input: PassInput<'_>, session: &CqlSession) -> Result<DistributedPass, Error> {
    let PassInput {
        options,
        store,
        storage,
        run_id,
        started_at,
        previous,
        epoch,
        ranges,
    } = input;
    let started = std::time::Instant::now();
    let urls = worker_urls(&options.workers)
        .map_err(|e| stockflight_common::config::ConfigError::invalid("distributed.workers", e))?;
    session
        .query_unpaged(receipts::create_table(&options.keyspace), ())
        .await
        .map_err(|e| Error::Cassandra(format!("create the receipts table: {e}")))?;
    let book = ReceiptBook {
        nodes: options.nodes.clone(),
        keyspace: options.keyspace.clone(),
        consistency: options.consistency,
        run_id: run_id.to_string(),
        epoch: epoch as i64,
    };

    // The single-node plan, with our nodes in it.
    let planning = engine::session(
        store.clone(),
        options.memory_limit,
        options.spill_dir.clone(),
        crate::run::PASS_AGGREGATIONS,
    )?;
    crate::reference::register(&planning, store).await?;
    let scan = ScanSpec {
        page_size: options.page_size,
        retries: options.retries,
        request_timeout_ms: options.request_timeout.as_millis() as u64,
        consistency: options.consistency,
        parallelism: options.parallelism,
        ranges_per_task: vec![ranges.iter().map(|r| (r.start, r.end)).collect()],
        projection: None,
        book: book.clone(),
    };
    planning.register_table("availability", Arc::new(AvailabilityTable(scan)))?;
    let joined = physical(&planning, &tables::snapshot_sql()).await?;
    let snapshot = SnapshotWriteExec::new(
        SnapshotSpec {
            table: SNAPSHOT.to_string(),
            prefix: snapshot_table(run_id, SNAPSHOT),
            column: SNAPSHOT_PARTITION.to_string(),
            row_group_rows: options.row_group_rows,
            storage: storage.clone(),
            book: book.clone(),
        },
        joined,
    );
    planning.register_table("joined_written", Arc::new(PlannedTable(Arc::new(snapshot))))?;
    let aggregates = physical(&planning, &aggregate_sql("joined_written")).await?;
    let previous_trend = previous
        .and_then(|m| m.tables.get(TREND))
        .map(|t| t.files.clone())
        .unwrap_or_default();
    let tables = TablesWriteExec::new(
        TablesSpec {
            run_id: run_id.to_string(),
            run_time_micros: started_at.timestamp_micros(),
            previous_trend,
            row_group_rows: options.row_group_rows,
            storage,
            book: book.clone(),
        },
        aggregates,
    );

    // The same plan, distributed over the workers.
    let partitions = planning.state().config().target_partitions();
    let coordinator = coordinator_session(store, options, urls, partitions)?;
    coordinator.register_table("distributed_run", Arc::new(PlannedTable(Arc::new(tables))))?;
    let (state, plan) = coordinator.sql("SELECT * FROM distributed_run").await?.into_parts();
    let plan = state.create_physical_plan(&plan).await?;
    let shown = datafusion_distributed::display_plan_ascii(plan.as_ref(), false);
    tracing::info!(run_id, workers = options.workers.len(), plan = %shown, "distributed plan");
    tracing::debug!(plan = %displayable(plan.as_ref()).indent(true), "distributed plan, nodes");
    let written = collect(plan, state.task_ctx()).await?;
    let files: usize = written.iter().map(|b| b.num_rows()).sum();
    tracing::info!(run_id, aggregate_files = files, "workers finished");

    let receipts = Receipts::of(book.read(session).await?, &[(SNAPSHOT, SNAPSHOT_PARTITION)]);
    Ok(DistributedPass {
        scan_tasks: receipts.scan_tasks,
        receipts,
        duration: started.elapsed(),
    })
}

/// The single-node physical plan of `sql` in `ctx`, strings as BI drivers read them.
async fn physical(ctx: &SessionContext, sql: &str) -> Result<Arc<dyn ExecutionPlan>, Error> {
    let df = write::bi_types(ctx.sql(sql).await?)?;
    let (state, plan) = df.into_parts();
    Ok(state.create_physical_plan(&plan).await?)
}

/// A session whose plans datafusion-distributed cuts into stages for `workers`.
fn coordinator_session(
    store: &Arc<dyn ObjectStore>,
    options: &RunOptions,
    workers: Vec<Url>,
    partitions: usize,
) -> Result<SessionContext, Error> {
    let runtime = engine::runtime(options.memory_limit, options.spill_dir.clone())?;
    let url = Url::parse(engine::STORE_URL).expect("static URL");
    runtime.register_object_store(&url, store.clone());
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(engine::config(partitions))
        .with_runtime_env(runtime)
        .with_distributed_worker_resolver(StaticWorkers(workers))
        .with_distributed_planner()
        .with_distributed_user_codec(BatchCodec)
        .with_distributed_desired_task_count_handler(desired_tasks)
        .with_distributed_scale_up_leaf_node_handler(split_scan)
        .build();
    Ok(SessionContext::from(state))
}

/// The tables of a distributed run's manifest: what the receipts list, with every table of a
/// single-process run present (a table no worker wrote rows of, the drill-down table of an
/// empty keyspace, lists no files).
pub fn manifest_tables(receipts: &Receipts) -> std::collections::BTreeMap<String, TableManifest> {
    let mut tables = receipts.tables.clone();
    tables.entry(SNAPSHOT.to_string()).or_insert_with(|| TableManifest {
        rows: 0,
        bytes: 0,
        files: vec![],
        partition_columns: vec![SNAPSHOT_PARTITION.to_string()],
    });
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_addresses_become_urls_or_are_named() {
        let urls = worker_urls(&["127.0.0.1:7001".into(), "worker-2:7002".into()]).unwrap();
        assert_eq!(urls[0].as_str(), "http://127.0.0.1:7001/");
        assert_eq!(urls[1].host_str(), Some("worker-2"));
        for bad in ["127.0.0.1", "127.0.0.1:0", "http://x:1", "x:1/path", ""] {
            let err = worker_urls(&[bad.into()]).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
