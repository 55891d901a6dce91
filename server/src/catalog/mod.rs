//! The served tables: the snapshot `CURRENT` publishes, registered with DataFusion, and swapped
//! for a newer one without a restart.
//!
//! Each snapshot has its own [`SessionContext`] and its own read-only view of the store
//! ([`store::SnapshotStore`]). A query holds an `Arc<Snapshot>` while it runs, so a swap never
//! changes the tables under a running query; the old view goes when its last query ends.

pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use stockflight_common::storage::Storage;
use stockflight_proto::layout::{CURRENT_POINTER, SnapshotManifest, TableManifest};
use url::Url;

use crate::error::Error;
use crate::query::plan::PlanCache;
use store::SnapshotStore;

/// The catalog name clients see.
pub const CATALOG: &str = "stockflight";
/// The schema name clients see.
pub const SCHEMA: &str = "public";
/// How many object metadata requests run at once while a snapshot loads.
const HEAD_CONCURRENCY: usize = 16;

/// One published snapshot, ready to query.
pub struct Snapshot {
    /// What `CURRENT` said.
    pub manifest: SnapshotManifest,
    /// DataFusion context with the snapshot's tables in `stockflight.public`.
    pub ctx: SessionContext,
    /// Plans of recent statements on these tables.
    pub plans: PlanCache,
    runtime: Arc<RuntimeEnv>,
    store_url: Url,
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
    generation: AtomicU64,
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

impl Catalog {
    /// A catalog over `storage`; nothing is loaded until [`Catalog::refresh`].
    pub fn new(storage: Storage, runtime: Arc<RuntimeEnv>) -> Self {
        Self {
            storage,
            runtime,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
        }
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

    /// Loads the snapshot `CURRENT` names if it is not the one served; returns its run id if it swapped.
    pub async fn refresh(&self) -> Result<Option<String>, Error> {
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
        *self.current.write().expect("catalog lock") = Some(Arc::new(snapshot));
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
                async move { store.head(&p).await.map_err(|e| format!("{p}: {e}")) }
            })
            .buffer_unordered(HEAD_CONCURRENCY)
            .try_collect()
            .await
            .map_err(fail)?;

        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let store_url = Url::parse(&format!("sfsnap://g{generation}/")).expect("a valid URL");
        let view: Arc<dyn ObjectStore> = Arc::new(SnapshotStore::new(store, metas));
        self.runtime.register_object_store(&store_url, view);
        let snapshot = Snapshot {
            manifest,
            ctx: SessionContext::new_with_config_rt(session_config(), self.runtime.clone()),
            plans: PlanCache::default(),
            runtime: self.runtime.clone(),
            store_url,
        };
        for (name, table) in &snapshot.manifest.tables {
            if table.files.is_empty() {
                // No file, no schema: the table is left out rather than the whole snapshot.
                tracing::warn!(run_id = %snapshot.manifest.run_id, table = %name, "table has no files; not served");
                continue;
            }
            register_table(&snapshot, name, table)
                .await
                .map_err(|e| fail(format!("table {name}: {e}")))?;
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

fn unavailable(what: &str, e: object_store::Error) -> Error {
    Error::Snapshot {
        run_id: "?".into(),
        reason: format!("reading {what}: {e}"),
    }
}

/// Registers one table: a listing table over its directory, seen through the snapshot's view.
async fn register_table(snapshot: &Snapshot, name: &str, table: &TableManifest) -> Result<(), String> {
    if !is_identifier(name) {
        return Err("is not a plain SQL name".into());
    }
    let dir = table_dir(table)?;
    let url = ListingTableUrl::parse(format!("{}{dir}/", snapshot.store_url)).map_err(|e| e.to_string())?;
    let partition_cols = table
        .partition_columns
        .iter()
        .map(|c| (c.clone(), DataType::Utf8))
        .collect();
    let state = snapshot.ctx.state();
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
    snapshot
        .ctx
        .register_table(name, Arc::new(provider))
        .map_err(|e| e.to_string())?;
    Ok(())
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
