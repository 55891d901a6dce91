//! Running queries: the snapshot they were planned on, limits (memory, time, concurrency, rows),
//! cancellation, metrics and the slow-query log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::budget::Budgeted;
use crate::catalog::{Catalog, Snapshot};
use crate::engine::Limits;
use crate::error::Error;
use crate::plan::{self, Planned, plan_cached};
use crate::results::{Recording, deterministic};
use crate::{BatchStream, Caller};

/// How many cancelled-but-not-started query ids are remembered.
const CANCELLED_MEMORY: usize = 1024;

/// Runs queries on the catalog's current snapshot within the configured limits.
#[derive(Debug)]
pub struct Executor {
    catalog: Arc<Catalog>,
    memory_bytes: usize,
    /// The memory every query together may hold (`limits.total_memory_mb`).
    shared_memory: Arc<dyn MemoryPool>,
    shared_memory_mb: u64,
    timeout: Option<Duration>,
    queue_timeout: Duration,
    max_rows: Option<u64>,
    slow: Duration,
    slots: Arc<Semaphore>,
    cancels: Arc<Cancels>,
}

impl Executor {
    /// An executor with the given limits.
    pub fn new(catalog: Arc<Catalog>, limits: &Limits) -> Self {
        Self {
            catalog,
            memory_bytes: mib(limits.query_memory_mb),
            shared_memory: Arc::new(GreedyMemoryPool::new(mib(limits.total_memory_mb))),
            shared_memory_mb: limits.total_memory_mb,
            timeout: limits.query_timeout,
            queue_timeout: limits.queue_timeout,
            max_rows: limits.max_result_rows,
            slow: limits.slow_query,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            cancels: Arc::new(Cancels::default()),
        }
    }

    /// Plans `sql` on the current snapshot without running it (schemas, prepared statements);
    /// also returns that snapshot's [`Snapshot::id`], for the ticket that runs it.
    pub async fn plan(&self, sql: &str, params: Option<ParamValues>) -> Result<(Planned, String), Error> {
        let snapshot = self.catalog.current()?;
        let planned = plan_cached(&snapshot.plans, &snapshot.ctx, sql, params).await?;
        Ok((planned, snapshot.id()))
    }

    /// Starts `sql`: waits for a slot, plans with a memory pool of its own on the snapshot
    /// `on` names (the one its FlightInfo was planned on, see [`Catalog::snapshot`]) or, with
    /// `None`, the current one, and returns the result stream, which holds the slot and the
    /// snapshot until it ends.
    pub async fn run(
        &self,
        caller: &Caller,
        query_id: &str,
        sql: &str,
        params: Option<ParamValues>,
        on: Option<&str>,
    ) -> Result<(SchemaRef, BatchStream), Error> {
        let cancel = self.cancels.register(query_id)?;
        let started = Instant::now();
        let prepared = async {
            let permit = match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
                Ok(permit) => permit.map_err(|e| Error::Internal(e.to_string()))?,
                Err(_) => return Err(Error::Busy(self.queue_timeout)),
            };
            let snapshot = match on {
                Some(id) => self.catalog.snapshot(id).await?,
                None => self.catalog.current()?,
            };
            let key = plan::statement_key(sql, &params);
            if let Some(kept) = snapshot.results.get(&key) {
                let batches = (*kept.batches).clone().into_iter().map(Ok);
                let inner: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                    kept.schema.clone(),
                    futures::stream::iter(batches),
                ));
                return Ok((permit, snapshot, kept.schema, inner));
            }
            let planned = plan_cached(&snapshot.plans, &snapshot.ctx, sql, params).await?;
            let schema = planned.schema();
            let keep = snapshot.results.enabled() && deterministic(&planned.plan);
            let mut inner = self.execute(&snapshot, query_id, &planned.plan).await?;
            if keep {
                inner = Box::pin(Recording::new(inner, snapshot.results.clone(), key, schema.clone()));
            }
            Ok((permit, snapshot, schema, inner))
        };
        let (permit, snapshot, schema, inner) = match prepared.await {
            Ok(parts) => parts,
            Err(e) => {
                // No stream (and so no guard) will end this query: forget its cancel signal now.
                self.cancels.finish(query_id);
                return Err(e);
            }
        };
        metrics::gauge!("stockflight_server_queries_running").increment(1.0);
        tracing::info!(query_id, user = %caller.user, run_id = %snapshot.manifest.run_id, sql, "query started");
        let running = Running {
            inner,
            schema: schema.clone(),
            deadline: self.timeout.map(|t| (started + t, t)),
            max_rows: self.max_rows,
            rows: 0,
            done: false,
            cancel,
            guard: Guard {
                query_id: query_id.to_string(),
                user: caller.user.clone(),
                sql: sql.to_string(),
                started,
                slow: self.slow,
                outcome: "abandoned",
                cancels: self.cancels.clone(),
                _permit: permit,
                _snapshot: snapshot,
            },
        };
        Ok((schema, Box::pin(futures::stream::unfold(running, Running::next))))
    }

    /// Cancels a query by id (running or not yet started); false if it already finished.
    pub fn cancel(&self, query_id: &str) -> bool {
        self.cancels.cancel(query_id)
    }

    /// Optimizes and runs `plan` on `snapshot` with a memory pool of the query's own. One
    /// session state per run (it carries the run's start time for `now()`), and a task context
    /// that shares, not copies, what execution needs. A plan over few rows runs in one
    /// partition: splitting a few thousand rows across threads costs more than it saves.
    async fn execute(
        &self,
        snapshot: &Snapshot,
        query_id: &str,
        plan: &LogicalPlan,
    ) -> Result<SendableRecordBatchStream, Error> {
        let mut state = snapshot.ctx.state();
        let optimized = state.optimize(plan)?;
        if plan::input_rows(&optimized).is_some_and(|rows| rows <= SINGLE_PARTITION_ROWS) {
            state.config_mut().options_mut().execution.target_partitions = 1;
        }
        let physical = state.query_planner().create_physical_plan(&optimized, &state).await?;
        let own = TrackConsumersPool::new(
            GreedyMemoryPool::new(self.memory_bytes),
            std::num::NonZeroUsize::new(3).expect("3 > 0"),
        );
        let pool = Budgeted::new(Arc::new(own), self.shared_memory.clone(), self.shared_memory_mb);
        let runtime = RuntimeEnvBuilder::from_runtime_env(self.catalog.runtime())
            .with_memory_pool(Arc::new(pool))
            .build_arc()?;
        // Physical plans hold their functions already; the registries stay empty rather than
        // copied for every query.
        let task = TaskContext::new(
            Some(query_id.to_string()),
            state.session_id().to_string(),
            state.config().clone(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            runtime,
        );
        Ok(execute_stream(physical, Arc::new(task))?)
    }
}

/// Plans reading at most this many rows run in one partition (see [`Executor::execute`]).
const SINGLE_PARTITION_ROWS: usize = 65_536;

/// MiB in bytes, saturating.
fn mib(mb: u64) -> usize {
    usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// Cancellation signals of running queries, and ids cancelled before they started.
#[derive(Debug, Default)]
struct Cancels {
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    early: Mutex<VecDeque<String>>,
}

impl Cancels {
    fn register(&self, query_id: &str) -> Result<watch::Receiver<bool>, Error> {
        if self.early.lock().expect("cancel lock").iter().any(|id| id == query_id) {
            return Err(Error::Cancelled);
        }
        let (tx, rx) = watch::channel(false);
        self.running
            .lock()
            .expect("cancel lock")
            .insert(query_id.to_string(), tx);
        Ok(rx)
    }

    fn cancel(&self, query_id: &str) -> bool {
        if let Some(tx) = self.running.lock().expect("cancel lock").get(query_id) {
            let _ = tx.send(true);
            return true;
        }
        let mut early = self.early.lock().expect("cancel lock");
        if early.len() >= CANCELLED_MEMORY {
            early.pop_front();
        }
        early.push_back(query_id.to_string());
        true
    }

    fn finish(&self, query_id: &str) {
        self.running.lock().expect("cancel lock").remove(query_id);
    }
}

/// A running query's stream state.
struct Running {
    inner: SendableRecordBatchStream,
    /// The schema announced for the statement (its FlightInfo's): every batch goes out in it.
    schema: SchemaRef,
    deadline: Option<(Instant, Duration)>,
    max_rows: Option<u64>,
    rows: u64,
    done: bool,
    cancel: watch::Receiver<bool>,
    guard: Guard,
}

impl Running {
    async fn next(mut self) -> Option<(Result<RecordBatch, Error>, Self)> {
        if self.done {
            return None;
        }
        let deadline = async {
            match self.deadline {
                Some((at, limit)) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    limit
                }
                None => std::future::pending().await,
            }
        };
        let mut cancel = self.cancel.clone();
        let cancelled = async move {
            loop {
                if *cancel.borrow() {
                    return;
                }
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let item = tokio::select! {
            biased;
            () = cancelled => Err(Error::Cancelled),
            next = self.inner.next() => match next {
                None => {
                    self.guard.outcome = "ok";
                    return None;
                }
                Some(Ok(batch)) => self.count(batch),
                Some(Err(e)) => Err(Error::from(e)),
            },
            limit = deadline => Err(Error::Timeout(limit)),
        };
        if let Err(e) = &item {
            self.done = true;
            self.guard.outcome = match e {
                Error::Cancelled => "cancelled",
                Error::Timeout(_) => "timeout",
                _ => "error",
            };
        }
        Some((item, self))
    }

    fn count(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        let batch = conform(&self.schema, batch)?;
        self.rows += batch.num_rows() as u64;
        match self.max_rows {
            Some(max) if self.rows > max => Err(Error::TooManyRows(max)),
            _ => Ok(batch),
        }
    }
}

/// `batch` in the announced `schema`. A rewrite (a cube, a lookup's copy of a column) may leave
/// a column nullable that the statement's plan declared NOT NULL; clients (ADBC) refuse a
/// stream whose schema differs from the announced one, so the batch is relabelled, which checks
/// that such a column indeed holds no NULL. Types must already agree.
fn conform(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch, Error> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &options)
        .map_err(|e| Error::Internal(format!("a result does not fit the announced schema: {e}")))
}

/// Ends a query's bookkeeping when its stream is dropped (finished, failed or the client left).
struct Guard {
    query_id: String,
    user: String,
    sql: String,
    started: Instant,
    slow: Duration,
    outcome: &'static str,
    cancels: Arc<Cancels>,
    _permit: OwnedSemaphorePermit,
    _snapshot: Arc<Snapshot>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.cancels.finish(&self.query_id);
        let elapsed = self.started.elapsed();
        // Still "abandoned" here: the client went away before the end (its stream was dropped).
        let outcome = self.outcome;
        metrics::gauge!("stockflight_server_queries_running").decrement(1.0);
        metrics::counter!("stockflight_server_queries_total", "outcome" => outcome).increment(1);
        metrics::histogram!("stockflight_server_query_duration_seconds", "outcome" => outcome)
            .record(elapsed.as_secs_f64());
        if elapsed >= self.slow {
            tracing::warn!(query_id = %self.query_id, user = %self.user, elapsed_ms = elapsed.as_millis() as u64, outcome, sql = %self.sql, "slow query");
        } else {
            tracing::info!(query_id = %self.query_id, user = %self.user, elapsed_ms = elapsed.as_millis() as u64, outcome, "query finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::conform;

    #[test]
    fn batches_go_out_in_the_announced_schema() {
        let announced = Arc::new(Schema::new(vec![Field::new("state", DataType::Utf8, false)]));
        let nullable = Arc::new(Schema::new(vec![Field::new("state", DataType::Utf8, true)]));
        let values: ArrayRef = Arc::new(StringArray::from(vec!["CA", "NY"]));
        let batch = RecordBatch::try_new(nullable.clone(), vec![values]).unwrap();
        assert_eq!(conform(&announced, batch).unwrap().schema(), announced);
        // A NULL where NOT NULL was announced is an error, not a silently wrong stream.
        let with_null: ArrayRef = Arc::new(StringArray::from(vec![Some("CA"), None]));
        let batch = RecordBatch::try_new(nullable, vec![with_null]).unwrap();
        assert!(conform(&announced, batch).is_err());
    }
}
