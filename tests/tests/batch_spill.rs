//! With a memory limit below the size of the table, the aggregation spills to disk and still
//! publishes exact figures.

#[path = "support/batch.rs"]
mod support;

use std::collections::BTreeMap;

use support::{Measures, Row};

const MEMORY_LIMIT_MB: usize = 32;

#[tokio::test(flavor = "multi_thread")]
async fn aggregating_more_than_the_memory_limit_spills_and_stays_exact() {
    // A small catalog, and many more item ids in the availability table: the per-item
    // aggregation has far more groups than fit in the pool.
    let mut data = support::generate(50, 3, 100, 11);
    let mut rng = support::Lcg::new(12);
    for i in 50..220_000 {
        data.rows.push(Row {
            item_id: format!("sku-{i:06}"),
            node_id: "node-000".into(),
            available: rng.next(100) as i64,
            reserved: Some(rng.next(5) as i64),
            status: (1 + rng.next(4)) as i8,
            event_time_ms: 1_764_000_000_000,
            source: "wms".into(),
            sequence: i,
        });
    }
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local("batch_spill", &data).await;
    let spill_dir = dir.with_extension("spill");
    let limit = MEMORY_LIMIT_MB.to_string();

    let stdout = support::assert_success(&support::run_batch(
        &keyspace,
        &["--storage-url", &url],
        &[
            "--run-id",
            "r1",
            "--memory-limit-mb",
            &limit,
            "--memory-spill-dir",
            spill_dir.to_str().unwrap(),
            "--snapshot-row-group-rows",
            "4096",
        ],
    ));
    assert!(
        stdout.contains("spilled to disk"),
        "the aggregation did not spill:\n{stdout}"
    );

    let manifest = support::current(&store).await;
    // The table is larger than the pool: its size as Arrow data in memory, read back here.
    let snapshot = support::read_table(&store, &manifest.tables["availability_snapshot"]).await;
    let in_memory: usize = snapshot.batches.iter().map(|(_, b)| b.get_array_memory_size()).sum();
    assert!(
        in_memory > MEMORY_LIMIT_MB << 20,
        "table ({in_memory} bytes as Arrow) must exceed the {MEMORY_LIMIT_MB} MiB limit"
    );

    let mut by_item: BTreeMap<String, Measures> = BTreeMap::new();
    for row in &data.rows {
        by_item.entry(row.item_id.clone()).or_default().add(row);
    }
    let published = support::read_table(&store, &manifest.tables["availability_by_item"])
        .await
        .records();
    assert_eq!(published.len(), by_item.len());
    for record in &published {
        by_item[&record["item_id"]].assert_in(record, &format!("item {}", record["item_id"]));
    }
    support::check_snapshot(&store, &manifest, &data, &[("r1", &data)]).await;

    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&spill_dir).ok();
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}
