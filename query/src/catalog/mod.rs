//! The served tables: the snapshot `CURRENT` publishes, registered with DataFusion, and swapped
//! for a newer one without a restart.
//!
//! Each snapshot has its own [`SessionContext`] and its own read-only view of the store
//! ([`store::SnapshotStore`]). A query holds an `Arc<Snapshot>` while it runs, so a swap never
//! changes the tables under a running query; the old view goes when its last query ends.

pub mod memory;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use stockflight_common::storage::Storage;
use stockflight_proto::layout::{CURRENT_POINTER, DENORMALIZED, SnapshotManifest, TableManifest};
use url::Url;

use crate::error::Error;
use crate::navigate::lookups;
use crate::navigate::{Navigation, Navigator};
use crate::plan::PlanCache;
use crate::results::ResultCache;
use crate::{CATALOG, SCHEMA};
use store::SnapshotStore;
/// How many object metadata requests run at once while a snapshot loads.
const HEAD_CONCURRENCY: usize = 16;
/// How long the replaced snapshot still answers queries planned on it (a FlightInfo's ticket is
/// redeemed within moments; this covers a slow client and replicas swapping apart).
pub const PREVIOUS_GRACE: Duration = Duration::from_secs(120);
/// How long a new snapshot's cubes may take to build before it is served anyway (their builds
/// go on in the background): a swap waits at most this long.
pub const PREPARE_LIMIT: Duration = Duration::from_secs(120);

/// One published snapshot, ready to query.
pub struct Snapshot {
    /// What `CURRENT` said.
    pub manifest: SnapshotManifest,
    /// DataFusion context with the snapshot's tables in `stockflight.public`.
    pub ctx: SessionContext,
    /// Plans of recent statements on these tables.
    pub plans: PlanCache,
    /// Results of recent deterministic statements on these tables.
    pub results: Arc<ResultCache>,
    /// Its cubes and verified lookups (aggregate navigation).
    pub navigator: Arc<Navigator>,
    runtime: Arc<RuntimeEnv>,
    store_url: Url,
}

impl Snapshot {
    /// What identifies this publication across replicas: the run id and when it was published
    /// (a run id published twice is two snapshots).
    pub fn id(&self) -> String {
        format!("{}@{}", self.manifest.run_id, self.manifest.published_at)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("run_id", &self.manifest.run_id)
            .field("store_url", &self.store_url.as_str())
            .finish()
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // The last query on this snapshot has finished: its store view is no longer needed.
        let _ = self.runtime.deregister_object_store(&self.store_url);
    }
}

/// The current snapshot and how to load the next one.
#[derive(Debug)]
pub struct Catalog {
    storage: Storage,
    runtime: Arc<RuntimeEnv>,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// The snapshot served before the current one, and when it was replaced: queries planned on
    /// it (here or on a replica that swapped later) still run on it for [`PREVIOUS_GRACE`].
    previous: RwLock<Option<(Arc<Snapshot>, Instant)>>,
    /// Serialises loads: concurrent refreshes (the poller, a ticket naming a newer snapshot)
    /// load a snapshot once.
    loading: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    memory_budget: usize,
    result_cache_bytes: u64,
    aggregate_cache_bytes: usize,
    aggregate_min_rows: usize,
    live: Option<Arc<crate::live::Live>>,
}

/// DataFusion settings for every query: the types BI drivers read, our catalog names.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_create_default_catalog_and_schema(true);
    let options = config.options_mut();
    // Utf8View is not mapped by the JDBC driver (apache/arrow-java#807): read plain Utf8.
    options.execution.parquet.schema_force_view_types = false;
    options.execution.parquet.pushdown_filters = true;
    options.execution.parquet.reorder_filters = true;
    options.sql_parser.map_string_types_to_utf8view = false;
    config
}

/// The runtime every snapshot and query shares: its object stores and caches.
///
/// - No spilling: a query that outgrows `limits.query_memory_mb` fails instead of filling the disk.
/// - No list-files cache: each snapshot's [`store::SnapshotStore`] lists from memory already, and
///   DataFusion keys that cache by path without the store, so a run id published twice would be
///   served the first run's file list.
/// - Parquet footers and file statistics stay cached across queries (snapshots are immutable and
///   their paths unique per run).
pub fn runtime_env() -> Result<Arc<RuntimeEnv>, datafusion::error::DataFusionError> {
    RuntimeEnvBuilder::new()
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()
}

impl Catalog {
    /// A catalog over `storage`; nothing is loaded until [`Catalog::refresh`].
    pub fn new(storage: Storage, runtime: Arc<RuntimeEnv>) -> Self {
        Self {
            storage,
            runtime,
            current: RwLock::new(None),
            previous: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            memory_budget: 0,
            result_cache_bytes: 0,
            aggregate_cache_bytes: 0,
            aggregate_min_rows: crate::navigate::MIN_FACT_ROWS,
            live: None,
        }
    }

    /// Serves the live tables beside each snapshot's (see [`crate::live`]).
    pub fn with_live(mut self, live: Arc<crate::live::Live>) -> Self {
        self.live = Some(live);
        self
    }

    /// Holds up to `bytes` of each snapshot's tables in memory (smallest tables first).
    pub fn with_memory_cache(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Keeps up to `bytes` of cubes per snapshot (aggregate navigation; 0: none), over the
    /// tables of at least `min_rows` rows.
    pub fn with_aggregate_cache(mut self, bytes: usize, min_rows: usize) -> Self {
        self.aggregate_cache_bytes = bytes;
        self.aggregate_min_rows = min_rows;
        self
    }

    /// Keeps up to `bytes` of recent deterministic results per snapshot.
    pub fn with_result_cache(mut self, bytes: u64) -> Self {
        self.result_cache_bytes = bytes;
        self
    }

    /// The shared runtime (object stores, caches).
    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    /// The snapshot queries should use now.
    pub fn current(&self) -> Result<Arc<Snapshot>, Error> {
        self.current
            .read()
            .expect("catalog lock")
            .clone()
            .ok_or_else(|| Error::NoSnapshot(format!("{} has no {CURRENT_POINTER}", self.storage.location())))
    }

    /// The snapshot whose [`Snapshot::id`] is `id`: the current one, the previous one within its
    /// grace, or, when `id` is newer than what this replica has loaded (another replica swapped
    /// first), the one `CURRENT` names after a refresh. Never another snapshot: a query planned
    /// on one runs on that one or fails with [`Error::SnapshotGone`].
    pub async fn snapshot(&self, id: &str) -> Result<Arc<Snapshot>, Error> {
        if let Some(found) = self.served(id) {
            return Ok(found);
        }
        self.refresh().await?;
        self.served(id).ok_or_else(|| Error::SnapshotGone(id.to_string()))
    }

    fn served(&self, id: &str) -> Option<Arc<Snapshot>> {
        if let Ok(current) = self.current()
            && current.id() == id
        {
            return Some(current);
        }
        let previous = self.previous.read().expect("catalog lock");
        previous
            .as_ref()
            .filter(|(snapshot, replaced)| replaced.elapsed() < PREVIOUS_GRACE && snapshot.id() == id)
            .map(|(snapshot, _)| snapshot.clone())
    }

    /// Loads the snapshot `CURRENT` names if it is not the one served; returns its run id if it swapped.
    pub async fn refresh(&self) -> Result<Option<String>, Error> {
        let _loading = self.loading.lock().await;
        {
            let mut previous = self.previous.write().expect("catalog lock");
            if previous
                .as_ref()
                .is_some_and(|(_, replaced)| replaced.elapsed() >= PREVIOUS_GRACE)
            {
                *previous = None;
            }
        }
        let store = self.storage.store();
        let bytes = match store.get(&Path::from(CURRENT_POINTER)).await {
            Ok(got) => got.bytes().await.map_err(|e| unavailable("CURRENT", e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable("CURRENT", e)),
        };
        let manifest = SnapshotManifest::from_json(&bytes).map_err(|reason| Error::Snapshot {
            run_id: "?".into(),
            reason,
        })?;
        if let Ok(current) = self.current()
            && current.manifest == manifest
        {
            return Ok(None);
        }
        let run_id = manifest.run_id.clone();
        let snapshot = self.load(manifest).await?;
        // Prepared before it is served: the default cubes and those the served snapshot was
        // asked for, while the served one still answers; bounded, so a slow build delays the
        // swap by PREPARE_LIMIT at most (what is not built by then is built in the background).
        let asked = self.current().map(|s| s.navigator.shapes()).unwrap_or_default();
        let started = Instant::now();
        match tokio::time::timeout(PREPARE_LIMIT, snapshot.navigator.prepare(&asked)).await {
            Ok(()) => tracing::info!(run_id = %run_id, ms = started.elapsed().as_millis() as u64,
                cube_mib = snapshot.navigator.bytes() >> 20, "snapshot prepared"),
            Err(_) => tracing::warn!(run_id = %run_id, limit_s = PREPARE_LIMIT.as_secs(),
                "snapshot served before its cubes are all built"),
        }
        let replaced = self.current.write().expect("catalog lock").replace(Arc::new(snapshot));
        if let Some(replaced) = replaced {
            *self.previous.write().expect("catalog lock") = Some((replaced, Instant::now()));
        }
        Ok(Some(run_id))
    }

    async fn load(&self, manifest: SnapshotManifest) -> Result<Snapshot, Error> {
        let run_id = manifest.run_id.clone();
        let fail = |reason: String| Error::Snapshot {
            run_id: run_id.clone(),
            reason,
        };
        let store = self.storage.store().clone();
        let paths: Vec<Path> = manifest
            .tables
            .values()
            .flat_map(|t| t.files.iter().map(|f| Path::from(f.as_str())))
            .collect();
        let metas: Vec<_> = futures::stream::iter(paths)
            .map(|p| {
                let store = store.clone();
                async move {
                    let meta = store.head(&p).await.map_err(|e| format!("{p}: {e}"))?;
                    // object_store 0.13's PrefixStore returns HEAD metadata with the prefix still
                    // in the location (an `s3://bucket/prefix` root): keep the path we asked for.
                    Ok::<_, String>(ObjectMeta { location: p, ..meta })
                }
            })
            .buffer_unordered(HEAD_CONCURRENCY)
            .try_collect()
            .await
            .map_err(fail)?;

        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let store_url = Url::parse(&format!("sfsnap://g{generation}/")).expect("a valid URL");
        let view: Arc<dyn ObjectStore> = Arc::new(SnapshotStore::new(store, metas));
        self.runtime.register_object_store(&store_url, view);
        let ctx = SessionContext::new_with_config_rt(session_config(), self.runtime.clone());
        // Tableau's functions: the SQL of its Stockflight connector (clients/tableau/connector) calls them.
        stockflight_functions::register(&ctx);
        // Smallest first: the memory budget then covers as many tables as it can.
        let mut tables: Vec<_> = manifest.tables.iter().collect();
        tables.sort_by_key(|(name, t)| (t.bytes, *name));
        let mut budget = self.memory_budget;
        let mut held = Vec::new();
        for (name, table) in tables {
            if table.files.is_empty() {
                // No file, no schema: the table is left out rather than the whole snapshot.
                tracing::warn!(run_id = %manifest.run_id, table = %name, "table has no files; not served");
                continue;
            }
            let provider = listing_table(&ctx, &store_url, name, table)
                .await
                .map_err(|e| fail(format!("table {name}: {e}")))?;
            let provider: Arc<dyn TableProvider> = match budget {
                0 => provider,
                _ => match memory::load(&ctx, provider.clone(), &sort_columns(table, &provider), budget)
                    .await
                    .map_err(|e| fail(format!("table {name}: {e}")))?
                {
                    memory::Loaded::Table(table, bytes) => {
                        budget -= bytes;
                        tracing::info!(run_id = %manifest.run_id, table = %name, mib = bytes >> 20, "table held in memory");
                        let rows = table.rows();
                        let table: Arc<dyn TableProvider> = table;
                        held.push((name.clone(), table.clone(), rows));
                        table
                    }
                    memory::Loaded::TooBig => {
                        tracing::info!(run_id = %manifest.run_id, table = %name, "table larger than the memory cache left; read from Parquet");
                        budget = 0;
                        provider
                    }
                },
            };
            ctx.register_table(name.as_str(), provider)
                .map_err(|e| fail(format!("table {name}: {e}")))?;
        }
        // Joins the snapshot's own columns answer, checked on this data; then the rule that uses
        // them and the cubes (see `navigate`).
        let lookups = lookups::verify(&ctx, DENORMALIZED).await;
        let navigator = Arc::new(
            Navigator::new(&ctx, held, lookups, self.aggregate_cache_bytes, self.aggregate_min_rows)
                .map_err(|e| fail(e.to_string()))?,
        );
        ctx.add_optimizer_rule(Arc::new(Navigation::new(navigator.clone())));
        let snapshot = Snapshot {
            manifest,
            ctx,
            plans: PlanCache::default(),
            results: Arc::new(ResultCache::new(self.result_cache_bytes)),
            navigator,
            runtime: self.runtime.clone(),
            store_url,
        };
        if let Some(live) = &self.live {
            live.attach(&snapshot.ctx, &snapshot.manifest).await;
        }
        Ok(snapshot)
    }

    /// Polls `CURRENT` every `every` until the task is aborted; failures are logged and retried.
    pub fn spawn_refresh(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; start-up already loaded
            loop {
                tick.tick().await;
                match self.refresh().await {
                    Ok(Some(run_id)) => tracing::info!(%run_id, "serving a new snapshot"),
                    Ok(None) => {}
                    Err(err) => {
                        metrics::counter!("stockflight_server_snapshot_load_errors_total").increment(1);
                        tracing::warn!(%err, "could not load the published snapshot; still serving the previous one")
                    }
                }
                self.record_age();
            }
        })
    }

    /// Sets the snapshot-age gauge from the served manifest's publication time.
    pub fn record_age(&self) {
        if let Ok(snapshot) = self.current()
            && let Ok(published) = chrono::DateTime::parse_from_rfc3339(&snapshot.manifest.published_at)
        {
            let age = chrono::Utc::now().signed_duration_since(published);
            metrics::gauge!("stockflight_server_snapshot_age_seconds").set(age.num_milliseconds() as f64 / 1000.0);
        }
    }
}

/// What a held table is sorted by: its partition columns, then its first column (the key the
/// batch writes first: `item_id`, `node_id`, …), so filters on either skip most chunks.
fn sort_columns(table: &TableManifest, provider: &Arc<dyn TableProvider>) -> Vec<String> {
    let mut columns = table.partition_columns.clone();
    if let Some(first) = provider.schema().fields().first()
        && !columns.contains(first.name())
    {
        columns.push(first.name().clone());
    }
    columns
}

fn unavailable(what: &str, e: object_store::Error) -> Error {
    Error::Snapshot {
        run_id: "?".into(),
        reason: format!("reading {what}: {e}"),
    }
}

/// One table as a listing table over its directory, seen through the snapshot's view.
async fn listing_table(
    ctx: &SessionContext,
    store_url: &Url,
    name: &str,
    table: &TableManifest,
) -> Result<Arc<dyn TableProvider>, String> {
    if !is_identifier(name) {
        return Err("is not a plain SQL name".into());
    }
    let dir = table_dir(table)?;
    let url = ListingTableUrl::parse(format!("{store_url}{dir}/")).map_err(|e| e.to_string())?;
    let partition_cols = table
        .partition_columns
        .iter()
        .map(|c| (c.clone(), DataType::Utf8))
        .collect();
    let state = ctx.state();
    // The session's Parquet options (plain Utf8 strings, pushdown), not the format's defaults.
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension("")
        .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .infer_schema(&state)
        .await
        .map_err(|e| e.to_string())?;
    // Snapshots are immutable: per-file statistics are collected once, not per query.
    let provider = ListingTable::try_new(config)
        .map_err(|e| e.to_string())?
        .with_cache(state.runtime_env().cache_manager.get_file_statistic_cache());
    Ok(Arc::new(provider))
}

/// The directory all of a table's files live under, above its partition directories.
fn table_dir(table: &TableManifest) -> Result<String, String> {
    let depth = table.partition_columns.len();
    let mut dir: Option<String> = None;
    if table.files.is_empty() {
        return Err("lists no files".into());
    }
    for file in &table.files {
        let parts: Vec<&str> = file.split('/').collect();
        if parts.len() < depth + 2 {
            return Err(format!("{file}: path too short for {depth} partition columns"));
        }
        let (head, rest) = parts.split_at(parts.len() - 1 - depth);
        for (segment, column) in rest.iter().zip(&table.partition_columns) {
            if !segment.starts_with(&format!("{column}=")) {
                return Err(format!("{file}: expected a `{column}=` directory, found `{segment}`"));
            }
        }
        let this = head.join("/");
        match &dir {
            Some(d) if *d != this => return Err(format!("files under both {d} and {this}")),
            _ => dir = Some(this),
        }
    }
    Ok(dir.expect("at least one file"))
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(files: &[&str], parts: &[&str]) -> TableManifest {
        TableManifest {
            files: files.iter().map(|s| s.to_string()).collect(),
            partition_columns: parts.iter().map(|s| s.to_string()).collect(),
            rows: 0,
            bytes: 0,
        }
    }

    /// A snapshot under a key prefix (as `s3://bucket/prefix` opens) loads and answers queries.
    #[tokio::test]
    async fn loads_a_snapshot_under_a_prefixed_store() {
        use arrow::array::{Int64Array, RecordBatch};
        use object_store::memory::InMemory;
        use object_store::prefix::PrefixStore;
        use stockflight_common::storage::StorageLocation;
        use stockflight_proto::layout::MANIFEST_FORMAT_VERSION;

        let inner = Arc::new(InMemory::new());
        let store: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(inner.clone(), "deploy/a"));
        let mut files = Vec::new();
        for (region, values) in [("east", vec![1, 2, 3]), ("west", vec![10, 20])] {
            let batch = RecordBatch::try_from_iter([("qty", Arc::new(Int64Array::from(values)) as _)]).unwrap();
            let mut buf = Vec::new();
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            let path = format!("snapshots/r1/t/region={region}/part-0.parquet");
            store.put(&Path::from(path.as_str()), buf.into()).await.unwrap();
            files.push(path);
        }
        let manifest = SnapshotManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            run_id: "r1".into(),
            started_at: "2026-11-25T06:00:00Z".into(),
            published_at: "2026-11-25T06:01:00Z".into(),
            tables: [(
                "t".to_string(),
                TableManifest {
                    files,
                    partition_columns: vec!["region".into()],
                    rows: 5,
                    bytes: 0,
                },
            )]
            .into(),
        };
        store
            .put(&Path::from(CURRENT_POINTER), manifest.to_json().into())
            .await
            .unwrap();
        let location = StorageLocation::S3 {
            bucket: "b".into(),
            prefix: "deploy/a".into(),
        };
        let catalog = Catalog::new(Storage::from_store(store, location), runtime_env().unwrap());
        assert_eq!(catalog.refresh().await.unwrap().as_deref(), Some("r1"));
        let batches = catalog
            .current()
            .unwrap()
            .ctx
            .sql("SELECT sum(qty) FROM t WHERE region = 'west'")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let sum = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(sum, 30);
    }

    /// Publishes a one-table snapshot `run_id` whose only row is `qty`.
    async fn publish(store: &Arc<dyn ObjectStore>, run_id: &str, qty: i64) {
        use arrow::array::{Int64Array, RecordBatch};
        use stockflight_proto::layout::MANIFEST_FORMAT_VERSION;

        let batch = RecordBatch::try_from_iter([("qty", Arc::new(Int64Array::from(vec![qty])) as _)]).unwrap();
        let mut buf = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let path = format!("snapshots/{run_id}/t/part-0.parquet");
        store.put(&Path::from(path.as_str()), buf.into()).await.unwrap();
        let manifest = SnapshotManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            run_id: run_id.into(),
            started_at: "2026-11-25T06:00:00Z".into(),
            published_at: format!("2026-11-25T06:0{qty}:00Z"),
            tables: [("t".to_string(), table(&[path.as_str()], &[]))].into(),
        };
        store
            .put(&Path::from(CURRENT_POINTER), manifest.to_json().into())
            .await
            .unwrap();
    }

    async fn qty(snapshot: &Snapshot) -> i64 {
        use arrow::array::Int64Array;
        let batches = snapshot
            .ctx
            .sql("SELECT qty FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    /// Two replicas over one store that swap snapshots at different moments: a ticket planned
    /// on either runs on the snapshot it was planned on, on both, or fails; never on another.
    #[tokio::test]
    async fn a_ticket_runs_on_the_snapshot_it_was_planned_on_whichever_replica_redeems_it() {
        use object_store::memory::InMemory;
        use stockflight_common::storage::StorageLocation;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let replica = || {
            let location = StorageLocation::S3 {
                bucket: "b".into(),
                prefix: String::new(),
            };
            Catalog::new(Storage::from_store(store.clone(), location), runtime_env().unwrap())
        };
        let (a, b) = (replica(), replica());
        publish(&store, "r1", 1).await;
        a.refresh().await.unwrap();
        b.refresh().await.unwrap();
        let first = a.current().unwrap().id();
        assert_eq!(
            first,
            b.current().unwrap().id(),
            "the same publication has one id everywhere"
        );

        // r2 is published; replica a swaps, b has not polled yet.
        publish(&store, "r2", 2).await;
        assert_eq!(a.refresh().await.unwrap().as_deref(), Some("r2"));
        let second = a.current().unwrap().id();
        assert_ne!(first, second);
        // A ticket planned on a (r2) redeemed on b: b loads r2 rather than answer from r1.
        assert_eq!(qty(&b.snapshot(&second).await.unwrap()).await, 2);
        // A ticket planned on r1 before the swap, redeemed on a: still r1 (the previous one).
        assert_eq!(qty(&a.snapshot(&first).await.unwrap()).await, 1);
        assert_eq!(qty(&b.snapshot(&first).await.unwrap()).await, 1);
        // A snapshot neither serves (two swaps ago, or never published): refused, with Aborted.
        publish(&store, "r3", 3).await;
        a.refresh().await.unwrap();
        let err = a.snapshot(&first).await.unwrap_err();
        assert!(matches!(err, Error::SnapshotGone(_)), "{err}");
        assert_eq!(err.kind(), crate::Kind::Aborted);
        assert!(matches!(a.snapshot("r9@never").await, Err(Error::SnapshotGone(_))));
    }

    #[test]
    fn finds_the_table_directory() {
        let t = table(
            &["snapshots/r/a/region=w/p0.parquet", "snapshots/r/a/region=e/p0.parquet"],
            &["region"],
        );
        assert_eq!(table_dir(&t).unwrap(), "snapshots/r/a");
        assert_eq!(
            table_dir(&table(&["reference/items/items.parquet"], &[])).unwrap(),
            "reference/items"
        );
        assert!(table_dir(&table(&["snapshots/r/a/p0.parquet"], &["region"])).is_err());
        assert!(table_dir(&table(&["a/x.parquet", "b/y.parquet"], &[])).is_err());
    }
}
