//! `stockflight-batch` configuration: file, `STOCKFLIGHT_*` environment and flags.

use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use serde::{Deserialize, Serialize};
use stockflight_common::config::{ConfigError, Settings};
use stockflight_common::sections::{CassandraSection, LogSection, MetricsSection, StorageSection};
use stockflight_common::storage::StorageLocation;

use crate::publish::{ConditionalPut, MIN_KEEP};
use crate::schedule::parse_interval;

/// Default of `snapshot.retention_grace_secs`.
pub const DEFAULT_RETENTION_GRACE_SECS: u64 = 900;

/// Aggregates the availability table into Parquet snapshots, published atomically.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(
    name = "stockflight-batch",
    version,
    after_help = "A worker of distributed runs (distributed.workers): stockflight-batch worker --help"
)]
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
    #[serde(default)]
    pub distributed: DistributedSection,
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

/// Where the pass of a run runs: in this process (default) or on workers.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedSection {
    /// Addresses (`host:port`, comma-separated) of `stockflight-batch worker` processes that run
    /// the scan, joins, aggregation and Parquet writes; this process plans and publishes. Empty
    /// (the default): the whole run in this process.
    #[arg(
        id = "distributed.workers",
        long = "distributed-workers",
        env = "STOCKFLIGHT_DISTRIBUTED_WORKERS",
        default_value = "",
        value_name = "HOST:PORT,..."
    )]
    #[serde(default)]
    pub workers: String,
}

/// A worker of distributed runs: `stockflight-batch worker`.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "stockflight-batch worker", version)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long = "config", id = "config", env = "STOCKFLIGHT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub worker: WorkerSection,
    #[command(flatten)]
    pub storage: StorageSection,
    #[command(flatten)]
    pub memory: MemorySection,
    #[command(flatten)]
    pub metrics: MetricsSection<9467>,
    #[command(flatten)]
    pub log: LogSection,
}

/// The worker's own service.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Address the worker's Arrow Flight service listens on; port 0 picks a free port (written
    /// to `worker.port_file` and logged).
    #[arg(
        id = "worker.addr",
        long = "worker-addr",
        env = "STOCKFLIGHT_WORKER_ADDR",
        default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], 9470)),
        value_name = "IP:PORT"
    )]
    pub addr: std::net::SocketAddr,
    /// File the worker writes its address to (`ip:port`) once it accepts connections.
    #[arg(
        id = "worker.port_file",
        long = "worker-port-file",
        env = "STOCKFLIGHT_WORKER_PORT_FILE",
        value_name = "FILE"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
}

impl Settings for WorkerSettings {
    fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.storage.validate()?;
        let limit = self.memory.limit_mb << 20;
        if crate::memory::partitions_for(limit, crate::run::PASS_AGGREGATIONS, 1).is_none() {
            return Err(crate::memory::too_small(limit, crate::run::PASS_AGGREGATIONS));
        }
        Ok(())
    }
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
    /// Published snapshots kept (at least 2); older ones are deleted after a new one is current,
    /// once the grace period has passed.
    #[arg(
        id = "snapshot.retention",
        long = "snapshot-retention",
        env = "STOCKFLIGHT_SNAPSHOT_RETENTION",
        default_value_t = 8,
        value_name = "K"
    )]
    pub retention: usize,
    /// Seconds a replaced snapshot stays after the one that replaced it was published, so servers
    /// still on it finish their queries; must be longer than the sum of
    /// `snapshot.server_query_timeout_secs`, `snapshot.server_queue_timeout_secs`,
    /// `snapshot.server_poll_secs` and half of `lease.ttl_secs`.
    #[arg(
        id = "snapshot.retention_grace_secs",
        long = "snapshot-retention-grace-secs",
        env = "STOCKFLIGHT_SNAPSHOT_RETENTION_GRACE_SECS",
        default_value_t = DEFAULT_RETENTION_GRACE_SECS,
        value_name = "SECONDS"
    )]
    pub retention_grace_secs: u64,
    /// The servers' `limits.query_timeout_secs` (the longest query they run; set it to theirs
    /// if they were configured otherwise). Must be positive: a query without a time limit could
    /// outlive any grace period.
    #[arg(
        id = "snapshot.server_query_timeout_secs",
        long = "snapshot-server-query-timeout-secs",
        env = "STOCKFLIGHT_SNAPSHOT_SERVER_QUERY_TIMEOUT_SECS",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub server_query_timeout_secs: u64,
    /// The servers' `limits.queue_timeout_secs` (the longest a query waits for a slot, bound to
    /// the snapshot it arrived on).
    #[arg(
        id = "snapshot.server_queue_timeout_secs",
        long = "snapshot-server-queue-timeout-secs",
        env = "STOCKFLIGHT_SNAPSHOT_SERVER_QUEUE_TIMEOUT_SECS",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub server_queue_timeout_secs: u64,
    /// The servers' `catalog.poll_secs` (how long they may serve a replaced snapshot before they
    /// look at `CURRENT` again).
    #[arg(
        id = "snapshot.server_poll_secs",
        long = "snapshot-server-poll-secs",
        env = "STOCKFLIGHT_SNAPSHOT_SERVER_POLL_SECS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub server_poll_secs: u64,
    /// How `CURRENT` is written: `auto` (a local directory: under a lock file, create-if-absent
    /// for the first; S3: plain, as OpenStack Swift has no conditional PUT), `etag` (S3 stores
    /// with If-None-Match/If-Match, e.g. AWS S3, MinIO) or `none` (plain); the lease check right
    /// before the write fences every mode.
    #[arg(
        id = "snapshot.conditional_put",
        long = "snapshot-conditional-put",
        env = "STOCKFLIGHT_SNAPSHOT_CONDITIONAL_PUT",
        default_value = "auto",
        value_name = "auto|etag|none"
    )]
    pub conditional_put: String,
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
        if self.snapshot.retention < MIN_KEEP {
            return Err(ConfigError::invalid(
                "snapshot.retention",
                format!("must keep at least {MIN_KEEP} snapshots (the current one and the one before)"),
            ));
        }
        self.check_retention_grace()?;
        self.conditional_put()?;
        if self.snapshot.row_group_rows < 1024 {
            return Err(ConfigError::invalid("snapshot.row_group_rows", "must be at least 1024"));
        }
        parse_interval(&self.schedule.interval).map_err(|e| ConfigError::invalid("schedule.interval", e))?;
        parse_interval(&self.schedule.retry_after).map_err(|e| ConfigError::invalid("schedule.retry_after", e))?;
        crate::distributed::plan::worker_urls(&self.distributed_workers())
            .map_err(|e| ConfigError::invalid("distributed.workers", e))?;
        if let Some(id) = &self.run_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(ConfigError::invalid("run_id", "use letters, digits, `-` and `_` only"));
        }
        Ok(())
    }
}

impl BatchSettings {
    /// A replaced snapshot must outlive every query a server may still run on it: one that
    /// arrived just before the server's next look at `CURRENT`, waited its longest in the queue
    /// and ran its longest, counted from `published_at`, which is stamped up to half a lease TTL
    /// before `CURRENT` is written.
    fn check_retention_grace(&self) -> Result<(), ConfigError> {
        let s = &self.snapshot;
        if s.server_query_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "snapshot.server_query_timeout_secs",
                "must be positive: retention cannot wait for queries without a time limit \
                 (give the servers a limits.query_timeout_secs and set it here)",
            ));
        }
        if s.server_poll_secs == 0 {
            return Err(ConfigError::invalid("snapshot.server_poll_secs", "must be at least 1"));
        }
        let needed = s
            .server_query_timeout_secs
            .saturating_add(s.server_queue_timeout_secs)
            .saturating_add(s.server_poll_secs)
            .saturating_add(self.lease.ttl_secs / 2);
        if s.retention_grace_secs <= needed {
            return Err(ConfigError::invalid(
                "snapshot.retention_grace_secs",
                format!(
                    "{} s is too short: it must be longer than the servers' query timeout ({} s, \
                     snapshot.server_query_timeout_secs) + queue timeout ({} s, \
                     snapshot.server_queue_timeout_secs) + poll interval ({} s, \
                     snapshot.server_poll_secs) + half the lease TTL ({} s, lease.ttl_secs) = {needed} s",
                    s.retention_grace_secs,
                    s.server_query_timeout_secs,
                    s.server_queue_timeout_secs,
                    s.server_poll_secs,
                    self.lease.ttl_secs / 2,
                ),
            ));
        }
        Ok(())
    }

    /// The conditional put `snapshot.conditional_put` means for `storage.url`.
    pub fn conditional_put(&self) -> Result<ConditionalPut, ConfigError> {
        let local = matches!(StorageLocation::parse(&self.storage.url)?, StorageLocation::Local(_));
        match (self.snapshot.conditional_put.as_str(), local) {
            ("auto", true) => Ok(ConditionalPut::LocalLock),
            ("auto", false) | ("none", _) => Ok(ConditionalPut::None),
            ("etag", false) => Ok(ConditionalPut::Etag),
            ("etag", true) => Err(ConfigError::invalid(
                "snapshot.conditional_put",
                "`etag` needs an S3 store: a local directory has no conditional update (use `auto`)",
            )),
            (other, _) => Err(ConfigError::invalid(
                "snapshot.conditional_put",
                format!("`{other}`: use auto, etag or none"),
            )),
        }
    }

    /// The worker addresses of `distributed.workers` (empty: a single-process run).
    pub fn distributed_workers(&self) -> Vec<String> {
        self.distributed
            .workers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

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
    fn retention_keeps_two_and_outlasts_the_servers_queries() {
        let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-retention", "1"]).unwrap_err();
        assert!(err.to_string().contains("snapshot.retention"), "{err}");
        // Defaults: 300 + 60 + 30 + 60 / 2 = 420 s; the grace must be longer.
        for bad in ["0", "420"] {
            let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-retention-grace-secs", bad]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("snapshot.retention_grace_secs"), "{bad}: {text}");
            assert!(text.contains("= 420 s"), "{bad}: {text}");
        }
        let s = load_from::<BatchSettings, _, _>(["b", "--snapshot-retention-grace-secs", "421"]).unwrap();
        assert_eq!(s.snapshot.retention_grace_secs, 421);
        // The servers' figures move the bound.
        let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-server-query-timeout-secs", "1200"]).unwrap_err();
        assert!(err.to_string().contains("query timeout (1200 s"), "{err}");
        let s = load_from::<BatchSettings, _, _>([
            "b",
            "--snapshot-server-poll-secs",
            "5",
            "--snapshot-server-query-timeout-secs",
            "20",
            "--snapshot-server-queue-timeout-secs",
            "0",
            "--lease-ttl-secs",
            "10",
            "--snapshot-retention-grace-secs",
            "31",
        ])
        .unwrap();
        assert_eq!(s.snapshot.retention_grace_secs, 31);
        let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-server-query-timeout-secs", "0"]).unwrap_err();
        assert!(err.to_string().contains("snapshot.server_query_timeout_secs"), "{err}");
        let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-retention-grace-secs=-5"]).unwrap_err();
        assert!(err.to_string().contains("retention-grace-secs"), "{err}");
    }

    #[test]
    fn conditional_put_follows_the_store() {
        let s = load_from::<BatchSettings, _, _>(["b", "--storage-url", "/tmp/x"]).unwrap();
        assert_eq!(s.conditional_put().unwrap(), ConditionalPut::LocalLock);
        let s = load_from::<BatchSettings, _, _>(["b", "--storage-url", "s3://b/p"]).unwrap();
        assert_eq!(s.conditional_put().unwrap(), ConditionalPut::None);
        let s =
            load_from::<BatchSettings, _, _>(["b", "--storage-url", "s3://b/p", "--snapshot-conditional-put", "etag"])
                .unwrap();
        assert_eq!(s.conditional_put().unwrap(), ConditionalPut::Etag);
        let err =
            load_from::<BatchSettings, _, _>(["b", "--storage-url", "/tmp/x", "--snapshot-conditional-put", "etag"])
                .unwrap_err();
        assert!(err.to_string().contains("snapshot.conditional_put"), "{err}");
        let err = load_from::<BatchSettings, _, _>(["b", "--snapshot-conditional-put", "maybe"]).unwrap_err();
        assert!(err.to_string().contains("snapshot.conditional_put"), "{err}");
    }

    #[test]
    fn distributed_workers_are_checked_and_single_process_is_the_default() {
        let s = load_from::<BatchSettings, _, _>(["b"]).unwrap();
        assert!(s.distributed_workers().is_empty());
        let s =
            load_from::<BatchSettings, _, _>(["b", "--distributed-workers", "127.0.0.1:7001, 10.0.0.2:7001"]).unwrap();
        assert_eq!(s.distributed_workers(), ["127.0.0.1:7001", "10.0.0.2:7001"]);
        let err = load_from::<BatchSettings, _, _>(["b", "--distributed-workers", "127.0.0.1"]).unwrap_err();
        assert!(err.to_string().contains("distributed.workers"), "{err}");
    }

    #[test]
    fn worker_options_follow_the_naming_rule() {
        stockflight_common::config::check_names::<WorkerSettings>().unwrap();
        let s = load_from::<WorkerSettings, _, _>(["w", "--worker-addr", "127.0.0.1:0"]).unwrap();
        assert_eq!(s.worker.addr.port(), 0);
        let err = load_from::<WorkerSettings, _, _>(["w", "--memory-limit-mb", "4"]).unwrap_err();
        assert!(err.to_string().contains("memory.limit_mb"), "{err}");
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
        // Longer than the server's default query timeout (300 s) + poll interval (30 s).
        assert!(s.snapshot.retention_grace_secs > 300 + 30);
        assert_eq!(s.conditional_put().unwrap(), ConditionalPut::LocalLock);
        assert_eq!(s.metrics.addr.port(), 9466);
    }
}
