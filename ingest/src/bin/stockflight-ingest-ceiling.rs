//! Benchmark helper: the raw write ceiling of a Cassandra cluster for availability rows, straight
//! from the scylla driver, no Kafka, at several concurrency levels. Prints one JSON line per
//! level. Used by `bench/ingest.sh`.
//!
//! `--mode plain` (the reference): a plain upsert of the same rows into a table with one column
//! per field, no `USING TIMESTAMP`, the cheapest write of this data Cassandra takes.
//! `--mode ingest`: ingest's own exact last-write-wins upsert (`CassandraStore::upsert`), with
//! its change-log write too when `--change-log true` (as `ingest.change_log` does).

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use stockflight_common::cql;
use stockflight_common::sections::Consistency;
use stockflight_ingest::store::CassandraStore;
use stockflight_proto::v1::{AvailabilityStatus, AvailabilityUpdate};
use tokio::task::JoinSet;

/// Writes `rows` synthetic updates per concurrency level and reports rows/s.
#[derive(Debug, Parser)]
struct Args {
    /// Cassandra contact points.
    #[arg(
        long = "cassandra-nodes",
        env = "STOCKFLIGHT_CASSANDRA_NODES",
        default_value = "127.0.0.1:9042"
    )]
    nodes: String,
    /// Keyspace (created if missing with `--replication-factor`).
    #[arg(long = "cassandra-keyspace", default_value = "stockflight_bench_ceiling")]
    keyspace: String,
    /// SimpleStrategy replication factor of the keyspace; both modes write at `auto`
    /// consistency (one with RF 1, local quorum above).
    #[arg(long = "replication-factor", default_value_t = 1)]
    replication_factor: u32,
    /// Rows written per level.
    #[arg(long = "rows", default_value_t = 500_000)]
    rows: u64,
    /// Distinct items (rows are spread over items x nodes like the load generator's ids).
    #[arg(long = "items", default_value_t = 100_000)]
    items: u64,
    /// Distinct nodes.
    #[arg(long = "nodes", default_value_t = 500)]
    node_count: u64,
    /// `plain` (one column per field, no write timestamp: the reference) or `ingest` (ingest's upsert).
    #[arg(long = "mode", default_value = "plain")]
    mode: String,
    /// With `--mode ingest`: also write the change log, as ingest does with `ingest.change_log`.
    #[arg(long = "change-log", default_value_t = false, action = clap::ArgAction::Set)]
    change_log: bool,
    /// Concurrency levels to try, comma-separated.
    #[arg(long = "concurrency", default_value = "128,512,2048", value_delimiter = ',')]
    concurrency: Vec<usize>,
}

fn update(i: u64, items: u64, nodes: u64, base_us: i64) -> AvailabilityUpdate {
    let item = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % items;
    AvailabilityUpdate {
        item_id: format!("sku-{item:08}"),
        node_id: format!("store-{:05}", (i / items + i) % nodes),
        available_qty: (i % 200) as i64,
        reserved_qty: (i % 7) as i64,
        status: AvailabilityStatus::InStock as i32,
        event_time_us: base_us + i as i64,
        source: "pos".into(),
        sequence: i,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let nodes: Vec<String> = args.nodes.split(',').map(str::to_string).collect();
    let store = Arc::new(
        CassandraStore::open(
            &nodes,
            &args.keyspace,
            &format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                args.replication_factor
            ),
            Consistency::Auto,
            // The change log's lifetime does not change the cost of a write.
            args.change_log.then_some(86_400),
        )
        .await?,
    );
    let plain = match args.mode.as_str() {
        "plain" => Some(Arc::new(Plain::open(&nodes, &args.keyspace).await?)),
        "ingest" => None,
        other => return Err(format!("--mode {other}: expected plain or ingest").into()),
    };
    let base_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    for (level, &concurrency) in args.concurrency.iter().enumerate() {
        let offset = level as u64 * args.rows;
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for i in offset..offset + args.rows {
            if tasks.len() >= concurrency {
                tasks.join_next().await.expect("a task")??;
            }
            let u = update(i, args.items, args.node_count, base_us);
            if let Some(plain) = &plain {
                let plain = Arc::clone(plain);
                tasks.spawn(async move { plain.upsert(&u).await });
            } else {
                let store = Arc::clone(&store);
                tasks.spawn(async move { store.upsert(&u).await });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{{\"mode\":\"{}\",\"concurrency\":{concurrency},\"rows\":{},\"seconds\":{secs:.3},\"rows_per_sec\":{:.0}}}",
            args.mode,
            args.rows,
            args.rows as f64 / secs
        );
    }
    Ok(())
}

/// The reference write: one column per field, Cassandra's own timestamps.
struct Plain {
    session: Session,
    insert: PreparedStatement,
}

impl Plain {
    async fn open(nodes: &[String], keyspace: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let session = SessionBuilder::new().known_nodes(nodes).build().await?;
        session
            .query_unpaged(
                format!(
                    "CREATE TABLE IF NOT EXISTS {keyspace}.availability_plain (item_id text, node_id text, \
                     available_qty bigint, reserved_qty bigint, status tinyint, event_time timestamp, source text, \
                     sequence bigint, PRIMARY KEY ((item_id), node_id))"
                ),
                (),
            )
            .await?;
        session.await_schema_agreement().await?;
        session.refresh_metadata().await?;
        let mut insert = session
            .prepare(format!(
                "INSERT INTO {keyspace}.availability_plain (item_id, node_id, available_qty, reserved_qty, status, \
                 event_time, source, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?;
        insert.set_is_idempotent(true);
        insert.set_consistency(cql::consistency(&session, keyspace, Consistency::Auto));
        Ok(Self { session, insert })
    }

    async fn upsert(&self, u: &AvailabilityUpdate) -> Result<(), ExecutionError> {
        let values = (
            u.item_id.as_str(),
            u.node_id.as_str(),
            u.available_qty,
            u.reserved_qty,
            u.status as i8,
            CqlTimestamp(u.event_time_us.div_euclid(1000)),
            u.source.as_str(),
            u.sequence as i64,
        );
        self.session.execute_unpaged(&self.insert, values).await.map(|_| ())
    }
}
