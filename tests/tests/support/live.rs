//! Shared by the live-table tests: the whole platform on the test stack (Kafka, ingest with its
//! change log, Cassandra, the batch, the server with live tables) around streams the tests
//! generate, and the reference data they know the attributes of.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use stockflight_common::sections::StorageSection;
use stockflight_common::storage::Storage;

use super::answers::Attributes;
use super::batch;
use super::ingest::{self, Ingest, Record, Row};
use super::server::{self, Server};

/// Items the streams name (`it-00000`…); the last [`ORPHAN_ITEMS`] are not in the catalog.
pub const ITEMS: u64 = 30;
/// Nodes the streams name (`nd-000`…); the last is not in the dimension.
pub const NODES: u64 = 6;
const ORPHAN_ITEMS: u64 = 2;
const DEPARTMENTS: [&str; 3] = ["grocery", "apparel", "electronics"];
const REGIONS: [&str; 2] = ["east", "west"];
/// The login of the test server.
pub const USER: &str = "live";
/// Its password.
pub const PASSWORD: &str = "live-secret";

/// The id of item `i`, as `ingest::generate` names it.
pub fn item_id(i: u64) -> String {
    format!("it-{i:05}")
}

/// The id of node `n`, as `ingest::generate` names it.
pub fn node_id(n: u64) -> String {
    format!("nd-{n:03}")
}

fn department(i: u64) -> &'static str {
    DEPARTMENTS[(i % 3) as usize]
}

fn category(i: u64) -> String {
    format!("{}-{}", department(i), (i / 3) % 2)
}

fn region(n: u64) -> &'static str {
    REGIONS[(n % 2) as usize]
}

/// The reference data the batch reads.
pub fn reference() -> batch::DataSet {
    batch::DataSet {
        items: (0..ITEMS - ORPHAN_ITEMS)
            .map(|i| batch::Item {
                item_id: item_id(i),
                department: department(i).into(),
                category: category(i),
            })
            .collect(),
        nodes: (0..NODES - 1)
            .map(|n| batch::Node {
                node_id: node_id(n),
                region: region(n).into(),
            })
            .collect(),
        rows: Vec::new(),
    }
}

/// Reference attributes of `(item, node)` (either may be empty), `unknown` where missing.
pub fn attributes(item: &str, node: &str) -> Attributes {
    let i = (0..ITEMS - ORPHAN_ITEMS).find(|i| item_id(*i) == item);
    let n = (0..NODES - 1).find(|n| node_id(*n) == node);
    Attributes {
        region: n.map_or("unknown".into(), |n| region(n).into()),
        // batch::write_reference writes every node as a store in California.
        node_type: n.map_or("unknown".into(), |_| "store".into()),
        state: n.map(|_| "CA".into()),
        department: i.map_or("unknown".into(), |i| department(i).into()),
        category: i.map_or("unknown".into(), category),
    }
}

/// Kafka, ingest (change log on) and a storage directory with the reference data.
pub struct Platform {
    /// The topic of updates.
    pub topic: String,
    /// The Cassandra keyspace.
    pub keyspace: String,
    /// The running ingest.
    pub ingest: Ingest,
    /// Sends to the topic.
    pub producer: FutureProducer,
    /// The object store (a local directory).
    pub storage: tempfile::TempDir,
    written: usize,
}

impl Platform {
    /// Creates the topic, starts ingest and writes the reference data.
    pub async fn start(prefix: &str) -> Self {
        let topic = stockflight_tests::unique(prefix);
        let keyspace = stockflight_tests::unique(prefix);
        ingest::create_topic(&topic, 3).await;
        let mut ingest = Ingest::start(
            &format!("{prefix}-ingest"),
            &topic,
            &keyspace,
            &stockflight_tests::unique("group"),
        );
        ingest.wait_ready(Duration::from_secs(120));
        let storage = tempfile::tempdir().unwrap();
        let store = Storage::open(&StorageSection::local(storage.path().display().to_string())).unwrap();
        batch::write_reference(store.store(), &reference()).await;
        Self {
            topic,
            keyspace,
            ingest,
            producer: ingest::producer(),
            storage,
            written: 0,
        }
    }

    /// Produces `records` and waits until ingest wrote them all and Cassandra holds `expected`.
    pub async fn ingest(&mut self, records: &[Record], expected: &HashMap<(String, String), Row>) {
        ingest::produce(&self.producer, &self.topic, records).await;
        ingest::wait_for_table(&self.keyspace, expected, Duration::from_secs(120)).await;
        self.written += records.len();
        self.ingest.wait_metric(
            "stockflight_ingest_written_total",
            self.written as f64,
            Duration::from_secs(60),
        );
    }

    /// Runs the batch once and publishes `run_id`.
    pub fn publish(&self, run_id: &str) {
        let url = format!("file://{}", self.storage.path().display());
        let output = batch::run_batch(&self.keyspace, &["--storage-url", &url], &["--run-id", run_id]);
        let summary = batch::assert_success(&output);
        assert!(summary.contains(&format!("run {run_id} published")), "{summary}");
    }

    /// Starts the server on the storage, its live tables on this keyspace, with `extra` flags.
    pub fn server(&self, extra: &[&str]) -> Server {
        let users = format!("{USER}:{}", server::hash_password(PASSWORD));
        let nodes = ingest::cassandra_nodes();
        let mut args = vec![
            "--auth-users",
            users.as_str(),
            "--cassandra-nodes",
            nodes.as_str(),
            "--cassandra-keyspace",
            self.keyspace.as_str(),
            "--live-poll-ms",
            "200",
        ];
        args.extend_from_slice(extra);
        Server::start(self.storage.path(), &args)
    }
}

/// A logged-in Flight client of `server`, once `sql` answers (the snapshot and the live tables
/// are loaded), within `timeout`.
pub async fn client_when_serving(server: &Server, sql: &str, timeout: Duration) -> server::Client {
    let mut client = server.client().await;
    client.login(USER, PASSWORD).await.expect("log in");
    let deadline = Instant::now() + timeout;
    while let Err(status) = client.query(sql).await {
        assert!(
            Instant::now() < deadline,
            "`{sql}` did not answer within {timeout:?}: {status}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client
}
