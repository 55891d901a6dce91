"""Shared fixtures for Stockflight's Python tests.

The suite runs inside the venv that ``dev/tools`` builds from
``clients/python/requirements.txt``; ``pinned_versions`` reads that file so the
tests and the installer agree on one list of pins.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "clients" / "python" / "requirements.txt"

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``{distribution name (lower-case, '-' separated): pinned version}``.

    Only active ``name==version`` lines count; commented-out optional pins
    (e.g. polars) are ignored.
    """
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


@pytest.fixture(scope="session")
def pinned_versions() -> dict[str, str]:
    pins = read_pins()
    assert pins, f"no '==' pins found in {REQUIREMENTS}"
    return pins


@pytest.fixture
def closed_loopback_port() -> int:
    """A loopback TCP port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port


# --------------------------------------------------------------------------
# stockflight-server (issue #5): a real server process on a snapshot written
# here with pyarrow, in the layout the batch publishes (proto/src/layout.rs).
# --------------------------------------------------------------------------

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402


def _server_binary() -> Path:
    explicit = os.environ.get("STOCKFLIGHT_SERVER_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stockflight" / "target"
    )
    return Path(target) / "debug" / "stockflight-server"


@dataclass
class StockflightServer:
    """A running server and the data it serves (pyarrow tables, as written)."""

    uri: str
    username: str
    password: str
    tables: dict
    log: Path

    def connect(self, **kwargs):
        import adbc_driver_flightsql.dbapi

        db_kwargs = {"username": self.username, "password": self.password}
        db_kwargs.update(kwargs.pop("db_kwargs", {}))
        return adbc_driver_flightsql.dbapi.connect(self.uri, db_kwargs=db_kwargs, autocommit=True, **kwargs)


def write_stockflight_snapshot(root: Path, run_id: str = "py1") -> dict:
    """Writes items, nodes and availability_snapshot (Hive-partitioned by region) and CURRENT."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    items = pa.table(
        {
            "item_id": [f"sku-{i:04}" for i in range(40)],
            "name": [f"Item {i}" for i in range(40)],
            "department": [["grocery", "apparel", "home", "toys"][i % 4] for i in range(40)],
            "price": [1.0 + i * 0.5 for i in range(40)],
        }
    )
    nodes = pa.table(
        {
            "node_id": [f"node-{n:03}" for n in range(10)],
            "region": ["east" if n % 2 == 0 else "west" for n in range(10)],
        }
    )
    rows = [(i, n) for i in range(40) for n in range(10)]
    epoch = dt.datetime(2026, 11, 25, 6, 0, 0, tzinfo=dt.timezone.utc)
    snapshot = pa.table(
        {
            "item_id": [f"sku-{i:04}" for i, _ in rows],
            "node_id": [f"node-{n:03}" for _, n in rows],
            "available_qty": pa.array([(i * 7 + n * 3) % 50 for i, n in rows], pa.int64()),
            "updated_at": pa.array(
                [epoch + dt.timedelta(seconds=i * 10 + n) for i, n in rows], pa.timestamp("us", tz="UTC")
            ),
            "region": ["east" if n % 2 == 0 else "west" for _, n in rows],
        }
    )
    manifest_tables = {}
    base = f"snapshots/{run_id}"
    for name, table in (("items", items), ("nodes", nodes)):
        rel = f"{base}/{name}/part-0.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel)
        manifest_tables[name] = {
            "files": [rel],
            "partition_columns": [],
            "rows": table.num_rows,
            "bytes": (root / rel).stat().st_size,
        }
    files = []
    for region in ("east", "west"):
        part = snapshot.filter(pa.compute.equal(snapshot["region"], region)).drop_columns(["region"])
        rel = f"{base}/availability_snapshot/region={region}/part-0.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, root / rel)
        files.append(rel)
    manifest_tables["availability_snapshot"] = {
        "files": files,
        "partition_columns": ["region"],
        "rows": snapshot.num_rows,
        "bytes": sum((root / f).stat().st_size for f in files),
    }
    manifest = {
        "format_version": 1,
        "run_id": run_id,
        "started_at": "2026-11-25T06:00:00Z",
        "published_at": "2026-11-25T06:01:00Z",
        "tables": manifest_tables,
    }
    (root / "CURRENT.tmp").write_text(json.dumps(manifest))
    (root / "CURRENT.tmp").rename(root / "CURRENT")
    return {"items": items, "nodes": nodes, "availability_snapshot": snapshot}


@pytest.fixture(scope="session")
def stockflight_server(tmp_path_factory) -> StockflightServer:
    """The real stockflight-server binary (built by cargo) on a snapshot written here, with a
    Basic-auth user; bound to 127.0.0.1:0, its port read from --server-port-file."""
    binary = _server_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build it first (cargo build -p stockflight-server; dev/test does)")
    root = tmp_path_factory.mktemp("stockflight-data")
    tables = write_stockflight_snapshot(root)
    work = tmp_path_factory.mktemp("stockflight-server")
    password = "py-secret"
    args = ["--auth-users", f"analyst:{_hash_password(binary, password)}"]
    with _running_server(binary, root, work, args) as (addr, log):
        yield StockflightServer(
            uri=f"grpc://{addr}", username="analyst", password=password, tables=tables, log=log
        )


# --------------------------------------------------------------------------
# The whole pipeline (issue #6, the clients): stockflight-loadgen -> Kafka ->
# stockflight-ingest -> Cassandra -> stockflight-batch --once -> stockflight-server,
# every part real, so the client examples and the Tableau queries run on the
# batch's real output tables. Needs Kafka and Cassandra (dev/stack up).
# --------------------------------------------------------------------------

import uuid  # noqa: E402
import urllib.request  # noqa: E402


def _parse_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def require_env(name: str) -> str:
    """`name` from the environment, else from the stack's or tools' env file (as the Rust
    tests' ``stockflight_tests::require``); fails the test with what to run otherwise."""
    if os.environ.get(name):
        return os.environ[name]
    state = Path(os.environ.get("STOCKFLIGHT_STATE_DIR") or REPO_ROOT / ".stockflight")
    cache = Path(
        os.environ.get("STOCKFLIGHT_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stockflight"
    )
    files = {**_parse_env_file(cache / "tools.env"), **_parse_env_file(state / "stack.env")}
    if files.get(name):
        return files[name]
    pytest.fail(
        f"{name} is not set and not in {state / 'stack.env'} or {cache / 'tools.env'}: "
        "run `dev/stack up` and `dev/tools` first (dev/test does both)"
    )


def workspace_binary(name: str) -> Path:
    """A binary of the cargo workspace, beside stockflight-server (dev/test builds them all)."""
    path = _server_binary().parent / name
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build it first (cargo build --workspace --bins; dev/test does)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_sum(url: str, name: str) -> float:
    """Sum of every sample of metric `name` at a /metrics URL (0 while it is unreachable)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class StockflightPipeline:
    """Everything the pipeline fixture ran, and where its output is."""

    server: StockflightServer
    root: Path  # the storage root: reference/, snapshots/<run>/, CURRENT
    manifest: dict  # CURRENT, as the batch published it
    brokers: str
    topic: str
    dlq_topic: str
    group_id: str
    keyspace: str
    ingest_metrics: str  # http://127.0.0.1:PORT/metrics of the still-running ingest
    messages: int  # updates loadgen produced

    def files(self, table: str) -> list[str]:
        """Absolute paths of a published table's Parquet files, from the manifest."""
        return [str(self.root / f) for f in self.manifest["tables"][table]["files"]]


def _run(cmd: list, log: Path, timeout: float) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=_clean_env()
    )
    log.write_text(done.stderr)
    if done.returncode != 0:
        pytest.fail(f"{cmd[0]} exited with {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    return done.stdout


def _clean_env() -> dict[str, str]:
    """The environment without STOCKFLIGHT_* (so no stray setting reaches the binaries)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STOCKFLIGHT_")}


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _hash_password(server: Path, password: str) -> str:
    """`stockflight-server hash-password`: the value for `--auth-users name:<hash>`."""
    return subprocess.run(
        [str(server), "hash-password"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()


@contextlib.contextmanager
def _running_server(server: Path, storage: Path, work: Path, args: list[str]) -> Iterator[tuple[str, Path]]:
    """stockflight-server on `storage`, bound to 127.0.0.1:0, with `args` added; yields its address
    (read from --server-port-file once it listens) and its log, and stops it afterwards."""
    port_file, log = work / "server.port", work / "server.log"
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            [str(server), "--server-addr", "127.0.0.1:0", "--server-port-file", str(port_file),
             "--metrics-addr", "127.0.0.1:0", "--storage-url", str(storage), *args],
            stdout=subprocess.DEVNULL, stderr=log_handle, env=_clean_env(),
        )
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                pytest.fail(f"stockflight-server {args} exited with {proc.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"stockflight-server {args} did not start within 60 s: {log.read_text()}")
            time.sleep(0.05)
        yield port_file.read_text().strip(), log
    finally:
        _stop(proc)


def _logged_metrics_addr(proc: subprocess.Popen, log: Path, timeout: float = 60) -> str:
    """The bound address of a binary's ops endpoint (`--metrics-addr 127.0.0.1:0`), from its
    JSON log line `serving /metrics and /health`."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            fields = entry.get("fields", entry)
            if fields.get("message") == "serving /metrics and /health" and fields.get("addr"):
                return fields["addr"]
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{proc.args[0]} logged no metrics address in {timeout} s: {log.read_text()[-4000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def stockflight_pipeline(tmp_path_factory) -> StockflightPipeline:
    """Reference data and 4,000 updates from stockflight-loadgen (fixed seed and start time)
    on a fresh topic, ingested into a fresh keyspace, aggregated by one `stockflight-batch
    --once` run, served by stockflight-server with a Basic-auth user. Ingest keeps running
    (consuming the topic, dead-lettering into `<topic>.dlq`) until the session ends."""
    brokers = require_env("STOCKFLIGHT_KAFKA_BROKERS")
    cassandra = require_env("STOCKFLIGHT_CASSANDRA_NODES")
    loadgen, ingest, batch, server = (
        workspace_binary(n)
        for n in ("stockflight-loadgen", "stockflight-ingest", "stockflight-batch", "stockflight-server")
    )
    work = tmp_path_factory.mktemp("pipeline")
    root = work / "data"
    root.mkdir()
    tag = uuid.uuid4().hex[:12]
    topic, keyspace, group = f"clients-{tag}", f"clients_{tag}", f"clients-ingest-{tag}"
    dataset = ["--dataset-items", "150", "--dataset-nodes", "24", "--dataset-seed", "11"]

    produced = _run(
        [loadgen, "all", *dataset, "--storage-url", root, "--kafka-brokers", brokers, "--kafka-topic", topic,
         "--produce-count", "4000", "--produce-start-time-us", "1764050400000000",
         "--produce-progress", "false", "--log-format", "json"],
        work / "loadgen.log",
        timeout=120,
    )
    messages = json.loads(produced.strip().splitlines()[-1])["messages"]

    ingest_log = work / "ingest.log"
    procs: list[subprocess.Popen] = []
    with ingest_log.open("wb") as log_handle:
        procs.append(
            subprocess.Popen(
                [str(ingest), "--kafka-brokers", brokers, "--kafka-topic", topic,
                 "--cassandra-nodes", cassandra, "--cassandra-keyspace", keyspace,
                 "--ingest-group-id", group, "--ingest-commit-interval-ms", "200",
                 "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info,scylla=warn"],
                stdout=subprocess.DEVNULL, stderr=log_handle, env=_clean_env(),
            )
        )
    try:
        metrics = f"http://{_logged_metrics_addr(procs[0], ingest_log)}/metrics"
        deadline = time.monotonic() + 180
        while True:
            done = prometheus_sum(metrics, "stockflight_ingest_written_total") + prometheus_sum(
                metrics, "stockflight_ingest_dead_lettered_total"
            )
            if done >= messages:
                break
            if procs[0].poll() is not None:
                pytest.fail(f"stockflight-ingest exited with {procs[0].returncode}:\n{ingest_log.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"ingest handled {done} of {messages} updates in 180 s: {ingest_log.read_text()[-4000:]}")
            time.sleep(0.2)

        _run(
            [batch, "--once", "--run-id", "20261125T060000Z", "--cassandra-nodes", cassandra,
             "--cassandra-keyspace", keyspace, "--storage-url", root, "--metrics-addr", "127.0.0.1:0",
             "--scan-parallelism", "2"],
            work / "batch.log",
            timeout=300,
        )
        manifest = json.loads((root / "CURRENT").read_text())

        password = "tableau-and-friends"
        # The live tables read the pipeline's keyspace (the Tableau guide's live sheet runs on them).
        server_args = ["--auth-users", f"analyst:{_hash_password(server, password)}",
                       "--cassandra-nodes", cassandra, "--cassandra-keyspace", keyspace]
        with _running_server(server, root, work, server_args) as (addr, server_log):
            yield StockflightPipeline(
                server=StockflightServer(
                    uri=f"grpc://{addr}", username="analyst", password=password, tables={}, log=server_log,
                ),
                root=root,
                manifest=manifest,
                brokers=brokers,
                topic=topic,
                dlq_topic=f"{topic}.dlq",
                group_id=group,
                keyspace=keyspace,
                ingest_metrics=metrics,
                messages=messages,
            )
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _openssl(cwd: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"openssl {args}: {done.stderr}")


@dataclass
class TlsServer:
    """A second stockflight-server on the pipeline's snapshot, with TLS and both auth kinds."""

    addr: str  # 127.0.0.1:PORT
    ca: Path  # PEM of the CA that signed its certificate (for 127.0.0.1)
    username: str
    password: str
    token: str  # a static Bearer token (auth.tokens)


@pytest.fixture(scope="session")
def stockflight_tls_server(stockflight_pipeline, tmp_path_factory) -> TlsServer:
    """stockflight-server with tls.cert/tls.key (a test CA made here with openssl), a Basic-auth
    user and a static token, serving the snapshot of ``stockflight_pipeline``."""
    work = tmp_path_factory.mktemp("tls-server")
    _openssl(work, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=stockflight-clients-test-ca")
    (work / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(work, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=server")
    _openssl(work, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    binary = workspace_binary("stockflight-server")
    password, token = "tls-secret", "clients-static-token"
    args = ["--tls-cert", str(work / "server.pem"), "--tls-key", str(work / "server.key"),
            "--auth-users", f"analyst:{_hash_password(binary, password)}", "--auth-tokens", token]
    with _running_server(binary, stockflight_pipeline.root, work, args) as (addr, _log):
        yield TlsServer(addr=addr, ca=work / "ca.pem", username="analyst", password=password, token=token)
