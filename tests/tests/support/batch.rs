//! Shared arrangement of the batch tests: availability rows in real Cassandra, reference
//! Parquet in the store, running `stockflight-batch`, reading what it published, and the
//! expected aggregates computed here in plain Rust from the rows the test wrote.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, Int8Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlTimestamp;
use stockflight_proto::cassandra;
use stockflight_proto::layout::{SnapshotManifest, TableManifest};
use stockflight_tests::{binary, require, unique};

/// One (item, node) row as the test writes it to Cassandra.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub item_id: String,
    pub node_id: String,
    pub available: i64,
    pub reserved: Option<i64>,
    pub status: i8,
    pub event_time_ms: i64,
    pub source: String,
    pub sequence: i64,
}

/// An item of the catalog.
#[derive(Debug, Clone)]
pub struct Item {
    pub item_id: String,
    pub department: String,
    pub category: String,
}

/// A node of the dimension.
#[derive(Debug, Clone)]
pub struct Node {
    pub node_id: String,
    pub region: String,
}

/// A data set: reference tables and availability rows. Some rows name an item missing from the
/// catalog or a node missing from the dimension (they must show up as `unknown`).
#[derive(Debug, Clone)]
pub struct DataSet {
    pub items: Vec<Item>,
    pub nodes: Vec<Node>,
    pub rows: Vec<Row>,
}

/// A small deterministic pseudo-random generator (the test needs no crate for this).
pub struct Lcg(u64);
impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const DEPARTMENTS: [&str; 3] = ["grocery", "apparel", "electronics"];
const REGIONS: [&str; 3] = ["east", "west", "central"];

/// `n_items` x `n_nodes` pairs, each present with probability `density` percent, plus an
/// orphan item and an orphan node.
pub fn generate(n_items: usize, n_nodes: usize, density: u64, seed: u64) -> DataSet {
    let mut rng = Lcg::new(seed);
    let items: Vec<Item> = (0..n_items)
        .map(|i| {
            let department = DEPARTMENTS[i % 3].to_string();
            let category = format!("{department}-{}", (i / 3) % 2);
            Item {
                item_id: format!("sku-{i:06}"),
                department,
                category,
            }
        })
        .collect();
    let nodes: Vec<Node> = (0..n_nodes)
        .map(|n| Node {
            node_id: format!("node-{n:03}"),
            region: REGIONS[n % 3].to_string(),
        })
        .collect();
    let item_ids = items
        .iter()
        .map(|i| i.item_id.clone())
        .chain(["sku-orphan".to_string()]);
    let item_ids: Vec<String> = item_ids.collect();
    let node_ids: Vec<String> = nodes
        .iter()
        .map(|n| n.node_id.clone())
        .chain(["node-orphan".to_string()])
        .collect();
    let mut rows = Vec::new();
    for item in &item_ids {
        for node in &node_ids {
            if rng.next(100) >= density {
                continue;
            }
            rows.push(Row {
                item_id: item.clone(),
                node_id: node.clone(),
                available: rng.next(200) as i64,
                reserved: (rng.next(10) != 0).then(|| rng.next(20) as i64),
                status: (1 + rng.next(4)) as i8,
                event_time_ms: 1_764_000_000_000 + rng.next(1_000_000) as i64,
                source: ["pos", "wms", "oms"][rng.next(3) as usize].to_string(),
                sequence: rng.next(1_000_000) as i64,
            });
        }
    }
    DataSet { items, nodes, rows }
}

/// Connects to the test Cassandra and creates a fresh keyspace with the availability table.
pub async fn cassandra_keyspace(prefix: &str) -> (Session, String) {
    cassandra_keyspace_with(prefix, "{'class': 'SimpleStrategy', 'replication_factor': 1}").await
}

/// [`cassandra_keyspace`] with the keyspace's `replication` map (CQL).
pub async fn cassandra_keyspace_with(prefix: &str, replication: &str) -> (Session, String) {
    let nodes = require("STOCKFLIGHT_CASSANDRA_NODES");
    let session = SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .expect("connect to Cassandra");
    let keyspace = unique(prefix);
    for ddl in cassandra::create_schema(&keyspace, replication) {
        session.query_unpaged(ddl, ()).await.expect("create the schema");
    }
    (session, keyspace)
}

/// A fresh keyspace holding `data`'s rows, and a local storage directory holding its
/// reference data: what every batch test starts from.
pub struct Loaded {
    /// Session on the test Cassandra.
    pub session: Session,
    /// The keyspace, unique to the test.
    pub keyspace: String,
    /// The storage directory.
    pub dir: std::path::PathBuf,
    /// The storage directory as an object store.
    pub store: Arc<dyn ObjectStore>,
    /// The storage directory as a `file://` URL.
    pub url: String,
}

impl Loaded {
    /// Loads `data` into a new keyspace and its reference data into a new directory, both
    /// named after `prefix`.
    pub async fn local(prefix: &str, data: &DataSet) -> Self {
        Self::local_with(prefix, data, "{'class': 'SimpleStrategy', 'replication_factor': 1}").await
    }

    /// [`Loaded::local`] into a keyspace with `replication` (CQL map).
    pub async fn local_with(prefix: &str, data: &DataSet, replication: &str) -> Self {
        let (session, keyspace) = cassandra_keyspace_with(prefix, replication).await;
        insert(&session, &keyspace, &data.rows).await;
        let dir = std::env::temp_dir().join(unique(prefix));
        let section = stockflight_common::sections::StorageSection::local(dir.display().to_string());
        let store = stockflight_common::storage::Storage::open(&section)
            .expect("open the storage directory")
            .store()
            .clone();
        write_reference(&store, data).await;
        let url = format!("file://{}", dir.display());
        Self {
            session,
            keyspace,
            dir,
            store,
            url,
        }
    }
}

/// Writes `rows` with concurrent prepared inserts, as ingest writes them (one `state` value,
/// written at its event time).
pub async fn insert(session: &Session, keyspace: &str, rows: &[Row]) {
    let insert = session
        .prepare(cassandra::upsert(keyspace))
        .await
        .expect("prepare insert");
    futures::stream::iter(rows)
        .map(|r| {
            let insert = &insert;
            async move {
                session
                    .execute_unpaged(
                        insert,
                        (
                            &r.item_id,
                            &r.node_id,
                            cassandra::State {
                                sequence: Some(r.sequence),
                                source: Some(r.source.clone()),
                                available_qty: Some(r.available),
                                reserved_qty: r.reserved,
                                status: Some(r.status),
                                event_time: Some(CqlTimestamp(r.event_time_ms)),
                            },
                            r.event_time_ms * 1000,
                        ),
                    )
                    .await
                    .expect("insert row");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

fn parquet_bytes(batch: &RecordBatch) -> Bytes {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).expect("parquet writer");
    writer.write(batch).expect("write batch");
    writer.close().expect("close writer");
    Bytes::from(out)
}

/// Writes the reference tables as the load generator does: `reference/items/items.parquet`
/// and `reference/nodes/nodes.parquet` with the columns of `layout::reference`.
pub async fn write_reference(store: &Arc<dyn ObjectStore>, data: &DataSet) {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let items_schema = Arc::new(Schema::new(vec![
        utf8("item_id"),
        utf8("name"),
        utf8("department"),
        utf8("category"),
        utf8("brand"),
        Field::new("price", DataType::Float64, false),
    ]));
    let ids: Vec<&str> = data.items.iter().map(|i| i.item_id.as_str()).collect();
    let names: Vec<String> = data.items.iter().map(|i| format!("Item {}", i.item_id)).collect();
    let items = RecordBatch::try_new(
        items_schema,
        vec![
            Arc::new(StringArray::from(ids.clone())),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from_iter_values(
                data.items.iter().map(|i| i.department.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                data.items.iter().map(|i| i.category.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(ids.iter().map(|_| "acme"))),
            Arc::new(Float64Array::from_iter_values(ids.iter().map(|_| 9.99))),
        ],
    )
    .unwrap();
    let nodes_schema = Arc::new(Schema::new(vec![
        utf8("node_id"),
        utf8("node_type"),
        utf8("region"),
        utf8("state"),
        utf8("city"),
        Field::new("latitude", DataType::Float64, false),
        Field::new("longitude", DataType::Float64, false),
    ]));
    let n = data.nodes.len();
    let nodes = RecordBatch::try_new(
        nodes_schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                data.nodes.iter().map(|n| n.node_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "store"))),
            Arc::new(StringArray::from_iter_values(
                data.nodes.iter().map(|n| n.region.as_str()),
            )),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "CA"))),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "Springfield"))),
            Arc::new(Float64Array::from_iter_values((0..n).map(|_| 37.0))),
            Arc::new(Float64Array::from_iter_values((0..n).map(|_| -122.0))),
        ],
    )
    .unwrap();
    for (key, batch) in [
        ("reference/items/items.parquet", items),
        ("reference/nodes/nodes.parquet", nodes),
    ] {
        store
            .put(&Path::from(key), parquet_bytes(&batch).into())
            .await
            .expect("write reference table");
    }
}

/// Runs `stockflight-batch --once` against `keyspace` and the store at `storage_args`.
pub fn run_batch(keyspace: &str, storage_args: &[&str], extra: &[&str]) -> Output {
    let mut cmd = Command::new(binary("stockflight-batch"));
    cmd.args(["--once", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--cassandra-nodes", &require("STOCKFLIGHT_CASSANDRA_NODES")])
        .args(["--cassandra-keyspace", keyspace])
        .args(storage_args)
        .args(extra);
    cmd.output().expect("run stockflight-batch")
}

/// Panics with the run's output unless it succeeded.
pub fn assert_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "batch failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// The manifest in `CURRENT`.
pub async fn current(store: &Arc<dyn ObjectStore>) -> SnapshotManifest {
    let bytes = store
        .get(&Path::from("CURRENT"))
        .await
        .expect("CURRENT exists")
        .bytes()
        .await
        .unwrap();
    SnapshotManifest::from_json(&bytes).expect("CURRENT parses")
}

/// The manifest a run wrote beside its tables (`snapshots/<run>/_manifest.json`), published or not.
pub async fn read_manifest(store: &Arc<dyn ObjectStore>, run_id: &str) -> SnapshotManifest {
    let key = Path::from(format!("snapshots/{run_id}/_manifest.json"));
    let bytes = store
        .get(&key)
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"))
        .bytes()
        .await
        .unwrap();
    SnapshotManifest::from_json(&bytes).expect("the run manifest parses")
}

/// A published table read back: rows as batches, each with its Hive partition values.
pub struct ReadTable {
    pub batches: Vec<(BTreeMap<String, String>, RecordBatch)>,
}

/// Reads exactly the files the manifest lists, as a reader (the server) does.
pub async fn read_table(store: &Arc<dyn ObjectStore>, table: &TableManifest) -> ReadTable {
    let mut batches = Vec::new();
    for file in &table.files {
        let partition: BTreeMap<String, String> = file
            .split('/')
            .filter_map(|seg| seg.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let bytes = store
            .get(&Path::from(file.as_str()))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .bytes()
            .await
            .unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("a Parquet file");
        let metadata = builder.metadata().clone();
        for rg in metadata.row_groups() {
            for col in rg.columns() {
                assert!(
                    matches!(col.compression(), parquet::basic::Compression::ZSTD(_)),
                    "{file}: column {} is {:?}, not zstd",
                    col.column_path(),
                    col.compression()
                );
                assert!(
                    col.statistics().is_some(),
                    "{file}: column {} has no statistics",
                    col.column_path()
                );
            }
        }
        for field in builder.schema().fields() {
            assert!(
                !matches!(
                    field.data_type(),
                    DataType::Utf8View | DataType::BinaryView | DataType::LargeUtf8
                ),
                "{file}: column {} is {}",
                field.name(),
                field.data_type()
            );
            if let DataType::Timestamp(_, tz) = field.data_type() {
                assert!(tz.is_none(), "{file}: {} has a time zone", field.name());
            }
        }
        for batch in builder.build().unwrap() {
            batches.push((partition.clone(), batch.unwrap()));
        }
    }
    ReadTable { batches }
}

impl ReadTable {
    /// Total rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|(_, b)| b.num_rows()).sum()
    }

    /// Each row as column -> value text (NULL as "NULL"), partition columns included.
    pub fn records(&self) -> Vec<BTreeMap<String, String>> {
        let mut out = Vec::new();
        for (partition, batch) in &self.batches {
            for row in 0..batch.num_rows() {
                let mut record = partition.clone();
                for (i, field) in batch.schema().fields().iter().enumerate() {
                    record.insert(field.name().clone(), cell(batch.column(i).as_ref(), row));
                }
                out.push(record);
            }
        }
        out
    }
}

fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Int8 => array
            .as_any()
            .downcast_ref::<Int8Array>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::Float64 => format!(
            "{:.6}",
            array.as_any().downcast_ref::<Float64Array>().unwrap().value(row)
        ),
        DataType::Timestamp(_, _) => arrow::util::display::array_value_to_string(array, row).unwrap(),
        other => panic!("unexpected column type {other}"),
    }
}

/// The measures of one group, computed from the test's own rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measures {
    pub items_tracked: i64,
    pub in_stock: i64,
    pub low_stock: i64,
    pub out_of_stock: i64,
    pub discontinued: i64,
    pub units_available: i64,
    pub units_reserved: i64,
}

impl Measures {
    pub fn add(&mut self, r: &Row) {
        self.items_tracked += 1;
        match r.status {
            1 => self.in_stock += 1,
            2 => self.low_stock += 1,
            3 => self.out_of_stock += 1,
            4 => self.discontinued += 1,
            _ => {}
        }
        self.units_available += r.available;
        self.units_reserved += r.reserved.unwrap_or(0);
    }

    /// Sellable over not discontinued, as documented for `in_stock_rate`.
    pub fn in_stock_rate(&self) -> String {
        let denominator = self.items_tracked - self.discontinued;
        if denominator == 0 {
            "NULL".into()
        } else {
            format!("{:.6}", (self.in_stock + self.low_stock) as f64 / denominator as f64)
        }
    }

    /// Asserts that `record` carries these measures.
    pub fn assert_in(&self, record: &BTreeMap<String, String>, what: &str) {
        let expect = [
            ("items_tracked", self.items_tracked.to_string()),
            ("in_stock", self.in_stock.to_string()),
            ("low_stock", self.low_stock.to_string()),
            ("out_of_stock", self.out_of_stock.to_string()),
            ("discontinued", self.discontinued.to_string()),
            ("in_stock_rate", self.in_stock_rate()),
            ("units_available", self.units_available.to_string()),
            ("units_reserved", self.units_reserved.to_string()),
        ];
        for (column, value) in expect {
            assert_eq!(record.get(column), Some(&value), "{what}: {column} in {record:?}");
        }
    }
}

/// Region, department and category of each row, `unknown` for orphans (as documented).
pub struct Attributes {
    items: HashMap<String, (String, String)>,
    nodes: HashMap<String, String>,
}

impl Attributes {
    pub fn of(data: &DataSet) -> Self {
        Self {
            items: data
                .items
                .iter()
                .map(|i| (i.item_id.clone(), (i.department.clone(), i.category.clone())))
                .collect(),
            nodes: data
                .nodes
                .iter()
                .map(|n| (n.node_id.clone(), n.region.clone()))
                .collect(),
        }
    }

    /// (region, department, category) of `r`.
    pub fn get(&self, r: &Row) -> (String, String, String) {
        let region = self.nodes.get(&r.node_id).cloned().unwrap_or_else(|| "unknown".into());
        let (department, category) = self
            .items
            .get(&r.item_id)
            .cloned()
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        (region, department, category)
    }
}

const TABLES: [&str; 7] = [
    "availability_by_item",
    "availability_by_node",
    "availability_by_region_category",
    "availability_snapshot",
    "availability_trend",
    "items",
    "nodes",
];

/// Checks every table of `manifest` against `data`; `trend` lists (run id, data of that run).
pub async fn check_snapshot(
    store: &Arc<dyn ObjectStore>,
    manifest: &SnapshotManifest,
    data: &DataSet,
    trend: &[(&str, &DataSet)],
) {
    let names: Vec<&str> = manifest.tables.keys().map(String::as_str).collect();
    assert_eq!(names, TABLES);
    let attrs = Attributes::of(data);
    let table = |name: &str| manifest.tables.get(name).unwrap();

    // Drill-down: one row per (item, node), partitioned by region, values as written.
    let snapshot = read_table(store, table("availability_snapshot")).await;
    assert_eq!(table("availability_snapshot").partition_columns, ["region"]);
    assert_eq!(snapshot.rows(), data.rows.len());
    assert_eq!(table("availability_snapshot").rows, data.rows.len() as u64);
    let records: BTreeMap<(String, String), BTreeMap<String, String>> = snapshot
        .records()
        .into_iter()
        .map(|r| ((r["item_id"].clone(), r["node_id"].clone()), r))
        .collect();
    assert_eq!(records.len(), data.rows.len(), "one row per (item, node)");
    for row in &data.rows {
        let r = &records[&(row.item_id.clone(), row.node_id.clone())];
        let (region, department, category) = attrs.get(row);
        assert_eq!(r["available_qty"], row.available.to_string(), "{r:?}");
        assert_eq!(
            r["reserved_qty"],
            row.reserved.map_or("NULL".into(), |v| v.to_string()),
            "{r:?}"
        );
        assert_eq!(r["status"], row.status.to_string(), "{r:?}");
        assert_eq!(r["sequence"], row.sequence.to_string(), "{r:?}");
        assert_eq!(r["source"], row.source, "{r:?}");
        assert_eq!(r["region"], region, "{r:?}");
        assert_eq!(r["department"], department, "{r:?}");
        assert_eq!(r["category"], category, "{r:?}");
        assert_ne!(r["event_time"], "NULL");
    }

    // Per node.
    let mut by_node: BTreeMap<String, Measures> = BTreeMap::new();
    for row in &data.rows {
        by_node.entry(row.node_id.clone()).or_default().add(row);
    }
    let published = read_table(store, table("availability_by_node")).await.records();
    assert_eq!(published.len(), by_node.len());
    for record in &published {
        by_node[&record["node_id"]].assert_in(record, &format!("node {}", record["node_id"]));
    }

    // Per item.
    let mut by_item: BTreeMap<String, Measures> = BTreeMap::new();
    for row in &data.rows {
        by_item.entry(row.item_id.clone()).or_default().add(row);
    }
    let published = read_table(store, table("availability_by_item")).await.records();
    assert_eq!(published.len(), by_item.len());
    for record in &published {
        by_item[&record["item_id"]].assert_in(record, &format!("item {}", record["item_id"]));
    }

    // Region x department x category with roll-ups down to the grand total.
    let null = || "NULL".to_string();
    let mut rollup: BTreeMap<(String, String, String, String), Measures> = BTreeMap::new();
    for row in &data.rows {
        let (region, department, category) = attrs.get(row);
        for key in [
            (
                "category".to_string(),
                region.clone(),
                department.clone(),
                category.clone(),
            ),
            ("department".to_string(), region.clone(), department.clone(), null()),
            ("region".to_string(), region.clone(), null(), null()),
            ("total".to_string(), null(), null(), null()),
        ] {
            rollup.entry(key).or_default().add(row);
        }
    }
    let published = read_table(store, table("availability_by_region_category"))
        .await
        .records();
    assert_eq!(published.len(), rollup.len(), "one row per group of every level");
    for record in &published {
        let key = (
            record["level"].clone(),
            record["region"].clone(),
            record["department"].clone(),
            record["category"].clone(),
        );
        let expected = rollup.get(&key).unwrap_or_else(|| panic!("unexpected group {key:?}"));
        expected.assert_in(record, &format!("group {key:?}"));
    }
    let total = &rollup[&("total".to_string(), null(), null(), null())];
    assert_eq!(total.items_tracked, data.rows.len() as i64);

    // Trend: every listed run's rows, each with that run's figures.
    let published = read_table(store, table("availability_trend")).await.records();
    let mut expected_rows = 0;
    for (run_id, run_data) in trend {
        let run_attrs = Attributes::of(run_data);
        let mut by_group: BTreeMap<(String, String), Measures> = BTreeMap::new();
        for row in &run_data.rows {
            let (region, department, _) = run_attrs.get(row);
            by_group.entry((region, department)).or_default().add(row);
        }
        let records: Vec<_> = published.iter().filter(|r| r["run_id"] == *run_id).collect();
        assert_eq!(records.len(), by_group.len(), "trend rows of run {run_id}");
        let times: BTreeSet<&String> = records.iter().map(|r| &r["run_time"]).collect();
        assert_eq!(times.len(), 1, "one run time per run: {times:?}");
        for record in records {
            by_group[&(record["region"].clone(), record["department"].clone())]
                .assert_in(record, &format!("trend {run_id}"));
        }
        expected_rows += by_group.len();
    }
    assert_eq!(published.len(), expected_rows, "no trend rows beyond the listed runs");

    // Reference tables published beside the aggregates.
    assert_eq!(read_table(store, table("items")).await.rows(), data.items.len());
    assert_eq!(read_table(store, table("nodes")).await.rows(), data.nodes.len());
}

/// A `stockflight-batch` process started by a test, its stderr (JSON log lines) read on a thread.
pub struct BatchProcess {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl BatchProcess {
    /// Starts `stockflight-batch --once` like [`run_batch`], without waiting for it.
    pub fn spawn(keyspace: &str, storage_args: &[&str], extra: &[&str]) -> Self {
        let mut child = Command::new(binary("stockflight-batch"))
            .args(["--once", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(["--cassandra-nodes", &require("STOCKFLIGHT_CASSANDRA_NODES")])
            .args(["--cassandra-keyspace", keyspace])
            .args(storage_args)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start stockflight-batch");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// The first JSON log event with `message`, waiting up to `timeout`.
    pub fn wait_log(&mut self, message: &str, timeout: std::time::Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "no log line {message:?} within {timeout:?}; stderr so far:\n{}",
                        self.stderr.join("\n")
                    )
                });
            self.stderr.push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == message {
                return event;
            }
        }
    }

    /// The address of the process's `/metrics` endpoint, from its log.
    pub fn metrics_addr(&mut self) -> String {
        let event = self.wait_log("serving /metrics and /health", std::time::Duration::from_secs(30));
        event["addr"].as_str().expect("addr in the log event").to_string()
    }

    /// Waits for the process to end (within `timeout`) and returns its output.
    pub fn finish(mut self, timeout: std::time::Duration) -> Output {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                self.child.kill().ok();
                panic!("stockflight-batch did not end within {timeout:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stdout = Vec::new();
        if let Some(mut out) = self.child.stdout.take() {
            std::io::Read::read_to_end(&mut out, &mut stdout).unwrap();
        }
        // The reader thread ends with the process: collect what it has not handed over yet.
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(5)) {
            self.stderr.push(line);
        }
        let mut stderr = self.stderr.join("\n").into_bytes();
        stderr.push(b'\n');
        Output { status, stdout, stderr }
    }
}

/// A value of the Prometheus text exposition at `addr` (`name` with its labels, as written).
pub fn metric(addr: &str, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The state directory of the test stack (as `dev/stack` resolves it).
pub fn stack_state_dir() -> std::path::PathBuf {
    std::env::var_os("STOCKFLIGHT_STATE_DIR")
        .map_or_else(|| stockflight_tests::repo_root().join(".stockflight"), Into::into)
}

/// Drops the test's keyspace.
pub async fn drop_keyspace(session: &Session, keyspace: &str) {
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}

impl Drop for BatchProcess {
    /// A test that failed half-way does not leave the process behind (even a stopped one).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The process holding the run lease of `keyspace`, if any (`<host>/pid <pid>/run <id>`).
pub async fn lease_owner(session: &Session, keyspace: &str) -> Option<String> {
    let result = session
        .query_unpaged(
            format!("SELECT owner FROM {keyspace}.batch_lease WHERE name = 'stockflight-batch'"),
            (),
        )
        .await;
    // The table appears with the first run's attempt.
    let rows = result.ok()?.into_rows_result().ok()?;
    rows.maybe_first_row::<(Option<String>,)>()
        .ok()
        .flatten()
        .and_then(|(o,)| o)
}

/// Polls (up to 60 s) until the run lease of `keyspace` satisfies `check`.
pub async fn wait_lease(session: &Session, keyspace: &str, what: &str, check: impl Fn(Option<&str>) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let owner = lease_owner(session, keyspace).await;
        if check(owner.as_deref()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: lease owner still {owner:?} after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
