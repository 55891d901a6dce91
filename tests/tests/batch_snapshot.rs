//! `stockflight-batch` on real Cassandra and a local directory: the published tables hold the
//! aggregates this test computes itself from the rows it wrote; the trend carries over runs;
//! re-running a run id changes nothing; retention keeps the newest K snapshots.

#[path = "support/batch.rs"]
mod support;

use std::collections::BTreeSet;

use stockflight_tests::unique;
use support::{Row, check_snapshot};

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_hold_independent_aggregates_carry_the_trend_and_rotate() {
    let first = support::generate(40, 9, 80, 1);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local("batch_snap", &first).await;
    let storage_args = ["--storage-url", url.as_str()];
    let args = |run_id: &'static str| {
        [
            "--run-id",
            run_id,
            "--scan-parallelism",
            "3",
            "--scan-page-size",
            "100",
            "--snapshot-retention",
            "2",
        ]
    };

    let stdout = support::assert_success(&support::run_batch(&keyspace, &storage_args, &args("r1")));
    assert!(stdout.contains("run r1 published"), "{stdout}");
    assert!(
        stdout.contains(&format!("scanned {} rows", first.rows.len())),
        "{stdout}"
    );
    let r1 = support::current(&store).await;
    assert_eq!(r1.run_id, "r1");
    check_snapshot(&store, &r1, &first, &[("r1", &first)]).await;

    // Availability changes (newer updates: a later event time); the next run sees it and the
    // trend keeps r1's figures.
    let mut second = first.clone();
    for (i, row) in second.rows.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        row.status = 3;
        row.available = 0;
        row.event_time_ms += 60_000;
        row.sequence += 1 + i as i64;
    }
    let changed: Vec<Row> = second.rows.iter().step_by(3).cloned().collect();
    support::insert(&session, &keyspace, &changed).await;
    support::assert_success(&support::run_batch(&keyspace, &storage_args, &args("r2")));
    let r2 = support::current(&store).await;
    assert_eq!(r2.run_id, "r2");
    check_snapshot(&store, &r2, &second, &[("r1", &first), ("r2", &second)]).await;

    // Re-running r2 is idempotent: nothing rewritten, CURRENT untouched.
    let stdout = support::assert_success(&support::run_batch(&keyspace, &storage_args, &args("r2")));
    assert!(stdout.contains("published before"), "{stdout}");
    assert_eq!(support::current(&store).await, r2);

    // Retention keeps the two newest and, within the grace period, r1 too (replaced moments
    // ago, a server may still be reading it); r3's trend still has r1's rows.
    support::assert_success(&support::run_batch(&keyspace, &storage_args, &args("r3")));
    let r3 = support::current(&store).await;
    assert_eq!(r3.run_id, "r3");
    let runs: BTreeSet<String> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        runs,
        BTreeSet::from(["r1".to_string(), "r2".to_string(), "r3".to_string()])
    );
    check_snapshot(
        &store,
        &r3,
        &second,
        &[("r1", &first), ("r2", &second), ("r3", &second)],
    )
    .await;
    // The kept older snapshot is still whole and readable.
    check_snapshot(&store, &r2, &second, &[("r1", &first), ("r2", &second)]).await;

    std::fs::remove_dir_all(&dir).ok();
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_reference_data_fails_clearly_and_publishes_nothing() {
    let (session, keyspace) = support::cassandra_keyspace("batch_noref").await;
    let dir = std::env::temp_dir().join(unique("batch_noref"));
    let url = format!("file://{}", dir.display());
    let output = support::run_batch(&keyspace, &["--storage-url", &url], &["--run-id", "r1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(65),
        "exit code of bad input data; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "stockflight-batch: reference data: no items table: reference/items/ holds no .parquet or .csv file"
        ),
        "{stderr}"
    );
    assert!(!dir.join("CURRENT").exists(), "nothing published");
    std::fs::remove_dir_all(&dir).ok();
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}
