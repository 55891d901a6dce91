//! Ingest under process faults, on real Kafka and Cassandra: SIGKILLed several times mid-stream
//! and restarted, and two instances sharing a topic across rebalances. Nothing may be lost:
//! the final table equals the last-write-wins model of everything produced.

#[path = "ingest_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stockflight_tests::unique;
use support::{Ingest, Record, StreamSpec};

/// Produces `records` in chunks with pauses, so the stream is still flowing while the test
/// injects faults; sets `done` at the end.
fn produce_slowly(
    topic: String,
    records: Vec<Record>,
    chunk: usize,
    pause: Duration,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let producer = support::producer();
        for part in records.chunks(chunk) {
            support::produce(&producer, &topic, part).await;
            tokio::time::sleep(pause).await;
        }
        done.store(true, Ordering::SeqCst);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restarts_lose_nothing() {
    let topic = unique("ingest_kill");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 4).await;
    let records = support::generate(&StreamSpec {
        items: 500,
        nodes: 10,
        updates: 20_000,
        seed: 11,
    });
    let expected = support::model(&records);

    let done = Arc::new(AtomicBool::new(false));
    let producing = produce_slowly(
        topic.clone(),
        records.clone(),
        500,
        Duration::from_millis(500),
        Arc::clone(&done),
    );
    let mut kills_mid_stream = 0;
    for round in 0..3 {
        let mut ingest = Ingest::start(&format!("ingest-{round}"), &topic, &keyspace, &group);
        ingest.wait_ready(Duration::from_secs(120));
        // Killed after real progress, with writes in flight and offsets not yet committed.
        ingest.wait_metric("stockflight_ingest_written_total", 1500.0, Duration::from_secs(120));
        if !done.load(Ordering::SeqCst) {
            kills_mid_stream += 1;
        }
        ingest.kill();
    }
    assert!(
        kills_mid_stream >= 2,
        "only {kills_mid_stream} of 3 kills happened while producing"
    );

    let mut last = Ingest::start("ingest-last", &topic, &keyspace, &group);
    last.wait_ready(Duration::from_secs(120));
    producing.await.expect("producer");
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(180)).await;
    last.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_partitions_across_rebalances() {
    let topic = unique("ingest_pair");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 6).await;
    let records = support::generate(&StreamSpec {
        items: 500,
        nodes: 10,
        updates: 15_000,
        seed: 12,
    });
    let expected = support::model(&records);

    let done = Arc::new(AtomicBool::new(false));
    let producing = produce_slowly(
        topic.clone(),
        records.clone(),
        500,
        Duration::from_millis(500),
        Arc::clone(&done),
    );
    let mut a = Ingest::start("ingest-a", &topic, &keyspace, &group);
    a.wait_ready(Duration::from_secs(120));
    a.wait_metric("stockflight_ingest_written_total", 1000.0, Duration::from_secs(120));

    // B joins: the group rebalances and B gets a share of the partitions.
    let mut b = Ingest::start("ingest-b", &topic, &keyspace, &group);
    b.wait_ready(Duration::from_secs(120));
    b.wait_metric("stockflight_ingest_written_total", 1000.0, Duration::from_secs(120));
    assert!(
        !done.load(Ordering::SeqCst),
        "the stream should still be flowing when B has taken over a share"
    );
    let a_consumed = a.metric("stockflight_ingest_consumed_total");

    // A leaves gracefully mid-stream: it commits what it wrote, B takes over everything.
    a.terminate();
    producing.await.expect("producer");
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(180)).await;
    let b_consumed = b.metric("stockflight_ingest_consumed_total");
    assert!(a_consumed > 0.0 && b_consumed > 0.0, "a {a_consumed}, b {b_consumed}");
    // Both shares together cover the stream (re-reads after a rebalance only add).
    assert!(
        a_consumed + b_consumed >= records.len() as f64,
        "a {a_consumed} + b {b_consumed} < {}",
        records.len()
    );
    b.terminate();
}
