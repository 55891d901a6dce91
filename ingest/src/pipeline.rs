//! The consume loop: fetch, write concurrently (bounded), commit what is durably written.
//!
//! Each record becomes a task that decodes it and either upserts it into Cassandra or sends it
//! to the dead-letter topic, retrying with capped exponential backoff until it succeeds. The
//! loop stops fetching while `max_in_flight` tasks run (e.g. while Cassandra is down), and
//! commits, every `commit_interval`, each partition's offset up to its oldest unfinished record.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use stockflight_common::http::Health;
use tokio::task::JoinSet;

use crate::consumer::{IngestContext, Progress, commit_list};
use crate::decode::decode;
use crate::dlq::{DeadLetter, DeadLetters};
use crate::metrics;
use crate::store::CassandraStore;

/// Tuning of the loop.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Source topic.
    pub topic: String,
    /// Most records in flight.
    pub max_in_flight: usize,
    /// Period of offset commits.
    pub commit_interval: Duration,
    /// Cap of the retry backoff.
    pub retry_max_delay: Duration,
    /// How long shutdown waits for in-flight records.
    pub drain_timeout: Duration,
}

/// Everything a record's task needs, shared.
struct Sinks {
    store: CassandraStore,
    dead_letters: DeadLetters,
    progress: Arc<Progress>,
    health: Health,
    retry_max_delay: Duration,
}

/// The running consume loop.
pub struct Pipeline {
    consumer: StreamConsumer<IngestContext>,
    sinks: Arc<Sinks>,
    options: PipelineOptions,
}

impl Pipeline {
    /// Wires a subscribed consumer to its sinks.
    pub fn new(
        consumer: StreamConsumer<IngestContext>,
        store: CassandraStore,
        dead_letters: DeadLetters,
        progress: Arc<Progress>,
        health: Health,
        options: PipelineOptions,
    ) -> Self {
        let sinks = Arc::new(Sinks {
            store,
            dead_letters,
            progress,
            health,
            retry_max_delay: options.retry_max_delay,
        });
        Self {
            consumer,
            sinks,
            options,
        }
    }

    /// Runs until `shutdown` completes, then stops fetching, drains in-flight records (bounded
    /// by the drain timeout), commits, and leaves the group.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        let mut commit_tick = tokio::time::interval(self.options.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = done && err.is_panic() {
                        std::panic::resume_unwind(err.into_panic());
                    }
                }
                _ = commit_tick.tick() => {
                    metrics::in_flight(tasks.len());
                    self.commit(CommitMode::Async);
                }
                message = self.consumer.recv(), if tasks.len() < self.options.max_in_flight => match message {
                    Ok(message) => self.dispatch(&message, &mut tasks),
                    Err(err) => {
                        warn_throttled(&KAFKA_WARNED, &format!("kafka consumer: {err}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        tracing::info!(in_flight = tasks.len(), "stopped fetching; draining in-flight records");
        let drained = tokio::time::timeout(self.options.drain_timeout, async {
            while let Some(done) = tasks.join_next().await {
                if let Err(err) = done
                    && err.is_panic()
                {
                    std::panic::resume_unwind(err.into_panic());
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "drain timeout: unfinished records stay uncommitted and are re-read on restart"
            );
            tasks.abort_all();
        }
        self.commit(CommitMode::Sync);
        // Dropping the consumer leaves the group (its revocation commits once more, a no-op).
        drop(self.consumer);
        let (consumed, written, dead_lettered) = metrics::totals();
        tracing::info!(consumed, written, dead_lettered, "ingest stopped");
    }

    fn commit(&self, mode: CommitMode) {
        let commits = match mode {
            CommitMode::Async => self.sinks.progress.lock().take_commits(),
            CommitMode::Sync => self.sinks.progress.lock().take_all_commits(),
        };
        if commits.is_empty() {
            return;
        }
        let result = commit_list(&self.options.topic, &commits).and_then(|list| self.consumer.commit(&list, mode));
        match result {
            Ok(()) => metrics::committed(commits.len()),
            Err(err) => tracing::warn!(%err, "offset commit failed; retried with the next commit"),
        }
    }

    fn dispatch(&self, message: &BorrowedMessage<'_>, tasks: &mut JoinSet<()>) {
        let (partition, offset) = (message.partition(), message.offset());
        if !self.sinks.progress.lock().start(partition, offset) {
            // Fetched just before a revocation: the new owner handles it.
            metrics::skipped_unowned();
            return;
        }
        metrics::consumed();
        let record = Record {
            partition,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            content_type: content_type(message),
            produced_ms: message.timestamp().to_millis(),
        };
        let sinks = Arc::clone(&self.sinks);
        tasks.spawn(async move {
            sinks.handle(&record).await;
            sinks.progress.finish(record.partition, record.offset);
        });
    }
}

/// One fetched record, owned by its task.
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    /// Kafka timestamp (producer's create time, or the broker's append time), for freshness.
    produced_ms: Option<i64>,
}

fn content_type(message: &BorrowedMessage<'_>) -> Option<Vec<u8>> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(stockflight_proto::CONTENT_TYPE_HEADER))
        .and_then(|h| h.value.map(<[u8]>::to_vec))
}

impl Sinks {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(self.retry_max_delay)
            .with_jitter()
            .without_max_times()
    }

    /// Writes or dead-letters one record; returns only once it is durably handled.
    async fn handle(&self, record: &Record) {
        match decode(record.payload.as_deref(), record.content_type.as_deref()) {
            Ok(update) => {
                let started = Instant::now();
                let write = || self.store.upsert(&update);
                let result = write
                    .retry(self.backoff())
                    .notify(|err, delay| {
                        metrics::retry("cassandra");
                        self.health.set_ready(false);
                        warn_throttled(
                            &CASSANDRA_WARNED,
                            &format!("cassandra write failed, retrying in {delay:?}: {err}"),
                        );
                    })
                    .await;
                match result {
                    Ok(()) => {
                        metrics::written(started.elapsed().as_secs_f64());
                        if let Some(produced_ms) = record.produced_ms {
                            metrics::end_to_end(produced_ms);
                        }
                        if !self.health.is_ready() {
                            tracing::info!("cassandra writes succeed again");
                            self.health.set_ready(true);
                        }
                    }
                    Err(err) => unreachable!("retries without limit returned {err}"),
                }
            }
            Err(rejection) => {
                let letter = DeadLetter {
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key.as_deref(),
                    payload: record.payload.as_deref(),
                    content_type: record.content_type.as_deref(),
                    kind: rejection.kind,
                    reason: &rejection.reason,
                };
                tracing::debug!(partition = record.partition, offset = record.offset, reason = %rejection.reason, "dead-lettering");
                let send = || self.dead_letters.send(&letter);
                let result = send
                    .retry(self.backoff())
                    .notify(|err, delay| {
                        metrics::retry("dlq");
                        warn_throttled(
                            &DLQ_WARNED,
                            &format!("dead-letter write failed, retrying in {delay:?}: {err}"),
                        );
                    })
                    .await;
                match result {
                    Ok(()) => metrics::dead_lettered(rejection.kind),
                    Err(err) => unreachable!("retries without limit returned {err}"),
                }
            }
        }
    }
}

static KAFKA_WARNED: AtomicU64 = AtomicU64::new(0);
static CASSANDRA_WARNED: AtomicU64 = AtomicU64::new(0);
static DLQ_WARNED: AtomicU64 = AtomicU64::new(0);

/// Logs at most one warning per 5 s per kind: an outage fails every in-flight record at once.
fn warn_throttled(last: &AtomicU64, message: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let previous = last.load(Ordering::Relaxed);
    if now >= previous + 5
        && last
            .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!("{message}");
    }
}
