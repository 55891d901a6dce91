//! The whole platform end to end, on real Kafka and Cassandra and through the real client stacks:
//! a known stream with duplicates, out-of-order events, equal-time ties, JSON records and
//! malformed messages goes through Kafka, `stockflight-ingest`, Cassandra, `stockflight-batch`
//! and `stockflight-server`; queries over ADBC (Python) and JDBC (Java) return exactly the
//! aggregates this test computes itself, in plain Rust, from the stream it produced; every
//! malformed message is in the dead-letter topic with its reason.
//!
//! Status, measures and roll-up levels follow `batch/README.md` ("Output tables"): status is the
//! publisher's `AvailabilityStatus` code (no quantity thresholds are applied downstream),
//! `in_stock_rate` = (in stock + low stock) / (rows not discontinued), NULL when that is 0;
//! missing reference attributes read `unknown`.

#[path = "support/answers.rs"]
mod answers;
#[path = "support/batch.rs"]
mod batch;
#[path = "support/ingest/mod.rs"]
mod ingest;
#[path = "support/server.rs"]
mod server;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use answers::{Attributes, NULL, assert_answer, both_clients, by_node, by_region_category, snapshot};
use ingest::{Encoding, Ingest, Record, Rng};
use prost::Message as _;
use rdkafka::Message;
use stockflight_common::sections::StorageSection;
use stockflight_common::storage::Storage;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::unique;

/// Items in the catalog; one more (`ORPHAN_ITEM`) appears in the stream only.
const ITEMS: usize = 24;
/// Nodes in the dimension; one more (`ORPHAN_NODE`) appears in the stream only.
const NODES: usize = 6;
/// A node whose every update says DISCONTINUED: its `in_stock_rate` is NULL.
const CLOSED_NODE: usize = 5;
const ORPHAN_ITEM: &str = "e2e-it-orphan";
const ORPHAN_NODE: &str = "e2e-nd-orphan";
const DEPARTMENTS: [&str; 3] = ["grocery", "apparel", "electronics"];
const REGIONS: [&str; 3] = ["east", "west", "central"];
/// 2025-11-24T16:00:00Z, in microseconds.
const BASE_US: i64 = 1_764_000_000_000_000;
const USER: &str = "e2e";
const PASSWORD: &str = "e2e-secret";

fn item_id(i: usize) -> String {
    format!("e2e-it-{i:03}")
}

fn node_id(n: usize) -> String {
    format!("e2e-nd-{n}")
}

fn department(i: usize) -> &'static str {
    DEPARTMENTS[i % 3]
}

fn category(i: usize) -> String {
    format!("{}-{}", department(i), (i / 3) % 2)
}

fn region(n: usize) -> &'static str {
    REGIONS[n % 3]
}

/// The reference data as the batch reads it (`reference/items`, `reference/nodes`).
fn reference() -> batch::DataSet {
    batch::DataSet {
        items: (0..ITEMS)
            .map(|i| batch::Item {
                item_id: item_id(i),
                department: department(i).into(),
                category: category(i),
            })
            .collect(),
        nodes: (0..NODES)
            .map(|n| batch::Node {
                node_id: node_id(n),
                region: region(n).into(),
            })
            .collect(),
        rows: Vec::new(),
    }
}

/// The valid part of the stream, in production order: fresh updates at random event times
/// within ten minutes (so later records often carry older events), exact re-deliveries of
/// earlier records, equal-event-time ties of one source delivered in either order, and some
/// records in JSON.
fn valid_stream(updates: usize, seed: u64) -> Vec<Record> {
    let sources = ["pos", "wms", "oms"];
    let mut next_seq = [1u64; 3];
    let mut rng = Rng::new(seed);
    let item_ids: Vec<String> = (0..ITEMS).map(item_id).chain([ORPHAN_ITEM.to_string()]).collect();
    let node_ids: Vec<String> = (0..NODES).map(node_id).chain([ORPHAN_NODE.to_string()]).collect();
    let mut out: Vec<Record> = Vec::new();
    for _ in 0..updates {
        let item = rng.below(item_ids.len() as u64) as usize;
        let node = rng.below(node_ids.len() as u64) as usize;
        let s = rng.below(3) as usize;
        let make = |rng: &mut Rng, sequence: u64, event_time_us: i64| {
            let available = rng.below(12) as i64;
            let status = if node == CLOSED_NODE {
                4
            } else {
                match available {
                    0 => 3,
                    1..=4 => 2,
                    _ if rng.chance(0.05) => 4,
                    _ => 1,
                }
            };
            AvailabilityUpdate {
                item_id: item_ids[item].clone(),
                node_id: node_ids[node].clone(),
                available_qty: available,
                reserved_qty: rng.below(6) as i64,
                status,
                event_time_us,
                source: sources[s].to_string(),
                sequence,
            }
        };
        let encoding = |rng: &mut Rng| {
            if rng.chance(0.15) {
                Encoding::Json
            } else {
                Encoding::Protobuf
            }
        };
        let event_time = BASE_US + rng.below(600_000_000) as i64;
        let seq = next_seq[s];
        next_seq[s] += 1;
        let first = make(&mut rng, seq, event_time);
        // A tie: same pair, source and event time, the next sequence (same block of 1000).
        if rng.chance(0.08) && (seq + 1) / 1000 == seq / 1000 {
            let second = make(&mut rng, next_seq[s], event_time);
            next_seq[s] += 1;
            let (a, b) = if rng.chance(0.5) {
                (first, second)
            } else {
                (second, first)
            };
            for update in [a, b] {
                let encoding = encoding(&mut rng);
                out.push(Record { update, encoding });
            }
        } else {
            let encoding = encoding(&mut rng);
            out.push(Record {
                update: first,
                encoding,
            });
        }
        if rng.chance(0.10) {
            let again = out[rng.below(out.len() as u64) as usize].clone();
            out.push(again);
        }
    }
    out
}

/// How often the stream's end state depends on last-write-wins rather than arrival order:
/// (pairs whose last-produced record is not the winner, pairs whose winner has an equal-time,
/// lower-sequence rival produced after it).
fn decisive_cases(records: &[Record]) -> (usize, usize) {
    let mut pairs: HashMap<(&str, &str), Vec<&AvailabilityUpdate>> = HashMap::new();
    for r in records {
        pairs
            .entry((&r.update.item_id, &r.update.node_id))
            .or_default()
            .push(&r.update);
    }
    let (mut stale_last, mut reversed_ties) = (0, 0);
    let rank = |u: &AvailabilityUpdate| (u.event_time_us, u.sequence);
    for updates in pairs.values() {
        let winner = *updates.iter().max_by_key(|u| rank(u)).unwrap();
        let last = *updates.last().unwrap();
        stale_last += usize::from(rank(last) != rank(winner));
        let won_at = updates.iter().position(|u| rank(u) == rank(winner)).unwrap();
        reversed_ties += usize::from(
            updates[won_at..]
                .iter()
                .any(|u| u.event_time_us == winner.event_time_us && u.sequence < winner.sequence),
        );
    }
    (stale_last, reversed_ties)
}

/// A message as produced to Kafka; `reason` is set for malformed ones (a fragment the
/// dead-letter reason must contain).
struct Produced {
    key: String,
    payload: Vec<u8>,
    content_type: Option<&'static str>,
    reason: Option<&'static str>,
}

impl From<&Record> for Produced {
    fn from(r: &Record) -> Self {
        Self {
            key: r.key(),
            payload: r.payload(),
            content_type: (r.encoding == Encoding::Json).then_some("application/json"),
            reason: None,
        }
    }
}

/// Malformed messages. Those that decode aim at real pairs with the newest event time of the
/// stream, so one that slipped through would change the aggregates.
fn malformed() -> Vec<Produced> {
    let newest = BASE_US + 700_000_000;
    let good = AvailabilityUpdate {
        item_id: item_id(1),
        node_id: node_id(1),
        available_qty: 999,
        reserved_qty: 0,
        status: 1,
        event_time_us: newest,
        source: "pos".into(),
        sequence: 999,
    };
    let pair_key = stockflight_proto::kafka_key(&good.item_id, &good.node_id);
    let pb = |reason: &'static str, spoil: &dyn Fn(&mut AvailabilityUpdate)| {
        let mut u = good.clone();
        spoil(&mut u);
        Produced {
            key: pair_key.clone(),
            payload: u.encode_to_vec(),
            content_type: None,
            reason: Some(reason),
        }
    };
    let raw = |key: &str, payload: &[u8], content_type: Option<&'static str>, reason: &'static str| Produced {
        key: key.to_string(),
        payload: payload.to_vec(),
        content_type,
        reason: Some(reason),
    };
    let negative_json = Record {
        update: AvailabilityUpdate {
            reserved_qty: -2,
            ..good.clone()
        },
        encoding: Encoding::Json,
    };
    vec![
        raw("e2e-garbage", b"\xff\xfe\x00 definitely not protobuf", None, "protobuf"),
        pb("`item_id`", &|u| u.item_id.clear()),
        pb("`node_id`", &|u| u.node_id = "n".repeat(65)),
        pb("`available_qty`", &|u| u.available_qty = -7),
        pb("`status`", &|u| u.status = 0),
        pb("`status`", &|u| u.status = 9),
        pb("`event_time_us`", &|u| u.event_time_us = 0),
        pb("`event_time_us`", &|u| u.event_time_us = newest * 1000),
        pb("`source`", &|u| u.source.clear()),
        Produced {
            reason: Some("`reserved_qty`"),
            ..Produced::from(&negative_json)
        },
        raw(&pair_key, b"{\"item_id\": ", Some("application/json"), "JSON"),
        raw(&pair_key, b"item,node,qty", Some("text/csv"), "text/csv"),
        raw(&pair_key, b"", None, "empty"),
    ]
}

/// Reference attributes of an (item, node) row, `unknown` where the reference has none.
fn attributes(item: &str, node: &str) -> Attributes {
    let i = (0..ITEMS).find(|i| item_id(*i) == item);
    let n = (0..NODES).find(|n| node_id(*n) == node);
    Attributes {
        region: n.map_or("unknown".into(), |n| region(n).into()),
        // batch_support writes every node as a store in California.
        node_type: n.map_or("unknown".into(), |_| "store".into()),
        state: n.map(|_| "CA".into()),
        department: i.map_or("unknown".into(), |i| department(i).into()),
        category: i.map_or("unknown".into(), category),
    }
}

/// Reads the dead-letter topic until every malformed message was seen there, checking each
/// letter's reason, origin, key, value and content type.
async fn assert_dead_letters(topic: &str, letters: &HashMap<(i32, i64), &Produced>) {
    let consumer = ingest::reader(&format!("{topic}.dlq"));
    let mut seen = HashSet::new();
    while seen.len() < letters.len() {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {} dead letters within 60 s", seen.len(), letters.len()))
            .expect("consume a dead letter");
        let header = |name: &str| ingest::header(&message, name);
        let required = |name: &str| header(name).unwrap_or_else(|| panic!("a dead letter without {name}"));
        let origin: (i32, i64) = (
            required("stockflight-dlq-source-partition").parse().unwrap(),
            required("stockflight-dlq-source-offset").parse().unwrap(),
        );
        let produced = letters
            .get(&origin)
            .unwrap_or_else(|| panic!("dead letter {origin:?} was not malformed"));
        let reason = required("stockflight-dlq-reason");
        let wanted = produced.reason.unwrap();
        assert!(
            reason.contains(wanted),
            "{origin:?}: reason `{reason}` should name `{wanted}`"
        );
        assert!(!required("stockflight-dlq-kind").is_empty(), "{origin:?}: empty kind");
        assert_eq!(required("stockflight-dlq-source-topic"), topic);
        assert_eq!(message.key(), Some(produced.key.as_bytes()), "{origin:?}: key kept");
        assert_eq!(
            message.payload().unwrap_or_default(),
            produced.payload.as_slice(),
            "{origin:?}: value kept as is"
        );
        assert_eq!(
            header("content-type").as_deref(),
            produced.content_type,
            "{origin:?}: content type kept"
        );
        seen.insert(origin);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_bi_clients_returns_the_tests_own_aggregates() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());

    // The stream, and what it must leave behind.
    let records = valid_stream(2400, 42);
    let bad = malformed();
    let expected_table = ingest::model(&records);
    let mut versions: HashMap<(String, String, i64, u64), &AvailabilityUpdate> = HashMap::new();
    for r in &records {
        let u = &r.update;
        let key = (u.item_id.clone(), u.node_id.clone(), u.event_time_us, u.sequence);
        let earlier = versions.insert(key, u);
        assert!(
            earlier.is_none_or(|e| e == u),
            "two different updates of one pair share (event time, sequence): {u:?}"
        );
    }
    let mut newest: HashMap<(&str, &str), i64> = HashMap::new();
    let mut out_of_order = 0;
    for r in &records {
        let u = &r.update;
        let latest = newest.entry((&u.item_id, &u.node_id)).or_insert(i64::MIN);
        out_of_order += usize::from(u.event_time_us < *latest);
        *latest = (*latest).max(u.event_time_us);
    }
    let (stale_last, reversed_ties) = decisive_cases(&records);
    assert!(
        stale_last > 100,
        "{stale_last} pairs whose last record is not the newest"
    );
    assert!(reversed_ties > 3, "{reversed_ties} pairs won by a tie delivered first");
    let distinct: HashSet<Vec<u8>> = records.iter().map(|r| r.update.encode_to_vec()).collect();
    let json = records.iter().filter(|r| r.encoding == Encoding::Json).count();
    assert!(out_of_order > 300, "{out_of_order} out-of-order records");
    assert!(
        records.len() - distinct.len() > 150,
        "{} duplicates",
        records.len() - distinct.len()
    );
    assert!(json > 200, "{json} JSON records");
    assert!(
        expected_table.len() > 150,
        "{} (item, node) pairs",
        expected_table.len()
    );

    // Valid and malformed messages interleaved, in one stream.
    let mut messages: Vec<Produced> = records.iter().map(Produced::from).collect();
    let gap = messages.len() / (bad.len() + 1);
    for (i, m) in bad.into_iter().enumerate().rev() {
        messages.insert((i + 1) * gap, m);
    }
    let malformed_count = messages.iter().filter(|m| m.reason.is_some()).count();

    // Kafka -> ingest -> Cassandra.
    let topic = unique("e2e");
    let keyspace = unique("e2e");
    ingest::create_topic(&topic, 3).await;
    let mut ingest = Ingest::start("e2e-ingest", &topic, &keyspace, &unique("e2e-group"));
    ingest.wait_ready(Duration::from_secs(120));
    step("ingest ready");
    let producer = ingest::producer();
    let mut positions = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(1000) {
        let raw: Vec<_> = chunk
            .iter()
            .map(|m| (m.key.clone(), m.payload.clone(), m.content_type))
            .collect();
        positions.extend(ingest::produce_raw(&producer, &topic, &raw).await);
    }
    step(&format!(
        "produced {} messages, {malformed_count} malformed",
        messages.len()
    ));
    ingest::wait_for_table(&keyspace, &expected_table, Duration::from_secs(120)).await;
    // The table can match before the last (stale or duplicate) records are through: wait for
    // every record to be accounted for, then check that none was counted twice.
    for (metric, count) in [
        ("stockflight_ingest_consumed_total", messages.len()),
        ("stockflight_ingest_written_total", records.len()),
        ("stockflight_ingest_dead_lettered_total", malformed_count),
    ] {
        ingest.wait_metric(metric, count as f64, Duration::from_secs(60));
    }
    assert_eq!(
        ingest.metric("stockflight_ingest_consumed_total"),
        messages.len() as f64
    );
    assert_eq!(ingest.metric("stockflight_ingest_written_total"), records.len() as f64);
    assert_eq!(
        ingest.metric("stockflight_ingest_dead_lettered_total"),
        malformed_count as f64
    );
    step("Cassandra holds the last-write-wins model");
    let letters: HashMap<(i32, i64), &Produced> = messages
        .iter()
        .zip(&positions)
        .filter(|(m, _)| m.reason.is_some())
        .map(|(m, p)| (*p, m))
        .collect();
    assert_dead_letters(&topic, &letters).await;
    step("every malformed message is in the dead-letter topic");
    ingest.terminate();

    // Cassandra + reference -> batch -> Parquet snapshot.
    let storage_dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageSection::local(storage_dir.path().display().to_string())).unwrap();
    batch::write_reference(storage.store(), &reference()).await;
    let url = format!("file://{}", storage_dir.path().display());
    let output = batch::run_batch(&keyspace, &["--storage-url", &url], &["--run-id", "e2e1"]);
    let summary = batch::assert_success(&output);
    assert!(summary.contains("run e2e1 published"), "{summary}");
    step("batch published run e2e1");

    // Snapshot -> server -> ADBC and JDBC.
    let users = format!("{USER}:{}", server::hash_password(PASSWORD));
    let server = server::Server::start(storage_dir.path(), &["--auth-users", &users]);
    let mut flight = server.client().await;
    flight.login(USER, PASSWORD).await.expect("log in");
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(status) = flight.query("SELECT count(*) FROM availability_by_node").await {
        assert!(
            Instant::now() < deadline,
            "the server did not serve the snapshot within 30 s: {status}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    step("server serves the snapshot");

    let expected = [
        by_node(&expected_table, &attributes, "availability_by_node"),
        by_region_category(&expected_table, &attributes, "availability_by_region_category"),
        snapshot(&expected_table, &attributes, "availability_snapshot", |_, _| true),
        snapshot(
            &expected_table,
            &attributes,
            "availability_snapshot WHERE region = 'west' AND available_qty >= 10",
            |a, row| a.region == "west" && row.available_qty >= 10,
        ),
    ];
    // The queries cover what the test claims: a NULL rate, `unknown` attributes, every level.
    let levels: HashSet<&str> = expected[1].rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(levels.len(), 4, "{levels:?}");
    assert!(expected[0].rows.iter().any(|r| r.contains(&NULL.to_string())));
    assert!(expected[0].rows.iter().any(|r| r[2] == "unknown"));
    assert!(expected[2].rows.iter().any(|r| r[4] == "unknown"));
    assert!(!expected[3].rows.is_empty());
    let sql: Vec<&str> = expected.iter().map(|e| e.sql.as_str()).collect();

    for (client, answers) in both_clients(&server, USER, PASSWORD, &sql) {
        assert_eq!(answers.len(), expected.len(), "{client}: one answer per query");
        for (want, got) in expected.iter().zip(&answers) {
            assert_answer(client, want, got);
        }
    }
    step("ADBC and JDBC return the test's own aggregates");
}
