//! Ingest end to end on real Kafka and Cassandra: the table equals the last-write-wins model of
//! the produced stream (duplicates, out-of-order events, ties, JSON records), and malformed
//! records end in the dead-letter topic with their reason and origin.

#[path = "support/ingest/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use prost::Message as _;
use rdkafka::Message;
use stockflight_proto::v1::AvailabilityUpdate;
use stockflight_tests::unique;
use support::{Encoding, Ingest, Record, StreamSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_equals_the_last_write_wins_model() {
    let topic = unique("ingest_lww");
    let keyspace = unique("ingest");
    support::create_topic(&topic, 4).await;
    let records = support::generate(&StreamSpec {
        items: 300,
        nodes: 8,
        updates: 6000,
        seed: 7,
    });
    let expected = support::model(&records);
    // The stream really has what the test claims to cover.
    let json = records.iter().filter(|r| r.encoding == Encoding::Json).count();
    assert!(json > 500, "{json} JSON records");
    assert!(records.len() > 6600, "duplicates and ties on top: {}", records.len());

    let mut ingest = Ingest::start("ingest", &topic, &keyspace, &unique("group"));
    ingest.wait_ready(Duration::from_secs(120));
    // Half before, half after a pause: ingest works on a live stream, not just a backlog.
    let producer = support::producer();
    let (first, second) = records.split_at(records.len() / 2);
    support::produce(&producer, &topic, first).await;
    support::produce(&producer, &topic, second).await;

    support::wait_for_table(&keyspace, &expected, Duration::from_secs(120)).await;
    // The table can match before updates that lose to its rows are through: wait for every
    // record to be written, then check that none was counted twice.
    for metric in ["stockflight_ingest_consumed_total", "stockflight_ingest_written_total"] {
        ingest.wait_metric(metric, records.len() as f64, Duration::from_secs(30));
    }
    assert_eq!(ingest.metric("stockflight_ingest_consumed_total"), records.len() as f64);
    assert_eq!(ingest.metric("stockflight_ingest_written_total"), records.len() as f64);
    assert_eq!(ingest.metric("stockflight_ingest_dead_lettered_total"), 0.0);
    ingest.terminate();
}

fn valid(item: &str, qty: i64) -> AvailabilityUpdate {
    AvailabilityUpdate {
        item_id: item.into(),
        node_id: "nd-1".into(),
        available_qty: qty,
        reserved_qty: 0,
        status: 1,
        event_time_us: 1_764_000_000_000_000,
        source: "pos".into(),
        sequence: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_go_to_the_dead_letter_topic_with_reasons() {
    let topic = unique("ingest_dlq");
    let keyspace = unique("ingest");
    support::create_topic(&topic, 2).await;
    let mut ingest = Ingest::start("ingest-dlq", &topic, &keyspace, &unique("group"));
    ingest.wait_ready(Duration::from_secs(120));

    let missing_item = AvailabilityUpdate {
        item_id: String::new(),
        ..valid("x", 1)
    };
    let negative = valid("it-neg", -3);
    let unspecified = AvailabilityUpdate {
        status: 0,
        ..valid("it-unspec", 1)
    };
    let pb = |u: &AvailabilityUpdate| u.encode_to_vec();
    // (key, value, content-type, expected reason fragment; None = valid)
    type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("k-ok-1", pb(&valid("it-ok-1", 5)), None, None),
        ("k-garbage", b"\xff\xfe not a protobuf".to_vec(), None, Some("undecodable protobuf")),
        ("k-missing", pb(&missing_item), None, Some("`item_id`: is required")),
        ("k-negative", pb(&negative), None, Some("`available_qty`: -3 is negative")),
        ("k-unspec", pb(&unspecified), None, Some("`status`: is required")),
        ("k-badjson", b"{\"item_id\": ".to_vec(), Some("application/json"), Some("invalid JSON")),
        ("k-csv", b"a,b,c".to_vec(), Some("text/csv"), Some("unsupported content-type `text/csv`")),
        ("k-empty", Vec::new(), None, Some("empty record value")),
        ("k-ok-2", pb(&valid("it-ok-2", 7)), None, None),
        (
            "k-ok-json",
            br#"{"itemId":"it-ok-3","nodeId":"nd-1","availableQty":"9","status":"IN_STOCK","eventTimeUs":"1764000000000000","source":"pos","sequence":"1"}"#.to_vec(),
            Some("application/json"),
            None,
        ),
    ];
    let raw: Vec<_> = cases
        .iter()
        .map(|(k, v, ct, _)| (k.to_string(), v.clone(), *ct))
        .collect();
    let positions = support::produce_raw(&support::producer(), &topic, &raw).await;

    // Every malformed record is in the DLQ, with reason, source partition and offset.
    let expected_letters: HashMap<&str, (&str, (i32, i64))> = cases
        .iter()
        .zip(&positions)
        .filter_map(|((key, _, _, reason), pos)| reason.map(|r| (*key, (r, *pos))))
        .collect();
    let dlq = support::reader(&format!("{topic}.dlq"));
    let mut seen = HashMap::new();
    while seen.len() < expected_letters.len() {
        let message = tokio::time::timeout(Duration::from_secs(60), dlq.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {} dead letters within 60 s: {seen:?}",
                    seen.len(),
                    expected_letters.len()
                )
            })
            .expect("consume dead letter");
        let key = String::from_utf8(message.key().expect("key kept").to_vec()).unwrap();
        let header = |name: &str| support::header(&message, name).unwrap_or_else(|| panic!("{key}: no {name} header"));
        let (reason, (partition, offset)) = expected_letters
            .get(key.as_str())
            .unwrap_or_else(|| panic!("unexpected dead letter {key}"));
        let got = header("stockflight-dlq-reason");
        assert!(got.contains(reason), "{key}: reason `{got}` should contain `{reason}`");
        assert_eq!(header("stockflight-dlq-source-topic"), topic);
        assert_eq!(
            header("stockflight-dlq-source-partition"),
            partition.to_string(),
            "{key}"
        );
        assert_eq!(header("stockflight-dlq-source-offset"), offset.to_string(), "{key}");
        let original = &cases.iter().find(|c| c.0 == key).unwrap().1;
        assert_eq!(
            message.payload().unwrap_or_default(),
            original.as_slice(),
            "{key}: payload kept as is"
        );
        seen.insert(key, got);
    }

    // The valid records around them were written; the consumer did not stop.
    let expected = support::model(&[
        Record {
            update: valid("it-ok-1", 5),
            encoding: Encoding::Protobuf,
        },
        Record {
            update: valid("it-ok-2", 7),
            encoding: Encoding::Protobuf,
        },
        Record {
            update: valid("it-ok-3", 9),
            encoding: Encoding::Json,
        },
    ]);
    support::wait_for_table(&keyspace, &expected, Duration::from_secs(60)).await;
    ingest.wait_metric(
        "stockflight_ingest_dead_lettered_total",
        expected_letters.len() as f64,
        Duration::from_secs(10),
    );
    assert!(ingest.is_running());
    ingest.terminate();
}
