//! Ingest while Cassandra is stopped for about 30 s mid-stream: it retries, commits nothing past
//! unwritten data, resumes by itself, and loses nothing.
//!
//! Stops and starts the test stack's Cassandra (`dev/stack down|up cassandra` with the same
//! STOCKFLIGHT_STATE_DIR), so it lives alone in its test binary: no other test of this binary
//! runs meanwhile (cargo runs test binaries one after another).

#[path = "support/ingest/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use stockflight_tests::{repo_root, unique};
use support::{Ingest, StreamSpec};

fn stack(args: &[&str]) {
    let output = Command::new(repo_root().join("dev/stack"))
        .args(args)
        .output()
        .expect("run dev/stack");
    assert!(
        output.status.success(),
        "dev/stack {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stack_env(name: &str) -> Option<String> {
    let output = Command::new(repo_root().join("dev/stack")).arg("env").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_outage_loses_nothing() {
    let nodes_before = support::cassandra_nodes();
    let topic = unique("ingest_outage");
    let keyspace = unique("ingest");
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

    let mut ingest = Ingest::start("ingest", &topic, &keyspace, &unique("group"));
    ingest.wait_ready(Duration::from_secs(120));
    support::produce(&producer, &topic, &records[..third]).await;
    ingest.wait_metric(
        "stockflight_ingest_written_total",
        third as f64,
        Duration::from_secs(120),
    );

    let down_at = Instant::now();
    stack(&["down", "cassandra"]);
    support::produce(&producer, &topic, &records[third..2 * third]).await;
    // Ingest notices: writes fail and are retried, and /health reports not ready.
    ingest.wait_metric("stockflight_ingest_retries_total", 1.0, Duration::from_secs(60));
    assert_eq!(
        ingest.get("/health").map(|(s, _)| s),
        Some(503),
        "not ready while Cassandra is down"
    );
    // The outage itself lasts ~30 s: that is the fault being injected, not a readiness wait.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    assert!(ingest.is_running(), "ingest must survive the outage");
    stack(&["up", "--ephemeral-ports", "cassandra"]);
    let nodes_after = stack_env("STOCKFLIGHT_CASSANDRA_NODES").expect("cassandra in stack.env");
    assert_eq!(
        nodes_after, nodes_before,
        "dev/stack restarted Cassandra on another port; ingest (and this test) still point at the old one"
    );

    support::produce(&producer, &topic, &records[2 * third..]).await;
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(180)).await;
    ingest.wait_ready(Duration::from_secs(30));
    // Every record written exactly once by this process: retried, never skipped, never repeated.
    assert_eq!(ingest.metric("stockflight_ingest_written_total"), records.len() as f64);
    ingest.terminate();
}
