//! [`Engine`]: the data layer over the published snapshots, behind [`DataLayer`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stockflight_common::storage::Storage;

use crate::catalog::{self, Catalog};
use crate::error::Error;
use crate::execute::Executor;
use crate::{Answer, Caller, DataLayer, Prepared, Run, Statement, TableInfo, tables};

/// Per-query and process-wide limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory one query may hold for sorts, joins and aggregations, in MiB.
    pub query_memory_mb: u64,
    /// Memory all running queries together may hold, in MiB.
    pub total_memory_mb: u64,
    /// Longest a query may run; `None`: no limit.
    pub query_timeout: Option<Duration>,
    /// Longest a query waits for a slot.
    pub queue_timeout: Duration,
    /// Most rows one result may have; `None`: no cap.
    pub max_result_rows: Option<u64>,
    /// Queries that run at once.
    pub max_concurrent_queries: usize,
    /// Queries that take longer are logged as slow.
    pub slow_query: Duration,
}

/// How the engine holds and caches snapshots.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Query limits.
    pub limits: Limits,
    /// Bytes of each snapshot's tables held in memory (0: read Parquet per query).
    pub memory_cache_bytes: usize,
    /// Bytes of finished results kept per snapshot (0: none).
    pub result_cache_bytes: u64,
    /// Bytes of cubes (pre-aggregated tables) kept per snapshot (0: none).
    pub aggregate_cache_bytes: usize,
    /// Tables with fewer rows get no cubes (a scan is as fast).
    pub aggregate_min_rows: usize,
    /// The live tables' settings; `None`: no live tables.
    pub live: Option<crate::live::LiveOptions>,
}

/// The data layer over the snapshots `storage` publishes.
#[derive(Debug)]
pub struct Engine {
    catalog: Arc<Catalog>,
    executor: Executor,
}

impl Engine {
    /// An engine over `storage`; nothing is loaded until [`Catalog::refresh`]. With live tables
    /// configured it starts connecting to Cassandra in the background (call it in a runtime).
    pub fn new(storage: Storage, options: &EngineOptions) -> Result<Self, Error> {
        let mut catalog = Catalog::new(storage, catalog::runtime_env()?)
            .with_memory_cache(options.memory_cache_bytes)
            .with_result_cache(options.result_cache_bytes)
            .with_aggregate_cache(options.aggregate_cache_bytes, options.aggregate_min_rows);
        if let Some(live) = &options.live {
            catalog = catalog.with_live(Arc::new(crate::live::Live::start(live.clone())));
        }
        let catalog = Arc::new(catalog);
        let executor = Executor::new(catalog.clone(), &options.limits);
        Ok(Self { catalog, executor })
    }

    /// The catalog: refresh it, poll it, read the served snapshot's age.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

#[async_trait]
impl DataLayer for Engine {
    async fn prepare(&self, _caller: &Caller, statement: Statement) -> Result<Prepared, Error> {
        let (planned, snapshot) = self.executor.plan(&statement.sql, statement.params).await?;
        Ok(Prepared {
            schema: planned.schema(),
            parameters: planned.parameter_schema(),
            snapshot,
        })
    }

    async fn run(&self, caller: &Caller, run: Run) -> Result<Answer, Error> {
        let (schema, batches) = self
            .executor
            .run(
                caller,
                &run.query_id,
                &run.statement.sql,
                run.statement.params,
                run.snapshot.as_deref(),
            )
            .await?;
        Ok(Answer { schema, batches })
    }

    fn cancel(&self, caller: &Caller, query_id: &str) -> bool {
        let cancelled = self.executor.cancel(query_id);
        tracing::info!(query_id, user = %caller.user, "query cancelled by the client");
        cancelled
    }

    async fn tables(&self, _caller: &Caller) -> Result<Vec<TableInfo>, Error> {
        tables::list(&self.catalog.current()?.ctx).await
    }
}
