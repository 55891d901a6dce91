//! `stockflight-ingest`: streams availability updates from Kafka into Cassandra, last write
//! wins by event time, nothing lost.
//!
//! Follow one record: [`consumer`] (group membership, commits) → [`pipeline`] (consume loop,
//! bounded concurrency, retries) → [`decode`] (bytes to a valid update, or a dead letter) →
//! [`guard`] (a believable event time) →
//! [`store`] (Cassandra upsert) or [`dlq`] (dead-letter topic); [`offsets`] decides what may be
//! committed.

pub mod consumer;
pub mod decode;
pub mod dlq;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod offsets;
pub mod pipeline;
pub mod settings;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use stockflight_common::http::{self, Health};
use stockflight_common::shutdown;
use tokio::sync::watch;

use crate::consumer::{ConsumerOptions, Progress};
use crate::dlq::DeadLetters;
use crate::error::Error;
use crate::pipeline::{Pipeline, PipelineOptions};
use crate::settings::IngestSettings;
use crate::store::CassandraStore;

/// Runs the ingest job until SIGTERM/SIGINT.
pub async fn run(settings: IngestSettings) -> Result<(), Error> {
    let health = Health::default();
    let ops = http::serve(settings.metrics.addr, health.clone()).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown::signal_received().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let ingest = &settings.ingest;
    let clock_guard = ingest.clock_guard()?;
    let change_log_ttl = ingest.change_log_ttl_secs()?;
    let topic = settings.kafka.topic.clone();
    let dlq_topic = ingest.dlq_topic(&topic);
    let nodes = settings.cassandra.node_list();
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(ingest.retry_max_delay())
        .with_jitter()
        .without_max_times();

    // Dependencies that are down at start-up are waited for, not fatal.
    let open_store = || {
        CassandraStore::open(
            &nodes,
            &settings.cassandra.keyspace,
            &ingest.replication,
            settings.cassandra.consistency,
            change_log_ttl,
        )
    };
    let Some(store) = until_stopped(
        stopped(),
        open_store
            .retry(backoff)
            .notify(|err, delay| tracing::warn!(%err, ?delay, "cassandra not ready, retrying")),
    )
    .await?
    else {
        return Ok(());
    };
    tracing::info!(keyspace = %settings.cassandra.keyspace, "cassandra schema ready");

    let open_dlq = || DeadLetters::open(&settings.kafka.brokers, &topic, &dlq_topic);
    let Some(dead_letters) = until_stopped(
        stopped(),
        open_dlq
            .retry(backoff)
            .notify(|err, delay| tracing::warn!(%err, ?delay, "kafka not ready, retrying")),
    )
    .await?
    else {
        return Ok(());
    };

    let progress = Arc::new(Progress::default());
    let consumer = consumer::subscribe(
        &ConsumerOptions {
            brokers: &settings.kafka.brokers,
            topic: &topic,
            group_id: &ingest.group_id,
            session_timeout: Duration::from_millis(ingest.session_timeout_ms),
            revoke_wait: Duration::from_millis(ingest.drain_timeout_ms),
        },
        Arc::clone(&progress),
    )?;
    tracing::info!(%topic, dlq = %dlq_topic, group = %ingest.group_id, "consuming");
    health.set_ready(true);

    let pipeline = Pipeline::new(
        consumer,
        store,
        dead_letters,
        progress,
        health.clone(),
        PipelineOptions {
            topic,
            max_in_flight: ingest.max_in_flight,
            commit_interval: Duration::from_millis(ingest.commit_interval_ms),
            retry_max_delay: ingest.retry_max_delay(),
            drain_timeout: Duration::from_millis(ingest.drain_timeout_ms),
            clock_guard,
            rejected_write_tries: ingest.rejected_write_tries,
        },
    );
    pipeline.run(stopped()).await;
    health.set_ready(false);
    ops.task.abort();
    Ok(())
}

/// Awaits `work` unless shutdown comes first (then `None`).
async fn until_stopped<T>(
    stop: impl Future<Output = ()>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<Option<T>, Error> {
    tokio::select! {
        () = stop => Ok(None),
        result = work => result.map(Some),
    }
}
