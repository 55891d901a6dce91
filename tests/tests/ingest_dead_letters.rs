//! Dead letters that are hard to keep, on real Kafka and Cassandra: a malformed record larger
//! than Kafka's default message size (the source topic allows it), and writes that Cassandra
//! refuses for good. Each ends in the dead-letter topic with its reason and origin, and the
//! partition moves on: its offsets are committed to the end.

#[path = "support/ingest/mod.rs"]
mod support;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::producer::FutureProducer;
use stockflight_tests::unique;
use support::Ingest;

const TWO_MB: usize = 2 * 1024 * 1024;
const SOURCE_LIMIT: &str = "3145728";

/// A producer that may send records up to the source topic's limit.
fn big_producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", support::brokers())
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "4194304")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// 2 MB that are not a protobuf message (field 0 is invalid).
fn garbage() -> Vec<u8> {
    (0..TWO_MB)
        .map(|i| if i % 7 == 0 { 0 } else { (i % 251) as u8 })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_malformed_record_is_dead_lettered_whole_on_a_topic_with_the_source_limits() {
    let topic = unique("ingest_big");
    let group = unique("group");
    support::create_topic_with(&topic, 1, &[("max.message.bytes", SOURCE_LIMIT)]).await;
    let mut ingest = Ingest::start("ingest-big", &topic, &unique("ingest"), &group);
    ingest.wait_ready(Duration::from_secs(120));
    let dlq = format!("{topic}.dlq");
    assert_eq!(
        support::topic_config(&dlq, "max.message.bytes").await.as_deref(),
        Some(SOURCE_LIMIT),
        "the dead-letter topic is created with the source topic's limit"
    );

    let value = garbage();
    let positions = support::produce_raw(&big_producer(), &topic, &[("k-big".into(), value.clone(), None)]).await;
    let letter = &support::read_n(&dlq, 1, Duration::from_secs(60)).await[0];
    assert_eq!(letter.payload().map(<[u8]>::len), Some(TWO_MB));
    assert_eq!(letter.payload().unwrap(), value.as_slice(), "kept whole");
    assert_eq!(
        support::header(letter, "stockflight-dlq-kind").as_deref(),
        Some("protobuf")
    );
    assert_eq!(
        support::header(letter, "stockflight-dlq-original-size"),
        None,
        "not cut"
    );
    assert_eq!(
        support::header(letter, "stockflight-dlq-source-offset"),
        Some(positions[0].1.to_string())
    );
    ingest.wait_metric("stockflight_ingest_commits_total", 1.0, Duration::from_secs(30));
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_for_the_dead_letter_topic_is_kept_cut_with_its_size() {
    let topic = unique("ingest_cut");
    let group = unique("group");
    let dlq = format!("{topic}.dlq");
    support::create_topic_with(&topic, 1, &[("max.message.bytes", SOURCE_LIMIT)]).await;
    // An existing dead-letter topic with Kafka's default limit (1 MB).
    support::create_topic(&dlq, 1).await;
    let mut ingest = Ingest::start("ingest-cut", &topic, &unique("ingest"), &group);
    ingest.wait_ready(Duration::from_secs(120));

    let value = garbage();
    let positions = support::produce_raw(&big_producer(), &topic, &[("k-big".into(), value.clone(), None)]).await;
    let letter = &support::read_n(&dlq, 1, Duration::from_secs(60)).await[0];
    let kept = letter.payload().unwrap_or_default();
    assert!(
        !kept.is_empty() && kept.len() < 1_048_588,
        "cut to fit 1 MB: {} bytes",
        kept.len()
    );
    assert_eq!(kept, &value[..kept.len()], "the first bytes of the original value");
    assert_eq!(
        support::header(letter, "stockflight-dlq-original-size"),
        Some(TWO_MB.to_string())
    );
    assert_eq!(letter.key(), Some(&b"k-big"[..]));
    assert!(support::header(letter, "stockflight-dlq-reason").is_some_and(|r| r.contains("protobuf")));
    assert_eq!(
        support::header(letter, "stockflight-dlq-source-partition"),
        Some(positions[0].0.to_string())
    );
    assert_eq!(
        support::header(letter, "stockflight-dlq-source-offset"),
        Some(positions[0].1.to_string())
    );
    ingest.wait_metric("stockflight_ingest_commits_total", 1.0, Duration::from_secs(30));
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_cassandra_refuses_are_dead_lettered_with_its_message_after_bounded_tries() {
    let topic = unique("ingest_refused");
    let keyspace = unique("ingest");
    let group = unique("group");
    support::create_topic(&topic, 2).await;
    let mut ingest = Ingest::start_with(
        "ingest-refused",
        &topic,
        &keyspace,
        &group,
        &["--ingest-rejected-write-tries", "2"],
    );
    ingest.wait_ready(Duration::from_secs(120));
    let producer = support::producer();
    let records = support::generate(&support::StreamSpec {
        items: 20,
        nodes: 2,
        updates: 40,
        seed: 5,
    });
    support::produce(&producer, &topic, &records).await;
    support::wait_for_table(&keyspace, &support::model(&records), Duration::from_secs(60)).await;

    // An operator drops the table: from now on Cassandra refuses every write as invalid
    // (`unconfigured table`), which no retry can fix.
    let session = support::session().await;
    session
        .query_unpaged(format!("DROP TABLE {keyspace}.availability"), ())
        .await
        .expect("drop table");
    let refused = support::generate(&support::StreamSpec {
        items: 5,
        nodes: 1,
        updates: 5,
        seed: 6,
    });
    support::produce(&producer, &topic, &refused).await;
    let letters = support::read_n(&format!("{topic}.dlq"), refused.len(), Duration::from_secs(120)).await;
    for letter in &letters {
        assert_eq!(
            support::header(letter, "stockflight-dlq-kind").as_deref(),
            Some("rejected")
        );
        let reason = support::header(letter, "stockflight-dlq-reason").unwrap_or_default();
        assert!(
            reason.contains("refused the write 2 times") && reason.contains("availability"),
            "the server's message: {reason}"
        );
    }
    let mut keys: Vec<_> = letters.iter().map(|l| l.key().unwrap_or_default().to_vec()).collect();
    let mut expected: Vec<_> = refused.iter().map(|r| r.key().into_bytes()).collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected, "exactly the refused records");
    assert!(ingest.is_running());
    ingest.wait_metric(
        "stockflight_ingest_dead_lettered_total",
        refused.len() as f64,
        Duration::from_secs(10),
    );
    ingest.terminate();
    support::assert_committed_to_end(&topic, &group);
}
