//! `stockflight-loadgen` configuration: file, `STOCKFLIGHT_*` environment and flags.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use stockflight_common::config::{ConfigError, Settings};
use stockflight_common::sections::{KafkaSection, LogSection, StorageSection};

/// Writes reference data to object storage and produces availability updates to Kafka.
///
/// `reference` writes the item catalog and node dimension as Parquet; `produce` sends an update
/// stream over the same items and nodes. Same seed and options, same data.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "stockflight-loadgen", version)]
#[serde(deny_unknown_fields)]
pub struct LoadgenSettings {
    /// What to do: `reference` (Parquet reference data), `produce` (update stream) or `all` (both).
    #[arg(id = "command", value_enum, value_name = "COMMAND")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long = "config", id = "config", env = "STOCKFLIGHT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub kafka: KafkaSection,
    #[command(flatten)]
    pub storage: StorageSection,
    #[command(flatten)]
    pub dataset: DatasetSection,
    #[command(flatten)]
    pub produce: ProduceSection,
    #[command(flatten)]
    pub log: LogSection,
}

/// The subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Write reference/items/items.parquet and reference/nodes/nodes.parquet.
    Reference,
    /// Produce availability updates to `kafka.topic`.
    Produce,
    /// `reference`, then `produce`.
    All,
}

/// The items and nodes both the reference data and the stream are made of.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// Number of items in the catalog (ids `sku-00000000`…).
    #[arg(
        id = "dataset.items",
        long = "dataset-items",
        env = "STOCKFLIGHT_DATASET_ITEMS",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub items: u64,
    /// Number of fulfilment nodes: 5 % fulfilment centres, 15 % warehouses, 80 % stores.
    #[arg(
        id = "dataset.nodes",
        long = "dataset-nodes",
        env = "STOCKFLIGHT_DATASET_NODES",
        default_value_t = 500,
        value_name = "N"
    )]
    pub nodes: u64,
    /// Seed of every random choice: the same seed and options give the same data.
    #[arg(
        id = "dataset.seed",
        long = "dataset-seed",
        env = "STOCKFLIGHT_DATASET_SEED",
        default_value_t = 42,
        value_name = "SEED"
    )]
    pub seed: u64,
}

/// Wire encoding of produced updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Protobuf binary (the default of the contract).
    Protobuf,
    /// Protobuf's JSON mapping, with header `content-type: application/json`.
    Json,
}

/// The update stream.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceSection {
    /// Messages to send in total (0 = no limit; then set produce.duration_secs).
    #[arg(
        id = "produce.count",
        long = "produce-count",
        env = "STOCKFLIGHT_PRODUCE_COUNT",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub count: u64,
    /// Stop after this many seconds (0 = no limit).
    #[arg(
        id = "produce.duration_secs",
        long = "produce-duration-secs",
        env = "STOCKFLIGHT_PRODUCE_DURATION_SECS",
        default_value_t = 0,
        value_name = "SECS"
    )]
    pub duration_secs: u64,
    /// Messages per second (0 = as fast as Kafka takes them).
    #[arg(
        id = "produce.rate",
        long = "produce-rate",
        env = "STOCKFLIGHT_PRODUCE_RATE",
        default_value_t = 0,
        value_name = "MSG/S"
    )]
    pub rate: u64,
    /// Zipf exponent of item popularity (0 = uniform; ~1 = a few items get most updates).
    #[arg(
        id = "produce.zipf_exponent",
        long = "produce-zipf-exponent",
        env = "STOCKFLIGHT_PRODUCE_ZIPF_EXPONENT",
        default_value_t = 1.0,
        value_name = "S"
    )]
    pub zipf_exponent: f64,
    /// Share of messages that repeat an earlier message exactly (redelivery), 0..=1.
    #[arg(
        id = "produce.duplicate_ratio",
        long = "produce-duplicate-ratio",
        env = "STOCKFLIGHT_PRODUCE_DUPLICATE_RATIO",
        default_value_t = 0.01,
        value_name = "RATIO"
    )]
    pub duplicate_ratio: f64,
    /// Share of messages whose event time lies up to a minute in the past (late events), 0..=1.
    #[arg(
        id = "produce.out_of_order_ratio",
        long = "produce-out-of-order-ratio",
        env = "STOCKFLIGHT_PRODUCE_OUT_OF_ORDER_RATIO",
        default_value_t = 0.05,
        value_name = "RATIO"
    )]
    pub out_of_order_ratio: f64,
    /// Event time of the first message, microseconds since the epoch; event times then advance
    /// 1 ms per message, a reproducible stream (a long one runs ahead of the wall clock). 0 (the
    /// default) dates every message with the wall clock when it is produced, as a real producer.
    #[arg(
        id = "produce.start_time_us",
        long = "produce-start-time-us",
        env = "STOCKFLIGHT_PRODUCE_START_TIME_US",
        default_value_t = 0,
        value_name = "MICROS"
    )]
    pub start_time_us: i64,
    /// Wire encoding.
    #[arg(
        id = "produce.encoding",
        long = "produce-encoding",
        env = "STOCKFLIGHT_PRODUCE_ENCODING",
        default_value = "protobuf",
        value_enum,
        value_name = "ENCODING"
    )]
    pub encoding: Encoding,
    /// Progress bar on stderr: shown only when stderr is a terminal.
    #[arg(
        id = "produce.progress",
        long = "produce-progress",
        env = "STOCKFLIGHT_PRODUCE_PROGRESS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub progress: bool,
}

impl Settings for LoadgenSettings {
    fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.storage.validate()?;
        let d = &self.dataset;
        if !(1..=100_000_000).contains(&d.items) {
            return Err(ConfigError::invalid("dataset.items", "must be 1..=100000000"));
        }
        if !(1..=1_000_000).contains(&d.nodes) {
            return Err(ConfigError::invalid("dataset.nodes", "must be 1..=1000000"));
        }
        let p = &self.produce;
        if p.count == 0 && p.duration_secs == 0 {
            return Err(ConfigError::invalid(
                "produce.count",
                "0 (no limit) needs produce.duration_secs > 0",
            ));
        }
        if !(0.0..=10.0).contains(&p.zipf_exponent) {
            return Err(ConfigError::invalid("produce.zipf_exponent", "must be 0..=10"));
        }
        for (key, ratio) in [
            ("produce.duplicate_ratio", p.duplicate_ratio),
            ("produce.out_of_order_ratio", p.out_of_order_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(ConfigError::invalid(key, format!("{ratio} is not within 0..=1")));
            }
        }
        if p.start_time_us < 0 {
            return Err(ConfigError::invalid("produce.start_time_us", "must be >= 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockflight_common::config::load_from;

    #[test]
    fn options_follow_the_naming_rule() {
        stockflight_common::config::check_names::<LoadgenSettings>().unwrap();
    }

    #[test]
    fn command_and_options_parse() {
        let s: LoadgenSettings = load_from(["x", "produce", "--produce-rate", "500", "--dataset-items", "10"]).unwrap();
        assert_eq!(s.command, Some(Command::Produce));
        assert_eq!(s.produce.rate, 500);
        assert_eq!(s.dataset.items, 10);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (args, key) in [
            (vec!["x", "--produce-duplicate-ratio", "1.5"], "produce.duplicate_ratio"),
            (vec!["x", "--dataset-items", "0"], "dataset.items"),
            (vec!["x", "--produce-count", "0"], "produce.count"),
        ] {
            let err = load_from::<LoadgenSettings, _, _>(args).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
