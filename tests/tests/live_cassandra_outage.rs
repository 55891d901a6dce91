//! Cassandra down while the server runs: the live tables answer UNAVAILABLE (the read of
//! `availability_live` fails, and `availability_current` and its aggregates stop answering once
//! the change log has not been read for `live.max_staleness_ms`), every snapshot table keeps
//! answering, and the live tables answer again once Cassandra is back, without a restart.
//!
//! Stops and starts the test stack's Cassandra (`dev/stack down|up cassandra` with the same
//! STOCKFLIGHT_STATE_DIR), so it lives alone in its test binary: no other test of this binary
//! runs meanwhile (cargo runs test binaries one after another).

#[path = "support/answers.rs"]
mod answers;
#[path = "support/batch.rs"]
mod batch;
#[path = "support/ingest/mod.rs"]
mod ingest;
#[path = "support/live.rs"]
mod live;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use ingest::StreamSpec;
use live::{Platform, client_when_serving, item_id};
use stockflight_tests::stack;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tables_fail_unavailable_while_cassandra_is_down_and_snapshot_tables_keep_serving() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let mut platform = Platform::start("live_outage").await;
    let records = ingest::generate(&StreamSpec {
        items: live::ITEMS,
        nodes: live::NODES,
        updates: 300,
        seed: 5,
    });
    platform.ingest(&records, &ingest::model(&records)).await;
    platform.publish("outage1");
    let server = platform.server(&["--live-max-staleness-ms", "1500", "--live-request-timeout-ms", "1000"]);
    // Ingest would retry through the outage; it has nothing more to write here.
    platform.ingest.terminate();
    let key = item_id(4);
    let live_queries = [
        format!("SELECT available_qty FROM availability_live WHERE item_id = '{key}'"),
        format!("SELECT available_qty FROM availability_current WHERE item_id = '{key}'"),
        "SELECT items_tracked FROM availability_by_region_category_current WHERE level = 'total'".to_string(),
        "SELECT count(*) FROM availability_by_node_current".to_string(),
    ];
    let snapshot_queries = [
        format!("SELECT available_qty FROM availability_snapshot WHERE item_id = '{key}'"),
        "SELECT items_tracked FROM availability_by_region_category WHERE level = 'total'".to_string(),
        "SELECT count(*) FROM availability_by_node".to_string(),
    ];
    let mut flight = client_when_serving(&server, &live_queries[1], Duration::from_secs(60)).await;
    for sql in live_queries.iter().chain(&snapshot_queries) {
        flight.query(sql).await.unwrap_or_else(|s| panic!("{sql}: {s:?}"));
    }
    step("every table answers");

    stack(&["down", "cassandra"]);
    step("Cassandra stopped");
    let deadline = Instant::now() + Duration::from_secs(60);
    for sql in &live_queries {
        loop {
            match flight.query(sql).await {
                Err(status) if status.code() == Code::Unavailable => {
                    assert!(
                        status.message().contains("live table unavailable"),
                        "{sql}: {}",
                        status.message()
                    );
                    break;
                }
                other => assert!(
                    Instant::now() < deadline,
                    "{sql} still answers {other:?} 60 s into the outage"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Meanwhile the snapshot answers, every time.
        for sql in &snapshot_queries {
            flight
                .query(sql)
                .await
                .unwrap_or_else(|s| panic!("snapshot table during the outage: {sql}: {s:?}"));
        }
    }
    step("live tables UNAVAILABLE, snapshot tables answering");

    stack(&["up", "--ephemeral-ports", "cassandra"]);
    step("Cassandra started again");
    let deadline = Instant::now() + Duration::from_secs(120);
    for sql in &live_queries {
        while let Err(status) = flight.query(sql).await {
            assert!(
                Instant::now() < deadline,
                "{sql} still fails 120 s after Cassandra came back: {status:?}\n{}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    step("live tables answer again, no restart");
}
