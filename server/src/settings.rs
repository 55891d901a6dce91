//! `stockflight-server` configuration: file, `STOCKFLIGHT_*` environment and flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser};
use serde::{Deserialize, Serialize};
use stockflight_common::config::{ConfigError, Settings};
use stockflight_common::sections::{CassandraSection, LogSection, MetricsSection, StorageSection};
use stockflight_query::live::LiveOptions;
use stockflight_query::live::follower::FollowOptions;
use stockflight_query::{EngineOptions, Limits};

/// Serves Stockflight's availability snapshots as SQL tables over Arrow Flight SQL.
///
/// `stockflight-server hash-password` reads a password on stdin and prints the argon2 hash to
/// put into `auth.users`.
#[derive(Debug, Parser, Serialize, Deserialize)]
#[command(name = "stockflight-server", version)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long = "config", id = "config", env = "STOCKFLIGHT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerSection,
    #[command(flatten)]
    pub auth: AuthSection,
    #[command(flatten)]
    pub tls: TlsSection,
    #[command(flatten)]
    pub limits: LimitsSection,
    #[command(flatten)]
    pub catalog: CatalogSection,
    #[command(flatten)]
    pub metrics: MetricsSection<9464>,
    #[command(flatten)]
    pub storage: StorageSection,
    #[command(flatten)]
    pub cassandra: CassandraSection,
    #[command(flatten)]
    pub live: LiveSection,
    #[command(flatten)]
    pub log: LogSection,
}

/// The Flight SQL endpoint.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address the Flight SQL service listens on (port 0: any free port, see `server.port_file`).
    #[arg(
        id = "server.addr",
        long = "server-addr",
        env = "STOCKFLIGHT_SERVER_ADDR",
        default_value = "127.0.0.1:50051",
        value_name = "IP:PORT"
    )]
    pub addr: SocketAddr,
    /// File to write the bound `IP:PORT` to once the service accepts connections.
    #[arg(
        id = "server.port_file",
        long = "server-port-file",
        env = "STOCKFLIGHT_SERVER_PORT_FILE",
        value_name = "FILE"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_file: Option<PathBuf>,
    /// Allow listening on a non-loopback address with authentication off.
    #[arg(id = "server.allow_unauthenticated", long = "server-allow-unauthenticated", env = "STOCKFLIGHT_SERVER_ALLOW_UNAUTHENTICATED", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub allow_unauthenticated: bool,
    /// Seconds between empty keep-alive batches while a query produces no data.
    #[arg(
        id = "server.keep_alive_secs",
        long = "server-keep-alive-secs",
        env = "STOCKFLIGHT_SERVER_KEEP_ALIVE_SECS",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub keep_alive_secs: u64,
    /// Queries that take longer than this many milliseconds are logged as slow.
    #[arg(
        id = "server.slow_query_ms",
        long = "server-slow-query-ms",
        env = "STOCKFLIGHT_SERVER_SLOW_QUERY_MS",
        default_value_t = 2000,
        value_name = "MS"
    )]
    pub slow_query_ms: u64,
}

/// Who may connect. With neither users nor tokens, authentication is off (loopback only).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Users for Basic auth, whitespace-separated `name:argon2-hash` entries
    /// (hash from `stockflight-server hash-password`).
    #[arg(
        id = "auth.users",
        long = "auth-users",
        env = "STOCKFLIGHT_AUTH_USERS",
        default_value = "",
        value_name = "NAME:HASH ...",
        hide_env_values = true
    )]
    pub users: String,
    /// Static Bearer tokens accepted without a Handshake, whitespace-separated.
    #[arg(
        id = "auth.tokens",
        long = "auth-tokens",
        env = "STOCKFLIGHT_AUTH_TOKENS",
        default_value = "",
        value_name = "TOKEN ...",
        hide_env_values = true
    )]
    pub tokens: String,
    /// Lifetime in seconds of the Bearer tokens Handshake hands out.
    #[arg(
        id = "auth.token_ttl_secs",
        long = "auth-token-ttl-secs",
        env = "STOCKFLIGHT_AUTH_TOKEN_TTL_SECS",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub token_ttl_secs: u64,
    /// Keys that sign and verify the Bearer tokens Handshake hands out, whitespace-separated
    /// `KEY_ID:SECRET` entries (secret: at least 32 characters). The first signs, every one
    /// verifies: give all replicas the same list so any of them accepts a token another issued;
    /// rotate by adding a key second, then moving it first, then dropping the old one after a
    /// token lifetime. Empty: a random key per process (tokens valid on that replica only).
    #[arg(
        id = "auth.signing_keys",
        long = "auth-signing-keys",
        env = "STOCKFLIGHT_AUTH_SIGNING_KEYS",
        default_value = "",
        value_name = "KEY_ID:SECRET ...",
        hide_env_values = true
    )]
    pub signing_keys: String,
}

/// Shortest secret of an `auth.signing_keys` entry (HS256 wants 256 bits of key).
const MIN_SIGNING_SECRET: usize = 32;

/// TLS for the Flight SQL endpoint (rustls); off unless a certificate is given.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain of the server.
    #[arg(
        id = "tls.cert",
        long = "tls-cert",
        env = "STOCKFLIGHT_TLS_CERT",
        value_name = "FILE"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    #[arg(id = "tls.key", long = "tls-key", env = "STOCKFLIGHT_TLS_KEY", value_name = "FILE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    #[arg(
        id = "tls.client_ca",
        long = "tls-client-ca",
        env = "STOCKFLIGHT_TLS_CLIENT_CA",
        value_name = "FILE"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// Per-query and server-wide limits.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory one query may hold for sorts, joins and aggregations, in MiB.
    #[arg(
        id = "limits.query_memory_mb",
        long = "limits-query-memory-mb",
        env = "STOCKFLIGHT_LIMITS_QUERY_MEMORY_MB",
        default_value_t = 1024,
        value_name = "MIB"
    )]
    pub query_memory_mb: u64,
    /// Memory all running queries together may hold, in MiB (on top of each one's
    /// `limits.query_memory_mb`); a query that would pass it fails with RESOURCE_EXHAUSTED.
    #[arg(
        id = "limits.total_memory_mb",
        long = "limits-total-memory-mb",
        env = "STOCKFLIGHT_LIMITS_TOTAL_MEMORY_MB",
        default_value_t = 4096,
        value_name = "MIB"
    )]
    pub total_memory_mb: u64,
    /// Longest a query may run, in seconds (0: no limit).
    #[arg(
        id = "limits.query_timeout_secs",
        long = "limits-query-timeout-secs",
        env = "STOCKFLIGHT_LIMITS_QUERY_TIMEOUT_SECS",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub query_timeout_secs: u64,
    /// Queries that run at once; more wait in a queue.
    #[arg(
        id = "limits.max_concurrent_queries",
        long = "limits-max-concurrent-queries",
        env = "STOCKFLIGHT_LIMITS_MAX_CONCURRENT_QUERIES",
        default_value_t = 16,
        value_name = "N"
    )]
    pub max_concurrent_queries: usize,
    /// Longest a query waits in the queue, in seconds, before it is refused.
    #[arg(
        id = "limits.queue_timeout_secs",
        long = "limits-queue-timeout-secs",
        env = "STOCKFLIGHT_LIMITS_QUEUE_TIMEOUT_SECS",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub queue_timeout_secs: u64,
    /// Most rows one result may have (0: no cap); a larger result fails with RESOURCE_EXHAUSTED.
    #[arg(
        id = "limits.max_result_rows",
        long = "limits-max-result-rows",
        env = "STOCKFLIGHT_LIMITS_MAX_RESULT_ROWS",
        default_value_t = 0,
        value_name = "ROWS"
    )]
    pub max_result_rows: u64,
}

/// Where the served tables come from and how often to look for a new snapshot.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Seconds between checks of `CURRENT` for a newly published snapshot.
    #[arg(
        id = "catalog.poll_secs",
        long = "catalog-poll-secs",
        env = "STOCKFLIGHT_CATALOG_POLL_SECS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub poll_secs: u64,
    /// MiB of Arrow memory each snapshot's tables may take in memory (smallest tables first; the
    /// rest are read from Parquet per query); 0 reads every table from Parquet.
    #[arg(
        id = "catalog.memory_cache_mb",
        long = "catalog-memory-cache-mb",
        env = "STOCKFLIGHT_CATALOG_MEMORY_CACHE_MB",
        default_value_t = 1024,
        value_name = "MIB"
    )]
    pub memory_cache_mb: u64,
    /// MiB of finished query results kept per snapshot, so a dashboard's repeated statements
    /// are answered from memory; results of non-deterministic statements (`now()`, `random()`)
    /// are never kept, nor one larger than an eighth of this. 0 turns it off.
    #[arg(
        id = "catalog.result_cache_mb",
        long = "catalog-result-cache-mb",
        env = "STOCKFLIGHT_CATALOG_RESULT_CACHE_MB",
        default_value_t = 256,
        value_name = "MIB"
    )]
    pub result_cache_mb: u64,
    /// MiB of cubes kept per snapshot: a GROUP BY over a large table is answered from a table
    /// pre-aggregated over the columns it groups and filters by, built in the background the
    /// first time such a query runs (and rebuilt for each new snapshot); answers are exactly the
    /// same. 0 turns cubes off.
    #[arg(
        id = "catalog.aggregate_cache_mb",
        long = "catalog-aggregate-cache-mb",
        env = "STOCKFLIGHT_CATALOG_AGGREGATE_CACHE_MB",
        default_value_t = 512,
        value_name = "MIB"
    )]
    pub aggregate_cache_mb: u64,
    /// Rows a table needs before cubes are built over it: a smaller one is scanned as fast.
    #[arg(
        id = "catalog.aggregate_min_rows",
        long = "catalog-aggregate-min-rows",
        env = "STOCKFLIGHT_CATALOG_AGGREGATE_MIN_ROWS",
        default_value_t = 10_000,
        value_name = "ROWS"
    )]
    pub aggregate_min_rows: u64,
}

/// The live tables: `availability_live` (Cassandra at query time) and `availability_current`
/// with the aggregates over it (the snapshot plus the change log); they read the cluster of
/// `cassandra.*`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSection {
    /// Serve the live tables beside each snapshot's. Off, only the snapshot's tables are served.
    #[arg(id = "live.enabled", long = "live-enabled", env = "STOCKFLIGHT_LIVE_ENABLED", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub enabled: bool,
    /// Most rows a query on `availability_live` without an `item_id` filter may read, by naming
    /// `LIMIT n` with n at most this; any other such query is refused (INVALID_ARGUMENT), so no
    /// client scans Cassandra by accident. 0: never.
    #[arg(
        id = "live.max_scan_rows",
        long = "live-max-scan-rows",
        env = "STOCKFLIGHT_LIVE_MAX_SCAN_ROWS",
        default_value_t = 1000,
        value_name = "ROWS"
    )]
    pub max_scan_rows: u64,
    /// Milliseconds between two reads of the change log (how fresh `availability_current` is).
    #[arg(
        id = "live.poll_ms",
        long = "live-poll-ms",
        env = "STOCKFLIGHT_LIVE_POLL_MS",
        default_value_t = 500,
        value_name = "MS"
    )]
    pub poll_ms: u64,
    /// How far, in milliseconds, each read of the change log reaches back before the previous
    /// one started: more than a change-log write takes plus the ingest hosts' clock skew.
    #[arg(
        id = "live.poll_overlap_ms",
        long = "live-poll-overlap-ms",
        env = "STOCKFLIGHT_LIVE_POLL_OVERLAP_MS",
        default_value_t = 2000,
        value_name = "MS"
    )]
    pub poll_overlap_ms: u64,
    /// Seconds before a snapshot's start (`started_at`) from which its changes are read: more
    /// than the clock skew between the batch and ingest hosts.
    #[arg(
        id = "live.cutoff_margin_secs",
        long = "live-cutoff-margin-secs",
        env = "STOCKFLIGHT_LIVE_CUTOFF_MARGIN_SECS",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub cutoff_margin_secs: u64,
    /// Milliseconds a Cassandra request of the live tables may take.
    #[arg(
        id = "live.request_timeout_ms",
        long = "live-request-timeout-ms",
        env = "STOCKFLIGHT_LIVE_REQUEST_TIMEOUT_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    pub request_timeout_ms: u64,
    /// Milliseconds the change log may go unread (Cassandra down) before `availability_current`
    /// and its aggregates answer UNAVAILABLE rather than stale rows.
    #[arg(
        id = "live.max_staleness_ms",
        long = "live-max-staleness-ms",
        env = "STOCKFLIGHT_LIVE_MAX_STALENESS_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    pub max_staleness_ms: u64,
}

impl LiveSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_ms == 0 {
            return Err(ConfigError::invalid("live.poll_ms", "must be at least 1"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid("live.request_timeout_ms", "must be at least 1"));
        }
        if self.max_staleness_ms < 2 * self.poll_ms {
            return Err(ConfigError::invalid(
                "live.max_staleness_ms",
                format!(
                    "must be at least twice live.poll_ms ({} ms), or every pause between two reads counts as stale",
                    self.poll_ms
                ),
            ));
        }
        Ok(())
    }
}

impl AuthSection {
    /// `(name, hash)` pairs of `auth.users`.
    pub fn user_list(&self) -> Vec<(String, String)> {
        self.users
            .split_whitespace()
            .filter_map(|e| e.split_once(':'))
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect()
    }

    /// The static tokens of `auth.tokens`.
    pub fn token_list(&self) -> Vec<String> {
        self.tokens.split_whitespace().map(String::from).collect()
    }

    /// The `(key id, secret)` pairs of `auth.signing_keys`, the signing key first.
    pub fn signing_key_list(&self) -> Vec<(String, String)> {
        self.signing_keys
            .split_whitespace()
            .filter_map(|e| e.split_once(':'))
            .map(|(id, secret)| (id.to_string(), secret.to_string()))
            .collect()
    }

    /// Whether any credential is configured (authentication on).
    pub fn enabled(&self) -> bool {
        !self.users.trim().is_empty() || !self.tokens.trim().is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for entry in self.users.split_whitespace() {
            let Some((name, hash)) = entry.split_once(':') else {
                return Err(ConfigError::invalid(
                    "auth.users",
                    format!("`{}` is not name:hash", entry.chars().take(40).collect::<String>()),
                ));
            };
            if name.is_empty() {
                return Err(ConfigError::invalid("auth.users", "a user has an empty name"));
            }
            argon2::PasswordHash::new(hash).map_err(|e| {
                ConfigError::invalid(
                    "auth.users",
                    format!(
                        "user `{name}`: not an argon2 PHC hash ({e}); make one with `stockflight-server hash-password`"
                    ),
                )
            })?;
        }
        if self.token_ttl_secs == 0 {
            return Err(ConfigError::invalid("auth.token_ttl_secs", "must be at least 1"));
        }
        let mut ids = std::collections::HashSet::new();
        for entry in self.signing_keys.split_whitespace() {
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(ConfigError::invalid(
                    "auth.signing_keys",
                    "an entry is not KEY_ID:SECRET (the secret is not shown)",
                ));
            };
            if id.is_empty() || !ids.insert(id) {
                return Err(ConfigError::invalid(
                    "auth.signing_keys",
                    format!("key id `{id}` is empty or given twice"),
                ));
            }
            if secret.len() < MIN_SIGNING_SECRET {
                return Err(ConfigError::invalid(
                    "auth.signing_keys",
                    format!(
                        "key `{id}`: the secret has {} characters, fewer than {MIN_SIGNING_SECRET}",
                        secret.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ServerSettings {
    /// What the data layer needs of these settings.
    pub fn engine_options(&self) -> EngineOptions {
        let l = &self.limits;
        EngineOptions {
            limits: Limits {
                query_memory_mb: l.query_memory_mb,
                total_memory_mb: l.total_memory_mb,
                query_timeout: (l.query_timeout_secs > 0).then(|| Duration::from_secs(l.query_timeout_secs)),
                queue_timeout: Duration::from_secs(l.queue_timeout_secs),
                max_result_rows: (l.max_result_rows > 0).then_some(l.max_result_rows),
                max_concurrent_queries: l.max_concurrent_queries,
                slow_query: Duration::from_millis(self.server.slow_query_ms),
            },
            memory_cache_bytes: usize::try_from(self.catalog.memory_cache_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            result_cache_bytes: self.catalog.result_cache_mb.saturating_mul(1 << 20),
            aggregate_cache_bytes: usize::try_from(self.catalog.aggregate_cache_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            aggregate_min_rows: usize::try_from(self.catalog.aggregate_min_rows).unwrap_or(usize::MAX),
            live: self.live.enabled.then(|| self.live_options()),
        }
    }

    fn live_options(&self) -> LiveOptions {
        let l = &self.live;
        LiveOptions {
            nodes: self.cassandra.node_list(),
            keyspace: self.cassandra.keyspace.clone(),
            consistency: self.cassandra.consistency,
            max_scan_rows: l.max_scan_rows,
            request_timeout: Duration::from_millis(l.request_timeout_ms),
            follow: FollowOptions {
                poll: Duration::from_millis(l.poll_ms),
                overlap: Duration::from_millis(l.poll_overlap_ms),
                cutoff_margin: Duration::from_secs(l.cutoff_margin_secs),
                max_staleness: Duration::from_millis(l.max_staleness_ms),
            },
        }
    }
}

impl Settings for ServerSettings {
    fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.storage.validate()?;
        self.auth.validate()?;
        if self.live.enabled {
            self.cassandra.validate()?;
            self.live.validate()?;
        }
        if !self.auth.enabled() && !self.server.addr.ip().is_loopback() && !self.server.allow_unauthenticated {
            return Err(ConfigError::invalid(
                "server.addr",
                format!(
                    "{} is not a loopback address and authentication is off: configure auth.users or auth.tokens, \
                     or set server.allow_unauthenticated = true",
                    self.server.addr
                ),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::invalid("tls.key", "tls.cert and tls.key go together"));
        }
        if self.tls.client_ca.is_some() && self.tls.cert.is_none() {
            return Err(ConfigError::invalid("tls.client_ca", "mTLS needs tls.cert and tls.key"));
        }
        for (key, path) in [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("tls.client_ca", &self.tls.client_ca),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(ConfigError::invalid(key, format!("{}: no such file", path.display())));
            }
        }
        if self.limits.max_concurrent_queries == 0 {
            return Err(ConfigError::invalid(
                "limits.max_concurrent_queries",
                "must be at least 1",
            ));
        }
        if self.limits.query_memory_mb == 0 {
            return Err(ConfigError::invalid("limits.query_memory_mb", "must be at least 1"));
        }
        if self.limits.total_memory_mb == 0 {
            return Err(ConfigError::invalid("limits.total_memory_mb", "must be at least 1"));
        }
        if self.catalog.poll_secs == 0 {
            return Err(ConfigError::invalid("catalog.poll_secs", "must be at least 1"));
        }
        if self.server.keep_alive_secs == 0 {
            return Err(ConfigError::invalid("server.keep_alive_secs", "must be at least 1"));
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
        stockflight_common::config::check_names::<ServerSettings>().unwrap();
    }

    #[test]
    fn open_address_without_auth_is_refused() {
        let err = load_from::<ServerSettings, _, _>(["s", "--server-addr", "0.0.0.0:1"]).unwrap_err();
        assert!(err.to_string().contains("server.addr"), "{err}");
        let ok = load_from::<ServerSettings, _, _>([
            "s",
            "--server-addr",
            "0.0.0.0:1",
            "--server-allow-unauthenticated",
            "true",
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn bad_live_settings_name_their_key() {
        for (args, key) in [
            (vec!["s", "--live-poll-ms", "0"], "live.poll_ms"),
            (
                vec!["s", "--live-poll-ms", "1000", "--live-max-staleness-ms", "1500"],
                "live.max_staleness_ms",
            ),
            (vec!["s", "--cassandra-nodes", "nohost"], "cassandra.nodes"),
        ] {
            let err = load_from::<ServerSettings, _, _>(args).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let off = load_from::<ServerSettings, _, _>(["s", "--live-enabled", "false"]).unwrap();
        assert!(off.engine_options().live.is_none());
    }

    #[test]
    fn malformed_user_is_refused() {
        let err = load_from::<ServerSettings, _, _>(["s", "--auth-users", "alice:plaintext"]).unwrap_err();
        assert!(err.to_string().contains("auth.users"), "{err}");
    }
}
