//! Cassandra freezes (SIGSTOP) in the middle of a `stockflight-batch` scan: pages time out, are
//! retried from their paging state once it thaws (SIGCONT), and the published snapshot still
//! holds exactly the rows and aggregates of the table; the retries are counted.
//!
//! Freezes the test stack's Cassandra, so it lives alone in its test binary: no other test of
//! this binary runs meanwhile (cargo runs test binaries one after another).

#[path = "support/batch.rs"]
mod support;

use std::time::{Duration, Instant};

use stockflight_tests::{Frozen, cassandra_pid};

fn wait_metric(addr: &str, name: &str, what: &str, check: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = support::metric(addr, name)
            && check(value)
        {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: {name} not reached within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_cassandra_mid_scan_costs_retries_not_rows() {
    let data = support::generate(300, 60, 100, 23);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local("batch_retry", &data).await;
    let pid = cassandra_pid();

    // Small pages and short page timeouts: the scan takes many round trips, and a frozen
    // Cassandra turns into timed-out pages quickly.
    let mut batch = support::BatchProcess::spawn(
        &keyspace,
        &["--storage-url", &url],
        &[
            "--run-id",
            "r1",
            "--scan-parallelism",
            "2",
            "--scan-page-size",
            "100",
            "--scan-request-timeout-ms",
            "500",
            "--scan-retries",
            "10",
        ],
    );
    let addr = batch.metrics_addr();

    // Freeze Cassandra as soon as the scan has read its first rows, and thaw it once a page
    // has been retried.
    let before = wait_metric(&addr, "stockflight_batch_scan_rows", "the scan starts", |rows| {
        rows > 0.0
    });
    let frozen = Frozen::freeze(pid);
    let at_freeze = wait_metric(&addr, "stockflight_batch_scan_rows", "rows", |_| true);
    assert!(
        (at_freeze as usize) < data.rows.len(),
        "the scan ended ({at_freeze} rows) before Cassandra froze: nothing was tested"
    );
    let retries = wait_metric(&addr, "stockflight_batch_scan_page_retries", "a page is retried", |n| {
        n >= 1.0
    });
    drop(frozen);
    eprintln!("froze Cassandra after {before} rows ({at_freeze} when frozen); thawed after {retries} retries");

    let output = batch.finish(Duration::from_secs(120));
    let stdout = support::assert_success(&output);
    assert!(
        stdout.contains(&format!("scanned {} rows", data.rows.len())),
        "{stdout}"
    );
    let retried: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("retried ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `retried N pages` line in the summary:\n{stdout}"));
    assert!(
        retried >= retries as u64,
        "summary says {retried} retries, metrics said {retries}:\n{stdout}"
    );

    // Exactly the table: no page lost, none read twice.
    let r1 = support::current(&store).await;
    assert_eq!(r1.run_id, "r1");
    support::check_snapshot(&store, &r1, &data, &[("r1", &data)]).await;

    std::fs::remove_dir_all(&dir).ok();
    support::drop_keyspace(&session, &keyspace).await;
}
