//! Layered configuration: built-in defaults < TOML file < `STOCKFLIGHT_*` environment < flags.
//!
//! Every option is declared once, on a section struct that is both a clap argument group and
//! the serde shape of the TOML file (see [`crate::sections`]). Each argument's clap id is its
//! dotted config key (`kafka.brokers`), its flag the key with dashes (`--kafka-brokers`) and its
//! environment variable the key in capitals (`STOCKFLIGHT_KAFKA_BROKERS`).

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a configuration could not be loaded: always names the key (or file) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file named by `--config` does not exist or cannot be read.
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// A value in the file has the wrong type, or the file has an unknown key.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value parsed, but is not acceptable.
    #[error("invalid configuration: key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

/// A binary's whole configuration: a clap parser whose fields are the TOML sections.
pub trait Settings: clap::Parser + Serialize + DeserializeOwned {
    /// The `--config` file, if one was given.
    fn config_file(&self) -> Option<&Path>;

    /// Checks the values that types alone cannot (URLs, address lists, ranges).
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Parses the command line and environment, layers the TOML file in, and validates.
///
/// Exits the process with clap's usage error (code 2) for malformed flags or variables.
pub fn load<S: Settings>() -> Result<S, ConfigError> {
    load_args(std::env::args_os())
}

/// Like [`load`], from `args` (a subcommand's own: its name first, then its options), exiting
/// with clap's usage error or help as [`load`] does.
pub fn load_args<S: Settings>(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<S, ConfigError> {
    let matches = S::command()
        .try_get_matches_from(args)
        .unwrap_or_else(|err| exit_naming_env::<S>(err));
    from_matches(&matches)
}

/// Exits with clap's message, adding which environment variable held a rejected value: clap
/// only names the flag, and a user who never typed that flag would look in the wrong place.
fn exit_naming_env<S: Settings>(err: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue};
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => flag.split_whitespace().next().unwrap_or_default().to_string(),
        _ => err.exit(),
    };
    let typed_on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let env = S::command()
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    match env {
        Some(env) if !typed_on_command_line && std::env::var_os(&env).is_some() => {
            let _ = err.print();
            eprintln!("note: the value came from the environment variable {env}");
            std::process::exit(err.exit_code());
        }
        _ => err.exit(),
    }
}

/// Like [`load`], from explicit arguments (tests, embedding).
pub fn load_from<S: Settings, I, T>(args: I) -> Result<S, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = S::command()
        .try_get_matches_from(args)
        .map_err(|e| ConfigError::invalid("command line", e.to_string()))?;
    from_matches(&matches)
}

fn from_matches<S: Settings>(matches: &ArgMatches) -> Result<S, ConfigError> {
    let parsed = S::from_arg_matches(matches).map_err(|e| ConfigError::invalid("command line", e.to_string()))?;
    let all = Value::serialize(&parsed).map_err(describe)?;
    let Value::Dict(_, all) = all else {
        unreachable!("settings serialize to a map")
    };
    let (defaults, explicit) = split_by_source(all, "", matches);

    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = parsed.config_file() {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let settings: S = figment
        .merge(Serialized::defaults(explicit))
        .extract()
        .map_err(describe)?;
    settings.validate()?;
    Ok(settings)
}

/// Names every failing key as a user writes it (`server.addr`, not figment's profile-qualified
/// `default.server.addr`) with the reason and the file it came from.
fn describe(errors: figment::Error) -> ConfigError {
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let path = e
                .path
                .iter()
                .skip_while(|p| *p == "default")
                .cloned()
                .collect::<Vec<_>>()
                .join(".");
            let origin = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref())
                .map(|s| format!(" (in {s})"))
                .unwrap_or_default();
            if path.is_empty() {
                format!("{}{origin}", e.kind)
            } else {
                format!("key `{path}`: {}{origin}", e.kind)
            }
        })
        .collect();
    ConfigError::Parse(lines.join("; "))
}

/// Splits serialized settings into values that are clap defaults and values given explicitly
/// (flag or environment), which must win over the file.
fn split_by_source(dict: Dict, prefix: &str, matches: &ArgMatches) -> (Dict, Dict) {
    let mut defaults = Dict::new();
    let mut explicit = Dict::new();
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(tag, inner) => {
                let (d, e) = split_by_source(inner, &path, matches);
                defaults.insert(key.clone(), Value::Dict(tag, d));
                if !e.is_empty() {
                    explicit.insert(key, Value::Dict(tag, e));
                }
            }
            value => {
                let given = matches!(
                    matches
                        .try_get_raw(&path)
                        .ok()
                        .flatten()
                        .and(matches.value_source(&path)),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                );
                if given {
                    explicit.insert(key, value);
                } else {
                    defaults.insert(key, value);
                }
            }
        }
    }
    (defaults, explicit)
}

/// Checks the naming rule for every sectioned option of `S`: clap id `section.key` is a key of
/// the serialized settings, the flag is `--section-key`, the variable `STOCKFLIGHT_SECTION_KEY`.
/// Each binary calls this from a unit test.
pub fn check_names<S: Settings>() -> Result<(), String> {
    let parsed = S::try_parse_from(["check-names"]).map_err(|e| e.to_string())?;
    let Ok(Value::Dict(_, dict)) = Value::serialize(&parsed) else {
        return Err("settings do not serialize to a map".into());
    };
    for arg in S::command().get_arguments() {
        let id = arg.get_id().as_str();
        let Some((section, key)) = id.split_once('.') else {
            continue;
        };
        let serialized = dict
            .get(section)
            .and_then(|v| v.as_dict())
            .is_some_and(|d| d.contains_key(key));
        // Optional values are absent when unset; they still must be settable in the file.
        if !serialized && !arg.get_action().takes_values() {
            return Err(format!("{id} is not a serialized key"));
        }
        let flag = id.replace(['.', '_'], "-");
        if arg.get_long() != Some(flag.as_str()) {
            return Err(format!("{id}: flag should be --{flag}"));
        }
        let env = format!("STOCKFLIGHT_{}", id.replace('.', "_").to_uppercase());
        if arg.get_env().and_then(|e| e.to_str()) != Some(env.as_str()) {
            return Err(format!("{id}: environment variable should be {env}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::{CassandraSection, KafkaSection, LogSection, StorageSection};
    use clap::Parser;
    use serde::Deserialize;
    use std::io::Write;

    #[derive(Debug, Parser, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TestSettings {
        #[arg(long = "config", id = "config")]
        #[serde(skip)]
        config: Option<PathBuf>,
        #[command(flatten)]
        kafka: KafkaSection,
        #[command(flatten)]
        cassandra: CassandraSection,
        #[command(flatten)]
        storage: StorageSection,
        #[command(flatten)]
        log: LogSection,
    }

    impl Settings for TestSettings {
        fn config_file(&self) -> Option<&Path> {
            self.config.as_deref()
        }
        fn validate(&self) -> Result<(), ConfigError> {
            self.kafka.validate()?;
            self.cassandra.validate()?;
            self.storage.validate()
        }
    }

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn load_args(args: &[&str]) -> Result<TestSettings, ConfigError> {
        load_from(std::iter::once("test").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_apply_without_file() {
        let s = load_args(&[]).unwrap();
        assert_eq!(s.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(s.cassandra.keyspace, "stockflight");
        assert!(s.storage.path_style);
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let f = file("[kafka]\nbrokers = \"10.0.0.1:9092\"\ntopic = \"from-file\"\n[storage]\npath_style = false\n");
        let path = f.path().to_str().unwrap();
        let s = load_args(&["--config", path]).unwrap();
        assert_eq!(s.kafka.brokers, "10.0.0.1:9092");
        assert_eq!(s.kafka.topic, "from-file");
        assert!(!s.storage.path_style);

        let s = load_args(&[
            "--config",
            path,
            "--kafka-topic",
            "from-flag",
            "--storage-path-style",
            "true",
        ])
        .unwrap();
        assert_eq!(s.kafka.topic, "from-flag");
        assert_eq!(s.kafka.brokers, "10.0.0.1:9092");
        assert!(s.storage.path_style);
    }

    #[test]
    fn optional_values_come_from_the_file() {
        let f = file("[storage]\nurl = \"s3://b/p\"\nendpoint = \"https://swift.example\"\n");
        let s = load_args(&["--config", f.path().to_str().unwrap()]).unwrap();
        assert_eq!(s.storage.endpoint.as_deref(), Some("https://swift.example"));
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let f = file("[kafka]\nbrokerz = \"x:1\"\n");
        let err = load_args(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("brokerz"), "{err}");
    }

    #[test]
    fn wrongly_typed_value_names_key() {
        let f = file("[log]\nformat = 3\n");
        let err = load_args(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `log.format`"), "{err}");
    }

    #[test]
    fn invalid_value_names_key_and_reason() {
        let err = load_args(&["--kafka-brokers", "no-port-here"]).unwrap_err().to_string();
        assert!(err.contains("kafka.brokers"), "{err}");
        assert!(err.contains("host:port"), "{err}");
    }

    #[test]
    fn invalid_value_in_file_names_key() {
        let f = file("[cassandra]\nnodes = \"cass-1\"\n");
        let err = load_args(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cassandra.nodes"), "{err}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = load_args(&["--config", "/nonexistent/stockflight.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/stockflight.toml"), "{err}");
    }

    #[test]
    fn shared_sections_follow_the_naming_rule() {
        check_names::<TestSettings>().unwrap();
    }
}
