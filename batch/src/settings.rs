//! `stockflight-batch` configuration: file, `STOCKFLIGHT_*` environment and flags.

use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use serde::{Deserialize, Serialize};
use stockflight_common::config::{ConfigError, Settings};
use stockflight_common::sections::{CassandraSection, LogSection, MetricsSection, StorageSection};

use crate::schedule::parse_interval;

/// Aggregates the availability table into Parquet snapshots, published atomically.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "stockflight-batch", version)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long = "config", id = "config", env = "STOCKFLIGHT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Run once and exit (for cron or a Kubernetes CronJob) instead of the built-in schedule.
    #[arg(long = "once", id = "once", env = "STOCKFLIGHT_ONCE")]
    #[serde(default)]
    pub once: bool,
    /// Run id of a `--once` run (its directory under `snapshots/`); re-running an id that was
    /// published changes nothing. Default: the start time, e.g. `20261125T061500Z`.
    #[arg(long = "run-id", id = "run_id", env = "STOCKFLIGHT_RUN_ID", value_name = "ID")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub cassandra: CassandraSection,
    #[command(flatten)]
    pub storage: StorageSection,
    #[command(flatten)]
    pub scan: ScanSection,
    #[command(flatten)]
    pub memory: MemorySection,
    #[command(flatten)]
    pub snapshot: SnapshotSection,
    #[command(flatten)]
    pub schedule: ScheduleSection,
    #[command(flatten)]
    pub lease: LeaseSection,
    #[command(flatten)]
    pub metrics: MetricsSection<9466>,
    #[command(flatten)]
    pub log: LogSection,
}

/// How the availability table is read.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSection {
    /// Token ranges read concurrently.
    #[arg(
        id = "scan.parallelism",
        long = "scan-parallelism",
        env = "STOCKFLIGHT_SCAN_PARALLELISM",
        default_value_t = 8,
        value_name = "N"
    )]
    pub parallelism: usize,
    /// Rows per Cassandra page (one Arrow record batch per page).
    #[arg(
        id = "scan.page_size",
        long = "scan-page-size",
        env = "STOCKFLIGHT_SCAN_PAGE_SIZE",
        default_value_t = 5000,
        value_name = "ROWS"
    )]
    pub page_size: i32,
    /// Target size of one token-range split, from `system.size_estimates`.
    #[arg(
        id = "scan.split_size_mb",
        long = "scan-split-size-mb",
        env = "STOCKFLIGHT_SCAN_SPLIT_SIZE_MB",
        default_value_t = 64,
        value_name = "MIB"
    )]
    pub split_size_mb: u64,
    /// Retries of a failed page before the run fails (a range is never skipped).
    #[arg(
        id = "scan.retries",
        long = "scan-retries",
        env = "STOCKFLIGHT_SCAN_RETRIES",
        default_value_t = 5,
        value_name = "N"
    )]
    pub retries: usize,
    /// Time one page request may take before it counts as failed and is retried.
    #[arg(
        id = "scan.request_timeout_ms",
        long = "scan-request-timeout-ms",
        env = "STOCKFLIGHT_SCAN_REQUEST_TIMEOUT_MS",
        default_value_t = 15_000,
        value_name = "MS"
    )]
    pub request_timeout_ms: u64,
}

/// The run lease in Cassandra that keeps two processes from running at once.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseSection {
    /// Lifetime of the lease row; the running process renews it every third of that. A
    /// process that dies holding it blocks others for at most this long.
    #[arg(
        id = "lease.ttl_secs",
        long = "lease-ttl-secs",
        env = "STOCKFLIGHT_LEASE_TTL_SECS",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub ttl_secs: u64,
}

/// DataFusion's memory pool and where it spills.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// Memory limit of the aggregation; operators that need more spill to disk.
    #[arg(
        id = "memory.limit_mb",
        long = "memory-limit-mb",
        env = "STOCKFLIGHT_MEMORY_LIMIT_MB",
        default_value_t = 1024,
        value_name = "MIB"
    )]
    pub limit_mb: usize,
    /// Directory for spill files; unset means the system's temporary directory.
    #[arg(
        id = "memory.spill_dir",
        long = "memory-spill-dir",
        env = "STOCKFLIGHT_MEMORY_SPILL_DIR",
        value_name = "DIR"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill_dir: Option<PathBuf>,
}

/// Publication and retention of snapshots.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// Published snapshots kept; older ones are deleted after a new one is current.
    #[arg(
        id = "snapshot.retention",
        long = "snapshot-retention",
        env = "STOCKFLIGHT_SNAPSHOT_RETENTION",
        default_value_t = 8,
        value_name = "K"
    )]
    pub retention: usize,
    /// Rows per Parquet row group.
    #[arg(id = "snapshot.row_group_rows", long = "snapshot-row-group-rows", env = "STOCKFLIGHT_SNAPSHOT_ROW_GROUP_ROWS", default_value_t = 512 * 1024, value_name = "ROWS")]
    pub row_group_rows: usize,
}

/// The built-in schedule (ignored with `--once`).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Time between runs, aligned to 00:00 UTC (`6h` runs at 00, 06, 12, 18 UTC); must divide
    /// a day. Units: `m`, `h`.
    #[arg(
        id = "schedule.interval",
        long = "schedule-interval",
        env = "STOCKFLIGHT_SCHEDULE_INTERVAL",
        default_value = "6h",
        value_name = "DURATION"
    )]
    pub interval: String,
    /// Wait after a failed run before trying again (never past the next slot).
    #[arg(
        id = "schedule.retry_after",
        long = "schedule-retry-after",
        env = "STOCKFLIGHT_SCHEDULE_RETRY_AFTER",
        default_value = "15m",
        value_name = "DURATION"
    )]
    pub retry_after: String,
}

impl Settings for BatchSettings {
    fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.cassandra.validate()?;
        self.storage.validate()?;
        if self.scan.parallelism == 0 || self.scan.parallelism > 1024 {
            return Err(ConfigError::invalid("scan.parallelism", "must be within 1..=1024"));
        }
        if self.scan.page_size < 100 {
            return Err(ConfigError::invalid("scan.page_size", "must be at least 100"));
        }
        if self.scan.request_timeout_ms < 100 {
            return Err(ConfigError::invalid("scan.request_timeout_ms", "must be at least 100"));
        }
        if self.lease.ttl_secs < 3 {
            return Err(ConfigError::invalid("lease.ttl_secs", "must be at least 3"));
        }
        if self.scan.split_size_mb == 0 {
            return Err(ConfigError::invalid("scan.split_size_mb", "must be positive"));
        }
        let limit = self.memory.limit_mb << 20;
        if crate::memory::partitions_for(limit, crate::run::PASS_AGGREGATIONS, 1).is_none() {
            return Err(crate::memory::too_small(limit, crate::run::PASS_AGGREGATIONS));
        }
        if self.snapshot.retention == 0 {
            return Err(ConfigError::invalid(
                "snapshot.retention",
                "must keep at least 1 snapshot",
            ));
        }
        if self.snapshot.row_group_rows < 1024 {
            return Err(ConfigError::invalid("snapshot.row_group_rows", "must be at least 1024"));
        }
        parse_interval(&self.schedule.interval).map_err(|e| ConfigError::invalid("schedule.interval", e))?;
        parse_interval(&self.schedule.retry_after).map_err(|e| ConfigError::invalid("schedule.retry_after", e))?;
        if let Some(id) = &self.run_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(ConfigError::invalid("run_id", "use letters, digits, `-` and `_` only"));
        }
        Ok(())
    }
}

impl BatchSettings {
    /// The Cassandra contact points as a list.
    pub fn cassandra_nodes(&self) -> Vec<String> {
        self.cassandra
            .nodes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockflight_common::config::load_from;

    #[test]
    fn options_follow_the_naming_rule() {
        stockflight_common::config::check_names::<BatchSettings>().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = load_from::<BatchSettings, _, _>(["b", "--schedule-interval", "7h"]).unwrap_err();
        assert!(err.to_string().contains("schedule.interval"), "{err}");
        let err = load_from::<BatchSettings, _, _>(["b", "--scan-parallelism", "0"]).unwrap_err();
        assert!(err.to_string().contains("scan.parallelism"), "{err}");
        let err = load_from::<BatchSettings, _, _>(["b", "--run-id", "../x"]).unwrap_err();
        assert!(err.to_string().contains("run_id"), "{err}");
        let err = load_from::<BatchSettings, _, _>(["b", "--memory-limit-mb", "8"]).unwrap_err();
        assert!(err.to_string().contains("memory.limit_mb"), "{err}");
        assert!(err.to_string().contains("at least 12 MiB"), "{err}");
    }

    #[test]
    fn once_and_run_id_survive_loading() {
        let s = load_from::<BatchSettings, _, _>(["b", "--once", "--run-id", "r-1"]).unwrap();
        assert!(s.once);
        assert_eq!(s.run_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn defaults_are_valid() {
        let s = load_from::<BatchSettings, _, _>(["b"]).unwrap();
        assert_eq!(s.snapshot.retention, 8);
        assert_eq!(s.metrics.addr.port(), 9466);
    }
}
