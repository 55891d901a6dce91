//! Ingest under process faults, on real Kafka and Cassandra: SIGKILLed several times mid-stream
//! and restarted, and two instances sharing a topic across rebalances. Nothing may be lost:
//! the final table equals the last-write-wins model of everything produced.

#[path = "support/ingest/mod.rs"]
mod support;

use std::time::Duration;

use support::Ingest;
use support::flowing::FlowingStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restarts_lose_nothing() {
    let stream = FlowingStream::start("ingest_kill", 4, 20_000, 11).await;
    let mut kills_mid_stream = 0;
    for round in 0..3 {
        let mut ingest = Ingest::start(
            &format!("ingest-{round}"),
            &stream.topic,
            &stream.keyspace,
            &stream.group,
        );
        ingest.wait_ready(Duration::from_secs(120));
        // Killed after real progress, with writes in flight and offsets not yet committed.
        ingest.wait_metric("stockflight_ingest_written_total", 1500.0, Duration::from_secs(120));
        if stream.flowing() {
            kills_mid_stream += 1;
        }
        ingest.kill();
    }
    assert!(
        kills_mid_stream >= 2,
        "only {kills_mid_stream} of 3 kills happened while producing"
    );

    let mut last = Ingest::start("ingest-last", &stream.topic, &stream.keyspace, &stream.group);
    last.wait_ready(Duration::from_secs(120));
    let (topic, group) = (stream.topic.clone(), stream.group.clone());
    stream.wait_table().await;
    // The killed instances' writes may already have filled the table: the last one must still
    // read and commit everything after the last commit before it is stopped.
    support::wait_committed_to_end(&topic, &group, Duration::from_secs(120));
    last.terminate();
    // The outcome in Kafka too: the group committed every partition to its end, so the kills
    // lost no commit that a further restart would have to make up for.
    support::assert_committed_to_end(&topic, &group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_partitions_across_rebalances() {
    let stream = FlowingStream::start("ingest_pair", 6, 15_000, 12).await;
    let mut a = Ingest::start("ingest-a", &stream.topic, &stream.keyspace, &stream.group);
    a.wait_ready(Duration::from_secs(120));
    a.wait_metric("stockflight_ingest_written_total", 1000.0, Duration::from_secs(120));

    // B joins: the group rebalances and B gets a share of the partitions.
    let mut b = Ingest::start("ingest-b", &stream.topic, &stream.keyspace, &stream.group);
    b.wait_ready(Duration::from_secs(120));
    b.wait_metric("stockflight_ingest_written_total", 1000.0, Duration::from_secs(120));
    assert!(
        stream.flowing(),
        "the stream should still be flowing when B has taken over a share"
    );
    // A leaves gracefully mid-stream: it commits what it wrote, B takes over everything.
    let a_consumed = a.terminate() as f64;
    let after_a = support::offsets(&stream.topic, &stream.group);
    let uncommitted: Vec<_> = after_a.iter().filter(|(_, (c, end))| *end > 0 && c.is_none()).collect();
    assert!(
        uncommitted.is_empty(),
        "after A's graceful exit partitions with data have no committed offset: {uncommitted:?}"
    );
    let (topic, group) = (stream.topic.clone(), stream.group.clone());
    stream.wait_table().await;
    let b_consumed = b.metric("stockflight_ingest_consumed_total");
    assert!(a_consumed > 0.0 && b_consumed > 0.0, "a {a_consumed}, b {b_consumed}");
    support::wait_committed_to_end(&topic, &group, Duration::from_secs(120));
    b.terminate();
    // What was committed, not what was counted: a commit lost on A's exit, on a rebalance or on
    // B's exit leaves a partition short of its end.
    support::assert_committed_to_end(&topic, &group);
    // Every committed offset only moved forward from what A left.
    let end = support::offsets(&topic, &group);
    for (p, (committed, _)) in &after_a {
        assert!(
            end[p].0 >= *committed,
            "partition {p}: committed {:?} after B, {committed:?} after A",
            end[p].0
        );
    }
}
