//! Shared by the `server_*` tests: a snapshot of small, known data written the way the batch
//! publishes it, the real `stockflight-server` binary started on it, and a Flight SQL client.
//!
//! Expected answers are computed here from the same generator that wrote the files, never by
//! the server under test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{Any, CommandStatementQuery, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightInfo, HandshakeRequest};
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use prost::Message;
use stockflight_proto::layout::{CURRENT_POINTER, MANIFEST_FORMAT_VERSION, SnapshotManifest, TableManifest};
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Items in the test catalog.
pub const ITEMS: usize = 200;
/// Nodes in the test catalog (even: east, odd: west).
pub const NODES: usize = 60;
/// Departments, by `item % 4`.
pub const DEPARTMENTS: [&str; 4] = ["grocery", "apparel", "home", "toys"];

/// Available quantity of (item, node) in snapshot `version`.
pub fn qty(version: i64, item: usize, node: usize) -> i64 {
    ((item * 7 + node * 3) % 50) as i64 + version * 1000
}

/// Reserved quantity of (item, node).
pub fn reserved(item: usize, node: usize) -> i32 {
    ((item + node) % 5) as i32
}

/// Region of a node.
pub fn region(node: usize) -> &'static str {
    if node.is_multiple_of(2) { "east" } else { "west" }
}

/// Sum of `available_qty` over a region in snapshot `version`.
pub fn region_total(version: i64, wanted: &str) -> i64 {
    (0..ITEMS)
        .flat_map(|i| (0..NODES).map(move |n| (i, n)))
        .filter(|(_, n)| region(*n) == wanted)
        .map(|(i, n)| qty(version, i, n))
        .sum()
}

/// Writes one snapshot (`run_id`, data `version`) under `root` and publishes it via `CURRENT`.
pub fn publish(root: &Path, run_id: &str, version: i64) -> SnapshotManifest {
    let mut tables = BTreeMap::new();
    let base = format!("snapshots/{run_id}");

    let items = RecordBatch::try_from_iter([
        col_str("item_id", (0..ITEMS).map(|i| format!("sku-{i:04}"))),
        col_str("name", (0..ITEMS).map(|i| format!("Item {i}"))),
        col_str("department", (0..ITEMS).map(|i| DEPARTMENTS[i % 4].to_string())),
        col_str("category", (0..ITEMS).map(|i| format!("cat-{}", i % 10))),
        col_str("brand", (0..ITEMS).map(|i| format!("brand-{}", i % 7))),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (0..ITEMS).map(|i| 1.0 + i as f64 * 0.25),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    tables.insert(
        "items".into(),
        write_table(root, &format!("{base}/items"), &[], vec![("", items)]),
    );

    let nodes = RecordBatch::try_from_iter([
        col_str("node_id", (0..NODES).map(|n| format!("node-{n:03}"))),
        col_str(
            "node_type",
            (0..NODES).map(|n| ["store", "warehouse", "fulfilment_centre"][n % 3].to_string()),
        ),
        col_str("region", (0..NODES).map(|n| region(n).to_string())),
        col_str("state", (0..NODES).map(|n| format!("S{}", n % 5))),
        col_str("city", (0..NODES).map(|n| format!("City {n}"))),
        (
            "latitude",
            Arc::new(Float64Array::from_iter_values(
                (0..NODES).map(|n| 40.0 + n as f64 * 0.1),
            )) as ArrayRef,
        ),
        (
            "longitude",
            Arc::new(Float64Array::from_iter_values(
                (0..NODES).map(|n| -70.0 - n as f64 * 0.1),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    tables.insert(
        "nodes".into(),
        write_table(root, &format!("{base}/nodes"), &[], vec![("", nodes)]),
    );

    let mut parts = Vec::new();
    for wanted in ["east", "west"] {
        let pairs: Vec<(usize, usize)> = (0..ITEMS)
            .flat_map(|i| (0..NODES).map(move |n| (i, n)))
            .filter(|(_, n)| region(*n) == wanted)
            .collect();
        let batch = RecordBatch::try_from_iter([
            col_str("item_id", pairs.iter().map(|(i, _)| format!("sku-{i:04}"))),
            col_str("node_id", pairs.iter().map(|(_, n)| format!("node-{n:03}"))),
            (
                "available_qty",
                Arc::new(Int64Array::from_iter_values(
                    pairs.iter().map(|(i, n)| qty(version, *i, *n)),
                )) as ArrayRef,
            ),
            (
                "reserved_qty",
                Arc::new(Int32Array::from_iter_values(
                    pairs.iter().map(|(i, n)| reserved(*i, *n)),
                )) as ArrayRef,
            ),
            (
                "in_stock",
                Arc::new(BooleanArray::from_iter(
                    pairs.iter().map(|(i, n)| Some(qty(version, *i, *n) > 0)),
                )) as ArrayRef,
            ),
            (
                "as_of",
                Arc::new(Date32Array::from_iter_values(
                    pairs.iter().map(|(_, n)| 20_000 + (*n % 3) as i32),
                )) as ArrayRef,
            ),
            (
                "updated_at",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        pairs
                            .iter()
                            .map(|(i, n)| 1_764_000_000_000_000 + ((i * 1000 + n) as i64) * 1_000_000),
                    )
                    .with_timezone("UTC"),
                ) as ArrayRef,
            ),
        ])
        .unwrap();
        parts.push((wanted, batch));
    }
    let parts: Vec<(String, RecordBatch)> = parts.into_iter().map(|(r, b)| (format!("region={r}"), b)).collect();
    tables.insert(
        "availability_snapshot".into(),
        write_table(
            root,
            &format!("{base}/availability_snapshot"),
            &["region"],
            parts.iter().map(|(d, b)| (d.as_str(), b.clone())).collect(),
        ),
    );

    let manifest = SnapshotManifest {
        format_version: MANIFEST_FORMAT_VERSION,
        run_id: run_id.into(),
        started_at: "2026-11-25T06:00:00Z".into(),
        published_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tables,
    };
    let tmp = root.join("CURRENT.tmp");
    std::fs::write(&tmp, manifest.to_json()).unwrap();
    std::fs::rename(&tmp, root.join(CURRENT_POINTER)).unwrap();
    manifest
}

fn col_str(name: &str, values: impl Iterator<Item = String>) -> (&str, ArrayRef) {
    (name, Arc::new(StringArray::from_iter_values(values)) as ArrayRef)
}

fn write_table(root: &Path, dir: &str, partitions: &[&str], parts: Vec<(&str, RecordBatch)>) -> TableManifest {
    let mut files = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    for (sub, batch) in parts {
        let rel = if sub.is_empty() {
            format!("{dir}/part-0.parquet")
        } else {
            format!("{dir}/{sub}/part-0.parquet")
        };
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Small row groups: a scan yields several batches, as a real snapshot does.
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2048))
            .build();
        let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        rows += batch.num_rows() as u64;
        bytes += std::fs::metadata(&path).unwrap().len();
        files.push(rel);
    }
    TableManifest {
        files,
        partition_columns: partitions.iter().map(|s| s.to_string()).collect(),
        rows,
        bytes,
    }
}

/// A running `stockflight-server` process, killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: String,
    /// Its `/metrics` endpoint address.
    pub metrics_addr: String,
    /// Its stderr log.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary on storage `root` with `extra` flags, and waits until it listens.
    pub fn start(root: &Path, extra: &[&str]) -> Self {
        Self::start_on(root.as_os_str(), extra)
    }

    /// Starts the binary on `storage_url` (a directory or `s3://…`) with `extra` flags.
    pub fn start_on(storage_url: &std::ffi::OsStr, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = dir.path().join("server.log");
        let metrics_port = free_port();
        let metrics_addr = format!("127.0.0.1:{metrics_port}");
        let mut child = Command::new(stockflight_tests::binary("stockflight-server"))
            .args([
                "--server-addr",
                "127.0.0.1:0",
                "--catalog-poll-secs",
                "1",
                "--server-port-file",
            ])
            .arg(&port_file)
            .args(["--metrics-addr", &metrics_addr, "--storage-url"])
            .arg(storage_url)
            .args(extra)
            .env_remove("STOCKFLIGHT_CONFIG")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start stockflight-server");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().to_string();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "server exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "server did not start within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            addr,
            metrics_addr,
            log,
            _dir: dir,
        }
    }

    /// `grpc://host:port`.
    pub fn uri(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A raw Flight client.
    pub async fn client(&self) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Client {
            inner: FlightServiceClient::new(channel),
            token: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (for the metrics endpoint, which takes an address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Flight client that keeps the gRPC status of every failure (the codes are what we test).
pub struct Client {
    /// The generated client.
    pub inner: FlightServiceClient<Channel>,
    /// Bearer token, once logged in.
    pub token: Option<String>,
}

impl Client {
    /// Wraps `msg` with the authorization header.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Some(token) = &self.token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        req
    }

    /// Handshake with Basic credentials; keeps the Bearer token the server sends back.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<String, Status> {
        use base64_free::encode;
        let mut req = Request::new(futures::stream::iter([HandshakeRequest::default()]));
        req.metadata_mut().insert(
            "authorization",
            format!("Basic {}", encode(&format!("{user}:{password}")))
                .parse()
                .unwrap(),
        );
        let response = self.inner.handshake(req).await?;
        let header = response
            .metadata()
            .get("authorization")
            .expect("Handshake answers with an authorization header")
            .to_str()
            .unwrap()
            .to_string();
        let token = header.strip_prefix("Bearer ").expect("a Bearer token").to_string();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// GetFlightInfo of a SQL statement.
    pub async fn info(&mut self, sql: &str) -> Result<FlightInfo, Status> {
        let cmd = CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        };
        self.command_info(cmd.as_any()).await
    }

    /// GetFlightInfo of any Flight SQL command.
    pub async fn command_info(&mut self, cmd: Any) -> Result<FlightInfo, Status> {
        let descriptor = FlightDescriptor::new_cmd(cmd.encode_to_vec());
        Ok(self.inner.get_flight_info(self.request(descriptor)).await?.into_inner())
    }

    /// DoGet of every endpoint of `info`, all batches.
    pub async fn fetch(&mut self, info: &FlightInfo) -> Result<Vec<RecordBatch>, Status> {
        let mut out = Vec::new();
        for endpoint in &info.endpoint {
            assert!(
                endpoint.location.is_empty(),
                "endpoints redeem on this connection: {:?}",
                endpoint.location
            );
            let ticket = endpoint.ticket.clone().expect("a ticket");
            let stream = self.inner.do_get(self.request(ticket)).await?.into_inner();
            let batches: Vec<RecordBatch> =
                arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream.map_err(Into::into))
                    .try_collect()
                    .await
                    .map_err(into_status)?;
            out.extend(batches);
        }
        Ok(out)
    }

    /// Runs `sql` and returns all batches, or the first failure's status.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        let info = self.info(sql).await?;
        self.fetch(&info).await
    }
}

/// The gRPC status inside a Flight error.
pub fn into_status(e: arrow_flight::error::FlightError) -> Status {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => Status::unknown(other.to_string()),
    }
}

/// Total rows over batches.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// The single Int64 value of a one-row, one-column result.
pub fn scalar_i64(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    let value = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Int64).unwrap();
    value.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Hashes `password` with the server's own `hash-password` command.
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(stockflight_tests::binary("stockflight-server"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A tiny base64 encoder for Basic credentials (keeps the tests crate's dependencies lean).
mod base64_free {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(text: &str) -> String {
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
