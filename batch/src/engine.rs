//! The DataFusion session of one run: bounded memory with spilling, the object store wired in,
//! and types that BI drivers read (`Utf8`, not `Utf8View`).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

use crate::error::Error;
use crate::memory::{self, RunPool};

/// URL under which the configured storage root is known to DataFusion.
pub const STORE_URL: &str = "stockflight://store/";

/// The URL of an object-store path (relative to the storage root) for DataFusion.
pub fn url_of(path: &str) -> String {
    format!("{STORE_URL}{path}")
}

/// A session whose operators share `memory_limit` bytes (see [`RunPool`]) and spill to
/// `spill_dir` (or the system's temporary directory) beyond it. It plans as many partitions
/// as there are cores, or fewer when `concurrent_aggregations` would otherwise leave each
/// a share too small to spill and merge (see [`memory::partitions_for`]).
pub fn session(
    store: Arc<dyn ObjectStore>,
    memory_limit: usize,
    spill_dir: Option<PathBuf>,
    concurrent_aggregations: usize,
) -> Result<SessionContext, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let partitions = memory::partitions_for(memory_limit, concurrent_aggregations, cores)
        .ok_or_else(|| memory::too_small(memory_limit, concurrent_aggregations))?;
    tracing::info!(
        partitions,
        cores,
        memory_limit_mib = memory_limit >> 20,
        "planning partitions"
    );
    let runtime = runtime(memory_limit, spill_dir)?;
    let config = config(partitions);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let url = url::Url::parse(STORE_URL).expect("static URL");
    ctx.register_object_store(&url, store);
    Ok(ctx)
}

/// The session options of every run: `partitions` target partitions, strings `Utf8` end to end.
pub fn config(partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new().with_target_partitions(partitions);
    let options = config.options_mut();
    // Strings stay `Utf8` end to end: JDBC/ODBC drivers do not map `Utf8View`.
    options.execution.parquet.schema_force_view_types = false;
    options.sql_parser.map_string_types_to_utf8view = false;
    config
}

/// A runtime whose operators share `memory_limit` bytes (see [`RunPool`]) and spill to
/// `spill_dir` (or the system's temporary directory) beyond it.
pub fn runtime(memory_limit: usize, spill_dir: Option<PathBuf>) -> Result<Arc<RuntimeEnv>, Error> {
    let disk = match spill_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Storage(format!("spill directory {}: {e}", dir.display())))?;
            DiskManagerMode::Directories(vec![dir])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(RunPool::new(memory_limit)))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(disk))
        .build_arc()?)
}
