//! Ingest while Cassandra is stopped mid-stream: it retries, stays in its consumer group (the
//! partitions are paused, the consumer keeps polling), commits nothing past unwritten data,
//! resumes by itself, and loses and repeats nothing.
//!
//! Two lengths: ~30 s (in `dev/test`) and 330 s, longer than Kafka's default
//! `max.poll.interval.ms` of 5 minutes, after which a consumer that stopped polling would be
//! evicted from its group (`#[ignore]`d here, run by `bench/soak`).
//!
//! Stops and starts the test stack's Cassandra (`dev/stack down|up cassandra` with the same
//! STOCKFLIGHT_STATE_DIR), so it lives alone in its test binary: no other test of this binary
//! runs meanwhile (cargo runs test binaries one after another).

#[path = "support/ingest/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use stockflight_tests::{repo_root, stack, unique};
use support::{Encoding, Ingest, StreamSpec};

fn stack_env(name: &str) -> Option<String> {
    let output = Command::new(repo_root().join("dev/stack")).arg("env").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_outage_loses_nothing() {
    outage(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a 330 s outage; run by bench/soak"]
async fn cassandra_outage_longer_than_max_poll_interval_loses_nothing() {
    outage(Duration::from_secs(330)).await;
}

async fn outage(length: Duration) {
    let nodes_before = support::cassandra_nodes();
    let topic = unique("ingest_outage");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 3).await;
    let records = support::generate(&StreamSpec {
        items: 400,
        nodes: 10,
        updates: 9_000,
        seed: 13,
    });
    let expected = support::model(&records);
    let third = records.len() / 3;
    let producer = support::producer();
    let raw = |part: &[support::Record]| -> Vec<(String, Vec<u8>, Option<&'static str>)> {
        part.iter()
            .map(|r| {
                let ct = (r.encoding == Encoding::Json).then_some("application/json");
                (r.key(), r.payload(), ct)
            })
            .collect()
    };

    let mut ingest = Ingest::start("ingest", &topic, &keyspace, &group);
    ingest.wait_ready(Duration::from_secs(120));
    support::produce(&producer, &topic, &records[..third]).await;
    ingest.wait_metric(
        "stockflight_ingest_written_total",
        third as f64,
        Duration::from_secs(120),
    );
    let members_before = support::group_members(&group);
    assert_eq!(
        members_before.len(),
        1,
        "one member before the outage: {members_before:?}"
    );

    let down_at = Instant::now();
    stack(&["down", "cassandra"]);
    // Produced during the outage: none of these may be committed before it is written.
    let during = support::produce_raw(&producer, &topic, &raw(&records[third..2 * third])).await;
    let mut first_unwritten: HashMap<i32, i64> = HashMap::new();
    for (partition, offset) in during {
        let first = first_unwritten.entry(partition).or_insert(offset);
        *first = (*first).min(offset);
    }
    // Ingest notices: writes fail and are retried, and /health reports not ready.
    ingest.wait_metric("stockflight_ingest_retries_total", 1.0, Duration::from_secs(60));
    assert_eq!(
        ingest.get("/health").map(|(s, _)| s),
        Some(503),
        "not ready while Cassandra is down"
    );
    // The records of the outage fill the in-flight bound and the buffer behind it: fetching
    // pauses (and polling goes on, which the group membership below shows).
    ingest.wait_metric("stockflight_ingest_paused", 1.0, Duration::from_secs(60));
    // The outage itself lasts `length`: that is the fault being injected, not a readiness wait.
    // Meanwhile, every 10 s: committed offsets never pass the first unwritten record.
    while down_at.elapsed() < length {
        tokio::time::sleep(Duration::from_secs(10).min(length.saturating_sub(down_at.elapsed()))).await;
        for (partition, (committed, _)) in support::offsets(&topic, &group) {
            if let (Some(committed), Some(first)) = (committed, first_unwritten.get(&partition)) {
                assert!(
                    committed <= *first,
                    "partition {partition}: committed {committed} past the unwritten offset {first} during the outage"
                );
            }
        }
    }
    assert!(ingest.is_running(), "ingest must survive the outage");
    // Still in the group, as the same member, never revoked: no rebalance, no re-reads.
    assert_eq!(
        support::group_members(&group),
        members_before,
        "the consumer left or rejoined its group during a {length:?} outage"
    );
    assert_eq!(
        ingest.logged("partitions revoked"),
        0,
        "partitions were revoked during the outage"
    );
    stack(&["up", "--ephemeral-ports", "cassandra"]);
    let nodes_after = stack_env("STOCKFLIGHT_CASSANDRA_NODES").expect("cassandra in stack.env");
    assert_eq!(
        nodes_after, nodes_before,
        "dev/stack restarted Cassandra on another port; ingest (and this test) still point at the old one"
    );

    support::produce(&producer, &topic, &records[2 * third..]).await;
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(180)).await;
    ingest.wait_ready(Duration::from_secs(30));
    // The table is whole once every pair's newest update is in; updates that lose to them may
    // still be in flight. Wait for all of them, then check none was written twice.
    ingest.wait_metric(
        "stockflight_ingest_written_total",
        records.len() as f64,
        Duration::from_secs(60),
    );
    // Every record written exactly once by this process: retried, never skipped, never repeated.
    assert_eq!(ingest.metric("stockflight_ingest_written_total"), records.len() as f64);
    assert_eq!(ingest.metric("stockflight_ingest_consumed_total"), records.len() as f64);
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}
