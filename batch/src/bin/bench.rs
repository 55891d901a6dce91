//! `stockflight-batch-bench`: loads a large availability table and measures the batch job
//! against a raw token-range scan of the same table (see `bench/batch.sh`).
//!
//! ```text
//! stockflight-batch-bench load --rows 10000000 ...   # fast loader: concurrent prepared inserts
//! stockflight-batch-bench scan ...                   # raw scan: deserialize and count rows only
//! stockflight-batch-bench job ...                    # the whole batch run (scan, join, write, publish)
//! stockflight-batch-bench --workers A,B job ...       # the same on `stockflight-batch worker` processes
//! ```
//! Each prints one `key=value` line with rows, seconds, rows/s and the process's peak RSS.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use chrono::Utc;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlTimestamp;
use stockflight_batch::run::{self, RunOptions};
use stockflight_batch::scan::{PageOptions, Scan, ScanProgress, TableReader, split_count, split_ring};
use stockflight_common::sections::StorageSection;
use stockflight_common::storage::Storage;
use stockflight_proto::cassandra;

#[derive(Debug, Parser)]
#[command(name = "stockflight-batch-bench")]
struct Cli {
    /// Cassandra contact point.
    #[arg(long, default_value = "127.0.0.1:9042")]
    cassandra: String,
    /// Keyspace of the benchmark table.
    #[arg(long, default_value = "stockflight_bench")]
    keyspace: String,
    /// Storage root (reference data and snapshots).
    #[arg(long, default_value = ".stockflight/bench-data")]
    storage: String,
    /// Concurrent token-range readers.
    #[arg(long, default_value_t = 8)]
    parallelism: usize,
    /// DataFusion memory pool in MiB (job).
    #[arg(long, default_value_t = 1024)]
    memory_mb: usize,
    /// Worker addresses (`host:port,...`) for a distributed job; empty: single-process.
    #[arg(long, default_value = "")]
    workers: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Creates the table and reference data and inserts `rows` rows.
    Load {
        /// Rows to insert.
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// Nodes; items = rows / nodes.
        #[arg(long, default_value_t = 1000)]
        nodes: u64,
        /// Concurrent inserts in flight.
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
    },
    /// Raw scan: reads every token range and counts rows.
    Scan,
    /// The batch job end to end.
    Job,
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) end with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Page requests as the job makes them by default.
fn page_options() -> PageOptions {
    PageOptions {
        page_size: 5000,
        retries: 5,
        request_timeout: std::time::Duration::from_secs(15),
        consistency: stockflight_common::sections::Consistency::Auto,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let storage = Storage::open(&StorageSection::local(cli.storage.clone()))?;
    let started = Instant::now();
    let mut pass_seconds = None;
    let (what, rows) = match cli.command {
        Cmd::Load {
            rows,
            nodes,
            concurrency,
        } => (
            "load",
            load(&cli.cassandra, &cli.keyspace, &storage, rows, nodes, concurrency).await?,
        ),
        Cmd::Scan => {
            let reader =
                TableReader::connect(std::slice::from_ref(&cli.cassandra), &cli.keyspace, page_options()).await?;
            let splits = split_count(reader.estimated_bytes().await, 64 << 20, cli.parallelism);
            let scan = Scan::new(
                Arc::new(reader),
                split_ring(splits),
                cli.parallelism,
                Arc::new(ScanProgress::default()),
            );
            ("scan", scan.count_rows().await?)
        }
        Cmd::Job => {
            let options = RunOptions {
                nodes: vec![cli.cassandra.clone()],
                keyspace: cli.keyspace.clone(),
                consistency: page_options().consistency,
                parallelism: cli.parallelism,
                page_size: page_options().page_size,
                split_bytes: 64 << 20,
                retries: page_options().retries,
                request_timeout: page_options().request_timeout,
                lease_ttl: std::time::Duration::from_secs(60),
                memory_limit: cli.memory_mb << 20,
                spill_dir: None,
                row_group_rows: 512 * 1024,
                retention: 2,
                workers: cli
                    .workers
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(String::from)
                    .collect(),
            };
            let now = Utc::now();
            let run_id = format!("bench{}", now.format("%Y%m%dT%H%M%S%3f"));
            let summary = run::run(&options, &storage, &run_id, now, std::future::pending()).await?;
            eprint!("{}", summary.render());
            pass_seconds = Some(summary.pass_duration.as_secs_f64());
            ("job", summary.rows_scanned)
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let pass = pass_seconds.map_or(String::new(), |p| format!(" pass_seconds={p:.2}"));
    println!(
        "{what} rows={rows} seconds={secs:.2} rows_per_s={:.0} peak_rss_mib={:.0} cpu_seconds={:.1}{pass}",
        rows as f64 / secs,
        peak_rss_mib(),
        cpu_seconds()
    );
    Ok(())
}

async fn load(
    contact: &str,
    keyspace: &str,
    storage: &Storage,
    rows: u64,
    nodes: u64,
    concurrency: usize,
) -> Result<u64, Box<dyn std::error::Error>> {
    let items = rows.div_ceil(nodes);
    write_reference(storage, items, nodes).await?;
    let session = SessionBuilder::new().known_node(contact).build().await?;
    for ddl in cassandra::create_schema(keyspace, "{'class': 'SimpleStrategy', 'replication_factor': 1}") {
        session.query_unpaged(ddl, ()).await?;
    }
    let insert = session.prepare(cassandra::upsert(keyspace)).await?;
    let (session, insert) = (&session, &insert);
    let started = Instant::now();
    let mut done = 0u64;
    let mut results = futures::stream::iter(0..rows)
        .map(|i| async move {
            let (item, node) = (i / nodes, i % nodes);
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let event_time_ms = 1_764_000_000_000 + (h >> 24) as i64 % 1_000_000;
            let state = cassandra::State {
                sequence: Some(i as i64),
                source: Some("wms".into()),
                available_qty: Some((h % 200) as i64),
                reserved_qty: Some(((h >> 8) % 20) as i64),
                status: Some((1 + (h >> 16) % 4) as i8),
                event_time: Some(CqlTimestamp(event_time_ms)),
            };
            session
                .execute_unpaged(
                    insert,
                    (
                        format!("sku-{item:08}"),
                        format!("node-{node:05}"),
                        state,
                        event_time_ms * 1000,
                    ),
                )
                .await
        })
        .buffer_unordered(concurrency);
    while let Some(result) = results.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(500_000) {
            eprintln!(
                "loaded {done} rows ({:.0} rows/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(done)
}

async fn write_reference(storage: &Storage, items: u64, nodes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    let items_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("item_id"),
            utf8("name"),
            utf8("department"),
            utf8("category"),
            utf8("brand"),
            Field::new("price", DataType::Float64, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values((0..items).map(|i| format!("sku-{i:08}")))),
            Arc::new(StringArray::from_iter_values((0..items).map(|i| format!("Item {i}")))),
            Arc::new(StringArray::from_iter_values(
                (0..items).map(|i| format!("dept-{}", i % 12)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..items).map(|i| format!("cat-{}", i % 120)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..items).map(|i| format!("brand-{}", i % 300)),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..items).map(|i| (i % 100) as f64 + 0.99),
            )),
        ],
    )?;
    let nodes_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("node_id"),
            utf8("node_type"),
            utf8("region"),
            utf8("state"),
            utf8("city"),
            Field::new("latitude", DataType::Float64, false),
            Field::new("longitude", DataType::Float64, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..nodes).map(|n| format!("node-{n:05}")),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..nodes).map(|n| ["store", "warehouse", "fulfilment_centre"][(n % 3) as usize]),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..nodes).map(|n| format!("region-{}", n % 5)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..nodes).map(|n| format!("state-{}", n % 40)),
            )),
            Arc::new(StringArray::from_iter_values((0..nodes).map(|n| format!("city-{n}")))),
            Arc::new(Float64Array::from_iter_values(
                (0..nodes).map(|n| 30.0 + (n % 20) as f64),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..nodes).map(|n| -120.0 + (n % 40) as f64),
            )),
        ],
    )?;
    for (key, batch) in [
        ("reference/items/items.parquet", items_batch),
        ("reference/nodes/nodes.parquet", nodes_batch),
    ] {
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None)?;
        writer.write(&batch)?;
        writer.close()?;
        storage.store().put(&Path::from(key), Bytes::from(out).into()).await?;
    }
    Ok(())
}
