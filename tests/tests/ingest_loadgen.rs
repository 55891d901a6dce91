//! `stockflight-loadgen` end to end: reference Parquet files with the contract's columns, and
//! update streams on real Kafka that are deterministic by seed, consistent with the reference
//! data, valid, skewed, and carry the duplicates and late events they were asked for.

#[path = "support/ingest/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use prost::Message as _;
use rdkafka::Message;
use stockflight_proto::layout::reference;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::{binary, unique};

fn loadgen(args: &[&str]) -> String {
    let output = Command::new(binary("stockflight-loadgen"))
        .args(args)
        .args(["--log-format", "json", "--produce-progress", "false"])
        .output()
        .expect("run stockflight-loadgen");
    assert!(
        output.status.success(),
        "stockflight-loadgen {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet footer")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches")
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap_or_else(|| panic!("column {column}"));
            let col = col.as_string::<i32>();
            (0..col.len()).map(|i| col.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn reference_files_have_the_contract_columns_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let reseeded = tempfile::tempdir().unwrap();
    let args = ["reference", "--dataset-items", "2000", "--dataset-nodes", "60"];
    for (d, seed) in [(&dir, "1"), (&other, "1"), (&reseeded, "2")] {
        let url = d.path().to_str().unwrap();
        loadgen(&[&args[..], &["--storage-url", url, "--dataset-seed", seed]].concat());
    }

    let tables = [
        (reference::ITEMS, reference::ITEMS_COLUMNS, 2000, "item_id"),
        (reference::NODES, reference::NODES_COLUMNS, 60, "node_id"),
    ];
    for (table, columns, rows, key) in tables {
        let file = |d: &tempfile::TempDir| d.path().join(format!("reference/{table}/{table}.parquet"));
        let batches = read_parquet(&file(&dir));
        let schema = batches[0].schema();
        let actual: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let expected: Vec<(String, String)> = columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(actual, expected, "{table} columns");
        let ids = strings(&batches, key);
        assert_eq!(ids.len(), rows, "{table} rows");
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            rows,
            "{table} keys are unique"
        );
        assert_eq!(read_parquet(&file(&other)), batches, "{table}: same seed, same data");
        assert_ne!(
            read_parquet(&file(&reseeded)),
            batches,
            "{table}: another seed, other data"
        );
    }

    let nodes = read_parquet(&dir.path().join("reference/nodes/nodes.parquet"));
    let types: HashSet<String> = strings(&nodes, "node_type").into_iter().collect();
    let allowed: HashSet<String> = ["store", "warehouse", "fulfilment_centre"].map(String::from).into();
    assert_eq!(types, allowed, "all three node types, nothing else");
    for b in &nodes {
        let lat = b.column_by_name("latitude").unwrap().as_primitive::<Float64Type>();
        let lon = b.column_by_name("longitude").unwrap().as_primitive::<Float64Type>();
        assert!(lat.values().iter().all(|v| (-90.0..=90.0).contains(v)));
        assert!(lon.values().iter().all(|v| (-180.0..=180.0).contains(v)));
    }
    let items = read_parquet(&dir.path().join("reference/items/items.parquet"));
    for b in &items {
        let price = b.column_by_name("price").unwrap().as_primitive::<Float64Type>();
        assert!(price.values().iter().all(|p| *p > 0.0), "prices are positive");
    }
}

/// Reads exactly `n` records of a one-partition topic, in order: (key, value, content-type).
async fn consume(topic: &str, n: usize) -> Vec<(String, Vec<u8>, Option<String>)> {
    let consumer = support::reader(topic);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{topic}: only {} of {n} records within 60 s", out.len()))
            .expect("consume");
        let ct = support::header(&m, "content-type");
        out.push((
            String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
            m.payload().unwrap().to_vec(),
            ct,
        ));
    }
    // Nothing beyond the requested count.
    let extra = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await;
    assert!(extra.is_err(), "{topic}: more records than produced");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_streams_are_deterministic_valid_and_shaped_as_asked() {
    const N: usize = 4000;
    const START: i64 = 1_764_000_000_000_000;
    let (a, b, c) = (unique("loadgen_a"), unique("loadgen_b"), unique("loadgen_c"));
    for t in [&a, &b, &c] {
        support::create_topic(t, 1).await;
    }
    let brokers = support::brokers();
    let produce = |topic: &str, seed: &str| {
        loadgen(&[
            "produce",
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            topic,
            "--produce-count",
            &N.to_string(),
            "--dataset-items",
            "1000",
            "--dataset-nodes",
            "40",
            "--dataset-seed",
            seed,
            "--produce-duplicate-ratio",
            "0.1",
            "--produce-out-of-order-ratio",
            "0.2",
            "--produce-start-time-us",
            &START.to_string(),
        ])
    };
    let summary = produce(&a, "7");
    assert!(summary.contains(&format!("\"messages\":{N}")), "{summary}");
    produce(&b, "7");
    produce(&c, "8");
    let (ra, rb, rc) = (consume(&a, N).await, consume(&b, N).await, consume(&c, N).await);
    assert_eq!(ra, rb, "same seed and options: the same stream");
    assert_ne!(ra, rc, "another seed: another stream");

    // The ids the stream uses are the ones the reference data describes.
    let dir = tempfile::tempdir().unwrap();
    loadgen(&[
        "reference",
        "--storage-url",
        dir.path().to_str().unwrap(),
        "--dataset-items",
        "1000",
        "--dataset-nodes",
        "40",
        "--dataset-seed",
        "7",
    ]);
    let item_ids: HashSet<String> = strings(
        &read_parquet(&dir.path().join("reference/items/items.parquet")),
        "item_id",
    )
    .into_iter()
    .collect();
    let node_ids: HashSet<String> = strings(
        &read_parquet(&dir.path().join("reference/nodes/nodes.parquet")),
        "node_id",
    )
    .into_iter()
    .collect();

    let mut per_item: HashMap<String, usize> = HashMap::new();
    let mut seen_payloads = HashSet::new();
    let (mut duplicates, mut late) = (0, 0);
    let mut newest = i64::MIN;
    for (key, payload, content_type) in &ra {
        assert_eq!(content_type, &None, "protobuf records carry no content-type");
        let u = AvailabilityUpdate::decode(payload.as_slice()).expect("protobuf");
        stockflight_proto::validate::validate(&u).expect("valid update");
        assert_eq!(key, &stockflight_proto::kafka_key(&u.item_id, &u.node_id));
        assert!(item_ids.contains(&u.item_id), "{} not in the item catalog", u.item_id);
        assert!(node_ids.contains(&u.node_id), "{} not in the node dimension", u.node_id);
        assert!(u.event_time_us >= START - 60_000_000);
        if !seen_payloads.insert(payload.clone()) {
            duplicates += 1;
        } else if u.event_time_us < newest {
            late += 1;
        }
        newest = newest.max(u.event_time_us);
        *per_item.entry(u.item_id).or_default() += 1;
    }
    let share = |n: usize| n as f64 / N as f64;
    assert!(
        (0.06..=0.14).contains(&share(duplicates)),
        "duplicates {duplicates} of {N}"
    );
    // Late events are ~20 % of the fresh ones.
    assert!((0.12..=0.28).contains(&share(late)), "late events {late} of {N}");
    let top = per_item.values().max().copied().unwrap();
    let mean = N / per_item.len();
    assert!(top > 10 * mean, "Zipf skew: top item {top} updates vs mean {mean}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_encoding_sets_the_content_type() {
    let topic = unique("loadgen_json");
    support::create_topic(&topic, 1).await;
    loadgen(&[
        "produce",
        "--kafka-brokers",
        &support::brokers(),
        "--kafka-topic",
        &topic,
        "--produce-count",
        "200",
        "--produce-encoding",
        "json",
        "--dataset-items",
        "50",
    ]);
    for (_, payload, content_type) in consume(&topic, 200).await {
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
        assert!(json["itemId"].as_str().is_some_and(|s| s.starts_with("sku-")), "{json}");
        assert!(
            json["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("AVAILABILITY_STATUS_")),
            "{json}"
        );
    }
}
