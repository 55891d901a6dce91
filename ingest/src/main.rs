//! `stockflight-ingest`: streams availability updates from Kafka into Cassandra.

use std::process::ExitCode;

use stockflight_common::{config, exit, telemetry};
use stockflight_ingest::error::Error;
use stockflight_ingest::settings::IngestSettings;

fn main() -> ExitCode {
    exit::finish("stockflight-ingest", run())
}

fn run() -> Result<(), Error> {
    let settings: IngestSettings = config::load()?;
    telemetry::init_logging(&settings.log)?;
    tracing::info!(kafka = %settings.kafka.brokers, cassandra = %settings.cassandra.nodes, "configuration loaded");
    // At least two workers: a rebalance callback blocks one while the write tasks finish.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(stockflight_ingest::run(settings))
}
