//! Configuration sections shared by several binaries, with the same names everywhere.
//!
//! Naming rule (checked by [`crate::config::check_names`]): clap id = TOML key `section.key`,
//! flag `--section-key`, environment variable `STOCKFLIGHT_SECTION_KEY`.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Kafka connection and the topic of availability updates.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Kafka bootstrap servers, comma-separated host:port list.
    #[arg(
        id = "kafka.brokers",
        long = "kafka-brokers",
        env = "STOCKFLIGHT_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,
    /// Topic that carries availability updates.
    #[arg(
        id = "kafka.topic",
        long = "kafka-topic",
        env = "STOCKFLIGHT_KAFKA_TOPIC",
        default_value = "availability-updates",
        value_name = "TOPIC"
    )]
    pub topic: String,
}

impl KafkaSection {
    /// Checks the broker list.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_host_ports("kafka.brokers", &self.brokers)?;
        if self.topic.trim().is_empty() {
            return Err(ConfigError::invalid("kafka.topic", "must not be empty"));
        }
        Ok(())
    }
}

/// Cassandra contact points and keyspace.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSection {
    /// Cassandra contact points, comma-separated host:port list (the native protocol port).
    #[arg(
        id = "cassandra.nodes",
        long = "cassandra-nodes",
        env = "STOCKFLIGHT_CASSANDRA_NODES",
        default_value = "127.0.0.1:9042",
        value_name = "HOST:PORT,..."
    )]
    pub nodes: String,
    /// Keyspace that holds the availability table.
    #[arg(
        id = "cassandra.keyspace",
        long = "cassandra-keyspace",
        env = "STOCKFLIGHT_CASSANDRA_KEYSPACE",
        default_value = "stockflight",
        value_name = "NAME"
    )]
    pub keyspace: String,
    /// Consistency level of every read and write: `auto` (the default) is `local_quorum` when
    /// the keyspace keeps more than one replica and `one` otherwise.
    #[arg(
        id = "cassandra.consistency",
        long = "cassandra-consistency",
        env = "STOCKFLIGHT_CASSANDRA_CONSISTENCY",
        default_value = "auto",
        value_enum,
        value_name = "LEVEL"
    )]
    pub consistency: Consistency,
}

/// A Cassandra consistency level, or `auto` to derive it from the keyspace's replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Consistency {
    /// `local_quorum` with more than one replica, `one` with one.
    Auto,
    /// One replica.
    One,
    /// One replica in the local datacenter.
    LocalOne,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of all replicas.
    Quorum,
    /// A majority of the local datacenter's replicas.
    LocalQuorum,
    /// A majority in every datacenter.
    EachQuorum,
    /// Every replica.
    All,
}

impl Consistency {
    /// The level to use for a keyspace whose largest per-datacenter replication factor is
    /// `replication_factor` (`auto` resolves here; an explicit level is kept).
    pub fn resolve(self, replication_factor: usize) -> Self {
        match self {
            Self::Auto if replication_factor > 1 => Self::LocalQuorum,
            Self::Auto => Self::One,
            level => level,
        }
    }
}

impl CassandraSection {
    /// Checks contact points and the keyspace name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_host_ports("cassandra.nodes", &self.nodes)?;
        let ks = &self.keyspace;
        let valid = !ks.is_empty()
            && ks.len() <= 48
            && ks.starts_with(|c: char| c.is_ascii_alphabetic())
            && ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ConfigError::invalid(
                "cassandra.keyspace",
                format!("`{ks}` is not a keyspace name (a letter, then up to 47 letters, digits or _)"),
            ));
        }
        Ok(())
    }

    /// The contact points as a list.
    pub fn node_list(&self) -> Vec<String> {
        split_list(&self.nodes)
    }
}

/// Where snapshots and reference data are stored: a local directory or an S3 bucket.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Storage root: `file:///abs/dir`, a plain directory path, or `s3://bucket/prefix`.
    #[arg(
        id = "storage.url",
        long = "storage-url",
        env = "STOCKFLIGHT_STORAGE_URL",
        default_value = ".stockflight/data",
        value_name = "URL"
    )]
    pub url: String,
    /// S3 endpoint, for S3-compatible stores (OpenStack Swift, MinIO); empty means AWS.
    #[arg(
        id = "storage.endpoint",
        long = "storage-endpoint",
        env = "STOCKFLIGHT_STORAGE_ENDPOINT",
        value_name = "URL"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(
        id = "storage.region",
        long = "storage-region",
        env = "STOCKFLIGHT_STORAGE_REGION",
        default_value = "us-east-1",
        value_name = "REGION"
    )]
    pub region: String,
    /// S3 access key id; unset means the AWS_* environment or instance credentials.
    #[arg(
        id = "storage.access_key_id",
        long = "storage-access-key-id",
        env = "STOCKFLIGHT_STORAGE_ACCESS_KEY_ID",
        value_name = "KEY"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(
        id = "storage.secret_access_key",
        long = "storage-secret-access-key",
        env = "STOCKFLIGHT_STORAGE_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Path-style S3 requests (`endpoint/bucket/key`), as Swift and MinIO expect.
    #[arg(id = "storage.path_style", long = "storage-path-style", env = "STOCKFLIGHT_STORAGE_PATH_STYLE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub path_style: bool,
    /// Allow plain-HTTP endpoints (loopback test stores); HTTPS otherwise.
    #[arg(id = "storage.allow_http", long = "storage-allow-http", env = "STOCKFLIGHT_STORAGE_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub allow_http: bool,
}

impl StorageSection {
    /// A section for a local directory (tests, embedding).
    pub fn local(dir: impl Into<String>) -> Self {
        Self {
            url: dir.into(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            allow_http: false,
        }
    }

    /// Checks that the URL parses and the S3 options are coherent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::storage::StorageLocation::parse(&self.url)?;
        if let Some(endpoint) = &self.endpoint {
            let parsed = url::Url::parse(endpoint)
                .map_err(|e| ConfigError::invalid("storage.endpoint", format!("`{endpoint}`: {e}")))?;
            if parsed.scheme() == "http" && !self.allow_http {
                return Err(ConfigError::invalid(
                    "storage.endpoint",
                    "is plain http: set storage.allow_http = true to allow it",
                ));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(ConfigError::invalid(
                "storage.secret_access_key",
                "storage.access_key_id and storage.secret_access_key go together",
            ));
        }
        Ok(())
    }
}

/// The operations endpoint (`/metrics`, `/health`) on 127.0.0.1:`PORT` by default; each
/// binary picks its own default port so they can run side by side.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection<const PORT: u16> {
    /// Address of `/metrics` (Prometheus) and `/health`; port 0 picks a free port (logged).
    #[arg(
        id = "metrics.addr",
        long = "metrics-addr",
        env = "STOCKFLIGHT_METRICS_ADDR",
        default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], PORT)),
        value_name = "IP:PORT"
    )]
    pub addr: std::net::SocketAddr,
}

/// Log output.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Log format: `human` for terminals, `json` for log pipelines.
    #[arg(
        id = "log.format",
        long = "log-format",
        env = "STOCKFLIGHT_LOG_FORMAT",
        default_value = "human",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info` or `info,stockflight_ingest=debug`.
    #[arg(
        id = "log.level",
        long = "log-level",
        env = "STOCKFLIGHT_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Coloured, one line per event (when stderr is a terminal).
    Human,
    /// One JSON object per line.
    Json,
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn check_host_ports(key: &'static str, list: &str) -> Result<(), ConfigError> {
    let entries = split_list(list);
    if entries.is_empty() {
        return Err(ConfigError::invalid(key, "needs at least one host:port"));
    }
    for entry in entries {
        let ok = entry
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(ConfigError::invalid(key, format!("`{entry}` is not host:port")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_lists() {
        assert!(check_host_ports("k", "127.0.0.1:9092, broker2:9093").is_ok());
        assert!(check_host_ports("k", "").is_err());
        assert!(check_host_ports("k", "broker").is_err());
        assert!(check_host_ports("k", "broker:0").is_err());
        assert!(check_host_ports("k", ":9092").is_err());
    }

    #[test]
    fn auto_consistency_is_local_quorum_with_replicas() {
        assert_eq!(Consistency::Auto.resolve(1), Consistency::One);
        assert_eq!(Consistency::Auto.resolve(3), Consistency::LocalQuorum);
        assert_eq!(Consistency::One.resolve(3), Consistency::One);
        assert_eq!(Consistency::All.resolve(1), Consistency::All);
    }

    #[test]
    fn keyspace_names() {
        let mut c = CassandraSection {
            consistency: Consistency::Auto,
            nodes: "127.0.0.1:9042".into(),
            keyspace: "stock_1".into(),
        };
        assert!(c.validate().is_ok());
        c.keyspace = "1abc".into();
        assert!(c.validate().unwrap_err().to_string().contains("cassandra.keyspace"));
        c.keyspace = "a-b".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn plain_http_endpoint_needs_allow_http() {
        let mut s = StorageSection::local("s3://bucket/prefix");
        s.endpoint = Some("http://127.0.0.1:8080".into());
        assert!(s.validate().unwrap_err().to_string().contains("storage.allow_http"));
        s.allow_http = true;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn credentials_come_in_pairs() {
        let mut s = StorageSection::local("s3://bucket");
        s.access_key_id = Some("key".into());
        assert!(s.validate().is_err());
        s.secret_access_key = Some("secret".into());
        assert!(s.validate().is_ok());
    }
}
