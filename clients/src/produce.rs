//! Sends the update stream to Kafka at a target rate, with a progress bar.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, ClientContext};

use crate::error::Error;
use crate::settings::{Encoding, ProduceSection};
use crate::stream::UpdateStream;

/// Counts failed deliveries (acks=all, idempotent producer: no loss, no duplicates of its own).
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| err.to_string());
        }
    }
}

/// What was sent.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Messages acknowledged.
    pub messages: u64,
    /// Payload bytes acknowledged.
    pub bytes: u64,
    /// Wall time including the final flush.
    pub elapsed: Duration,
}

/// Produces `stream` to `topic` until the count or the duration is reached.
pub fn produce(
    brokers: &str,
    topic: &str,
    options: &ProduceSection,
    stream: UpdateStream,
    bar: &ProgressBar,
) -> Result<Summary, Error> {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .create_with_context(Deliveries::default())
        .map_err(|e| Error::Kafka(format!("producer: {e}")))?;
    let json = options.encoding == Encoding::Json;
    let limit = if options.count == 0 { u64::MAX } else { options.count };
    let deadline = (options.duration_secs > 0).then(|| Duration::from_secs(options.duration_secs));
    if options.count > 0 {
        bar.set_length(options.count);
    }
    let started = Instant::now();
    let (mut sent, mut bytes) = (0u64, 0u64);
    for record in stream {
        if sent >= limit || deadline.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if options.rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / options.rate as f64);
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
        let mut message = BaseRecord::to(topic).key(&record.key).payload(&record.payload);
        if json {
            message = message.headers(OwnedHeaders::new().insert(Header {
                key: stockflight_proto::CONTENT_TYPE_HEADER,
                value: Some(stockflight_proto::JSON_CONTENT_TYPE),
            }));
        }
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: wait for deliveries to free it.
                    message = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((err, _)) => return Err(Error::Kafka(format!("produce to {topic}: {err}"))),
            }
        }
        sent += 1;
        bytes += record.payload.len() as u64;
        if sent.is_multiple_of(1024) {
            bar.set_position(sent);
        }
    }
    producer
        .flush(Timeout::After(Duration::from_secs(120)))
        .map_err(|e| Error::Kafka(format!("flush: {e}")))?;
    bar.set_position(sent);
    bar.finish_and_clear();
    let context = producer.context();
    let failed = context.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = context.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        return Err(Error::Kafka(format!(
            "{failed} of {sent} messages were not delivered (first error: {})",
            first.unwrap_or_default()
        )));
    }
    Ok(Summary {
        messages: sent,
        bytes,
        elapsed: started.elapsed(),
    })
}
