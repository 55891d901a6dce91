//! Shared harness of the ingest end-to-end tests: a test-owned update stream and its model,
//! Kafka and Cassandra helpers, and a handle on a running `stockflight-ingest` process.
//!
//! The expected table is computed here from the stream the test produced, with the contract's
//! rule (the highest (event time, sequence) of a pair wins), never by ingest's own code.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod flowing;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlTimestamp;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::{binary, require};

/// Kafka bootstrap servers of the test stack.
pub fn brokers() -> String {
    require("STOCKFLIGHT_KAFKA_BROKERS")
}

/// Cassandra contact points of the test stack.
pub fn cassandra_nodes() -> String {
    require("STOCKFLIGHT_CASSANDRA_NODES")
}

/// A deterministic pseudo-random source (SplitMix64): the stream is the same for a seed.
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// How one record is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Protobuf binary, no header.
    Protobuf,
    /// JSON with `content-type: application/json`.
    Json,
}

/// One record to produce.
#[derive(Debug, Clone)]
pub struct Record {
    /// The update (for the model).
    pub update: AvailabilityUpdate,
    /// Its wire form.
    pub encoding: Encoding,
}

impl Record {
    /// Key per the contract: all updates of a pair in one partition.
    pub fn key(&self) -> String {
        stockflight_proto::kafka_key(&self.update.item_id, &self.update.node_id)
    }

    /// The record value.
    pub fn payload(&self) -> Vec<u8> {
        match self.encoding {
            Encoding::Protobuf => self.update.encode_to_vec(),
            // Written by hand in the `.proto` names with plain numbers, not by the crate's encoder.
            Encoding::Json => {
                let u = &self.update;
                let status =
                    ["UNSPECIFIED", "IN_STOCK", "LOW_STOCK", "OUT_OF_STOCK", "DISCONTINUED"][u.status as usize];
                serde_json::json!({
                    "item_id": u.item_id, "node_id": u.node_id,
                    "available_qty": u.available_qty, "reserved_qty": u.reserved_qty,
                    "status": status, "event_time_us": u.event_time_us.to_string(),
                    "source": u.source, "sequence": u.sequence,
                })
                .to_string()
                .into_bytes()
            }
        }
    }
}

/// Shape of a generated stream.
pub struct StreamSpec {
    /// Distinct items.
    pub items: u64,
    /// Distinct nodes.
    pub nodes: u64,
    /// Fresh updates (duplicates and ties come on top).
    pub updates: usize,
    /// Seed.
    pub seed: u64,
}

/// Generates a stream with out-of-order event times (random within 10 minutes), exact
/// duplicates (10 %), equal-event-time ties of one source (10 %, half of them delivered in
/// reverse order), equal (event time, sequence) from two sources (2 %), and 15 % JSON records.
///
/// Sequences start at 990 + 2^40 * source, so ties cross blocks of 1000 (999/1000) and
/// sequences far above 2^32 occur.
pub fn generate(spec: &StreamSpec) -> Vec<Record> {
    const BASE_US: i64 = 1_764_000_000_000_000;
    let sources = ["pos", "wms", "oms-2"];
    let mut next_seq = [990u64, 990 + (1 << 40), 990 + (2 << 40)];
    let mut rng = Rng::new(spec.seed);
    let mut out: Vec<Record> = Vec::with_capacity(spec.updates * 13 / 10);
    for _ in 0..spec.updates {
        let item = rng.below(spec.items);
        let node = rng.below(spec.nodes);
        let s = rng.below(3) as usize;
        let make = |rng: &mut Rng, source: usize, seq: u64, event_time_us: i64| {
            let available = rng.below(50) as i64;
            AvailabilityUpdate {
                item_id: format!("it-{item:05}"),
                node_id: format!("nd-{node:03}"),
                available_qty: available,
                reserved_qty: rng.below(5) as i64,
                status: match available {
                    0 => 3,
                    1..=4 => 2,
                    _ if rng.chance(0.02) => 4,
                    _ => 1,
                },
                event_time_us,
                source: sources[source].to_string(),
                sequence: seq,
            }
        };
        let event_time = BASE_US + rng.below(600_000_000) as i64;
        let seq = next_seq[s];
        next_seq[s] += 1;
        let first = make(&mut rng, s, seq, event_time);
        let encoding = |rng: &mut Rng| {
            if rng.chance(0.15) {
                Encoding::Json
            } else {
                Encoding::Protobuf
            }
        };
        let second = if rng.chance(0.10) {
            let tie_seq = next_seq[s];
            next_seq[s] += 1;
            Some(make(&mut rng, s, tie_seq, event_time))
        } else if rng.chance(0.02) {
            // Another source with the very same event time and sequence.
            Some(make(&mut rng, (s + 1) % 3, seq, event_time))
        } else {
            None
        };
        let mut pair = vec![first];
        pair.extend(second);
        if rng.chance(0.5) {
            pair.reverse();
        }
        for update in pair {
            out.push(Record {
                update,
                encoding: encoding(&mut rng),
            });
        }
        if rng.chance(0.10) {
            let earlier = out[rng.below(out.len() as u64) as usize].clone();
            out.push(earlier);
        }
    }
    out
}

/// The contract's order of two updates of one pair, written out here independently of ingest:
/// the greater (event time, sequence) wins; equal ones from different sources are ordered by
/// the source's length in bytes, then its bytes, then quantities and status (the documented
/// rule of `availability.proto`).
pub fn newer(a: &AvailabilityUpdate, b: &AvailabilityUpdate) -> bool {
    (
        a.event_time_us,
        a.sequence,
        a.source.len(),
        a.source.as_bytes(),
        a.available_qty,
        a.reserved_qty,
        a.status,
    ) > (
        b.event_time_us,
        b.sequence,
        b.source.len(),
        b.source.as_bytes(),
        b.available_qty,
        b.reserved_qty,
        b.status,
    )
}

/// A row of the availability table, as the test reads and expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub available_qty: i64,
    pub reserved_qty: i64,
    pub status: i8,
    pub event_time_ms: i64,
    pub source: String,
    pub sequence: i64,
}

/// The expected table: per (item, node), the newest update by [`newer`].
pub fn model<'a>(records: impl IntoIterator<Item = &'a Record>) -> HashMap<(String, String), Row> {
    let mut best: HashMap<(String, String), &AvailabilityUpdate> = HashMap::new();
    for r in records {
        let u = &r.update;
        let key = (u.item_id.clone(), u.node_id.clone());
        if best.get(&key).is_none_or(|b| newer(u, b)) {
            best.insert(key, u);
        }
    }
    best.into_iter()
        .map(|(k, u)| {
            let row = Row {
                available_qty: u.available_qty,
                reserved_qty: u.reserved_qty,
                status: u.status as i8,
                event_time_ms: u.event_time_us / 1000,
                source: u.source.clone(),
                sequence: u.sequence as i64,
            };
            (k, row)
        })
        .collect()
}

/// Creates a topic with `partitions` partitions.
pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_with(topic, partitions, &[]).await;
}

/// Creates a topic with `partitions` partitions and topic configs such as `max.message.bytes`.
pub async fn create_topic_with(topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for (key, value) in configs {
        new = new.set(key, value);
    }
    let created = admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
}

/// A topic's config value as the broker reports it.
pub async fn topic_config(topic: &str, key: &str) -> Option<String> {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe_configs");
    results.into_iter().find_map(|r| r.ok()?.get(key)?.value.clone())
}

/// Per partition of `topic`: (the group's committed offset, if any; the log-end offset).
pub fn offsets(topic: &str, group: &str) -> HashMap<i32, (Option<i64>, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .expect("committed offsets");
    partitions
        .into_iter()
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks");
            let offset = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            (p, (offset, high))
        })
        .collect()
}

/// Asserts that `group` committed every partition of `topic` up to its end: everything
/// produced was handled, and a restart would re-read nothing.
pub fn assert_committed_to_end(topic: &str, group: &str) {
    let offsets = offsets(topic, group);
    let behind: Vec<_> = offsets
        .iter()
        .filter(|(_, (committed, end))| *end > 0 && *committed != Some(*end))
        .collect();
    assert!(
        behind.is_empty(),
        "group {group} has not committed {topic} to its end: (partition, (committed, end)) {behind:?}"
    );
}

/// Waits until `group` has committed every partition of `topic` to its end (panics after
/// `timeout` with the offsets it last saw). Use it before stopping an instance whose output
/// may already be in the table for another reason (an earlier instance's requests that landed
/// late), so that the instance is stopped only once it has handled the whole topic itself.
pub fn wait_committed_to_end(topic: &str, group: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let offsets = offsets(topic, group);
        if offsets
            .iter()
            .all(|(_, (committed, end))| *end == 0 || *committed == Some(*end))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} did not commit {topic} to its end within {timeout:?}: (partition, (committed, end)) {offsets:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Consumes `n` records of `topic` from its start (panics after `timeout` with what it got).
pub async fn read_n(topic: &str, n: usize, timeout: Duration) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer = reader(topic);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => out.push(message.detach()),
            // A broker of a cluster down (a test killed it): the client moves to the others.
            Ok(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
                | rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Ok(Err(err)) => panic!("reading {topic}: {err}"),
            Err(_) => panic!("only {} of {n} records in {topic} within {timeout:?}", out.len()),
        }
    }
    out
}

/// A producer for the test stream (acks=all, idempotent: no duplicates beyond the planned ones).
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// The value of header `name` of a consumed message, as text.
pub fn header(message: &impl rdkafka::Message, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A consumer of `topic` from its first offset, in a group of its own.
pub fn reader(topic: &str) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", stockflight_tests::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Produces raw records and returns each one's (partition, offset), in order.
pub async fn produce_raw(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>, Option<&str>)],
) -> Vec<(i32, i64)> {
    let sends = records.iter().map(|(key, payload, content_type)| {
        let mut record = FutureRecord::to(topic).key(key.as_str()).payload(payload.as_slice());
        if let Some(ct) = content_type {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(*ct),
            }));
        }
        producer.send(record, Duration::from_secs(60))
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| {
            let delivery = r.expect("delivered");
            (delivery.partition, delivery.offset)
        })
        .collect()
}

/// Produces generated records.
pub async fn produce(producer: &FutureProducer, topic: &str, records: &[Record]) {
    let raw: Vec<_> = records
        .iter()
        .map(|r| {
            let ct = (r.encoding == Encoding::Json).then_some("application/json");
            (r.key(), r.payload(), ct)
        })
        .collect();
    for chunk in raw.chunks(2000) {
        produce_raw(producer, topic, chunk).await;
    }
}

/// A CQL session on the test stack.
pub async fn session() -> Session {
    SessionBuilder::new()
        .known_nodes(cassandra_nodes().split(','))
        .build()
        .await
        .expect("connect to Cassandra")
}

/// Reads the whole availability table of `keyspace` (empty if it does not exist yet).
pub async fn read_table(session: &Session, keyspace: &str) -> Result<HashMap<(String, String), Row>, String> {
    let cql = format!(
        "SELECT item_id, node_id, state.available_qty, state.reserved_qty, state.status, state.event_time, \
         state.source, state.sequence FROM {keyspace}.availability"
    );
    let pager = session.query_iter(cql, ()).await.map_err(|e| e.to_string())?;
    type Raw = (String, String, i64, i64, i8, CqlTimestamp, String, i64);
    let rows: Vec<Raw> = pager
        .rows_stream::<Raw>()
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(
            |(item, node, available_qty, reserved_qty, status, ts, source, sequence)| {
                let row = Row {
                    available_qty,
                    reserved_qty,
                    status,
                    event_time_ms: ts.0,
                    source,
                    sequence,
                };
                ((item, node), row)
            },
        )
        .collect())
}

/// Polls the table until it equals `expected`; panics with the differences after `timeout`.
pub async fn wait_for_table(keyspace: &str, expected: &HashMap<(String, String), Row>, timeout: Duration) {
    let session = session().await;
    let deadline = Instant::now() + timeout;
    loop {
        let actual = read_table(&session, keyspace).await;
        if let Ok(actual) = &actual
            && actual == expected
        {
            return;
        }
        if Instant::now() > deadline {
            let actual = actual.unwrap_or_default();
            let missing = expected.keys().filter(|k| !actual.contains_key(*k)).count();
            let extra = actual.keys().filter(|k| !expected.contains_key(*k)).count();
            let wrong: Vec<_> = expected
                .iter()
                .filter_map(|(k, e)| actual.get(k).filter(|a| *a != e).map(|a| (k, e, a)))
                .take(5)
                .collect();
            panic!(
                "table {keyspace}.availability differs from the model after {timeout:?}: {} expected rows, {} actual, \
                 {missing} missing, {extra} unexpected; first wrong rows (key, expected, actual): {wrong:#?}",
                expected.len(),
                actual.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A running `stockflight-ingest` process; killed on drop.
pub struct Ingest {
    child: Child,
    metrics_addr: SocketAddr,
    name: String,
    /// The process's last log line, `ingest stopped`, with its totals.
    stopped: Arc<Mutex<Option<serde_json::Value>>>,
    /// The `message` of every log line so far.
    messages: Arc<Mutex<Vec<String>>>,
    logs: Option<std::thread::JoinHandle<()>>,
}

impl Ingest {
    /// Starts ingest on `topic` into `keyspace` with group `group`, and waits until it serves
    /// its operations endpoint (not until it is ready: see [`Ingest::wait_ready`]).
    pub fn start(name: &str, topic: &str, keyspace: &str, group: &str) -> Self {
        Self::start_with(name, topic, keyspace, group, &[])
    }

    /// [`Ingest::start`] with extra flags (later flags win over the defaults here).
    pub fn start_with(name: &str, topic: &str, keyspace: &str, group: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(binary("stockflight-ingest"))
            .args(["--kafka-brokers", &brokers()])
            .args(["--kafka-topic", topic])
            .args(["--cassandra-nodes", &cassandra_nodes()])
            .args(["--cassandra-keyspace", keyspace])
            .args(["--ingest-group-id", group])
            .args(["--ingest-session-timeout-ms", "6000"])
            .args(["--ingest-retry-max-delay-ms", "1000"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .args(["--log-level", "info,scylla=warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stockflight-ingest");
        let stderr = child.stderr.take().expect("stderr");
        let addr: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let stopped: Arc<Mutex<Option<serde_json::Value>>> = Arc::default();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let (found, last, seen) = (Arc::clone(&addr), Arc::clone(&stopped), Arc::clone(&messages));
        let label = name.to_string();
        let logs = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The test harness captures this and shows it when a test fails.
                eprintln!("[{label}] {line}");
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["message"] == "serving /metrics and /health"
                    && let Some(a) = json["addr"].as_str()
                {
                    *found.lock().unwrap() = a.parse().ok();
                }
                if let Some(m) = json["message"].as_str() {
                    seen.lock().unwrap().push(m.to_string());
                }
                if json["message"] == "ingest stopped" {
                    *last.lock().unwrap() = Some(json);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let metrics_addr = loop {
            if let Some(a) = *addr.lock().unwrap() {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name}: stockflight-ingest exited at start-up with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no metrics address logged within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            metrics_addr,
            name: name.to_string(),
            stopped,
            messages,
            logs: Some(logs),
        }
    }

    /// How many log lines so far had exactly this message.
    pub fn logged(&self, message: &str) -> usize {
        self.messages.lock().unwrap().iter().filter(|m| *m == message).count()
    }

    /// GETs a path of the operations endpoint: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.metrics_addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
        Some((status, body))
    }

    /// Waits until `/health` answers 200.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.get("/health").is_some_and(|(status, _)| status == 200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{}: exited with {status} before it was ready", self.name);
            }
            assert!(Instant::now() < deadline, "{}: not ready within {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sum of all samples of a counter or gauge (`name{...} value` lines).
    pub fn metric(&self, name: &str) -> f64 {
        let Some((200, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Polls until `metric(name) >= at_least`.
    pub fn wait_metric(&mut self, name: &str, at_least: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.metric(name);
            if value >= at_least {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{}: exited with {status} while waiting for {name} >= {at_least}",
                    self.name
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: {name} = {value}, not >= {at_least} within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no drain, no commit.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then waits for a clean exit; returns the records the process consumed in all
    /// (from its `ingest stopped` log line).
    pub fn terminate(self) -> u64 {
        self.terminate_timed().0
    }

    /// [`Ingest::terminate`], also returning how long the process took to exit.
    pub fn terminate_timed(mut self) -> (u64, Duration) {
        let started = Instant::now();
        stockflight_tests::signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "{}: exited with {status} after SIGTERM", self.name);
                // Its stderr is closed: the log reader ends after the last line.
                if let Some(logs) = self.logs.take() {
                    logs.join().expect("log reader");
                }
                let took = started.elapsed();
                let stopped = self.stopped.lock().unwrap().take();
                let consumed = stopped
                    .and_then(|json| json["consumed"].as_u64())
                    .unwrap_or_else(|| panic!("{}: no `ingest stopped` line with its totals", self.name));
                return (consumed, took);
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running 60 s after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Members of consumer group `group`, as the group coordinator reports them.
pub fn group_members(group: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("consumer");
    let list = consumer
        .fetch_group_list(Some(group), Duration::from_secs(30))
        .expect("group list");
    list.groups()
        .iter()
        .flat_map(|g| g.members().iter().map(|m| m.id().to_string()))
        .collect()
}
