//! One batch run: take the lease; scan, join and aggregate in one pass while the drill-down
//! table is written; write the small tables; publish, fenced by the lease; apply retention.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, collect, execute_stream_partitioned};
use datafusion::prelude::SessionContext;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scylla::client::session::Session;
use stockflight_common::storage::{Storage, StorageLocation};
use stockflight_proto::layout::{MANIFEST_FORMAT_VERSION, SnapshotManifest, TableManifest, reference, snapshot_table};

use crate::engine;
use crate::error::Error;
use crate::fanout::{self, ChannelTable, Outputs};
use crate::lease::{Lease, owner_name};
use crate::partitioned::PartitionedWriter;
use crate::publish::{ConditionalPut, Prepared, Publisher};
use crate::scan::{PageOptions, Scan, ScanProgress, TableReader, split_count, split_ring};
use crate::settings::BatchSettings;
use crate::tables::{self, SNAPSHOT, SNAPSHOT_PARTITION, TREND};
use crate::write::{Spill, spill_of};
use crate::{progress, write};

/// Everything one run needs, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cassandra contact points.
    pub nodes: Vec<String>,
    /// Keyspace of the availability table.
    pub keyspace: String,
    /// Read consistency of the scan.
    pub consistency: stockflight_common::sections::Consistency,
    /// Concurrent token-range readers.
    pub parallelism: usize,
    /// Rows per Cassandra page.
    pub page_size: i32,
    /// Target bytes per token-range split.
    pub split_bytes: u64,
    /// Retries of a failed page.
    pub retries: usize,
    /// Time a page request may take before it is retried.
    pub request_timeout: Duration,
    /// Lifetime of the run lease (renewed every third of it).
    pub lease_ttl: Duration,
    /// DataFusion memory pool size in bytes.
    pub memory_limit: usize,
    /// Spill directory (system temp when unset).
    pub spill_dir: Option<PathBuf>,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Snapshots kept by retention.
    pub retention: usize,
    /// Addresses (`host:port`) of the workers of a distributed run; empty: the pass runs in
    /// this process.
    pub workers: Vec<String>,
}

/// How a run publishes and what retention keeps, beyond [`RunOptions::retention`].
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// How `CURRENT` is written on this store.
    pub conditional_put: ConditionalPut,
    /// How long a replaced snapshot stays after the one that replaced it was published.
    pub retention_grace: Duration,
}

impl PublishOptions {
    /// The defaults for `storage` (`snapshot.conditional_put = auto`, the default grace).
    pub fn defaults_for(storage: &Storage) -> Self {
        Self {
            conditional_put: match storage.location() {
                StorageLocation::Local(_) => ConditionalPut::LocalLock,
                StorageLocation::S3 { .. } => ConditionalPut::None,
            },
            retention_grace: Duration::from_secs(crate::settings::DEFAULT_RETENTION_GRACE_SECS),
        }
    }

    /// The options the settings describe (validated settings: the mode resolves).
    pub fn from_settings(s: &BatchSettings) -> Result<Self, Error> {
        Ok(Self {
            conditional_put: s.conditional_put()?,
            retention_grace: Duration::from_secs(s.snapshot.retention_grace_secs),
        })
    }
}

impl RunOptions {
    /// The options the settings describe.
    pub fn from_settings(s: &BatchSettings) -> Self {
        Self {
            nodes: s.cassandra_nodes(),
            keyspace: s.cassandra.keyspace.clone(),
            consistency: s.cassandra.consistency,
            parallelism: s.scan.parallelism,
            page_size: s.scan.page_size,
            split_bytes: s.scan.split_size_mb << 20,
            retries: s.scan.retries,
            request_timeout: Duration::from_millis(s.scan.request_timeout_ms),
            lease_ttl: Duration::from_secs(s.lease.ttl_secs),
            memory_limit: s.memory.limit_mb << 20,
            spill_dir: s.memory.spill_dir.clone(),
            row_group_rows: s.snapshot.row_group_rows,
            retention: s.snapshot.retention,
            workers: s.distributed_workers(),
        }
    }
}

/// What a run did, for the summary and the metrics.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The run id.
    pub run_id: String,
    /// False when the run id had been published before and nothing was written.
    pub written: bool,
    /// Rows read from Cassandra.
    pub rows_scanned: u64,
    /// Token ranges scanned.
    pub ranges: u64,
    /// Page requests that failed and were retried (no range is ever skipped).
    pub page_retries: u64,
    /// Time of the single pass: scan, join, drill-down table and aggregates.
    pub pass_duration: Duration,
    /// Rows and bytes per published table.
    pub tables: BTreeMap<String, TableManifest>,
    /// Wall time of the run.
    pub duration: Duration,
    /// Snapshots deleted by retention.
    pub deleted: Vec<String>,
    /// What the aggregation spilled to disk.
    pub spill: Spill,
}

/// The publisher of `storage`, writing `CURRENT` with `conditional`.
pub fn publisher(storage: &Storage, conditional: ConditionalPut) -> Publisher {
    let local_root = match storage.location() {
        StorageLocation::Local(path) => Some(path.clone()),
        StorageLocation::S3 { .. } => None,
    };
    Publisher::new(storage.store().clone(), local_root, conditional)
}

/// [`run_with`] with the default [`PublishOptions`] of `storage`.
pub async fn run(
    options: &RunOptions,
    storage: &Storage,
    run_id: &str,
    started_at: DateTime<Utc>,
    stop: impl Future<Output = ()>,
) -> Result<Summary, Error> {
    run_with(
        options,
        &PublishOptions::defaults_for(storage),
        storage,
        run_id,
        started_at,
        stop,
    )
    .await
}

/// Runs the job once as `run_id`, data as of `started_at`, under the run lease; `stop`
/// completing (a shutdown signal) ends the run unpublished and releases the lease. `CURRENT` is
/// written only while the lease is provably held ([`crate::publish::Fence`]).
pub async fn run_with(
    options: &RunOptions,
    publish: &PublishOptions,
    storage: &Storage,
    run_id: &str,
    started_at: DateTime<Utc>,
    stop: impl Future<Output = ()>,
) -> Result<Summary, Error> {
    let clock = Instant::now();
    let session = Arc::new(crate::scan::connect(&options.nodes).await?);
    let lease = Lease::acquire(
        session.clone(),
        &options.keyspace,
        &owner_name(run_id),
        options.lease_ttl,
    )
    .await?;
    let result = tokio::select! {
        r = run_leased(options, publish, storage, &lease, run_id, started_at, session, clock) => r,
        lost = lease.lost() => Err(lost),
        () = stop => Err(Error::Interrupted),
    };
    lease.release().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_leased(
    options: &RunOptions,
    publish: &PublishOptions,
    storage: &Storage,
    lease: &Lease,
    run_id: &str,
    started_at: DateTime<Utc>,
    session: Arc<Session>,
    clock: Instant,
) -> Result<Summary, Error> {
    let store = storage.store().clone();
    let publisher = publisher(storage, publish.conditional_put);
    if let Prepared::AlreadyPublished(done) = publisher.prepare(run_id, lease).await? {
        tracing::info!(run_id, "this run id was published before; nothing to do");
        return Ok(Summary {
            run_id: run_id.to_string(),
            written: false,
            rows_scanned: 0,
            ranges: 0,
            page_retries: 0,
            pass_duration: Duration::ZERO,
            tables: done.tables,
            duration: clock.elapsed(),
            deleted: vec![],
            spill: Spill::default(),
        });
    }
    let previous = publisher.current().await?.map(|p| p.manifest);

    let pass = if options.workers.is_empty() {
        local_run(options, &store, previous.as_ref(), session, run_id, started_at, clock).await?
    } else {
        distributed_run(
            options,
            storage,
            &store,
            previous.as_ref(),
            lease,
            session,
            run_id,
            started_at,
            clock,
        )
        .await?
    };
    let Outcome {
        tables,
        rows_scanned,
        ranges,
        page_retries,
        pass_duration,
        spill,
    } = pass;

    let manifest = SnapshotManifest {
        format_version: MANIFEST_FORMAT_VERSION,
        run_id: run_id.to_string(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        published_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        tables: tables.clone(),
    };
    publisher.commit(manifest, lease).await?;
    tracing::info!(run_id, "published");
    let deleted = publisher
        .retain(options.retention, publish.retention_grace, Utc::now())
        .await?;
    Ok(Summary {
        run_id: run_id.to_string(),
        written: true,
        rows_scanned,
        ranges,
        page_retries,
        pass_duration,
        tables,
        duration: clock.elapsed(),
        deleted,
        spill,
    })
}

/// What the pass of a run produced, wherever it ran.
struct Outcome {
    tables: BTreeMap<String, TableManifest>,
    rows_scanned: u64,
    ranges: u64,
    page_retries: u64,
    pass_duration: Duration,
    spill: Spill,
}

/// How the run's scan requests pages.
fn page_options(options: &RunOptions) -> PageOptions {
    PageOptions {
        page_size: options.page_size,
        retries: options.retries,
        request_timeout: options.request_timeout,
        consistency: options.consistency,
    }
}

/// The splits of the ring for this run, sized from Cassandra's estimates.
async fn plan_ranges(reader: &TableReader, options: &RunOptions, run_id: &str) -> Vec<crate::scan::TokenRange> {
    let estimated = reader.estimated_bytes().await;
    let ranges = split_ring(split_count(estimated, options.split_bytes, options.parallelism));
    tracing::info!(
        run_id,
        estimated_bytes = estimated,
        splits = ranges.len(),
        parallelism = options.parallelism,
        "scanning"
    );
    ranges
}

/// The pass in this process: scan, join and aggregate in one pass (`fanout`), then the small
/// tables.
async fn local_run(
    options: &RunOptions,
    store: &Arc<dyn ObjectStore>,
    previous: Option<&SnapshotManifest>,
    session: Arc<Session>,
    run_id: &str,
    started_at: DateTime<Utc>,
    clock: Instant,
) -> Result<Outcome, Error> {
    let store = store.clone();
    let reader = TableReader::new(session, &options.keyspace, page_options(options)).await?;
    let ranges = plan_ranges(&reader, options, run_id).await;
    let scan_progress = Arc::new(ScanProgress::default());
    let scan = Scan::new(Arc::new(reader), ranges, options.parallelism, scan_progress.clone());

    let ctx = engine::session(
        store.clone(),
        options.memory_limit,
        options.spill_dir.clone(),
        PASS_AGGREGATIONS,
    )?;
    crate::reference::register(&ctx, &store).await?;
    ctx.register_table("availability", Arc::new(scan.into_table()?))?;

    let mut tables = BTreeMap::new();
    let mut spill = Spill::default();
    let display = progress::start(scan_progress.clone());
    let pass = single_pass(&ctx, &store, run_id, options).await;
    display.finish();
    let pass = pass?;
    let pass_duration = clock.elapsed();
    let snapshot = pass.snapshot;
    let rows_scanned = scan_progress.rows.load(Ordering::Relaxed);
    if snapshot.rows != rows_scanned {
        // Right joins keep every scanned row once, unless a reference id occurs twice.
        return Err(Error::Reference(format!(
            "the join produced {} rows from {rows_scanned} scanned: items.item_id or nodes.node_id is not unique",
            snapshot.rows
        )));
    }
    tracing::info!(
        run_id,
        rows = rows_scanned,
        seconds = pass_duration.as_secs_f64(),
        "scan, join, drill-down table and aggregates done"
    );
    tables.insert(SNAPSHOT.to_string(), snapshot);
    tables.insert(tables::BY_NODE.to_string(), add(&mut spill, pass.by_node));
    tables.insert(tables::BY_ITEM.to_string(), add(&mut spill, pass.by_item));
    spill.files += pass.region_category_spill.files;
    spill.bytes += pass.region_category_spill.bytes;
    ctx.register_table(
        tables::REGION_CATEGORY_MEASURES,
        Arc::new(MemTable::try_new(pass.region_category.0, vec![pass.region_category.1])?),
    )?;

    // The small tables, written concurrently.
    let run_time = started_at
        .to_rfc3339_opts(SecondsFormat::Micros, true)
        .trim_end_matches('Z')
        .to_string();
    let has_previous = register_previous_trend(&ctx, &store, previous).await?;
    let trend_sql = tables::trend_sql(run_id, &run_time, has_previous);
    let (items_sql, nodes_sql) = (
        format!("SELECT * FROM {}", reference::ITEMS),
        format!("SELECT * FROM {}", reference::NODES),
    );
    let small = [
        (tables::BY_REGION_CATEGORY, tables::by_region_category_sql()),
        (TREND, trend_sql),
        (reference::ITEMS, items_sql),
        (reference::NODES, nodes_sql),
    ];
    let written = futures::future::try_join_all(
        small
            .iter()
            .map(|(name, sql)| write_sql(&ctx, &store, run_id, name, sql, options)),
    )
    .await?;
    for ((name, _), table) in small.iter().zip(written) {
        tables.insert(name.to_string(), add(&mut spill, table));
    }

    Ok(Outcome {
        tables,
        rows_scanned,
        ranges: scan_progress.ranges_total.load(Ordering::Relaxed),
        page_retries: scan_progress.page_retries.load(Ordering::Relaxed),
        pass_duration,
        spill,
    })
}

/// The pass on the workers of `options.workers` (see [`crate::distributed`]): they write every
/// file and record it; this process checks what they recorded.
#[allow(clippy::too_many_arguments)]
async fn distributed_run(
    options: &RunOptions,
    storage: &Storage,
    store: &Arc<dyn ObjectStore>,
    previous: Option<&SnapshotManifest>,
    lease: &Lease,
    session: Arc<Session>,
    run_id: &str,
    started_at: DateTime<Utc>,
    clock: Instant,
) -> Result<Outcome, Error> {
    let reader = TableReader::new(session.clone(), &options.keyspace, page_options(options)).await?;
    let ranges = plan_ranges(&reader, options, run_id).await;
    let pass = crate::distributed::plan::run_pass(
        crate::distributed::plan::PassInput {
            options,
            store,
            storage: storage.location().to_string(),
            run_id,
            started_at,
            previous,
            epoch: crate::publish::Fence::token(lease),
            ranges,
        },
        &session,
    )
    .await?;
    let receipts = pass.receipts;
    let tables = crate::distributed::plan::manifest_tables(&receipts);
    let snapshot_rows = tables[SNAPSHOT].rows;
    if snapshot_rows != receipts.rows_scanned {
        // Right joins keep every scanned row once, unless a reference id occurs twice.
        return Err(Error::Reference(format!(
            "the join produced {snapshot_rows} rows from {} scanned: items.item_id or nodes.node_id is not unique",
            receipts.rows_scanned
        )));
    }
    tracing::info!(
        run_id,
        rows = receipts.rows_scanned,
        scan_tasks = pass.scan_tasks,
        seconds = pass.duration.as_secs_f64(),
        "distributed pass done: scan, join, every table written by the workers"
    );
    Ok(Outcome {
        tables,
        rows_scanned: receipts.rows_scanned,
        ranges: receipts.ranges,
        page_retries: receipts.page_retries,
        pass_duration: clock.elapsed(),
        spill: Spill::default(),
    })
}

/// What the single pass over the table produced.
struct Pass {
    snapshot: TableManifest,
    by_node: (TableManifest, Spill),
    by_item: (TableManifest, Spill),
    region_category: (arrow::datatypes::SchemaRef, Vec<RecordBatch>),
    region_category_spill: Spill,
}

/// Channel tables the joined rows are copied to, one per aggregate.
const JOINED_FOR_NODES: &str = "joined_for_nodes";
const JOINED_FOR_ITEMS: &str = "joined_for_items";
const JOINED_FOR_REGION_CATEGORY: &str = "joined_for_region_category";
const PASS_INPUTS: [&str; 3] = [JOINED_FOR_NODES, JOINED_FOR_ITEMS, JOINED_FOR_REGION_CATEGORY];
/// How many aggregations the single pass runs at once; the memory pool is planned for them.
pub const PASS_AGGREGATIONS: usize = PASS_INPUTS.len();

/// Scans, joins, and feeds every joined batch to the drill-down table's writer and to the
/// three aggregations at once (see `fanout`): the table is read from Cassandra once and never
/// read back.
async fn single_pass(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    run_id: &str,
    options: &RunOptions,
) -> Result<Pass, Error> {
    let joined = write::bi_types(ctx.sql(&tables::snapshot_sql()).await?)?;
    let (state, plan) = joined.into_parts();
    let physical = state.create_physical_plan(&plan).await?;
    let schema = physical.schema();
    tracing::debug!(plan = %datafusion::physical_plan::displayable(physical.as_ref()).indent(false), "join plan");
    let partitions = physical.output_partitioning().partition_count();

    let mut senders = Vec::new();
    for name in PASS_INPUTS {
        let (table, tx) = ChannelTable::new(schema.clone(), partitions);
        ctx.register_table(name, Arc::new(table.into_table()?))?;
        senders.push(tx.into_iter());
    }
    let writer = Arc::new(PartitionedWriter::new(
        store.clone(),
        &snapshot_table(run_id, SNAPSHOT),
        &schema,
        SNAPSHOT_PARTITION,
        options.row_group_rows,
        ctx.runtime_env().memory_pool.clone(),
    )?);
    let outputs = (0..partitions)
        .map(|_| Outputs {
            channels: senders
                .iter_mut()
                .map(|s| s.next().expect("one sender per partition"))
                .collect(),
            writer: writer.clone(),
        })
        .collect();
    let inputs = execute_stream_partitioned(physical, state.task_ctx())?;
    let pumps = fanout::tee(inputs, outputs);

    let (node_sql, item_sql, region_category_sql) = (
        tables::by_node_sql(JOINED_FOR_NODES),
        tables::by_item_sql(JOINED_FOR_ITEMS),
        tables::region_category_measures_sql(JOINED_FOR_REGION_CATEGORY),
    );
    let (by_node, by_item, region_category, ()) = tokio::try_join!(
        write_sql(ctx, store, run_id, tables::BY_NODE, &node_sql, options),
        write_sql(ctx, store, run_id, tables::BY_ITEM, &item_sql, options),
        collect_sql(ctx, &region_category_sql),
        fanout::join_all(pumps),
    )?;
    let snapshot = writer.finish().await?;
    tracing::info!(
        table = SNAPSHOT,
        rows = snapshot.rows,
        bytes = snapshot.bytes,
        files = snapshot.files.len(),
        "table written"
    );
    let (schema, batches, region_category_spill) = region_category;
    Ok(Pass {
        snapshot,
        by_node,
        by_item,
        region_category: (schema, batches),
        region_category_spill,
    })
}

/// Runs `sql` and keeps its (small) result in memory.
async fn collect_sql(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>, Spill), Error> {
    let df = ctx.sql(sql).await?;
    let (state, plan) = df.into_parts();
    let physical: Arc<dyn ExecutionPlan> = state.create_physical_plan(&plan).await?;
    let batches = collect(physical.clone(), state.task_ctx()).await?;
    Ok((physical.schema(), batches, spill_of(physical.as_ref())))
}

fn add(total: &mut Spill, (table, spill): (TableManifest, Spill)) -> TableManifest {
    total.files += spill.files;
    total.bytes += spill.bytes;
    table
}

async fn write_sql(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    run_id: &str,
    table: &str,
    sql: &str,
    options: &RunOptions,
) -> Result<(TableManifest, Spill), Error> {
    let df = ctx.sql(sql).await?;
    let (written, spill) =
        write::write_table(df, store, &snapshot_table(run_id, table), options.row_group_rows).await?;
    tracing::info!(
        table,
        rows = written.rows,
        bytes = written.bytes,
        files = written.files.len(),
        spilled_bytes = spill.bytes,
        "table written"
    );
    Ok((written, spill))
}

/// Registers the current snapshot's trend rows as `previous_trend`; false when there are none.
/// The trend is small (runs x regions x departments), so its exact files are read into memory.
async fn register_previous_trend(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    previous: Option<&SnapshotManifest>,
) -> Result<bool, Error> {
    let files = previous.and_then(|m| m.tables.get(TREND)).map_or(&[][..], |t| &t.files);
    register_trend_files(ctx, store, files).await
}

/// Registers the rows of the trend `files` as `previous_trend`; false when there are none.
pub(crate) async fn register_trend_files(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    files: &[String],
) -> Result<bool, Error> {
    if files.is_empty() {
        return Ok(false);
    }
    let mut batches = Vec::new();
    let mut schema = None;
    for file in files {
        let bytes = store
            .get(&object_store::path::Path::from(file.as_str()))
            .await
            .map_err(|e| Error::storage(format!("read {file}"), e))?
            .bytes()
            .await
            .map_err(|e| Error::storage(format!("read {file}"), e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| Error::storage(format!("decode {file}"), e))?;
        schema.get_or_insert_with(|| arrow::record_batch::RecordBatchReader::schema(&reader));
        for batch in reader {
            batches.push(batch.map_err(|e| Error::storage(format!("decode {file}"), e))?);
        }
    }
    let schema = schema.expect("at least one file");
    ctx.register_table("previous_trend", Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    Ok(true)
}

impl Summary {
    /// The end-of-run summary for humans.
    pub fn render(&self) -> String {
        let mut out = if self.written {
            let secs = self.duration.as_secs_f64();
            format!(
                "run {} published in {secs:.1} s\n  scanned {} rows from {} token ranges ({:.0} rows/s)\n",
                self.run_id,
                self.rows_scanned,
                self.ranges,
                self.rows_scanned as f64 / secs.max(1e-3)
            ) + &format!(
                "  single pass (scan, join, drill-down table, aggregates): {:.1} s\n",
                self.pass_duration.as_secs_f64()
            )
        } else {
            format!("run {} was published before; nothing written\n", self.run_id)
        };
        out.push_str(&format!(
            "  {:<34} {:>12} {:>14} {:>6}\n",
            "table", "rows", "bytes", "files"
        ));
        for (name, t) in &self.tables {
            out.push_str(&format!(
                "  {name:<34} {:>12} {:>14} {:>6}\n",
                t.rows,
                t.bytes,
                t.files.len()
            ));
        }
        if self.page_retries > 0 {
            out.push_str(&format!(
                "  retried {} failed page requests (no token range skipped)\n",
                self.page_retries
            ));
        }
        if self.spill.files > 0 {
            out.push_str(&format!(
                "  spilled to disk: {} bytes in {} spill files (memory limit reached)\n",
                self.spill.bytes, self.spill.files
            ));
        }
        if !self.deleted.is_empty() {
            out.push_str(&format!("  retention deleted: {}\n", self.deleted.join(", ")));
        }
        out
    }

    /// Records the run in the Prometheus metrics (`stockflight_batch_last_run_*`).
    pub fn record_metrics(&self, finished: DateTime<Utc>) {
        metrics::counter!("stockflight_batch_runs_total", "result" => "success").increment(1);
        metrics::gauge!("stockflight_batch_last_run_success").set(1.0);
        metrics::gauge!("stockflight_batch_last_success_timestamp_seconds").set(finished.timestamp() as f64);
        metrics::gauge!("stockflight_batch_last_run_timestamp_seconds").set(finished.timestamp() as f64);
        metrics::gauge!("stockflight_batch_last_run_duration_seconds").set(self.duration.as_secs_f64());
        metrics::gauge!("stockflight_batch_last_run_rows_scanned").set(self.rows_scanned as f64);
        metrics::gauge!("stockflight_batch_last_run_spilled_bytes").set(self.spill.bytes as f64);
        metrics::gauge!("stockflight_batch_last_run_page_retries").set(self.page_retries as f64);
        for (name, t) in &self.tables {
            metrics::gauge!("stockflight_batch_last_run_table_rows", "table" => name.clone()).set(t.rows as f64);
            metrics::gauge!("stockflight_batch_last_run_table_bytes", "table" => name.clone()).set(t.bytes as f64);
        }
    }
}

/// Records a failed run in the Prometheus metrics.
pub fn record_failure(finished: DateTime<Utc>) {
    metrics::counter!("stockflight_batch_runs_total", "result" => "failure").increment(1);
    metrics::gauge!("stockflight_batch_last_run_success").set(0.0);
    metrics::gauge!("stockflight_batch_last_run_timestamp_seconds").set(finished.timestamp() as f64);
}
