//! Results of recent queries on one snapshot, kept for the next identical query.
//!
//! A snapshot does not change for hours and dashboards send the same statements again and again
//! (every viewer, every refresh), so a finished result is kept, keyed by its SQL text and bound
//! parameters ([`super::plan::statement_key`]), and served from memory the next time. Only deterministic plans are kept: a
//! statement calling `now()`, `random()` or any other non-immutable function is run every time.
//! The cache lives in the [`crate::catalog::Snapshot`]: a new snapshot starts empty, and the old
//! one's results go with it. Bounded in bytes (`catalog.result_cache_mb`), least recently and
//! least frequently used first out; a result larger than an eighth of the budget is not kept.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::RecordBatchStream;
use futures::Stream;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// One kept result.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The result's schema.
    pub schema: SchemaRef,
    /// Its batches, in order.
    pub batches: Arc<Vec<RecordBatch>>,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct ByBytes;

impl Weighter<String, Kept> for ByBytes {
    fn weight(&self, key: &String, kept: &Kept) -> u64 {
        (key.len() as u64 + kept.bytes).max(1)
    }
}

/// Kept results of one snapshot.
#[derive(Debug)]
pub struct ResultCache {
    cache: Option<Cache<String, Kept, ByBytes>>,
    max_entry: u64,
}

impl ResultCache {
    /// A cache of at most `bytes` of results; `0` keeps nothing.
    pub fn new(bytes: u64) -> Self {
        Self {
            // Dashboard results are small: a guess of 16 KiB each sizes the table.
            cache: (bytes > 0).then(|| Cache::with_weighter((bytes / 16_384).max(16) as usize, bytes, ByBytes)),
            max_entry: bytes / 8,
        }
    }

    /// The kept result of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Kept> {
        let kept = self.cache.as_ref()?.get(key);
        metrics::counter!("stockflight_server_result_cache_total", "outcome" => if kept.is_some() { "hit" } else { "miss" })
            .increment(1);
        kept
    }

    /// Whether results can be kept at all.
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// Bytes of results kept now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, Cache::weight)
    }

    fn insert(&self, key: String, kept: Kept) {
        if let Some(cache) = &self.cache {
            cache.insert(key, kept);
            metrics::gauge!("stockflight_server_result_cache_bytes").set(self.weight() as f64);
        }
    }
}

/// Whether `plan` returns the same rows whenever it runs on the same tables: no function in it
/// (subqueries included) is stable (`now()`) or volatile (`random()`), and it reads no live
/// table (whose rows change without a new snapshot).
pub fn deterministic(plan: &LogicalPlan) -> bool {
    if crate::live::reads_live(plan) {
        return false;
    }
    let mut pure = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    pure = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if pure {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    pure
}

/// Passes a query's batches through and keeps them in `cache` under `key` once the stream has
/// ended without error, unless they outgrew the largest entry the cache takes.
pub struct Recording {
    inner: SendableRecordBatchStream,
    cache: Arc<ResultCache>,
    key: Option<String>,
    /// The schema the statement announced (kept with the result: it is what a repeat announces).
    announced: SchemaRef,
    batches: Vec<RecordBatch>,
    bytes: u64,
}

impl Recording {
    /// Records `inner` for `cache` under `key`, as a result of schema `announced`.
    pub fn new(inner: SendableRecordBatchStream, cache: Arc<ResultCache>, key: String, announced: SchemaRef) -> Self {
        Self {
            inner,
            cache,
            key: Some(key),
            announced,
            batches: Vec::new(),
            bytes: 0,
        }
    }
}

impl Stream for Recording {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = std::task::ready!(this.inner.as_mut().poll_next(cx));
        match &item {
            Some(Ok(batch)) if this.key.is_some() => {
                this.bytes += batch.get_array_memory_size() as u64;
                if this.bytes > this.cache.max_entry {
                    this.key = None;
                    this.batches = Vec::new();
                } else {
                    this.batches.push(batch.clone());
                }
            }
            Some(Err(_)) => this.key = None,
            None => {
                if let Some(key) = this.key.take() {
                    let kept = Kept {
                        schema: this.announced.clone(),
                        batches: Arc::new(std::mem::take(&mut this.batches)),
                        bytes: this.bytes,
                    };
                    this.cache.insert(key, kept);
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(item)
    }
}

impl RecordBatchStream for Recording {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = crate::plan::tests::context_with_t().await;
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn only_immutable_plans_are_deterministic() {
        assert!(deterministic(
            &plan("SELECT upper(column2), count(*) FROM t GROUP BY 1").await
        ));
        assert!(!deterministic(&plan("SELECT now()").await));
        assert!(!deterministic(
            &plan("SELECT column1 FROM t WHERE random() < 0.5").await
        ));
        assert!(!deterministic(
            &plan("SELECT column1 FROM t WHERE column1 IN (SELECT column1 FROM t WHERE random() < 0.5)").await
        ));
    }

    #[tokio::test]
    async fn a_finished_result_is_kept_and_a_large_one_is_not() {
        let ctx = SessionContext::new();
        let cache = Arc::new(ResultCache::new(1 << 20));
        let run = |sql: &'static str| {
            let (ctx, cache) = (ctx.clone(), cache.clone());
            async move {
                let stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
                let schema = stream.schema();
                let recording = Recording::new(stream, cache, sql.to_string(), schema);
                recording.try_collect::<Vec<_>>().await.unwrap()
            }
        };
        let small = "SELECT * FROM (VALUES (1), (2)) AS v(x)";
        let rows: usize = run(small).await.iter().map(RecordBatch::num_rows).sum();
        let kept = cache.get(small).expect("kept");
        assert_eq!(kept.batches.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
        // 1M rows of Int64 are 8 MB, more than an eighth of 1 MiB.
        let large = "SELECT * FROM generate_series(1, 1000000)";
        run(large).await;
        assert!(cache.get(large).is_none());
        assert!(cache.weight() < 1 << 20);
        assert!(ResultCache::new(0).get(small).is_none());
    }
}
