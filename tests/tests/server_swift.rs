//! `stockflight-server` serving snapshots from real OpenStack Swift (S3 API): `CURRENT` read by
//! exact key, tables registered from the manifest's file list (a stray object beside them is
//! never served), and a new snapshot swapped in without a restart.

#[path = "support/server.rs"]
mod support;

use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use stockflight_proto::layout::CURRENT_POINTER;
use stockflight_tests::Swift;
use support::*;

/// Uploads every file `publish` wrote under `local` (the run's files first, `CURRENT` last, as the
/// batch publishes), then removes the local copy of the run so nothing can be read from disk.
async fn upload(store: &dyn ObjectStore, local: &std::path::Path, run_id: &str) {
    let run_dir = local.join("snapshots").join(run_id);
    let mut files = Vec::new();
    let mut stack = vec![run_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "publish wrote no files for {run_id}");
    files.push(local.join(CURRENT_POINTER));
    for path in files {
        let key = path.strip_prefix(local).unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        store
            .put(&Path::from(key.as_str()), bytes.into())
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e}"));
    }
    std::fs::remove_dir_all(run_dir).unwrap();
}

async fn east_total(client: &mut Client) -> Option<i64> {
    let sql = "SELECT sum(available_qty) FROM availability_snapshot WHERE region = 'east'";
    client.query(sql).await.map(|b| scalar_i64(&b)).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_snapshots_from_swift_and_swaps_them() {
    let swift = Swift::new("server");
    let store = swift.store();

    let local = tempfile::tempdir().unwrap();
    publish(local.path(), "r1", 0);
    upload(store.as_ref(), local.path(), "r1").await;
    // An object the manifest does not list, inside a partition directory: never served.
    let stray = Path::from("snapshots/r1/availability_snapshot/region=east/stray.parquet");
    let copied = store
        .get(&Path::from(
            "snapshots/r1/availability_snapshot/region=east/part-0.parquet",
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    store.put(&stray, copied.into()).await.unwrap();

    let flags = swift.connection_flags();
    let server = Server::start_on(
        swift.url.as_ref(),
        &flags.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut client = server.client().await;

    assert_eq!(
        east_total(&mut client).await,
        Some(region_total(0, "east")),
        "r1 from Swift: {}",
        server.log_text()
    );
    assert_eq!(
        scalar_i64(
            &client
                .query("SELECT count(*) FROM availability_snapshot")
                .await
                .unwrap()
        ),
        (ITEMS * NODES) as i64,
        "only the manifest's files are read"
    );
    // A join across tables of one snapshot, checked against the generator.
    let toys = client
        .query(
            "SELECT count(*) FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id \
             JOIN nodes n ON a.node_id = n.node_id WHERE i.department = 'toys' AND n.region = 'west'",
        )
        .await
        .unwrap();
    assert_eq!(scalar_i64(&toys), (ITEMS / DEPARTMENTS.len() * NODES / 2) as i64);

    // A new run published to Swift replaces every table without a restart.
    publish(local.path(), "r2", 1);
    upload(store.as_ref(), local.path(), "r2").await;
    let expected = region_total(1, "east");
    assert!(
        eventually(Duration::from_secs(30), || {
            let inner = client.inner.clone();
            async move { east_total(&mut Client { inner, token: None }).await == Some(expected) }
        })
        .await,
        "r2 was not picked up from Swift: {}",
        server.log_text()
    );
    let items = client
        .query("SELECT count(*) FROM items WHERE item_id LIKE 'sku-%'")
        .await
        .unwrap();
    assert_eq!(scalar_i64(&items), ITEMS as i64);

    // Clean up this test's prefix.
    let all: Vec<_> = store.list(None).try_collect().await.expect("list");
    for object in all {
        store.delete(&object.location).await.ok();
    }
}
