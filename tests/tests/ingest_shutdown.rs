//! SIGTERM while every write is stuck retrying (Cassandra frozen with SIGSTOP): ingest exits
//! within its drain bound, once, commits nothing it did not write, and a restart writes
//! everything.
//!
//! Freezes the test stack's Cassandra, so it lives alone in its test binary.

#[path = "support/ingest/mod.rs"]
mod support;

use std::time::Duration;

use stockflight_tests::{Frozen, cassandra_pid, unique};
use support::{Ingest, StreamSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_honours_its_drain_bound_once_while_writes_retry() {
    let topic = unique("ingest_drain");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 2).await;
    let records = support::generate(&StreamSpec {
        items: 50,
        nodes: 4,
        updates: 300,
        seed: 21,
    });
    let drain = Duration::from_secs(4);
    let drain_ms = drain.as_millis().to_string();
    let mut ingest = Ingest::start_with(
        "ingest-drain",
        &topic,
        &keyspace,
        &group,
        &["--ingest-drain-timeout-ms", &drain_ms],
    );
    ingest.wait_ready(Duration::from_secs(120));

    let frozen = Frozen::freeze(cassandra_pid());
    support::produce(&support::producer(), &topic, &records).await;
    ingest.wait_metric(
        "stockflight_ingest_consumed_total",
        records.len() as f64,
        Duration::from_secs(60),
    );
    ingest.wait_metric("stockflight_ingest_retries_total", 1.0, Duration::from_secs(60));
    let (_, took) = ingest.terminate_timed();
    drop(frozen);
    // The drain bound, plus a little for the final commit and leaving the group; a second wait
    // for the revoked partitions would take another full bound.
    assert!(
        took >= drain && took < drain + Duration::from_millis(2500),
        "exit took {took:?} with a drain bound of {drain:?}"
    );
    // Nothing was written, so nothing may be committed.
    for (partition, (committed, _)) in support::offsets(&topic, &group) {
        assert!(
            committed.is_none_or(|c| c == 0),
            "partition {partition} committed {committed:?} without a write"
        );
    }

    let mut again = Ingest::start("ingest-again", &topic, &keyspace, &group);
    again.wait_ready(Duration::from_secs(120));
    // The restart itself must write every record: the first instance's requests, sent while
    // Cassandra was frozen, may still land once it thaws, so the table alone proves nothing.
    again.wait_metric(
        "stockflight_ingest_written_total",
        records.len() as f64,
        Duration::from_secs(120),
    );
    support::wait_for_table(&keyspace, &support::model(&records), Duration::from_secs(120)).await;
    again.terminate();
    support::assert_committed_to_end(&topic, &group);
}
