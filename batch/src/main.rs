//! `stockflight-batch`: aggregates the availability table into Parquet snapshots, published
//! atomically; once (`--once`) or on the built-in schedule. `stockflight-batch worker` runs
//! the stages of distributed runs (`distributed.workers`).

use std::process::ExitCode;

use chrono::Utc;
use stockflight_batch::error::Error;
use stockflight_batch::run::{self, PublishOptions, RunOptions};
use stockflight_batch::schedule::{Clock, Decision, Schedule, SystemClock, parse_interval, run_id_at};
use stockflight_batch::settings::{BatchSettings, WorkerSettings};
use stockflight_common::http::{self, Health};
use stockflight_common::storage::Storage;
use stockflight_common::{config, exit, shutdown, telemetry};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    args.next();
    match args.next() {
        Some(sub) if sub == "worker" => exit::finish("stockflight-batch worker", worker(args)),
        _ => exit::finish("stockflight-batch", run()),
    }
}

/// `stockflight-batch worker`: serves the stages of distributed runs until SIGTERM/SIGINT.
fn worker(args: std::env::ArgsOs) -> Result<(), Error> {
    let settings: WorkerSettings = config::load_args(std::iter::once("stockflight-batch worker".into()).chain(args))?;
    telemetry::init_logging(&settings.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Storage(format!("tokio runtime: {e}")))?;
    runtime.block_on(stockflight_batch::distributed::worker::serve(settings))
}

fn run() -> Result<(), Error> {
    let settings: BatchSettings = config::load()?;
    telemetry::init_logging(&settings.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Storage(format!("tokio runtime: {e}")))?;
    runtime.block_on(async_main(settings))
}

async fn async_main(settings: BatchSettings) -> Result<(), Error> {
    let health = Health::default();
    let ops = http::serve(settings.metrics.addr, health.clone()).await?;
    let storage = Storage::open(&settings.storage)?;
    let options = RunOptions::from_settings(&settings);
    let publish = PublishOptions::from_settings(&settings)?;
    tracing::info!(cassandra = %settings.cassandra.nodes, storage = %storage.location(), "configuration loaded");
    health.set_ready(true);
    let result = if settings.once {
        let started = Utc::now();
        let run_id = settings.run_id.clone().unwrap_or_else(|| run_id_at(started));
        one_run(&options, &publish, &storage, &run_id, started).await
    } else {
        scheduled(&settings, &options, &publish, &storage, &SystemClock).await
    };
    ops.task.abort();
    result
}

/// One run, interruptible by SIGTERM/SIGINT (then nothing is published), with its summary and
/// metrics.
async fn one_run(
    options: &RunOptions,
    publish: &PublishOptions,
    storage: &Storage,
    run_id: &str,
    started: chrono::DateTime<Utc>,
) -> Result<(), Error> {
    let result = run::run_with(options, publish, storage, run_id, started, shutdown::signal_received()).await;
    match result {
        Ok(summary) => {
            summary.record_metrics(Utc::now());
            print!("{}", summary.render());
            Ok(())
        }
        Err(err) => {
            run::record_failure(Utc::now());
            Err(err)
        }
    }
}

/// The built-in schedule: runs one at a time, catches up at start, retries failures before
/// the next slot, stops on SIGTERM/SIGINT.
async fn scheduled(
    settings: &BatchSettings,
    options: &RunOptions,
    publish: &PublishOptions,
    storage: &Storage,
    clock: &dyn Clock,
) -> Result<(), Error> {
    let schedule = Schedule::new(
        parse_interval(&settings.schedule.interval)
            .map_err(|e| stockflight_common::config::ConfigError::invalid("schedule.interval", e))?,
    );
    let retry_after = parse_interval(&settings.schedule.retry_after)
        .map_err(|e| stockflight_common::config::ConfigError::invalid("schedule.retry_after", e))?;
    let publisher = run::publisher(storage, publish.conditional_put);
    loop {
        let now = clock.now();
        let last_success = match publisher.last_success().await {
            Ok(last) => last,
            Err(err) => {
                let retry = schedule.retry_at(now, retry_after);
                tracing::error!(error = %err, %retry, "cannot read the current snapshot; trying again later");
                if wait_until(clock, retry).await.is_err() {
                    return Ok(());
                }
                continue;
            }
        };
        let wake = match schedule.decide(now, last_success) {
            Decision::RunNow(slot) => match one_run(options, publish, storage, &run_id_at(slot), now).await {
                Ok(()) => continue,
                Err(Error::Interrupted) => return Ok(()),
                Err(err) => {
                    let retry = schedule.retry_at(clock.now(), retry_after);
                    tracing::error!(error = %err, %retry, "run failed; the previous snapshot stays current");
                    retry
                }
            },
            Decision::WaitUntil(at) => {
                tracing::info!(next_run = %at, "waiting for the next slot");
                at
            }
        };
        if wait_until(clock, wake).await.is_err() {
            return Ok(());
        }
    }
}

/// Sleeps until `at`; `Err` when a shutdown signal came first.
async fn wait_until(clock: &dyn Clock, at: chrono::DateTime<Utc>) -> Result<(), Error> {
    let wait = (at - clock.now()).to_std().unwrap_or_default();
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        () = shutdown::signal_received() => Err(Error::Interrupted),
    }
}
