//! The Prometheus metrics of the ingest job, named in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, gauge, histogram};

/// This process's totals, for the summary logged at shutdown.
static CONSUMED: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static DEAD_LETTERED: AtomicU64 = AtomicU64::new(0);

/// Records consumed, written and dead-lettered by this process so far.
pub fn totals() -> (u64, u64, u64) {
    (
        CONSUMED.load(Ordering::Relaxed),
        WRITTEN.load(Ordering::Relaxed),
        DEAD_LETTERED.load(Ordering::Relaxed),
    )
}

/// Records fetched from Kafka (of owned partitions).
pub fn consumed() {
    CONSUMED.fetch_add(1, Ordering::Relaxed);
    counter!("stockflight_ingest_consumed_total").increment(1);
}

/// Updates durably written to Cassandra.
pub fn written(seconds: f64) {
    WRITTEN.fetch_add(1, Ordering::Relaxed);
    counter!("stockflight_ingest_written_total").increment(1);
    histogram!("stockflight_ingest_write_seconds").record(seconds);
}

/// Produce-to-row latency: from the record's Kafka timestamp to its durable write.
pub fn end_to_end(produced_ms: i64) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    histogram!("stockflight_ingest_end_to_end_seconds").record((now_ms - produced_ms).max(0) as f64 / 1000.0);
}

/// Records durably written to the dead-letter topic, by reason class.
pub fn dead_lettered(kind: &'static str) {
    DEAD_LETTERED.fetch_add(1, Ordering::Relaxed);
    counter!("stockflight_ingest_dead_lettered_total", "kind" => kind).increment(1);
}

/// A failed write that will be retried; `target` is `cassandra` or `dlq`.
pub fn retry(target: &'static str) {
    counter!("stockflight_ingest_retries_total", "target" => target).increment(1);
}

/// Records fetched for a partition this instance no longer owns (skipped, not committed).
pub fn skipped_unowned() {
    counter!("stockflight_ingest_skipped_unowned_total").increment(1);
}

/// Offsets committed to Kafka.
pub fn committed(partitions: usize) {
    counter!("stockflight_ingest_commits_total").increment(partitions as u64);
}

/// Records being written right now.
pub fn in_flight(n: usize) {
    gauge!("stockflight_ingest_in_flight").set(n as f64);
}

/// Consumer lag of one partition, from librdkafka's statistics.
pub fn lag(partition: i32, lag: i64) {
    gauge!("stockflight_ingest_consumer_lag", "partition" => partition.to_string()).set(lag as f64);
}

/// Whether fetching is paused because `max_in_flight` records are being written (1) or not (0).
pub fn paused(paused: bool) {
    gauge!("stockflight_ingest_paused").set(if paused { 1.0 } else { 0.0 });
}
