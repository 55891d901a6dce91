//! The batch job on two `stockflight-batch worker` processes on loopback (datafusion-distributed):
//! the snapshot it publishes is the single-process run's over the same Cassandra rows, every
//! table row for row (sorted, all columns), two runs in a row (the second carries the trend
//! forward). The token ranges are dealt to both workers, both write Parquet, the coordinator
//! only publishes. Bad worker addresses stop start-up naming `distributed.workers`, and a worker
//! stops on SIGTERM.

#[path = "support/batch.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use stockflight_proto::layout::SnapshotManifest;
use stockflight_tests::{binary, signal, unique};

/// A worker process, its address read from its port file.
struct Worker {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Worker {
    fn start(dir: &Path, name: &str, storage_url: &str) -> Self {
        let port_file = dir.join(format!("{name}.port"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(binary("stockflight-batch"))
            .arg("worker")
            .args(["--worker-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(["--log-format", "json", "--storage-url", storage_url])
            .args(["--memory-limit-mb", "256"])
            .arg("--worker-port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("worker log"))
            .spawn()
            .expect("start stockflight-batch worker");
        let mut worker = Self {
            child,
            addr: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        worker.addr = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().to_string();
            }
            if let Some(status) = worker.child.try_wait().unwrap() {
                panic!("worker {name} exited {status}:\n{}", worker.log_text());
            }
            assert!(Instant::now() < deadline, "worker {name} wrote no port file in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        worker
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (within 30 s).
    fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "worker did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every table of `manifest`: its column names and types, and its rows as text, sorted.
async fn tables(
    store: &Arc<dyn ObjectStore>,
    manifest: &SnapshotManifest,
) -> BTreeMap<String, (Vec<String>, Vec<BTreeMap<String, String>>)> {
    let mut out = BTreeMap::new();
    for (name, table) in &manifest.tables {
        let read = support::read_table(store, table).await;
        let mut columns: Vec<String> = read
            .batches
            .first()
            .map(|(_, b)| {
                b.schema()
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect()
            })
            .unwrap_or_default();
        columns.sort();
        let mut rows = read.records();
        rows.sort();
        out.insert(name.clone(), (columns, rows));
    }
    out
}

/// The trend's `run_time` is each run's own start; everything else must match.
fn without_run_time(rows: &mut [BTreeMap<String, String>]) {
    for row in rows.iter_mut() {
        row.remove("run_time");
    }
    rows.sort();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_publish_the_single_process_snapshot() {
    // Bad worker addresses stop start-up, naming the key.
    let bad = support::run_batch("ks", &[], &["--distributed-workers", "127.0.0.1"]);
    assert_eq!(bad.status.code(), Some(78), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("distributed.workers"),
        "{bad:?}"
    );

    let data = support::generate(150, 24, 80, 4242);
    let single = support::Loaded::local("batch_dist", &data).await;
    let dist_dir = std::env::temp_dir().join(unique("batch_distributed_workers"));
    let dist_store = stockflight_common::storage::Storage::open(&stockflight_common::sections::StorageSection::local(
        dist_dir.display().to_string(),
    ))
    .unwrap()
    .store()
    .clone();
    support::write_reference(&dist_store, &data).await;
    let dist_url = format!("file://{}", dist_dir.display());
    let logs = std::env::temp_dir().join(unique("batch_distributed_logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let workers = [
        Worker::start(&logs, "w1", &dist_url),
        Worker::start(&logs, "w2", &dist_url),
    ];
    let addresses = format!("{},{}", workers[0].addr, workers[1].addr);
    // Small pages and several splits per reader: many ranges for the workers to share.
    let scan = ["--scan-parallelism", "2", "--scan-page-size", "100"];

    for run_id in ["r1", "r2"] {
        let local = support::run_batch(
            &single.keyspace,
            &["--storage-url", &single.url],
            &[&["--run-id", run_id][..], &scan[..]].concat(),
        );
        support::assert_success(&local);
        let distributed = support::run_batch(
            &single.keyspace,
            &["--storage-url", &dist_url],
            &[
                &["--run-id", run_id, "--distributed-workers", &addresses][..],
                &scan[..],
            ]
            .concat(),
        );
        support::assert_success(&distributed);
        // The pass was cut into stages: the aggregation's partial states are shuffled between
        // the workers, the scan's tasks each read a share of the ranges.
        let plan = String::from_utf8_lossy(&distributed.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["fields"]["message"] == "distributed plan" || e["message"] == "distributed plan")
            .map(|e| {
                e["fields"]["plan"]
                    .as_str()
                    .or(e["plan"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .expect("the coordinator logs its distributed plan");
        for node in [
            "NetworkShuffleExec",
            "NetworkCoalesceExec",
            "mode=Partial",
            "TablesWriteExec",
            "SnapshotWriteExec",
            "CassandraScanExec",
        ] {
            assert!(plan.contains(node), "no {node} in the distributed plan:\n{plan}");
        }
        if std::env::var_os("SHOW_PLAN").is_some() {
            eprintln!("{plan}");
        }

        let (a, b) = (
            support::current(&single.store).await,
            support::current(&dist_store).await,
        );
        assert_eq!((a.run_id.as_str(), b.run_id.as_str()), (run_id, run_id));
        // The distributed snapshot is right on its own (the model of the rows written)...
        let trend: Vec<(&str, &support::DataSet)> = ["r1", "r2"]
            .into_iter()
            .take_while(|r| *r <= run_id)
            .map(|r| (r, &data))
            .collect();
        support::check_snapshot(&dist_store, &b, &data, &trend).await;
        // ...and equal to the single-process run's, table by table, row by row.
        let (mut expected, mut got) = (tables(&single.store, &a).await, tables(&dist_store, &b).await);
        assert_eq!(expected.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
        for t in [&mut expected, &mut got] {
            without_run_time(&mut t.get_mut("availability_trend").unwrap().1);
        }
        for (name, (columns, rows)) in &expected {
            let (got_columns, got_rows) = &got[name];
            assert_eq!(got_columns, columns, "{name}: columns and types");
            assert_eq!(got_rows.len(), rows.len(), "{name}: row count");
            assert_eq!(got_rows, rows, "{name}: rows");
        }
        for (manifest, what) in [(&a, "single"), (&b, "distributed")] {
            let trend = support::read_table(
                if what == "single" { &single.store } else { &dist_store },
                &manifest.tables["availability_trend"],
            )
            .await
            .records();
            let own: std::collections::BTreeSet<&String> = trend
                .iter()
                .filter(|r| r["run_id"] == run_id)
                .map(|r| &r["run_time"])
                .collect();
            assert_eq!(own.len(), 1, "{what}: one run time for run {run_id}");
        }

        // Both workers scanned and wrote: each task writes its own files.
        let drill_down = &b.tables["availability_snapshot"].files;
        for task in 0..2 {
            assert!(
                drill_down.iter().any(|f| f.ends_with(&format!("/part-{task}.parquet"))),
                "task {task} wrote no drill-down file: {drill_down:?}"
            );
            assert!(
                b.tables["availability_by_item"]
                    .files
                    .iter()
                    .any(|f| f.contains(&format!("/part-{task}-"))),
                "task {task} wrote no per-item file: {:?}",
                b.tables["availability_by_item"].files
            );
        }
    }
    for (i, worker) in workers.iter().enumerate() {
        let log = worker.log_text();
        assert!(
            log.contains("scanning this task's token ranges") && log.contains("task's files written"),
            "worker {i} scanned and wrote nothing:\n{log}"
        );
    }

    // SIGTERM stops a worker cleanly.
    for worker in workers {
        let status = worker.stop();
        assert!(status.success(), "worker exit on SIGTERM: {status}");
    }
    std::fs::remove_dir_all(&single.dir).ok();
    std::fs::remove_dir_all(&dist_dir).ok();
    std::fs::remove_dir_all(&logs).ok();
    support::drop_keyspace(&single.session, &single.keyspace).await;
}
