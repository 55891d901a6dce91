//! The dead-letter topic: records that cannot be ingested, kept with the reason and origin.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
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
/// Header, present only on a record cut to fit the dead-letter topic, with the original
/// value's size in bytes (decimal); the value kept is then the original's first bytes.
pub const ORIGINAL_SIZE_HEADER: &str = "stockflight-dlq-original-size";

/// Kafka's default `max.message.bytes` of a topic, when a topic's own cannot be read.
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// Room left in a cut record for the record batch framing, the key and the headers' framing.
const FRAMING_BYTES: usize = 1024;

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
    /// The dead-letter topic's `max.message.bytes`: what one record may take.
    max_message_bytes: usize,
}

impl DeadLetters {
    /// Creates the dead-letter topic if it does not exist, with the source topic's message size
    /// limit, and a producer that can send records of that size.
    pub async fn open(brokers: &str, source_topic: &str, topic: &str) -> Result<Self, Error> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .map_err(|e| Error::Kafka(format!("admin client: {e}")))?;
        let source_limit = max_message_bytes(&admin, source_topic).await?;
        // A topic this call created has the limit it was given. Describing it at once could
        // still show the broker default (a broker's metadata lags the controller for a moment).
        let created = create_topic(&admin, topic, source_limit).await?;
        let max_message_bytes = match source_limit {
            Some(limit) if created => limit,
            _ => max_message_bytes(&admin, topic)
                .await?
                .unwrap_or(KAFKA_DEFAULT_MAX_MESSAGE_BYTES),
        };
        if let Some(source) = source_limit
            && source > max_message_bytes
        {
            tracing::warn!(
                source_topic,
                source,
                topic,
                max_message_bytes,
                "the dead-letter topic takes smaller records than the source topic; larger dead letters are cut to fit"
            );
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            // librdkafka's own cap (default 1 MB) must not refuse what the topic accepts.
            .set("message.max.bytes", (max_message_bytes + FRAMING_BYTES).to_string())
            .create()
            .map_err(|e| Error::Kafka(format!("dead-letter producer: {e}")))?;
        Ok(Self {
            producer,
            source_topic: source_topic.to_string(),
            topic: topic.to_string(),
            max_message_bytes,
        })
    }

    /// Sends one dead letter and waits for the acknowledgement. A record too large for the
    /// dead-letter topic is sent cut to fit: its key, every header, and the first bytes of its
    /// value, with [`ORIGINAL_SIZE_HEADER`] telling the original size.
    pub async fn send(&self, letter: &DeadLetter<'_>) -> Result<(), KafkaError> {
        let fits = |letter: &DeadLetter<'_>| {
            letter.payload.map_or(0, <[u8]>::len) + letter.key.map_or(0, <[u8]>::len) + letter.reason.len()
                <= self.max_message_bytes.saturating_sub(FRAMING_BYTES)
        };
        if fits(letter) {
            match self.send_as_is(letter, None).await {
                Err(err) if err.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) => {}
                other => return other,
            }
        }
        let original = letter.payload.map_or(0, <[u8]>::len);
        // Key and reason are at most a few KB in practice; the value gets the rest.
        let mut keep = self
            .max_message_bytes
            .saturating_sub(FRAMING_BYTES + letter.key.map_or(0, <[u8]>::len) + letter.reason.len() + 64)
            .min(original);
        loop {
            let cut = DeadLetter {
                payload: letter.payload.map(|p| &p[..keep]),
                ..*letter
            };
            match self.send_as_is(&cut, Some(original)).await {
                Err(err) if err.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) && keep > 0 => {
                    keep /= 2;
                }
                other => {
                    if other.is_ok() {
                        tracing::warn!(
                            partition = letter.partition,
                            offset = letter.offset,
                            original,
                            kept = keep,
                            "dead letter cut to fit the dead-letter topic"
                        );
                    }
                    return other;
                }
            }
        }
    }

    async fn send_as_is(&self, letter: &DeadLetter<'_>, original_size: Option<usize>) -> Result<(), KafkaError> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let original_size = original_size.map(|n| n.to_string());
        let mut headers = OwnedHeaders::new_with_capacity(7)
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
        if let Some(size) = &original_size {
            headers = headers.insert(Header {
                key: ORIGINAL_SIZE_HEADER,
                value: Some(size),
            });
        }
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

/// A topic's `max.message.bytes`, if the topic exists and says.
async fn max_message_bytes(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<Option<usize>, Error> {
    let results = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| Error::Kafka(format!("describe topic {topic}: {e}")))?;
    Ok(results.into_iter().find_map(|r| {
        let resource = r.ok()?;
        let entry = resource.get("max.message.bytes")?;
        entry.value.as_deref()?.parse().ok()
    }))
}

/// Creates `topic` unless it exists; true when this call created it.
async fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    max_message_bytes: Option<usize>,
) -> Result<bool, Error> {
    // Replication -1: the broker's default replication factor.
    let limit = max_message_bytes.map(|n| n.to_string());
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    if let Some(limit) = &limit {
        new = new.set("max.message.bytes", limit);
    }
    let results = admin
        .create_topics(
            &[new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| Error::Kafka(format!("create dead-letter topic {topic}: {e}")))?;
    let mut created = false;
    for result in results {
        match result {
            Ok(_) => created = true,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(Error::Kafka(format!("create dead-letter topic {name}: {code}"))),
        }
    }
    Ok(created)
}
