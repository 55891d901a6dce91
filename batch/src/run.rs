//! One batch run: scan, join, aggregate, write every table, publish, apply retention.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::datatypes::DataType;
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stockflight_common::storage::{Storage, StorageLocation};
use stockflight_proto::layout::{MANIFEST_FORMAT_VERSION, SnapshotManifest, TableManifest, reference, snapshot_table};

use crate::engine::{self, url_of};
use crate::error::Error;
use crate::publish::{Prepared, Publisher};
use crate::scan::{Scan, ScanProgress, TableReader, split_count, split_ring};
use crate::settings::BatchSettings;
use crate::tables::{self, SNAPSHOT, SNAPSHOT_PARTITION, TREND};
use crate::write::Spill;
use crate::{progress, write};

/// Everything one run needs, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cassandra contact points.
    pub nodes: Vec<String>,
    /// Keyspace of the availability table.
    pub keyspace: String,
    /// Concurrent token-range readers.
    pub parallelism: usize,
    /// Rows per Cassandra page.
    pub page_size: i32,
    /// Target bytes per token-range split.
    pub split_bytes: u64,
    /// Retries of a failed page.
    pub retries: usize,
    /// DataFusion memory pool size in bytes.
    pub memory_limit: usize,
    /// Spill directory (system temp when unset).
    pub spill_dir: Option<PathBuf>,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Snapshots kept by retention.
    pub retention: usize,
}

impl RunOptions {
    /// The options the settings describe.
    pub fn from_settings(s: &BatchSettings) -> Self {
        Self {
            nodes: s.cassandra_nodes(),
            keyspace: s.cassandra.keyspace.clone(),
            parallelism: s.scan.parallelism,
            page_size: s.scan.page_size,
            split_bytes: s.scan.split_size_mb << 20,
            retries: s.scan.retries,
            memory_limit: s.memory.limit_mb << 20,
            spill_dir: s.memory.spill_dir.clone(),
            row_group_rows: s.snapshot.row_group_rows,
            retention: s.snapshot.retention,
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
    /// Rows and bytes per published table.
    pub tables: BTreeMap<String, TableManifest>,
    /// Wall time of the run.
    pub duration: Duration,
    /// Snapshots deleted by retention.
    pub deleted: Vec<String>,
    /// What the aggregation spilled to disk.
    pub spill: Spill,
}

/// The publisher of `storage`.
pub fn publisher(storage: &Storage) -> Publisher {
    let local_root = match storage.location() {
        StorageLocation::Local(path) => Some(path.clone()),
        StorageLocation::S3 { .. } => None,
    };
    Publisher::new(storage.store().clone(), local_root)
}

/// Runs the job once as `run_id`, data as of `started_at`.
pub async fn run(
    options: &RunOptions,
    storage: &Storage,
    run_id: &str,
    started_at: DateTime<Utc>,
) -> Result<Summary, Error> {
    let clock = Instant::now();
    let store = storage.store().clone();
    let publisher = publisher(storage);
    if let Prepared::AlreadyPublished(done) = publisher.prepare(run_id).await? {
        tracing::info!(run_id, "this run id was published before; nothing to do");
        return Ok(Summary {
            run_id: run_id.to_string(),
            written: false,
            rows_scanned: 0,
            ranges: 0,
            tables: done.tables,
            duration: clock.elapsed(),
            deleted: vec![],
            spill: Spill::default(),
        });
    }
    let previous = publisher.current().await?;

    let reader = TableReader::connect(&options.nodes, &options.keyspace, options.page_size, options.retries).await?;
    let estimated = reader.estimated_bytes().await;
    let ranges = split_ring(split_count(estimated, options.split_bytes, options.parallelism));
    tracing::info!(
        run_id,
        estimated_bytes = estimated,
        splits = ranges.len(),
        parallelism = options.parallelism,
        "scanning"
    );
    let scan_progress = Arc::new(ScanProgress::default());
    let scan = Scan::new(Arc::new(reader), ranges, options.parallelism, scan_progress.clone());

    let ctx = engine::session(store.clone(), options.memory_limit, options.spill_dir.clone())?;
    crate::reference::register(&ctx, &store).await?;
    ctx.register_table("availability", Arc::new(scan.into_table()?))?;

    let mut tables = BTreeMap::new();
    let mut spill = Spill::default();
    let display = progress::start(scan_progress.clone());
    let snapshot = write_sql(
        &ctx,
        &store,
        run_id,
        SNAPSHOT,
        &tables::snapshot_sql(),
        &[SNAPSHOT_PARTITION],
        options,
    )
    .await;
    display.finish();
    let snapshot = add(&mut spill, snapshot?);
    let rows_scanned = scan_progress.rows.load(Ordering::Relaxed);
    if snapshot.rows != rows_scanned {
        // Right joins keep every scanned row once, unless a reference id occurs twice.
        return Err(Error::Reference(format!(
            "the join produced {} rows from {rows_scanned} scanned: items.item_id or nodes.node_id is not unique",
            snapshot.rows
        )));
    }
    tables.insert(SNAPSHOT.to_string(), snapshot);
    tracing::info!(run_id, rows = rows_scanned, "scan and join written; aggregating");

    // The aggregates read the written drill-down table back: one scan of Cassandra feeds all.
    let snapshot_url = url_of(&format!("{}/", snapshot_table(run_id, SNAPSHOT)));
    ctx.register_parquet(
        SNAPSHOT,
        &snapshot_url,
        ParquetReadOptions::default().table_partition_cols(vec![(SNAPSHOT_PARTITION.to_string(), DataType::Utf8)]),
    )
    .await?;
    for (name, sql) in [
        (tables::BY_NODE, tables::by_node_sql()),
        (tables::BY_ITEM, tables::by_item_sql()),
        (tables::BY_REGION_CATEGORY, tables::by_region_category_sql()),
    ] {
        let written = write_sql(&ctx, &store, run_id, name, &sql, &[], options).await?;
        tables.insert(name.to_string(), add(&mut spill, written));
    }
    let run_time = started_at
        .to_rfc3339_opts(SecondsFormat::Micros, true)
        .trim_end_matches('Z')
        .to_string();
    let has_previous = register_previous_trend(&ctx, &store, previous.as_ref()).await?;
    let trend_sql = tables::trend_sql(run_id, &run_time, has_previous);
    let written = write_sql(&ctx, &store, run_id, TREND, &trend_sql, &[], options).await?;
    tables.insert(TREND.to_string(), add(&mut spill, written));
    for name in [reference::ITEMS, reference::NODES] {
        let sql = format!("SELECT * FROM {name}");
        let written = write_sql(&ctx, &store, run_id, name, &sql, &[], options).await?;
        tables.insert(name.to_string(), add(&mut spill, written));
    }

    let manifest = SnapshotManifest {
        format_version: MANIFEST_FORMAT_VERSION,
        run_id: run_id.to_string(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        published_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        tables: tables.clone(),
    };
    publisher.commit(&manifest).await?;
    tracing::info!(run_id, "published");
    let deleted = publisher.retain(options.retention, Utc::now()).await?;
    Ok(Summary {
        run_id: run_id.to_string(),
        written: true,
        rows_scanned,
        ranges: scan_progress.ranges_total.load(Ordering::Relaxed),
        tables,
        duration: clock.elapsed(),
        deleted,
        spill,
    })
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
    partition_by: &[&str],
    options: &RunOptions,
) -> Result<(TableManifest, Spill), Error> {
    let df = ctx.sql(sql).await?;
    let (written, spill) = write::write_table(
        df,
        store,
        &snapshot_table(run_id, table),
        partition_by,
        options.row_group_rows,
    )
    .await?;
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
    let Some(files) = previous
        .and_then(|m| m.tables.get(TREND))
        .map(|t| &t.files)
        .filter(|f| !f.is_empty())
    else {
        return Ok(false);
    };
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
