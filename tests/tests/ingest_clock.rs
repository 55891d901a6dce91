//! Bad clocks, on real Kafka and Cassandra: an update from the future (a POS set to 2099) or
//! from before the configured floor is dead-lettered with its reason and never written; and a
//! row that a bad clock poisoned before the guard existed is repaired with the documented
//! recipe (ingest/README.md, "Repairing a row poisoned by a bad clock"), after which correct
//! updates win again.

#[path = "support/ingest/mod.rs"]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use rdkafka::Message as _;
use stockflight_proto::cassandra::{self, State};
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::{stack, unique};
use support::{Encoding, Ingest, Record};

/// 2099-01-01T00:00:00Z in microseconds.
const YEAR_2099_US: i64 = 4_070_908_800_000_000;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn update(item: &str, qty: i64, event_time_us: i64, sequence: u64) -> AvailabilityUpdate {
    AvailabilityUpdate {
        item_id: item.into(),
        node_id: "store-1".into(),
        available_qty: qty,
        reserved_qty: 0,
        status: 1,
        event_time_us,
        source: "pos".into(),
        sequence,
    }
}

fn raw(updates: &[&AvailabilityUpdate]) -> Vec<(String, Vec<u8>, Option<&'static str>)> {
    updates
        .iter()
        .map(|u| {
            (
                stockflight_proto::kafka_key(&u.item_id, &u.node_id),
                u.encode_to_vec(),
                None,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_with_impossible_event_times_are_dead_lettered_not_written() {
    let topic = unique("ingest_clock");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 2).await;
    let mut ingest = Ingest::start_with(
        "ingest-clock",
        &topic,
        &keyspace,
        &group,
        &[
            "--ingest-max-future-skew",
            "2m",
            "--ingest-min-event-time",
            "2020-01-01T00:00:00Z",
        ],
    );
    ingest.wait_ready(Duration::from_secs(120));

    let now = now_us();
    let before = update("it-a", 5, now - 1_000_000, 1);
    let poison = update("it-a", 999, YEAR_2099_US, 2);
    let after = update("it-a", 7, now, 3);
    let ancient = update("it-b", 3, 1_500_000_000_000_000, 1); // 2017, before the floor
    let slightly_ahead = update("it-c", 4, now + 60_000_000, 1); // within the 2 min skew
    let positions = support::produce_raw(
        &support::producer(),
        &topic,
        &raw(&[&before, &poison, &after, &ancient, &slightly_ahead]),
    )
    .await;

    let accepted = [&before, &after, &slightly_ahead].map(|u| Record {
        update: u.clone(),
        encoding: Encoding::Protobuf,
    });
    support::wait_for_table(&keyspace, &support::model(&accepted), Duration::from_secs(60)).await;

    let letters = support::read_n(&format!("{topic}.dlq"), 2, Duration::from_secs(60)).await;
    // The two come from different keys, maybe different partitions: in either order.
    for (refused, reason, position) in [
        (&poison, "ingest.max_future_skew", positions[1]),
        (&ancient, "ingest.min_event_time", positions[3]),
    ] {
        let letter = letters
            .iter()
            .find(|l| {
                support::header(*l, "stockflight-dlq-source-partition") == Some(position.0.to_string())
                    && support::header(*l, "stockflight-dlq-source-offset") == Some(position.1.to_string())
            })
            .unwrap_or_else(|| panic!("no dead letter for the record at {position:?}"));
        let header = |name: &str| support::header(letter, name).unwrap_or_default();
        assert_eq!(header("stockflight-dlq-kind"), "clock");
        assert!(
            header("stockflight-dlq-reason").contains(reason),
            "{}",
            header("stockflight-dlq-reason")
        );
        assert_eq!(letter.payload().unwrap_or_default(), refused.encode_to_vec().as_slice());
    }
    ingest.wait_metric("stockflight_ingest_dead_lettered_total", 2.0, Duration::from_secs(10));
    ingest.wait_metric("stockflight_ingest_written_total", 3.0, Duration::from_secs(10));
    assert_eq!(ingest.metric("stockflight_ingest_written_total"), 3.0);
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_poisoned_by_a_bad_clock_is_repaired_by_the_recipe() {
    let topic = unique("ingest_repair");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 1).await;
    let mut ingest = Ingest::start("ingest-repair", &topic, &keyspace, &group);
    ingest.wait_ready(Duration::from_secs(120));
    let session = support::session().await;

    // The poison: a row written in 2099's time, as an ingest without the clock guard (or a
    // script) would have written it.
    let poison = update("it-p", 999, YEAR_2099_US, 1);
    session
        .query_unpaged(
            cassandra::upsert(&keyspace),
            (
                &poison.item_id,
                &poison.node_id,
                State::of(&poison),
                poison.event_time_us,
            ),
        )
        .await
        .expect("write the poisoned row");
    // A correct update loses to it.
    let producer = support::producer();
    let correct = update("it-p", 5, now_us(), 10);
    support::produce_raw(&producer, &topic, &raw(&[&correct])).await;
    ingest.wait_metric("stockflight_ingest_written_total", 1.0, Duration::from_secs(60));
    let row = |keyspace: String| {
        let session = &session;
        async move {
            support::read_table(session, &keyspace)
                .await
                .expect("read")
                .remove(&("it-p".to_string(), "store-1".to_string()))
        }
    };
    assert_eq!(
        row(keyspace.clone()).await.map(|r| r.available_qty),
        Some(999),
        "the poison wins"
    );

    // The recipe, step by step as ingest/README.md gives it.
    // 1. The poisoned cell's write time.
    let (writetime,): (i64,) = session
        .query_unpaged(
            format!("SELECT WRITETIME(state) FROM {keyspace}.availability WHERE item_id = ? AND node_id = ?"),
            ("it-p", "store-1"),
        )
        .await
        .expect("writetime")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    assert_eq!(
        writetime, YEAR_2099_US,
        "write times are microseconds of the event time"
    );
    // 2.-3. Let tombstones of this table be purged at once, and delete the row at its write time.
    let alter = |grace: u32| format!("ALTER TABLE {keyspace}.availability WITH gc_grace_seconds = {grace}");
    session.query_unpaged(alter(0), ()).await.expect("gc_grace 0");
    session
        .query_unpaged(
            format!(
                "DELETE FROM {keyspace}.availability USING TIMESTAMP {writetime} WHERE item_id = ? AND node_id = ?"
            ),
            ("it-p", "store-1"),
        )
        .await
        .expect("delete at the poisoned write time");
    // 4. Cassandra keeps deletion times in whole seconds: a tombstone is purgeable once it is
    //    at least a second old (part of the recipe, not a readiness wait).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack(&["nodetool", "flush", &keyspace, "availability"]);
    stack(&["nodetool", "compact", &keyspace, "availability"]);
    // 5. Back to the default grace.
    session.query_unpaged(alter(864_000), ()).await.expect("gc_grace back");

    // Correct updates win again: re-delivered by the producer (or by rewinding the group).
    let next = update("it-p", 6, now_us(), 11);
    support::produce_raw(&producer, &topic, &raw(&[&correct, &next])).await;
    let expected = support::model(&[Record {
        update: next.clone(),
        encoding: Encoding::Protobuf,
    }]);
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(60)).await;
    // And an ordinary CQL UPDATE at the present time behaves as an operator expects: it wins
    // over the (older) stored update.
    let fix = update("it-p", 0, now_us(), 0);
    session
        .query_unpaged(
            format!("UPDATE {keyspace}.availability SET state = ? WHERE item_id = ? AND node_id = ?"),
            (State::of(&fix), "it-p", "store-1"),
        )
        .await
        .expect("operator update");
    assert_eq!(row(keyspace.clone()).await.map(|r| r.available_qty), Some(0));
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}
