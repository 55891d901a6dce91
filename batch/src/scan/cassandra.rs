//! Reading the availability table from Cassandra: one token range, page by page, into Arrow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{ArrayRef, Int8Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use backon::{ExponentialBuilder, Retryable};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::{NodeIdentifier, SingleTargetLoadBalancingPolicy};
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use stockflight_common::cql;
use stockflight_common::sections::Consistency;
use stockflight_proto::cassandra::{AVAILABILITY_TABLE, State};

use super::ranges::TokenRange;
use crate::error::Error;

/// Arrow schema of the scanned table. Timestamps are UTC without a time zone, in microseconds,
/// which every BI driver maps to a plain timestamp.
pub fn availability_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("item_id", DataType::Utf8, false),
        Field::new("node_id", DataType::Utf8, false),
        Field::new("available_qty", DataType::Int64, true),
        Field::new("reserved_qty", DataType::Int64, true),
        Field::new("status", DataType::Int8, true),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("source", DataType::Utf8, true),
        Field::new("sequence", DataType::Int64, true),
    ]))
}

/// One row as the driver hands it over: the keys borrowed from the response frame, the whole
/// update in `state` (see `stockflight_proto::cassandra`; null only if an operator wrote a row
/// without one).
type Row<'a> = (&'a str, &'a str, Option<State>);

/// What a reader does with each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMode {
    /// Build an Arrow record batch (the batch job).
    Arrow,
    /// Deserialize and count only (the benchmark's raw-scan reference).
    CountOnly,
}

/// Connects to the cluster.
pub async fn connect(nodes: &[String]) -> Result<Session, Error> {
    SessionBuilder::new()
        .known_nodes(nodes)
        .build()
        .await
        .map_err(|e| Error::Cassandra(format!("connect to {}: {e}", nodes.join(","))))
}

/// How pages are requested.
#[derive(Debug, Clone, Copy)]
pub struct PageOptions {
    /// Rows per page.
    pub page_size: i32,
    /// Retries of a failed page.
    pub retries: usize,
    /// Time a page request may take before it counts as failed (and is retried).
    pub request_timeout: Duration,
    /// Read consistency (`auto`: local quorum when the keyspace has replicas, else one).
    pub consistency: Consistency,
}

/// A connected reader of the availability table.
#[derive(Debug)]
pub struct TableReader {
    session: Arc<Session>,
    select: PreparedStatement,
    keyspace: String,
    retries: usize,
}

impl TableReader {
    /// Prepares the range query on `session` with the given page options.
    pub async fn new(session: Arc<Session>, keyspace: &str, options: PageOptions) -> Result<Self, Error> {
        let cql = format!(
            "SELECT item_id, node_id, state \
             FROM {keyspace}.{AVAILABILITY_TABLE} WHERE token(item_id) > ? AND token(item_id) <= ?"
        );
        let mut select = session
            .prepare(cql)
            .await
            .map_err(|e| Error::Cassandra(format!("prepare the scan of {keyspace}.{AVAILABILITY_TABLE}: {e}")))?;
        select.set_page_size(options.page_size);
        select.set_request_timeout(Some(options.request_timeout));
        let level = cql::consistency(&session, keyspace, options.consistency);
        select.set_consistency(level);
        tracing::debug!(keyspace, consistency = ?level, "scan prepared");
        Ok(Self {
            session,
            select,
            keyspace: keyspace.to_string(),
            retries: options.retries,
        })
    }

    /// Connects and prepares the range query (for a reader that needs no other query).
    pub async fn connect(nodes: &[String], keyspace: &str, options: PageOptions) -> Result<Self, Error> {
        Self::new(Arc::new(connect(nodes).await?), keyspace, options).await
    }

    /// The table's estimated size in bytes from `system.size_estimates` (0 when Cassandra has
    /// not computed estimates yet, e.g. right after the table was created).
    ///
    /// The table is node-local and each node reports only its own ranges: every node is asked,
    /// and a total that still misses part of the ring (a node down) is scaled up by the share
    /// of the ring covered.
    pub async fn estimated_bytes(&self) -> u64 {
        // Each node reports only the ranges it owns: ask every node of the ring, not the one
        // the driver happens to pick, and merge (a range reported twice counts once).
        let nodes = self.session.get_cluster_state().get_nodes_info().to_vec();
        let mut merged: std::collections::HashMap<(i64, i64), u64> = std::collections::HashMap::new();
        let mut answered = 0;
        for node in &nodes {
            match self.node_estimates(node).await {
                Ok(ranges) => {
                    answered += 1;
                    for r in ranges {
                        let bytes = merged.entry((r.start, r.end)).or_default();
                        *bytes = (*bytes).max(r.bytes);
                    }
                }
                Err(e) => tracing::warn!(node = %node.address, error = %e, "size estimates of a node unreadable"),
            }
        }
        if answered == 0 {
            tracing::warn!("size estimates unreadable; splitting by parallelism only");
            return 0;
        }
        let estimates: Vec<RangeEstimate> = merged
            .into_iter()
            .map(|((start, end), bytes)| RangeEstimate { start, end, bytes })
            .collect();
        tracing::debug!(
            nodes = nodes.len(),
            answered,
            ranges = estimates.len(),
            "size estimates gathered"
        );
        ring_estimate(&estimates)
    }

    /// The `system.size_estimates` rows of one node (a node-local table).
    async fn node_estimates(&self, node: &Arc<scylla::cluster::Node>) -> Result<Vec<RangeEstimate>, String> {
        let mut query = Statement::new(
            "SELECT range_start, range_end, partitions_count, mean_partition_size FROM system.size_estimates \
             WHERE keyspace_name = ? AND table_name = ?",
        );
        query.set_load_balancing_policy(Some(SingleTargetLoadBalancingPolicy::new(
            NodeIdentifier::Node(Arc::clone(node)),
            None,
        )));
        let rows = self
            .session
            .query_unpaged(query, (&self.keyspace, AVAILABILITY_TABLE))
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        let iter = rows
            .rows::<(String, String, Option<i64>, Option<i64>)>()
            .map_err(|e| e.to_string())?;
        Ok(iter
            .filter_map(Result::ok)
            .filter_map(|(start, end, count, mean)| {
                Some(RangeEstimate {
                    start: start.parse().ok()?,
                    end: end.parse().ok()?,
                    bytes: (count.unwrap_or(0).max(0) as u64).saturating_mul(mean.unwrap_or(0).max(0) as u64),
                })
            })
            .collect())
    }

    /// Reads one page of `range` starting at `paging`, retrying a failed request with backoff
    /// (each retry counted in `retried`); gives up (and fails the run) only after the
    /// configured retries.
    pub async fn page(
        &self,
        range: TokenRange,
        paging: PagingState,
        mode: PageMode,
        retried: &AtomicU64,
    ) -> Result<(Page, PagingStateResponse), Error> {
        let fetch = || async {
            self.session
                .execute_single_page(&self.select, (range.start, range.end), paging.clone())
                .await
        };
        let (result, next) = fetch
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10))
                    .with_max_times(self.retries),
            )
            .notify(|err, wait| {
                let total = retried.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::gauge!("stockflight_batch_scan_page_retries").set(total as f64);
                tracing::warn!(error = %err, ?wait, start = range.start, end = range.end, "token range page failed; retrying");
            })
            .await
            .map_err(|e| {
                Error::Cassandra(format!(
                    "token range ({}, {}] failed after {} retries: {e}",
                    range.start, range.end, self.retries
                ))
            })?;
        let rows = result
            .into_rows_result()
            .map_err(|e| Error::Cassandra(format!("scan response: {e}")))?;
        let page = match mode {
            PageMode::CountOnly => {
                let mut n = 0;
                for row in rows
                    .rows::<Row>()
                    .map_err(|e| Error::Cassandra(format!("scan rows: {e}")))?
                {
                    row.map_err(|e| Error::Cassandra(format!("scan row: {e}")))?;
                    n += 1;
                }
                Page::Counted(n)
            }
            PageMode::Arrow => Page::Batch(to_batch(&rows)?),
        };
        Ok((page, next))
    }
}

/// One row of `system.size_estimates`: the bytes of the table in the range `(start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeEstimate {
    /// Exclusive start token.
    pub start: i64,
    /// Inclusive end token (a range may wrap around the ring).
    pub end: i64,
    /// Estimated bytes in the range.
    pub bytes: u64,
}

/// The whole table's estimated bytes from the ranges the nodes report: their sum divided by
/// the share of the ring they cover (all of it once every node answered).
pub fn ring_estimate(ranges: &[RangeEstimate]) -> u64 {
    let ring = u64::MAX as f64 + 1.0;
    let covered: f64 = ranges
        .iter()
        .map(|r| {
            let width = (r.end as i128 - r.start as i128).rem_euclid(1i128 << 64);
            // start == end denotes the whole ring (a single-token node).
            if width == 0 { ring } else { width as f64 }
        })
        .sum();
    let bytes: u64 = ranges.iter().map(|r| r.bytes).fold(0, u64::saturating_add);
    if covered <= 0.0 {
        return 0;
    }
    (bytes as f64 * (ring / covered).max(1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_scale_to_the_whole_ring() {
        // A single-token node reports the ring as two ranges around token 0.
        let whole = [
            RangeEstimate {
                start: i64::MIN,
                end: 0,
                bytes: 100,
            },
            RangeEstimate {
                start: 0,
                end: i64::MIN,
                bytes: 300,
            },
        ];
        assert_eq!(ring_estimate(&whole), 400);
        // A node owning a quarter of the ring: four times what it holds.
        let quarter = [RangeEstimate {
            start: 0,
            end: i64::MAX / 2,
            bytes: 1000,
        }];
        let estimate = ring_estimate(&quarter);
        assert!((3990..=4010).contains(&estimate), "{estimate}");
        assert_eq!(ring_estimate(&[]), 0);
    }
}

/// One page's worth of rows.
#[derive(Debug)]
pub enum Page {
    /// The rows as Arrow.
    Batch(RecordBatch),
    /// Only the number of rows.
    Counted(usize),
}

impl Page {
    /// Rows in the page.
    pub fn rows(&self) -> usize {
        match self {
            Self::Batch(b) => b.num_rows(),
            Self::Counted(n) => *n,
        }
    }
}

fn to_batch(rows: &scylla::response::query_result::QueryRowsResult) -> Result<RecordBatch, Error> {
    let n = rows.rows_num();
    let mut item = StringBuilder::with_capacity(n, n * 16);
    let mut node = StringBuilder::with_capacity(n, n * 16);
    let mut available = Int64Builder::with_capacity(n);
    let mut reserved = Int64Builder::with_capacity(n);
    let mut status = Int8Builder::with_capacity(n);
    let mut event_time = TimestampMicrosecondBuilder::with_capacity(n);
    let mut source = StringBuilder::with_capacity(n, n * 4);
    let mut sequence = Int64Builder::with_capacity(n);
    for row in rows
        .rows::<Row>()
        .map_err(|e| Error::Cassandra(format!("scan rows: {e}")))?
    {
        let (i, nd, state) = row.map_err(|e| Error::Cassandra(format!("scan row: {e}")))?;
        item.append_value(i);
        node.append_value(nd);
        let state = state.as_ref();
        available.append_option(state.and_then(|s| s.available_qty));
        reserved.append_option(state.and_then(|s| s.reserved_qty));
        status.append_option(state.and_then(|s| s.status));
        event_time.append_option(state.and_then(|s| s.event_time).map(|t| t.0.saturating_mul(1000)));
        source.append_option(state.and_then(|s| s.source.as_deref()));
        sequence.append_option(state.and_then(|s| s.sequence));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(item.finish()),
        Arc::new(node.finish()),
        Arc::new(available.finish()),
        Arc::new(reserved.finish()),
        Arc::new(status.finish()),
        Arc::new(event_time.finish()),
        Arc::new(source.finish()),
        Arc::new(sequence.finish()),
    ];
    RecordBatch::try_new(availability_schema(), columns).map_err(|e| Error::Cassandra(format!("scan batch: {e}")))
}
