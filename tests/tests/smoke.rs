//! Smoke tests: each real service and client tool is up, real, and reachable from Rust.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use scylla::client::session_builder::SessionBuilder;
use stockflight_tests::{require, unique};

#[tokio::test]
async fn kafka_carries_a_message() {
    let brokers = require("STOCKFLIGHT_KAFKA_BROKERS");
    let topic = unique("smoke");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics request");
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let payload = format!("hello from {topic}");
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("a message within 60 s")
        .expect("consume");
    assert_eq!(message.payload(), Some(payload.as_bytes()));
    assert_eq!(message.key(), Some(&b"k"[..]));
}

#[tokio::test]
async fn cassandra_stores_a_row() {
    let nodes = require("STOCKFLIGHT_CASSANDRA_NODES");
    let session = SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .expect("connect to Cassandra");
    let keyspace = unique("smoke");
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(
            format!("CREATE TABLE {keyspace}.t (id text PRIMARY KEY, qty bigint)"),
            (),
        )
        .await
        .expect("create table");
    session
        .query_unpaged(
            format!("INSERT INTO {keyspace}.t (id, qty) VALUES (?, ?)"),
            ("sku-1", 42_i64),
        )
        .await
        .expect("insert");
    let rows = session
        .query_unpaged(format!("SELECT id, qty FROM {keyspace}.t WHERE id = ?"), ("sku-1",))
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    let row: (String, i64) = rows.single_row().expect("one row");
    assert_eq!(row, ("sku-1".to_string(), 42));

    let version = session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await
        .expect("system.local")
        .into_rows_result()
        .expect("rows")
        .single_row::<(String,)>()
        .expect("one row")
        .0;
    assert!(version.starts_with("5.0"), "Cassandra release {version}");
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}

#[tokio::test]
async fn swift_s3_stores_an_object() {
    let store = stockflight_tests::Swift::new("smoke").store();

    let key = Path::from("snapshots/run-1/table/part-0.parquet");
    let body = Bytes::from_static(b"not really parquet");
    store.put(&key, body.clone().into()).await.expect("put object");

    let listed: Vec<_> = store
        .list(Some(&Path::from("snapshots")))
        .try_collect()
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].location, key);
    assert_eq!(listed[0].size, body.len() as u64);

    let read = store.get(&key).await.expect("get").bytes().await.expect("body");
    assert_eq!(read, body);

    store.delete(&key).await.expect("delete");
    let after: Vec<_> = store
        .list(Some(&Path::from("snapshots")))
        .try_collect()
        .await
        .expect("list");
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn grpcurl_runs() {
    let output = Command::new(require("STOCKFLIGHT_GRPCURL"))
        .arg("--version")
        .output()
        .expect("run grpcurl");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.starts_with("grpcurl v1."), "{text}");
}

#[test]
fn jdbc_driver_loads() {
    let mut java = Command::new("java");
    java.args(require("STOCKFLIGHT_JAVA_OPTS").split_whitespace());
    let output = java
        .args([
            "-cp",
            &require("STOCKFLIGHT_JDBC_CLASSPATH"),
            "io.stockflight.clients.DriverCheck",
        ])
        .output()
        .expect("run java");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Arrow Flight"), "{text}");
}
