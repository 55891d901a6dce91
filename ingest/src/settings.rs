//! `stockflight-ingest` configuration: file, `STOCKFLIGHT_*` environment and flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::DateTime;
use clap::{Args, Parser};
use serde::{Deserialize, Serialize};
use stockflight_common::config::{ConfigError, Settings};
use stockflight_common::sections::{CassandraSection, KafkaSection, LogSection, MetricsSection};

use crate::guard::ClockGuard;

/// Streams availability updates from Kafka into Cassandra, last write wins.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "stockflight-ingest", version)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long = "config", id = "config", env = "STOCKFLIGHT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub kafka: KafkaSection,
    #[command(flatten)]
    pub cassandra: CassandraSection,
    #[command(flatten)]
    pub ingest: IngestSection,
    #[command(flatten)]
    pub metrics: MetricsSection<9465>,
    #[command(flatten)]
    pub log: LogSection,
}

/// How the ingest job consumes, writes and retries.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Kafka consumer group; instances in one group share the topic's partitions.
    #[arg(
        id = "ingest.group_id",
        long = "ingest-group-id",
        env = "STOCKFLIGHT_INGEST_GROUP_ID",
        default_value = "stockflight-ingest",
        value_name = "GROUP"
    )]
    pub group_id: String,
    /// Dead-letter topic for undecodable or invalid updates; empty means `<kafka.topic>.dlq`.
    #[arg(
        id = "ingest.dlq_topic",
        long = "ingest-dlq-topic",
        env = "STOCKFLIGHT_INGEST_DLQ_TOPIC",
        default_value = "",
        value_name = "TOPIC"
    )]
    pub dlq_topic: String,
    /// Most updates being written (or dead-lettered) at once; fetching pauses once as many again
    /// wait for a slot.
    #[arg(
        id = "ingest.max_in_flight",
        long = "ingest-max-in-flight",
        env = "STOCKFLIGHT_INGEST_MAX_IN_FLIGHT",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_in_flight: usize,
    /// How often written offsets are committed to Kafka, in milliseconds.
    #[arg(
        id = "ingest.commit_interval_ms",
        long = "ingest-commit-interval-ms",
        env = "STOCKFLIGHT_INGEST_COMMIT_INTERVAL_MS",
        default_value_t = 1000,
        value_name = "MS"
    )]
    pub commit_interval_ms: u64,
    /// Longest pause between two retries of a failed write, in milliseconds (backoff doubles up to it).
    #[arg(
        id = "ingest.retry_max_delay_ms",
        long = "ingest-retry-max-delay-ms",
        env = "STOCKFLIGHT_INGEST_RETRY_MAX_DELAY_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    pub retry_max_delay_ms: u64,
    /// On SIGTERM/SIGINT, how long to wait for in-flight writes before exiting, in milliseconds.
    #[arg(
        id = "ingest.drain_timeout_ms",
        long = "ingest-drain-timeout-ms",
        env = "STOCKFLIGHT_INGEST_DRAIN_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub drain_timeout_ms: u64,
    /// Kafka group session timeout in milliseconds: how soon a dead instance's partitions move
    /// to the others (the broker allows 6000..=300000 by default).
    #[arg(
        id = "ingest.session_timeout_ms",
        long = "ingest-session-timeout-ms",
        env = "STOCKFLIGHT_INGEST_SESSION_TIMEOUT_MS",
        default_value_t = 45_000,
        value_name = "MS"
    )]
    pub session_timeout_ms: u64,
    /// Most an update's event time may be ahead of this process's clock (e.g. `5m`, `90s`); a
    /// later one is dead-lettered with kind `clock` and never written.
    #[arg(
        id = "ingest.max_future_skew",
        long = "ingest-max-future-skew",
        env = "STOCKFLIGHT_INGEST_MAX_FUTURE_SKEW",
        default_value = "5m",
        value_name = "DURATION"
    )]
    pub max_future_skew: String,
    /// Earliest believable event time (RFC 3339); an earlier one is dead-lettered with kind `clock`.
    #[arg(
        id = "ingest.min_event_time",
        long = "ingest-min-event-time",
        env = "STOCKFLIGHT_INGEST_MIN_EVENT_TIME",
        default_value = "2000-01-01T00:00:00Z",
        value_name = "RFC3339"
    )]
    pub min_event_time: String,
    /// Tries of a write that Cassandra rejects as invalid (not unavailable, not a timeout) before
    /// the record is dead-lettered with kind `rejected` and the server's message.
    #[arg(
        id = "ingest.rejected_write_tries",
        long = "ingest-rejected-write-tries",
        env = "STOCKFLIGHT_INGEST_REJECTED_WRITE_TRIES",
        default_value_t = 3,
        value_name = "N"
    )]
    pub rejected_write_tries: u32,
    /// Replication map of the keyspace when ingest creates it (an existing keyspace is kept as is).
    #[arg(
        id = "ingest.replication",
        long = "ingest-replication",
        env = "STOCKFLIGHT_INGEST_REPLICATION",
        default_value = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        value_name = "CQL_MAP"
    )]
    pub replication: String,
    /// Also record every applied update in the change log (`availability_changes`, bucketed by
    /// the minute it was applied), which the server's `availability_current` tables follow. One
    /// more write per update; off, those tables cannot be served.
    #[arg(id = "ingest.change_log", long = "ingest-change-log", env = "STOCKFLIGHT_INGEST_CHANGE_LOG", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub change_log: bool,
    /// How long change-log rows live (e.g. `24h`): longer than the batch interval plus a failed
    /// run or two, since the server reads the changes since the served snapshot's start.
    #[arg(
        id = "ingest.change_log_ttl",
        long = "ingest-change-log-ttl",
        env = "STOCKFLIGHT_INGEST_CHANGE_LOG_TTL",
        default_value = "24h",
        value_name = "DURATION"
    )]
    pub change_log_ttl: String,
}

impl IngestSection {
    /// The dead-letter topic, defaulted from the source topic.
    pub fn dlq_topic(&self, topic: &str) -> String {
        if self.dlq_topic.trim().is_empty() {
            format!("{topic}.dlq")
        } else {
            self.dlq_topic.trim().to_string()
        }
    }

    /// Cap of the retry backoff.
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }

    /// The change log's row lifetime in seconds, `None` when the change log is off (valid once
    /// the settings validated).
    pub fn change_log_ttl_secs(&self) -> Result<Option<u32>, ConfigError> {
        if !self.change_log {
            return Ok(None);
        }
        let ttl = humantime::parse_duration(self.change_log_ttl.trim()).map_err(|e| {
            ConfigError::invalid(
                "ingest.change_log_ttl",
                format!("`{}` is not a duration like 24h or 90m: {e}", self.change_log_ttl),
            )
        })?;
        // Cassandra's TTL limit is 20 years; an hour is the least that outlives a batch run.
        match u32::try_from(ttl.as_secs()) {
            Ok(secs) if (3600..=630_720_000).contains(&secs) => Ok(Some(secs)),
            _ => Err(ConfigError::invalid(
                "ingest.change_log_ttl",
                format!("`{}` must be between 1h and 20 years", self.change_log_ttl),
            )),
        }
    }

    /// The clock guard's bounds (valid once the settings validated).
    pub fn clock_guard(&self) -> Result<ClockGuard, ConfigError> {
        let max_future_skew = humantime::parse_duration(self.max_future_skew.trim()).map_err(|e| {
            ConfigError::invalid(
                "ingest.max_future_skew",
                format!("`{}` is not a duration like 5m or 90s: {e}", self.max_future_skew),
            )
        })?;
        let floor = DateTime::parse_from_rfc3339(self.min_event_time.trim()).map_err(|e| {
            ConfigError::invalid(
                "ingest.min_event_time",
                format!(
                    "`{}` is not an RFC 3339 time like 2000-01-01T00:00:00Z: {e}",
                    self.min_event_time
                ),
            )
        })?;
        Ok(ClockGuard {
            max_future_skew,
            min_event_time_us: floor.timestamp_micros(),
        })
    }

    fn validate(&self, topic: &str) -> Result<(), ConfigError> {
        if self.group_id.trim().is_empty() {
            return Err(ConfigError::invalid("ingest.group_id", "must not be empty"));
        }
        if self.dlq_topic(topic) == topic {
            return Err(ConfigError::invalid(
                "ingest.dlq_topic",
                "must differ from kafka.topic (dead letters would be consumed again)",
            ));
        }
        if !(1..=65_536).contains(&self.max_in_flight) {
            return Err(ConfigError::invalid("ingest.max_in_flight", "must be 1..=65536"));
        }
        if self.commit_interval_ms == 0 {
            return Err(ConfigError::invalid("ingest.commit_interval_ms", "must be > 0"));
        }
        if self.session_timeout_ms < 1000 {
            return Err(ConfigError::invalid("ingest.session_timeout_ms", "must be >= 1000"));
        }
        if self.retry_max_delay_ms < 10 {
            return Err(ConfigError::invalid("ingest.retry_max_delay_ms", "must be >= 10"));
        }
        let guard = self.clock_guard()?;
        if guard.min_event_time_us <= 0 {
            return Err(ConfigError::invalid(
                "ingest.min_event_time",
                "must be after 1970-01-01",
            ));
        }
        self.change_log_ttl_secs()?;
        if self.rejected_write_tries == 0 {
            return Err(ConfigError::invalid("ingest.rejected_write_tries", "must be >= 1"));
        }
        let r = self.replication.trim();
        if !(r.starts_with('{') && r.ends_with('}') && r.contains("'class'")) {
            return Err(ConfigError::invalid(
                "ingest.replication",
                format!(
                    "`{r}` is not a CQL replication map like {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
                ),
            ));
        }
        Ok(())
    }
}

impl Settings for IngestSettings {
    fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.cassandra.validate()?;
        self.ingest.validate(&self.kafka.topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockflight_common::config::load_from;

    #[test]
    fn options_follow_the_naming_rule() {
        stockflight_common::config::check_names::<IngestSettings>().unwrap();
    }

    #[test]
    fn dlq_topic_defaults_from_the_topic() {
        let s: IngestSettings = load_from(["x", "--kafka-topic", "t1"]).unwrap();
        assert_eq!(s.ingest.dlq_topic(&s.kafka.topic), "t1.dlq");
        let s: IngestSettings = load_from(["x", "--ingest-dlq-topic", "dead"]).unwrap();
        assert_eq!(s.ingest.dlq_topic(&s.kafka.topic), "dead");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (args, key) in [
            (vec!["x", "--ingest-max-in-flight", "0"], "ingest.max_in_flight"),
            (
                vec!["x", "--ingest-dlq-topic", "availability-updates"],
                "ingest.dlq_topic",
            ),
            (vec!["x", "--ingest-replication", "3"], "ingest.replication"),
            (vec!["x", "--ingest-max-future-skew", "soon"], "ingest.max_future_skew"),
            (
                vec!["x", "--ingest-min-event-time", "2000-13-01"],
                "ingest.min_event_time",
            ),
            (
                vec!["x", "--ingest-rejected-write-tries", "0"],
                "ingest.rejected_write_tries",
            ),
            (vec!["x", "--ingest-change-log-ttl", "soon"], "ingest.change_log_ttl"),
            (vec!["x", "--ingest-change-log-ttl", "5m"], "ingest.change_log_ttl"),
        ] {
            let err = load_from::<IngestSettings, _, _>(args).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
