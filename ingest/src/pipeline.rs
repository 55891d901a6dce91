//! The consume loop: fetch, write concurrently (bounded), commit what is durably written.
//!
//! Each record becomes a task that decodes it, checks its clock, and either upserts it into
//! Cassandra or sends it to the dead-letter topic. Transient failures (Cassandra or Kafka down,
//! slow, overloaded) are retried with capped exponential backoff until they succeed; a write that
//! Cassandra refuses as invalid is tried `rejected_write_tries` times, then dead-lettered with the
//! server's message. At most `max_in_flight` tasks run; when no slot has freed for a few
//! seconds (e.g. during a Cassandra outage) the loop pauses its partitions but keeps polling,
//! so the consumer stays in its group however long the outage lasts. Every `commit_interval` it
//! commits each partition's offset up to its oldest unfinished record.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use stockflight_common::http::Health;
use tokio::task::JoinSet;

use crate::consumer::{IngestContext, Progress, commit_list};
use crate::decode::{Rejection, decode};
use crate::dlq::{DeadLetter, DeadLetters};
use crate::guard::ClockGuard;
use crate::metrics;
use crate::store::{CassandraStore, Failure, classify};

/// How long the loop may take no record, with every slot busy, before it pauses its partitions
/// and polls again: far below Kafka's 5-minute `max.poll.interval.ms`, far above a hiccup.
const STALL: Duration = Duration::from_secs(5);

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
    /// Bounds on believable event times.
    pub clock_guard: ClockGuard,
    /// Tries of a write Cassandra refuses before it is dead-lettered.
    pub rejected_write_tries: u32,
}

/// Everything a record's task needs, shared.
struct Sinks {
    store: CassandraStore,
    dead_letters: DeadLetters,
    progress: Arc<Progress>,
    health: Health,
    retry_max_delay: Duration,
    clock_guard: ClockGuard,
    rejected_write_tries: u32,
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
            clock_guard: options.clock_guard,
            rejected_write_tries: options.rejected_write_tries,
        });
        Self {
            consumer,
            sinks,
            options,
        }
    }

    /// Runs until `shutdown` completes, then stops fetching, drains in-flight records (bounded
    /// by the drain timeout, once), commits, and leaves the group.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        let max = self.options.max_in_flight;
        // Back-pressure has two speeds. Normally, with `max` tasks running the loop simply stops
        // taking records, and librdkafka keeps its prefetch for when a slot frees (a backlog runs
        // at the bound all the time: pausing there would purge and refetch over and over). Once
        // nothing has been taken for `STALL` (writes stuck: Cassandra down), the partitions are
        // paused and the loop polls again, which is what keeps the consumer in its group
        // (`max.poll.interval.ms`) through an outage of any length. Records still delivered
        // then (fetched before the pause took effect, or from a partition assigned since) wait
        // in `pending`; fetching resumes once they are all dispatched and at most half the
        // tasks are left.
        let mut pending: VecDeque<Record> = VecDeque::new();
        let mut paused = false;
        let mut last_taken = Instant::now();
        let mut commit_tick = tokio::time::interval(self.options.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Wakes the loop to notice a stall and to poll while paused.
        let mut poll_tick = tokio::time::interval(Duration::from_millis(500));
        poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            while tasks.len() < max
                && let Some(record) = pending.pop_front()
            {
                self.dispatch(record, &mut tasks);
            }
            if paused && pending.is_empty() && tasks.len() <= max / 2 {
                self.set_paused(false);
                paused = false;
            }
            let full = tasks.len() >= max || !pending.is_empty();
            if !full {
                last_taken = Instant::now();
            } else if !paused && last_taken.elapsed() >= STALL {
                self.set_paused(true);
                paused = true;
            }
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
                _ = poll_tick.tick() => {}
                message = self.consumer.recv(), if !full || paused => match message {
                    Ok(message) => {
                        let record = Record::of(&message);
                        if tasks.len() < max && pending.is_empty() {
                            self.dispatch(record, &mut tasks);
                        } else {
                            pending.push_back(record);
                            // Still arriving while paused: a partition assigned since the
                            // pause. Pause the current assignment again, once per `max` records.
                            if pending.len().is_multiple_of(max) {
                                self.set_paused(true);
                            }
                        }
                    }
                    Err(err) => {
                        warn_throttled(&KAFKA_WARNED, &format!("kafka consumer: {err}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            pending = pending.len(),
            "stopped fetching; draining in-flight records"
        );
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
        // The drain bound is spent: the revocation that leaving the group triggers must not
        // wait for the aborted records a second time.
        self.sinks.progress.close();
        // Dropping the consumer leaves the group (its revocation commits once more, a no-op).
        drop(self.consumer);
        let (consumed, written, dead_lettered) = metrics::totals();
        tracing::info!(consumed, written, dead_lettered, "ingest stopped");
    }

    /// Pauses (or resumes) fetching of every assigned partition; the consumer keeps polling.
    fn set_paused(&self, pause: bool) {
        let result = self.consumer.assignment().and_then(|assigned| {
            if pause {
                self.consumer.pause(&assigned)
            } else {
                self.consumer.resume(&assigned)
            }
        });
        match result {
            Ok(()) if pause => tracing::debug!("writes stalled: partitions paused"),
            Ok(()) => tracing::debug!("partitions resumed"),
            Err(err) => tracing::warn!(%err, pause, "pausing or resuming partitions failed"),
        }
        metrics::paused(pause);
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

    fn dispatch(&self, record: Record, tasks: &mut JoinSet<()>) {
        if !self.sinks.progress.lock().start(record.partition, record.offset) {
            // Fetched just before a revocation: the new owner handles it.
            metrics::skipped_unowned();
            return;
        }
        metrics::consumed();
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

impl Record {
    fn of(message: &BorrowedMessage<'_>) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            content_type: content_type(message),
            produced_ms: message.timestamp().to_millis(),
        }
    }
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
        let checked = decode(record.payload.as_deref(), record.content_type.as_deref()).and_then(|update| {
            self.clock_guard.check(&update, std::time::SystemTime::now())?;
            Ok(update)
        });
        let rejection = match checked {
            Ok(update) => match self.write(&update).await {
                Ok(()) => {
                    if let Some(produced_ms) = record.produced_ms {
                        metrics::end_to_end(produced_ms);
                    }
                    return;
                }
                Err(rejection) => rejection,
            },
            Err(rejection) => rejection,
        };
        self.dead_letter(record, &rejection).await;
    }

    /// Upserts an update, retrying transient failures without limit; a write Cassandra refuses
    /// `rejected_write_tries` times comes back as the rejection to dead-letter.
    async fn write(&self, update: &stockflight_proto::v1::AvailabilityUpdate) -> Result<(), Rejection> {
        let started = Instant::now();
        let mut delays = self.backoff().build();
        let mut refused = 0;
        loop {
            let failure = match self.store.upsert(update).await {
                Ok(()) => {
                    metrics::written(started.elapsed().as_secs_f64());
                    if !self.health.is_ready() {
                        tracing::info!("cassandra writes succeed again");
                        self.health.set_ready(true);
                    }
                    return Ok(());
                }
                Err(err) => classify(&err),
            };
            let delay = delays.next().unwrap_or(self.retry_max_delay);
            metrics::retry("cassandra");
            match failure {
                Failure::Rejected(message) => {
                    refused += 1;
                    if refused >= self.rejected_write_tries {
                        return Err(Rejection::new(
                            "rejected",
                            format!("cassandra refused the write {refused} times: {message}"),
                        ));
                    }
                    tracing::warn!(refused, %message, "cassandra refused a write; trying again");
                }
                Failure::Transient(message) => {
                    self.health.set_ready(false);
                    warn_throttled(
                        &CASSANDRA_WARNED,
                        &format!("cassandra write failed, retrying in {delay:?}: {message}"),
                    );
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends a record to the dead-letter topic, retrying until Kafka acknowledges it.
    async fn dead_letter(&self, record: &Record, rejection: &Rejection) {
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
