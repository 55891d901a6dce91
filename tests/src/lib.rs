//! Harness for Stockflight's end-to-end tests: where the real services and client tools are.
//!
//! `dev/stack up` starts Kafka, Cassandra and Swift and writes their endpoints to
//! `<state dir>/stack.env`; `dev/tools` installs grpcurl, the Python client stack and the JDBC
//! driver and writes `<cache dir>/tools.env`. A variable set in the environment wins over both
//! files. A missing endpoint fails the test with instructions: these tests never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository root (the parent of this crate).
///
/// Taken from the `CARGO_MANIFEST_DIR` that `cargo test` sets at run time: the compile-time
/// value goes stale when a shared target directory serves several checkouts of the repository.
pub fn repo_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        manifest_dir.parent().expect("tests/ has a parent").to_path_buf()
    })
}

/// The test stack's state directory (`$STOCKFLIGHT_STATE_DIR`, default `<repo>/.stockflight`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("STOCKFLIGHT_STATE_DIR").map_or_else(|| repo_root().join(".stockflight"), PathBuf::from)
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STOCKFLIGHT_CACHE_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
    base.join("stockflight")
}

fn parse_env_file(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches(['"', '\'']).to_string()))
        .collect()
}

fn files() -> &'static HashMap<String, String> {
    static FILES: OnceLock<HashMap<String, String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut vars = parse_env_file(&cache_dir().join("tools.env"));
        vars.extend(parse_env_file(&state_dir().join("stack.env")));
        vars
    })
}

/// The value of `name` from the environment, else from the stack's or tools' env file.
///
/// Panics with what to run when neither has it.
pub fn require(name: &str) -> String {
    std::env::var(name)
        .ok()
        .or_else(|| files().get(name).cloned())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set and not in {} or {}: run `dev/stack up` and `dev/tools` first \
             (dev/test does both)",
                state_dir().join("stack.env").display(),
                cache_dir().join("tools.env").display()
            )
        })
}

/// Sends signal `name` (`TERM`, `STOP`, `CONT`, `KILL`…) to process `pid`, asserting it was delivered.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A name no earlier run used, for topics, keyspaces and object keys.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Path of a workspace binary (`stockflight-ingest`, …) built beside this test.
///
/// Cargo only exposes `CARGO_BIN_EXE_*` for a package's own binaries; a test executable lives in
/// `<target>/<profile>/deps/`, so the workspace's binaries are two levels up from it.
/// `dev/test` builds the whole workspace before the end-to-end tests run.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: build it first (`cargo build --workspace`; dev/test does)",
        path.display()
    );
    path
}

/// Storage on the test stack's OpenStack Swift (S3 API), under a fresh key prefix.
pub struct Swift {
    /// `s3://<bucket>/<prefix>`.
    pub url: String,
    /// The settings a binary would take, for opening the store in the test.
    pub section: stockflight_common::sections::StorageSection,
}

impl Swift {
    /// A fresh prefix named after `prefix` in the stack's bucket.
    pub fn new(prefix: &str) -> Self {
        let url = format!("s3://{}/{}", require("SWIFT_S3_BUCKET"), unique(prefix));
        let mut section = stockflight_common::sections::StorageSection::local(url.clone());
        section.endpoint = Some(require("SWIFT_S3_ENDPOINT"));
        section.region = require("SWIFT_S3_REGION");
        section.access_key_id = Some(require("SWIFT_S3_ACCESS_KEY_ID"));
        section.secret_access_key = Some(require("SWIFT_S3_SECRET_ACCESS_KEY"));
        section.allow_http = true;
        Self { url, section }
    }

    /// The store, opened as the binaries open it.
    pub fn store(&self) -> std::sync::Arc<dyn object_store::ObjectStore> {
        stockflight_common::storage::Storage::open(&self.section)
            .expect("open Swift")
            .store()
            .clone()
    }

    /// The flags that reach this store, but for `--storage-url`.
    pub fn connection_flags(&self) -> Vec<String> {
        let s = &self.section;
        [
            ("--storage-endpoint", s.endpoint.clone().unwrap_or_default()),
            ("--storage-region", s.region.clone()),
            ("--storage-access-key-id", s.access_key_id.clone().unwrap_or_default()),
            (
                "--storage-secret-access-key",
                s.secret_access_key.clone().unwrap_or_default(),
            ),
            ("--storage-allow-http", "true".into()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }

    /// Every flag that reaches this store, `--storage-url` included.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--storage-url".to_string(), self.url.clone()];
        flags.extend(self.connection_flags());
        flags
    }
}

/// A process of the test stack, frozen (SIGSTOP) while this lives: dropping it thaws the
/// process (SIGCONT) even when the test fails half-way.
pub struct Frozen(u32);

impl Frozen {
    /// Freezes `pid`.
    pub fn freeze(pid: u32) -> Self {
        signal(pid, "STOP");
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// The pid of the stack's Cassandra, checked to be the daemon `dev/stack` started for this
/// state directory (its environment carries the stack's tag), never another process.
pub fn cassandra_pid() -> u32 {
    let dir = state_dir().join("cassandra");
    let pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap_or_else(|e| panic!("{}: {e}: is the stack up?", dir.join("pid").display()))
        .trim()
        .parse()
        .expect("a pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("Cassandra runs");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("CassandraDaemon"),
        "pid {pid} is not Cassandra"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("Cassandra's environment");
    let tag = format!("STOCKFLIGHT_STACK_TAG={}", dir.display());
    assert!(
        environ.split(|b| *b == 0).any(|v| v == tag.as_bytes()),
        "pid {pid} is not the Cassandra of {}",
        dir.display()
    );
    pid
}

/// The pid of node `n` (1-based) of `service` (`cassandra` or `kafka`) of a cluster stack
/// (`dev/stack up --cluster`), read from the pid file listed in
/// `STOCKFLIGHT_STACK_<SERVICE>_PID_FILES` and checked to be that service's JVM.
pub fn cluster_node_pid(service: &str, n: usize) -> u32 {
    let files = require(&format!("STOCKFLIGHT_STACK_{}_PID_FILES", service.to_uppercase()));
    let file = files
        .split(',')
        .nth(n - 1)
        .unwrap_or_else(|| panic!("no node {n} in {files}: is this a cluster stack (dev/stack up --cluster)?"));
    let pid: u32 = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .parse()
        .expect("a pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_else(|e| panic!("{service} node {n} (pid {pid}) runs: {e}"));
    let main = if service == "kafka" {
        "kafka.Kafka"
    } else {
        "CassandraDaemon"
    };
    assert!(
        String::from_utf8_lossy(&cmdline).contains(main),
        "pid {pid} ({file}) is not {service}"
    );
    pid
}

/// Runs `dev/stack ARGS...` on the test stack; panics with its output if it fails.
pub fn stack(args: &[&str]) -> String {
    let output = std::process::Command::new(repo_root().join("dev/stack"))
        .args(args)
        .output()
        .expect("run dev/stack");
    assert!(
        output.status.success(),
        "dev/stack {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
