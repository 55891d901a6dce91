//! A `stockflight-batch` run killed while it writes leaves the previous snapshot current and
//! readable; running the same run id again cleans up and publishes.

#[path = "support/batch.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stockflight_tests::{binary, require};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_write_leaves_the_previous_snapshot_current() {
    let data = support::generate(600, 30, 100, 7);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local("batch_kill", &data).await;

    support::assert_success(&support::run_batch(
        &keyspace,
        &["--storage-url", &url],
        &["--run-id", "r1"],
    ));
    let r1 = support::current(&store).await;
    assert_eq!(r1.run_id, "r1");

    // r2 reads one small page at a time, so it is still scanning and writing when killed.
    let mut child = Command::new(binary("stockflight-batch"))
        .args(["--once", "--run-id", "r2", "--metrics-addr", "127.0.0.1:0"])
        .args(["--cassandra-nodes", &require("STOCKFLIGHT_CASSANDRA_NODES")])
        .args(["--cassandra-keyspace", &keyspace, "--storage-url", &url])
        .args([
            "--scan-parallelism",
            "1",
            "--scan-page-size",
            "100",
            "--lease-ttl-secs",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stockflight-batch");
    let run_dir = dir.join("snapshots/r2");
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_under(&run_dir).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "r2 ended before it wrote anything");
        assert!(Instant::now() < deadline, "r2 wrote nothing within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill r2");
    let status = child.wait().unwrap();
    assert!(!status.success(), "r2 was killed, not finished");
    assert!(!files_under(&run_dir).is_empty(), "r2 left partial files behind");
    assert!(!run_dir.join("_manifest.json").exists(), "r2 never completed");

    // Readers still see r1, whole.
    assert_eq!(support::current(&store).await, r1);
    support::check_snapshot(&store, &r1, &data, &[("r1", &data)]).await;

    // The killed run could not release its lease: the next run may start once it expired.
    support::wait_lease(&session, &keyspace, "the killed run's lease expires", |o| o.is_none()).await;

    // The same run id again: the leftovers are replaced and r2 publishes.
    support::assert_success(&support::run_batch(
        &keyspace,
        &["--storage-url", &url],
        &["--run-id", "r2"],
    ));
    let r2 = support::current(&store).await;
    assert_eq!(r2.run_id, "r2");
    support::check_snapshot(&store, &r2, &data, &[("r1", &data), ("r2", &data)]).await;
    let listed: std::collections::BTreeSet<PathBuf> = r2
        .tables
        .values()
        .flat_map(|t| t.files.iter().map(|f| dir.join(f)))
        .chain([run_dir.join("_manifest.json")])
        .collect();
    let on_disk: std::collections::BTreeSet<PathBuf> = files_under(&run_dir).into_iter().collect();
    assert_eq!(on_disk, listed, "no leftovers of the killed attempt");

    std::fs::remove_dir_all(&dir).ok();
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}
