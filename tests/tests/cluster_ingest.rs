//! Ingest on the cluster of `dev/stack up --cluster` (a 3-node Cassandra ring, a 3-broker
//! Kafka cluster): one Cassandra node, and separately one Kafka broker, killed with SIGKILL
//! while updates flow. Nothing may be lost: the final table equals the last-write-wins model
//! of everything produced, the dead-letter topic holds exactly the malformed records (each
//! once, with its origin), and every partition is committed to its end.
//!
//! These tests kill nodes of the stack they run on, so they need a cluster stack of their own
//! and run one at a time: `dev/test-cluster` starts it and runs them (they are `#[ignore]`d
//! in the plain `cargo test`, whose stack is a single node).

#[path = "support/ingest/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::Message as _;
use stockflight_tests::{cluster_node_pid, signal, stack};
use support::Ingest;
use support::flowing::FlowingStream;

const RF3: &str = "{'class': 'SimpleStrategy', 'replication_factor': 3}";

/// Brings every node of the cluster up (a no-op when they all run) and waits until it is whole.
fn whole_cluster() {
    stack(&["up", "--ephemeral-ports", "kafka", "cassandra"]);
}

/// The replicas of each partition of `topic`.
fn replicas(topic: &str) -> Vec<usize> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", support::brokers())
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.replicas().len())
        .collect()
}

/// Runs one stream through one ingest instance while `fault` kills a node mid-stream, then
/// checks the table, the dead letters and the commits.
async fn survives(name: &str, seed: u64, fault: impl FnOnce()) {
    whole_cluster();
    const MALFORMED: usize = 12;
    let stream = FlowingStream::start_with(name, 6, 24_000, seed, MALFORMED).await;
    assert_eq!(
        replicas(&stream.topic),
        vec![3; 6],
        "topics get the cluster's replication factor 3"
    );
    assert_eq!(
        support::topic_config(&stream.topic, "min.insync.replicas")
            .await
            .as_deref(),
        Some("2")
    );
    let mut ingest = Ingest::start_with(
        name,
        &stream.topic,
        &stream.keyspace,
        &stream.group,
        &["--ingest-replication", RF3, "--cassandra-consistency", "local_quorum"],
    );
    ingest.wait_ready(Duration::from_secs(180));
    ingest.wait_metric("stockflight_ingest_written_total", 3000.0, Duration::from_secs(180));
    assert!(stream.flowing(), "the fault must come while updates still flow");
    fault();
    assert!(stream.flowing(), "the fault must come while updates still flow");

    let (topic, group) = (stream.topic.clone(), stream.group.clone());
    let malformed = stream.wait_table().await;
    support::wait_committed_to_end(&topic, &group, Duration::from_secs(180));
    assert!(ingest.is_running(), "ingest survived the fault");
    // A failed commit on revocation (the group lost this member when its coordinator died) is
    // the one way records are read twice, and with them their dead letters written twice.
    let reread = ingest.logged("commit on revocation failed; the next owner re-reads from the last commit") > 0;
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);

    // The dead-letter topic holds exactly the malformed records, none else; each once unless
    // the records were read again (dead letters are at least once, ingest/README.md).
    let dlq = format!("{topic}.dlq");
    let total: i64 = support::offsets(&dlq, &stockflight_tests::unique("dlq_count"))
        .values()
        .map(|(_, end)| end)
        .sum();
    let letters = support::read_n(&dlq, total as usize, Duration::from_secs(60)).await;
    let origins: Vec<(i32, i64)> = letters
        .iter()
        .map(|m| {
            let partition = support::header(m, "stockflight-dlq-source-partition").expect("source partition");
            let offset = support::header(m, "stockflight-dlq-source-offset").expect("source offset");
            (partition.parse().unwrap(), offset.parse().unwrap())
        })
        .collect();
    let unique_origins: BTreeSet<_> = origins.iter().copied().collect();
    assert_eq!(unique_origins, malformed.iter().copied().collect::<BTreeSet<_>>());
    if !reread {
        assert_eq!(
            total as usize, MALFORMED,
            "{dlq} holds {total} records for {MALFORMED} malformed ones, and nothing was read twice: {origins:?}"
        );
    }
    for m in &letters {
        assert!(
            m.payload().is_some_and(|p| p.starts_with(&[0x00, 0x01, 0x02])),
            "kept as produced"
        );
    }
    // Leave the cluster whole for the next test.
    whole_cluster();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster stack of its own: dev/test-cluster"]
async fn a_cassandra_node_killed_mid_stream_loses_nothing() {
    survives("cluster_cassandra_kill", 31, || {
        // Not the seed: node 2 holds a third of the ring and a replica of every row.
        signal(cluster_node_pid("cassandra", 2), "KILL");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster stack of its own: dev/test-cluster"]
async fn a_kafka_broker_killed_mid_stream_loses_nothing() {
    survives("cluster_kafka_kill", 32, || {
        signal(cluster_node_pid("kafka", 2), "KILL");
    })
    .await;
}
