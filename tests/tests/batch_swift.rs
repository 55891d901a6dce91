//! `stockflight-batch` publishing to real OpenStack Swift through its S3 API: the same exact
//! figures, atomic `CURRENT`, retention keeping the replaced snapshot readable.

#[path = "support/batch.rs"]
mod support;

use futures::TryStreamExt;
use object_store::path::Path;
use stockflight_tests::Swift;

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_publish_to_swift_and_rotate() {
    let data = support::generate(30, 6, 80, 21);
    let (session, keyspace) = support::cassandra_keyspace("batch_swift").await;
    support::insert(&session, &keyspace, &data.rows).await;

    let swift = Swift::new("batch");
    let store = swift.store();
    support::write_reference(&store, &data).await;
    let flags = swift.flags();
    let storage_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    for run_id in ["r1", "r2"] {
        let stdout = support::assert_success(&support::run_batch(
            &keyspace,
            &storage_args,
            &["--run-id", run_id, "--snapshot-retention", "2"],
        ));
        assert!(stdout.contains(&format!("run {run_id} published")), "{stdout}");
    }
    let current = support::current(&store).await;
    assert_eq!(current.run_id, "r2");
    support::check_snapshot(&store, &current, &data, &[("r1", &data), ("r2", &data)]).await;

    // Retention keeps r1 whole: one of the two newest, and replaced only moments ago (within
    // the grace); deletion past the grace is tests/tests/batch_publish_fence.rs's.
    let r1: Vec<_> = store
        .list(Some(&Path::from("snapshots/r1")))
        .try_collect()
        .await
        .expect("list");
    assert!(!r1.is_empty(), "r1 was deleted right after r2 replaced it");
    let r1_manifest = support::read_manifest(&store, "r1").await;
    support::check_snapshot(&store, &r1_manifest, &data, &[("r1", &data)]).await;

    // Clean up this test's prefix.
    let all: Vec<_> = store.list(None).try_collect().await.expect("list");
    for object in all {
        object_store::ObjectStoreExt::delete(store.as_ref(), &object.location)
            .await
            .ok();
    }
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}
