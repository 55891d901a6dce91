//! Property: whatever updates of a pair arrive, in whatever order, with whatever ties and
//! duplicates, the row real Cassandra keeps equals the contract's newest update, whole.
//!
//! Generated sequences favour the hard cases: equal event times, sequences around block edges
//! (5/1005, 999/1000), far apart (1/2^40) and near 2^63, equal (event time, sequence) from
//! different sources, exact duplicates. They are written with ingest's own upsert
//! (`CassandraStore`), concurrently in the generated order, some with a memtable flush in
//! between so that sstable and memtable versions are reconciled too; the model is the test's
//! own (`support::newer`).

#[path = "support/ingest/mod.rs"]
mod support;

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stockflight_ingest::store::CassandraStore;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::unique;
use support::{Encoding, Record};

const EVENT_BASE_US: i64 = 1_764_000_000_000_000;

fn sequence() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![0u64, 1, 2, 5, 999, 1000, 1001, 1005, 1 << 40, (1 << 40) + 1]),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 - 1),
        0..(i64::MAX as u64),
    ]
}

fn update(pairs: usize) -> impl Strategy<Value = AvailabilityUpdate> {
    (
        0..pairs,
        0i64..3,
        sequence(),
        prop::sample::select(vec!["pos", "wms", "oms-2", "a"]),
        0i64..1000,
        0i64..10,
        1i32..=4,
    )
        .prop_map(
            |(pair, t, sequence, source, available_qty, reserved_qty, status)| AvailabilityUpdate {
                item_id: format!("it-{pair}"),
                node_id: "nd-1".into(),
                available_qty,
                reserved_qty,
                status,
                event_time_us: EVENT_BASE_US + t,
                source: source.into(),
                sequence,
            },
        )
}

/// Updates, with some repeated later (exact duplicates, delivered again).
fn stream() -> impl Strategy<Value = Vec<AvailabilityUpdate>> {
    (1usize..4)
        .prop_flat_map(|pairs| prop::collection::vec(update(pairs), 1..24))
        .prop_flat_map(|updates| {
            let n = updates.len();
            (Just(updates), prop::collection::vec(0..n, 0..4))
        })
        .prop_map(|(mut updates, repeats)| {
            for i in repeats {
                updates.push(updates[i].clone());
            }
            updates
        })
}

#[test]
fn the_row_is_always_the_newest_whole_update() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let keyspace = unique("lww_prop");
    let nodes: Vec<String> = support::cassandra_nodes().split(',').map(str::to_string).collect();
    let (store, session) = runtime.block_on(async {
        let store = CassandraStore::open(
            &nodes,
            &keyspace,
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            stockflight_common::sections::Consistency::Auto,
            None,
        )
        .await
        .expect("open the store");
        (store, support::session().await)
    });
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::cell::Cell::new(0u32);
    let result = runner.run(&(stream(), prop::bool::weighted(0.1)), |(updates, flush_between)| {
        case.set(case.get() + 1);
        // Each case writes its own pairs: a node id unique to the case.
        let node = format!("nd-{}", case.get());
        let updates: Vec<AvailabilityUpdate> = updates
            .into_iter()
            .map(|u| AvailabilityUpdate {
                node_id: node.clone(),
                ..u
            })
            .collect();
        runtime.block_on(async {
            let (first, second) = updates.split_at(updates.len() / 2);
            futures::future::try_join_all(first.iter().map(|u| store.upsert(u)))
                .await
                .map_err(|e| TestCaseError::fail(format!("upsert: {e}")))?;
            if flush_between {
                flush(&keyspace);
            }
            futures::future::try_join_all(second.iter().map(|u| store.upsert(u)))
                .await
                .map_err(|e| TestCaseError::fail(format!("upsert: {e}")))?;
            let records: Vec<Record> = updates
                .iter()
                .map(|u| Record {
                    update: u.clone(),
                    encoding: Encoding::Protobuf,
                })
                .collect();
            let expected = support::model(&records);
            let actual: HashMap<_, _> = support::read_table(&session, &keyspace)
                .await
                .map_err(TestCaseError::fail)?
                .into_iter()
                .filter(|((_, n), _)| *n == node)
                .collect();
            prop_assert_eq!(actual, expected, "updates in write order: {:#?}", updates);
            Ok(())
        })
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// Flushes the keyspace's memtables to sstables (nodetool over the test stack's JMX).
fn flush(keyspace: &str) {
    let output = std::process::Command::new(stockflight_tests::repo_root().join("dev/stack"))
        .args(["nodetool", "flush", keyspace])
        .output()
        .expect("run dev/stack nodetool");
    assert!(
        output.status.success(),
        "nodetool flush failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
