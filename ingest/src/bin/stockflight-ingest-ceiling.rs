//! Benchmark helper: the raw write ceiling of a Cassandra cluster for the availability table —
//! the same prepared upsert ingest uses, straight from the scylla driver, no Kafka — at several
//! concurrency levels. Prints one JSON line per level. Used by `bench/ingest.sh`.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
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
    /// Keyspace (created if missing, SimpleStrategy RF 1).
    #[arg(long = "cassandra-keyspace", default_value = "stockflight_bench_ceiling")]
    keyspace: String,
    /// Rows written per level.
    #[arg(long = "rows", default_value_t = 500_000)]
    rows: u64,
    /// Distinct items (rows are spread over items x nodes like the load generator's ids).
    #[arg(long = "items", default_value_t = 100_000)]
    items: u64,
    /// Distinct nodes.
    #[arg(long = "nodes", default_value_t = 500)]
    node_count: u64,
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
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        )
        .await?,
    );
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
            let store = Arc::clone(&store);
            let u = update(i, args.items, args.node_count, base_us);
            tasks.spawn(async move { store.upsert(&u).await });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{{\"concurrency\":{concurrency},\"rows\":{},\"seconds\":{secs:.3},\"rows_per_sec\":{:.0}}}",
            args.rows,
            args.rows as f64 / secs
        );
    }
    Ok(())
}
