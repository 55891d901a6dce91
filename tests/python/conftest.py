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

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
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
    hashed = subprocess.run(
        [str(binary), "hash-password"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    port_file = work / "port"
    log = work / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFLIGHT_")}
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            [
                str(binary),
                "--server-addr", "127.0.0.1:0",
                "--server-port-file", str(port_file),
                "--metrics-addr", f"127.0.0.1:{metrics_port}",
                "--storage-url", str(root),
                "--auth-users", f"analyst:{hashed}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_handle,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if proc.poll() is not None:
                pytest.fail(f"stockflight-server exited with {proc.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"stockflight-server did not start within 60 s: {log.read_text()}")
            time.sleep(0.05)
        addr = port_file.read_text().strip()
        yield StockflightServer(
            uri=f"grpc://{addr}", username="analyst", password=password, tables=tables, log=log
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
