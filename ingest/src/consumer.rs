//! The Kafka consumer: group membership, rebalances, offset commits and lag statistics.
//!
//! On a revocation the consumer waits (bounded) until the revoked partitions' in-flight writes
//! finish, commits their final offsets, and then forgets them: the next owner starts right
//! after what this instance wrote, and nothing this instance finishes later is committed for a
//! partition it no longer owns.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, ClientContext, Offset, Statistics, TopicPartitionList};

use crate::error::Error;
use crate::metrics;
use crate::offsets::OffsetTracker;

/// The offset tracker, shared by the consume loop, the write tasks and the rebalance callback.
#[derive(Debug, Default)]
pub struct Progress {
    tracker: Mutex<OffsetTracker>,
    changed: Condvar,
    /// Set at shutdown once the drain bound is spent: revocations no longer wait.
    closed: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// Locks the tracker.
    pub fn lock(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks a record handled and wakes a rebalance waiting for its partition.
    pub fn finish(&self, partition: i32, offset: i64) {
        self.lock().finish(partition, offset);
        self.changed.notify_all();
    }

    /// Stops revocations from waiting for in-flight records (shutdown already waited).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Blocks until the partitions have nothing in flight or `timeout` passes (at once after
    /// [`Progress::close`]); returns the tracker, locked.
    fn wait_idle(&self, partitions: &[i32], timeout: Duration) -> MutexGuard<'_, OffsetTracker> {
        let timeout = if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Duration::ZERO
        } else {
            timeout
        };
        let deadline = Instant::now() + timeout;
        let mut tracker = self.lock();
        loop {
            let pending = tracker.in_flight(partitions);
            let now = Instant::now();
            if pending == 0 {
                return tracker;
            }
            if now >= deadline {
                tracing::warn!(
                    pending,
                    ?partitions,
                    "revoked partitions still have writes in flight; they will be re-read by the next owner"
                );
                return tracker;
            }
            tracker = self
                .changed
                .wait_timeout(tracker, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// librdkafka callbacks of the ingest consumer.
pub struct IngestContext {
    topic: String,
    progress: Arc<Progress>,
    revoke_wait: Duration,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        for partition in topic.partitions.values() {
            // -1 = internal partition (UA) or lag unknown (partition not consumed here).
            if partition.partition >= 0 && partition.consumer_lag >= 0 {
                metrics::lag(partition.partition, partition.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = partitions_of(list, &self.topic);
                // Other runtime workers keep running the write tasks while this one waits.
                let commits = tokio::task::block_in_place(|| {
                    let mut tracker = self.progress.wait_idle(&partitions, self.revoke_wait);
                    let commits: Vec<(i32, i64)> = partitions
                        .iter()
                        .filter_map(|&p| tracker.committable(p).map(|o| (p, o)))
                        .collect();
                    tracker.revoke(partitions.iter().copied());
                    commits
                });
                tracing::info!(?partitions, "partitions revoked");
                if !commits.is_empty() {
                    match commit_list(&self.topic, &commits) {
                        Ok(list) => match consumer.commit(&list, CommitMode::Sync) {
                            Ok(()) => metrics::committed(commits.len()),
                            Err(err) => {
                                tracing::warn!(%err, "commit on revocation failed; the next owner re-reads from the last commit")
                            }
                        },
                        Err(err) => tracing::warn!(%err, "commit list"),
                    }
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(err) => tracing::warn!(%err, "rebalance error"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions = partitions_of(list, &self.topic);
            tracing::info!(?partitions, "partitions assigned");
            self.progress.lock().assign(partitions);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = result {
            tracing::warn!(%err, "offset commit failed; it is retried with the next commit");
        }
    }
}

fn partitions_of(list: &TopicPartitionList, topic: &str) -> Vec<i32> {
    list.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

/// A commit request for `(partition, next offset)` pairs.
pub fn commit_list(topic: &str, commits: &[(i32, i64)]) -> KafkaResult<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(commits.len());
    for &(partition, offset) in commits {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    Ok(list)
}

/// Consumer settings the ingest job needs.
pub struct ConsumerOptions<'a> {
    /// Bootstrap servers.
    pub brokers: &'a str,
    /// Topic of updates.
    pub topic: &'a str,
    /// Consumer group.
    pub group_id: &'a str,
    /// Group session timeout: how fast a dead instance's partitions move on.
    pub session_timeout: Duration,
    /// How long a revocation waits for in-flight writes.
    pub revoke_wait: Duration,
}

/// Creates the consumer (manual commits only) and subscribes to the topic.
pub fn subscribe(
    options: &ConsumerOptions<'_>,
    progress: Arc<Progress>,
) -> Result<StreamConsumer<IngestContext>, Error> {
    let context = IngestContext {
        topic: options.topic.to_string(),
        progress,
        revoke_wait: options.revoke_wait,
    };
    let session_ms = options.session_timeout.as_millis().max(1);
    let consumer: StreamConsumer<IngestContext> = ClientConfig::new()
        .set("bootstrap.servers", options.brokers)
        .set("group.id", options.group_id)
        .set("client.id", "stockflight-ingest")
        // Offsets follow the data: only the consume loop commits, never librdkafka by itself.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", (session_ms / 3).max(1).to_string())
        .set("statistics.interval.ms", "5000")
        .create_with_context(context)
        .map_err(|e| Error::Kafka(format!("consumer: {e}")))?;
    consumer
        .subscribe(&[options.topic])
        .map_err(|e| Error::Kafka(format!("subscribe to {}: {e}", options.topic)))?;
    Ok(consumer)
}
