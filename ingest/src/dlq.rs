//! The dead-letter topic: records that cannot be ingested, kept with the reason and origin.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::error::Error;

/// Header with the human-readable reason a record was dead-lettered.
pub const REASON_HEADER: &str = "stockflight-dlq-reason";
/// Header with the reason's class (`protobuf`, `json`, `invalid`, …).
pub const KIND_HEADER: &str = "stockflight-dlq-kind";
/// Header with the topic the record came from.
pub const SOURCE_TOPIC_HEADER: &str = "stockflight-dlq-source-topic";
/// Header with the partition the record came from (decimal).
pub const SOURCE_PARTITION_HEADER: &str = "stockflight-dlq-source-partition";
/// Header with the offset the record had in its partition (decimal).
pub const SOURCE_OFFSET_HEADER: &str = "stockflight-dlq-source-offset";

/// A record to dead-letter: the original bytes and why.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key.
    pub key: Option<&'a [u8]>,
    /// Original value, unchanged.
    pub payload: Option<&'a [u8]>,
    /// Original `content-type` header, if any.
    pub content_type: Option<&'a [u8]>,
    /// Reason class.
    pub kind: &'static str,
    /// Reason text.
    pub reason: &'a str,
}

/// Writes dead letters; a record counts as handled once Kafka acknowledged it (acks=all).
pub struct DeadLetters {
    producer: FutureProducer,
    source_topic: String,
    topic: String,
}

impl DeadLetters {
    /// Creates the producer and the dead-letter topic if it does not exist.
    pub async fn open(brokers: &str, source_topic: &str, topic: &str) -> Result<Self, Error> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| Error::Kafka(format!("dead-letter producer: {e}")))?;
        create_topic(brokers, topic).await?;
        Ok(Self {
            producer,
            source_topic: source_topic.to_string(),
            topic: topic.to_string(),
        })
    }

    /// Sends one dead letter and waits for the acknowledgement.
    pub async fn send(&self, letter: &DeadLetter<'_>) -> Result<(), KafkaError> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(6)
            .insert(Header {
                key: REASON_HEADER,
                value: Some(letter.reason),
            })
            .insert(Header {
                key: KIND_HEADER,
                value: Some(letter.kind),
            })
            .insert(Header {
                key: SOURCE_TOPIC_HEADER,
                value: Some(&self.source_topic),
            })
            .insert(Header {
                key: SOURCE_PARTITION_HEADER,
                value: Some(&partition),
            })
            .insert(Header {
                key: SOURCE_OFFSET_HEADER,
                value: Some(&offset),
            });
        if let Some(ct) = letter.content_type {
            headers = headers.insert(Header {
                key: stockflight_proto::CONTENT_TYPE_HEADER,
                value: Some(ct),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        if let Some(payload) = letter.payload {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

async fn create_topic(brokers: &str, topic: &str) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| Error::Kafka(format!("admin client: {e}")))?;
    // Replication -1: the broker's default replication factor.
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics(
            &[new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| Error::Kafka(format!("create dead-letter topic {topic}: {e}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(Error::Kafka(format!("create dead-letter topic {name}: {code}"))),
        }
    }
    Ok(())
}
