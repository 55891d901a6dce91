//! `stockflight-loadgen`: reference data and availability update streams for tests, demos and
//! benchmarks.

mod catalog;
mod error;
mod produce;
mod reference;
mod settings;
mod stream;

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use settings::{Command, LoadgenSettings};
use stockflight_common::storage::Storage;
use stockflight_common::{config, exit, telemetry};
use stream::{EventClock, StreamOptions, UpdateStream};

use crate::error::Error;

fn main() -> ExitCode {
    exit::finish("stockflight-loadgen", run())
}

/// A progress bar on stderr; indicatif hides it when stderr is not a terminal.
fn bar(enabled: bool, what: &str) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{msg:10} {wide_bar} {human_pos}/{human_len} {per_sec} eta {eta}")
            .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}

fn run() -> Result<(), Error> {
    let settings: LoadgenSettings = config::load()?;
    telemetry::init_logging(&settings.log)?;
    let command = settings.command.ok_or(Error::NoCommand)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if matches!(command, Command::Reference | Command::All) {
        let storage = Storage::open(&settings.storage)?;
        let progress = bar(settings.produce.progress, "reference");
        runtime.block_on(reference::write(&storage, &settings.dataset, &progress))?;
        tracing::info!(storage = %storage.location(), items = settings.dataset.items, nodes = settings.dataset.nodes, "reference data written");
    }
    if matches!(command, Command::Produce | Command::All) {
        let p = &settings.produce;
        // A fixed start gives a reproducible stream; 0 dates each event with the wall clock.
        let clock = if p.start_time_us > 0 {
            EventClock::Fixed {
                start_us: p.start_time_us,
            }
        } else {
            EventClock::Wall
        };
        let start_time_us = p.start_time_us;
        let stream = UpdateStream::new(StreamOptions {
            items: settings.dataset.items,
            nodes: settings.dataset.nodes,
            seed: settings.dataset.seed,
            zipf_exponent: p.zipf_exponent,
            duplicate_ratio: p.duplicate_ratio,
            out_of_order_ratio: p.out_of_order_ratio,
            clock,
            encoding: p.encoding,
        });
        let progress = bar(p.progress, "produce");
        let summary = produce::produce(&settings.kafka.brokers, &settings.kafka.topic, p, stream, &progress)?;
        let secs = summary.elapsed.as_secs_f64().max(1e-9);
        tracing::info!(
            topic = %settings.kafka.topic,
            messages = summary.messages,
            bytes = summary.bytes,
            seconds = format!("{secs:.2}"),
            msg_per_sec = format!("{:.0}", summary.messages as f64 / secs),
            "produced"
        );
        // One machine-readable line on stdout for scripts (bench/ingest.sh).
        println!(
            "{{\"messages\":{},\"bytes\":{},\"seconds\":{secs:.3},\"start_time_us\":{start_time_us}}}",
            summary.messages, summary.bytes
        );
    }
    Ok(())
}
