//! Live tables on the real platform (Kafka, ingest with its change log, Cassandra, the batch, the
//! server) through the real client stacks: after a snapshot, a second stream (newer and older
//! events, ties, new pairs, updates in the snapshot row's own millisecond) is produced, and
//!
//! - `availability_live` answers key look-ups with Cassandra's rows, in the snapshot's columns;
//! - `availability_current` and the aggregates over it equal this test's own model of the
//!   snapshot's stream plus the second one (last write wins, computed here in plain Rust), while
//!   the snapshot's tables still answer as of the snapshot;
//! - an update produced at the end becomes visible through both (and the same statement is
//!   never answered from a cache);
//! - a query that would scan Cassandra is refused with INVALID_ARGUMENT unless its LIMIT is
//!   within `live.max_scan_rows`;
//! - ADBC's `get_objects` and JDBC's `getTables` list the live tables in the same schema, typed
//!   `LIVE TABLE` / `LIVE VIEW`.
//!
//! Freshness is measured by `bench/live.sh`; here each wait only has a generous deadline.

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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use answers::{Answer, Expected, assert_answer, both_clients, by_item, by_node, by_region_category, snapshot};
use arrow::array::{Array, AsArray};
use ingest::{Encoding, Record, StreamSpec};
use live::{NODES, PASSWORD, Platform, USER, attributes, client_when_serving, item_id, node_id};
use stockflight_proto::v1::AvailabilityUpdate;
use tonic::Code;

/// The largest scan without a key the test server allows.
const MAX_SCAN_ROWS: usize = 25;

/// Updates of two pairs in the very millisecond of their snapshot rows: one a microsecond
/// older (it loses), one a microsecond newer (it wins), whatever their sequences say. The pairs
/// are ones `second` has no newer update of, so these decide them.
fn same_millisecond(
    model: &HashMap<(String, String), ingest::Row>,
    first: &[Record],
    second: &[Record],
) -> Vec<Record> {
    let mut winners: Vec<&AvailabilityUpdate> = first
        .iter()
        .map(|r| &r.update)
        .filter(|u| {
            let row = &model[&(u.item_id.clone(), u.node_id.clone())];
            let later = second.iter().any(|r| {
                r.update.item_id == u.item_id
                    && r.update.node_id == u.node_id
                    && r.update.event_time_us >= u.event_time_us
            });
            // No rival in the same millisecond in the first stream either: however many of the
            // first stream's changes the server reads again, this pair's row stays the snapshot's.
            let rival = first.iter().any(|r| {
                r.update.item_id == u.item_id
                    && r.update.node_id == u.node_id
                    && r.update.event_time_us / 1000 == u.event_time_us / 1000
                    && r.update != **u
            });
            !later
                && !rival
                && row.event_time_ms == u.event_time_us / 1000
                && row.sequence == u.sequence as i64
                && row.source == u.source
                && (2..998).contains(&u.event_time_us.rem_euclid(1000))
        })
        .collect();
    winners.sort_by_key(|u| (u.item_id.clone(), u.node_id.clone()));
    winners.dedup_by_key(|u| (u.item_id.clone(), u.node_id.clone()));
    assert!(winners.len() >= 2, "the first stream has snapshot rows to aim at");
    let older = AvailabilityUpdate {
        event_time_us: winners[0].event_time_us - 1,
        sequence: winners[0].sequence + 1_000,
        available_qty: 777,
        ..winners[0].clone()
    };
    let newer = AvailabilityUpdate {
        event_time_us: winners[1].event_time_us + 1,
        sequence: 1,
        available_qty: 888,
        ..winners[1].clone()
    };
    [older, newer]
        .into_iter()
        .map(|update| Record {
            update,
            encoding: Encoding::Protobuf,
        })
        .collect()
}

fn assert_answers(client: &str, expected: &[Expected], answers: &[Answer]) {
    assert_eq!(answers.len(), expected.len(), "{client}: one answer per query");
    for (want, got) in expected.iter().zip(answers) {
        assert_answer(client, want, got);
    }
}

/// Runs `sql` until its answer passes `check` (true) or `timeout` passes (false).
async fn until(
    flight: &mut server::Client,
    sql: &str,
    timeout: Duration,
    check: impl Fn(&[arrow::array::RecordBatch]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if flight.query(sql).await.is_ok_and(|b| check(&b)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The rows of a single-column text result.
fn texts(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let column = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let column = column.as_string::<i32>();
            (0..column.len())
                .map(|i| column.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_current_tables_answer_as_of_now_beside_the_snapshot() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    // The first stream names fewer items and nodes than the second: the second adds pairs.
    let spec = |items, nodes, updates, seed| StreamSpec {
        items,
        nodes,
        updates,
        seed,
    };

    // The snapshot: a first stream, ingested and published.
    let mut platform = Platform::start("live").await;
    let first = ingest::generate(&spec(live::ITEMS - 6, NODES - 1, 800, 21));
    let at_snapshot = ingest::model(&first);
    platform.ingest(&first, &at_snapshot).await;
    platform.publish("live1");
    step("first stream ingested and published as snapshot live1");

    // No cut-off margin: the first stream's changes (all before the batch started) are not read
    // again, so every change the server merges meets the snapshot's own row (same machine, one
    // clock; the default margin covers clocks of different hosts).
    let server = platform.server(&[
        "--live-max-scan-rows",
        &MAX_SCAN_ROWS.to_string(),
        "--live-cutoff-margin-secs",
        "0",
    ]);
    let mut flight = client_when_serving(
        &server,
        "SELECT count(*) FROM availability_current",
        Duration::from_secs(60),
    )
    .await;
    step("server serves live1 and its live tables");

    // The second stream: after the snapshot, with its own ties, duplicates and out-of-order
    // events, pairs the snapshot lacks, and two updates in snapshot rows' own millisecond.
    let mut second = ingest::generate(&spec(live::ITEMS, NODES, 900, 22));
    let crafted = same_millisecond(&at_snapshot, &first, &second);
    second.extend(crafted);
    let all: Vec<Record> = first.iter().chain(&second).cloned().collect();
    let now = ingest::model(&all);
    assert!(
        now.len() > at_snapshot.len(),
        "the second stream adds pairs: {} vs {}",
        now.len(),
        at_snapshot.len()
    );
    let changed = now.iter().filter(|(k, v)| at_snapshot.get(*k) != Some(*v)).count();
    assert!(changed > 50, "{changed} pairs changed since the snapshot");
    platform.ingest(&second, &now).await;
    step(&format!(
        "second stream ingested: {changed} pairs changed since the snapshot"
    ));

    // availability_current catches up with Cassandra (the follower reads the change log).
    let current_totals = by_region_category(&now, &attributes, "availability_by_region_category_current");
    let total_sql =
        "SELECT items_tracked, units_available FROM availability_by_region_category_current WHERE level = 'total'";
    let total = current_totals.rows.iter().find(|r| r[0] == "total").unwrap();
    let want_total = vec![total[4].clone(), total[10].clone()];
    let caught_up = until(&mut flight, total_sql, Duration::from_secs(60), |batches| {
        let cells: Vec<String> = (0..2)
            .map(|c| server::scalar_i64(&[batches[0].project(&[c]).unwrap()]).to_string())
            .collect();
        cells == want_total
    })
    .await;
    assert!(
        caught_up,
        "availability_current did not catch up within 60 s\n{}",
        server.log_text()
    );
    step("availability_current caught up");

    // Every client, every table: live and current as of now, the snapshot as of live1.
    let key = item_id(3);
    let pair_nodes = format!("'{}', '{}'", item_id(1), item_id(2));
    let expected = [
        snapshot(
            &now,
            &attributes,
            &format!("availability_live WHERE item_id = '{key}'"),
            |_, _| true,
        )
        .filtered(|r| r[0] == key),
        snapshot(
            &now,
            &attributes,
            &format!(
                "availability_live WHERE item_id IN ({pair_nodes}) AND node_id = '{}'",
                node_id(1)
            ),
            |_, _| true,
        )
        .filtered(|r| (r[0] == item_id(1) || r[0] == item_id(2)) && r[1] == node_id(1)),
        snapshot(&now, &attributes, "availability_current", |_, _| true),
        snapshot(
            &now,
            &attributes,
            "availability_current WHERE region = 'west' AND available_qty >= 10",
            |a, row| a.region == "west" && row.available_qty >= 10,
        ),
        current_totals,
        by_node(&now, &attributes, "availability_by_node_current"),
        by_item(&now, &attributes, "availability_by_item_current"),
        by_region_category(&at_snapshot, &attributes, "availability_by_region_category"),
        snapshot(&at_snapshot, &attributes, "availability_snapshot", |_, _| true),
    ];
    assert!(!expected[0].rows.is_empty() && !expected[1].rows.is_empty() && !expected[3].rows.is_empty());
    assert!(
        expected[2].rows.iter().any(|r| r[4] == "unknown"),
        "pairs without reference data"
    );
    let mut sql: Vec<&str> = expected.iter().map(|e| e.sql.as_str()).collect();
    sql.push("!tables");
    for (client, answers) in both_clients(&server, USER, PASSWORD, &sql) {
        let (queries, tables) = answers.split_at(expected.len());
        assert_answers(client, &expected, queries);
        let types: HashMap<&str, &str> = tables[0].rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
        for (table, kind) in [
            ("availability_live", "LIVE TABLE"),
            ("availability_current", "LIVE TABLE"),
            ("availability_by_node_current", "LIVE VIEW"),
            ("availability_by_item_current", "LIVE VIEW"),
            ("availability_by_region_category_current", "LIVE VIEW"),
            ("availability_snapshot", "TABLE"),
            ("availability_by_region_category", "TABLE"),
        ] {
            assert_eq!(types.get(table).copied(), Some(kind), "{client}: {table} in {types:?}");
        }
    }
    step("ADBC and JDBC: live and current as of now, the snapshot as of live1, the catalog typed");

    // One more update, the newest of its pair: visible through both live tables, through the
    // very statements asked before it (no cache answers them).
    let (item, node) = (item_id(3), node_id(1));
    let live_sql =
        format!("SELECT available_qty FROM availability_live WHERE item_id = '{item}' AND node_id = '{node}'");
    let current_sql =
        format!("SELECT available_qty FROM availability_current WHERE item_id = '{item}' AND node_id = '{node}'");
    for sql in [&live_sql, &current_sql] {
        let before = flight.query(sql).await.expect(sql);
        assert_ne!(server::scalar_i64(&before), 4242, "{sql}");
    }
    let newest = Record {
        update: AvailabilityUpdate {
            item_id: item.clone(),
            node_id: node.clone(),
            available_qty: 4242,
            reserved_qty: 0,
            status: 1,
            event_time_us: 1_764_000_000_000_000 + 3_600_000_000,
            source: "pos".into(),
            sequence: 1,
        },
        encoding: Encoding::Json,
    };
    let produced = Instant::now();
    ingest::produce(&platform.producer, &platform.topic, std::slice::from_ref(&newest)).await;
    for sql in [&live_sql, &current_sql] {
        let seen = until(&mut flight, sql, Duration::from_secs(30), |b| {
            server::rows(b) == 1 && server::scalar_i64(b) == 4242
        })
        .await;
        assert!(
            seen,
            "`{sql}` did not show the new update within 30 s\n{}",
            server.log_text()
        );
        step(&format!(
            "visible {:?} after it was produced: {sql}",
            produced.elapsed()
        ));
    }

    // A new snapshot is published while the server runs: its current tables start from it.
    platform.publish("live2");
    let latest: Vec<Record> = all.iter().chain(std::iter::once(&newest)).cloned().collect();
    let latest = ingest::model(&latest);
    let served = until(
        &mut flight,
        "SELECT max(run_id) FROM availability_trend",
        Duration::from_secs(60),
        |b| texts(b) == ["live2"],
    )
    .await;
    assert!(served, "the server did not swap to live2\n{}", server.log_text());
    let totals = by_region_category(&latest, &attributes, "availability_by_region_category_current");
    let total = totals.rows.iter().find(|r| r[0] == "total").unwrap();
    let want = [total[4].clone(), total[10].clone()];
    let swapped = until(&mut flight, total_sql, Duration::from_secs(60), |batches| {
        (0..2)
            .map(|c| server::scalar_i64(&[batches[0].project(&[c]).unwrap()]).to_string())
            .eq(want.iter().cloned())
    })
    .await;
    assert!(
        swapped,
        "availability_current on live2 is not the model\n{}",
        server.log_text()
    );
    let count = flight.query("SELECT count(*) FROM availability_current").await.unwrap();
    assert_eq!(server::scalar_i64(&count), latest.len() as i64);
    step("live2 published: the current tables follow the new snapshot");

    // The full-scan guard.
    for sql in [
        "SELECT * FROM availability_live".to_string(),
        "SELECT region, count(*) FROM availability_live GROUP BY region".to_string(),
        format!("SELECT * FROM availability_live LIMIT {}", MAX_SCAN_ROWS + 1),
        "SELECT * FROM availability_live WHERE available_qty > 3 LIMIT 5".to_string(),
        format!("SELECT * FROM availability_live WHERE node_id = '{node}' LIMIT 5"),
    ] {
        let status = flight.query(&sql).await.expect_err(&sql);
        assert_eq!(status.code(), Code::InvalidArgument, "{sql}: {status:?}");
        assert!(
            status.message().contains("live.max_scan_rows") && status.message().contains("item_id"),
            "{sql}: {}",
            status.message()
        );
    }
    let bounded = flight
        .query(&format!(
            "SELECT item_id, region FROM availability_live LIMIT {MAX_SCAN_ROWS}"
        ))
        .await
        .expect("a scan within live.max_scan_rows");
    assert_eq!(server::rows(&bounded), MAX_SCAN_ROWS);
    let types = flight
        .query("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%current' ORDER BY 1")
        .await
        .expect("information_schema");
    assert_eq!(
        texts(&types),
        [
            "availability_by_item_current",
            "availability_by_node_current",
            "availability_by_region_category_current",
            "availability_current"
        ]
    );
    step("full scans refused with INVALID_ARGUMENT; a LIMIT within live.max_scan_rows served");
    platform.ingest.terminate();
}
