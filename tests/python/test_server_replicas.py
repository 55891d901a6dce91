"""Two stockflight-server replicas behind a real gRPC load balancer: nginx (Debian's package,
unpacked by dev/tools) with ``grpc_pass`` to both, balancing every request (round robin per
HTTP/2 stream, not per connection).

One ADBC connection and one JDBC session (the real Arrow Flight SQL JDBC driver) log in through
the balancer and run statements whose calls land on both replicas: a token one replica signed
is verified by the other (shared ``auth.signing_keys``), and a query planned on one (its
FlightInfo) is redeemed on the other (its ticket carries the SQL and the snapshot). Then one
replica is killed (SIGKILL) mid-session, and the next statement of both sessions succeeds on
the survivor. Expected answers come from the pyarrow tables the snapshot was written from.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import adbc_driver_flightsql.dbapi
import pyarrow as pa
import pytest

from conftest import (
    _clean_env,
    _hash_password,
    _logged_metrics_addr,
    _server_binary,
    _stop,
    free_port,
    prometheus_sum,
    require_env,
    write_stockflight_snapshot,
)

USER, PASSWORD = "analyst", "replica-secret"
COUNT_SQL = "SELECT count(*) AS n FROM availability_snapshot"
BY_REGION_SQL = (
    "SELECT region, sum(available_qty) AS total FROM availability_snapshot GROUP BY region ORDER BY region"
)


@dataclass
class Replica:
    proc: subprocess.Popen
    addr: str
    metrics: str
    log: Path

    def queries(self) -> float:
        return prometheus_sum(self.metrics, "stockflight_server_queries_total")


def start_replica(binary: Path, storage: Path, work: Path, users: str, keys: str) -> Replica:
    work.mkdir(parents=True, exist_ok=True)
    port_file, log = work / "server.port", work / "server.log"
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            [str(binary), "--server-addr", "127.0.0.1:0", "--server-port-file", str(port_file),
             "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--storage-url", str(storage),
             "--auth-users", users, "--auth-signing-keys", keys],
            stdout=subprocess.DEVNULL, stderr=log_handle, env=_clean_env(),
        )
    metrics = f"http://{_logged_metrics_addr(proc, log)}/metrics"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None:
            pytest.fail(f"replica exited with {proc.returncode}: {log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"replica did not listen within 60 s: {log.read_text()[-4000:]}")
        time.sleep(0.05)
    return Replica(proc, port_file.read_text().strip(), metrics, log)


def nginx_config(work: Path, port: int, upstreams: list[str]) -> Path:
    servers = "\n".join(f"    server {addr} max_fails=1 fail_timeout=60s;" for addr in upstreams)
    conf = work / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
  # Which replica answered each call (a refused one first, then the next: "A, B").
  log_format calls '$upstream_addr|$request_uri|$status|$http_user_agent';
  access_log {work}/access.log calls;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  upstream replicas {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    location / {{
      grpc_pass grpc://replicas;
      # A replica that refuses the connection (killed) is skipped: the request goes to the next.
      grpc_next_upstream error timeout;
      grpc_read_timeout 300s;
      grpc_send_timeout 300s;
      client_max_body_size 0;
    }}
  }}
}}
"""
    )
    return conf


def wait_tcp(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"nginx exited with {proc.returncode}: {log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"nginx did not listen on {port} within {timeout} s: {log.read_text()[-4000:]}")
        time.sleep(0.05)


class JdbcSession:
    """io.stockflight.clients.Session: one JDBC connection, a statement per stdin line."""

    def __init__(self, target: str, log: Path):
        self.log = log
        with log.open("wb") as stderr:
            self.proc = subprocess.Popen(
                ["java", *require_env("STOCKFLIGHT_JAVA_OPTS").split(), "-Duser.timezone=UTC",
                 "-cp", require_env("STOCKFLIGHT_JDBC_CLASSPATH"), "io.stockflight.clients.Session",
                 target, USER, PASSWORD],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
        first = self._line()
        assert first == {"connected": True}, first

    def _line(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            pytest.fail(f"the JDBC session ended: {self.log.read_text()[-4000:]}")
        return json.loads(line)

    def run(self, sql: str) -> dict:
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def calls(lb_dir: Path) -> list[tuple[str, str, str, str]]:
    """(replica that answered, gRPC method, HTTP status, client) of every call nginx passed."""
    out = []
    for line in (lb_dir / "access.log").read_text().splitlines():
        upstream, uri, status, agent = line.split("|", 3)
        out.append((upstream.split(", ")[-1], uri.rsplit("/", 1)[-1], status, agent))
    return out


def expected(tables) -> tuple[int, list[tuple[str, int]]]:
    snapshot = tables["availability_snapshot"]
    by_region = snapshot.group_by("region").aggregate([("available_qty", "sum")]).sort_by("region")
    return snapshot.num_rows, list(zip(by_region["region"].to_pylist(), by_region["available_qty_sum"].to_pylist()))


def adbc_answers(conn) -> tuple[int, list[tuple[str, int]]]:
    with conn.cursor() as cur:
        cur.execute(COUNT_SQL)
        (count,) = cur.fetchone()
        cur.execute(BY_REGION_SQL)
        table: pa.Table = cur.fetch_arrow_table()
    return count, list(zip(table["region"].to_pylist(), table["total"].to_pylist()))


def jdbc_answers(session: JdbcSession) -> tuple[int, list[tuple[str, int]]]:
    count = session.run(COUNT_SQL)
    assert "error" not in count, count
    by_region = session.run(BY_REGION_SQL)
    assert "error" not in by_region, by_region
    return count["rows"][0][0], [(r[0], r[1]) for r in by_region["rows"]]


def test_replicas_behind_a_grpc_load_balancer_share_logins_and_survive_a_kill(tmp_path):
    nginx = require_env("STOCKFLIGHT_NGINX")
    binary = _server_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build it first (dev/test does)")
    storage = tmp_path / "data"
    storage.mkdir()
    want = expected(write_stockflight_snapshot(storage))
    users = f"{USER}:{_hash_password(binary, PASSWORD)}"
    keys = f"k1:{secrets.token_hex(24)}"
    replicas = [start_replica(binary, storage, tmp_path / f"replica-{i}", users, keys) for i in (1, 2)]
    lb_dir = tmp_path / "nginx"
    lb_dir.mkdir()
    port = free_port()
    conf = nginx_config(lb_dir, port, [r.addr for r in replicas])
    lb_log = lb_dir / "stderr.log"
    with lb_log.open("wb") as handle:
        lb = subprocess.Popen([nginx, "-e", "stderr", "-p", str(lb_dir), "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=handle)
    conn = session = None
    try:
        wait_tcp(port, lb, lb_log)
        target = f"127.0.0.1:{port}"
        conn = adbc_driver_flightsql.dbapi.connect(
            f"grpc://{target}", db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
        )
        session = JdbcSession(target, tmp_path / "jdbc.log")

        # Every statement is several calls (prepare, FlightInfo, DoGet, close), each balanced on
        # its own: the logins happened on one replica or the other, and the calls after them
        # land on both, so each replica accepts tokens the other signed.
        for _ in range(3):
            assert adbc_answers(conn) == want
            assert jdbc_answers(session) == want
        seen = calls(lb_dir)
        addrs = {r.addr for r in replicas}
        for client in ("ADBC", "grpc-java"):
            mine = [c for c in seen if client in c[3]]
            assert mine and mine[0][1] == "Handshake", mine[:3]
            assert {c[0] for c in mine} == addrs, f"{client}'s calls went to {[c[0] for c in mine]}"
            assert all(c[2] == "200" for c in mine), mine
            # A query planned on one replica (GetFlightInfo) and run on the other (DoGet, its ticket).
            pairs = [(a[0], b[0]) for a, b in zip(mine, mine[1:]) if (a[1], b[1]) == ("GetFlightInfo", "DoGet")]
            assert any(x != y for x, y in pairs), f"{client}: every ticket was redeemed where it was issued: {pairs}"
        before = [r.queries() for r in replicas]

        # One replica dies mid-session; the next statements of both sessions succeed.
        replicas[0].proc.send_signal(signal.SIGKILL)
        replicas[0].proc.wait()
        assert adbc_answers(conn) == want
        assert jdbc_answers(session) == want
        assert replicas[1].queries() > before[1], "the survivor answered after the kill"
        # And go on succeeding (the balancer no longer picks the dead one, or skips it).
        for _ in range(2):
            assert adbc_answers(conn) == want
            assert jdbc_answers(session) == want
    finally:
        if session is not None:
            session.close()
        if conn is not None:
            conn.close()
        _stop(lb)
        for replica in replicas:
            if replica.proc.poll() is None:
                _stop(replica.proc)


def test_a_login_one_replica_issued_is_refused_by_a_replica_with_other_keys(tmp_path):
    """The other half of shared keys: without them, a replica refuses the token by name."""
    import pyarrow.flight as flight

    binary = _server_binary()
    storage = tmp_path / "data"
    storage.mkdir()
    write_stockflight_snapshot(storage)
    users = f"{USER}:{_hash_password(binary, PASSWORD)}"
    a = start_replica(binary, storage, tmp_path / "a", users, f"k1:{secrets.token_hex(24)}")
    b = start_replica(binary, storage, tmp_path / "b", users, f"k2:{secrets.token_hex(24)}")
    try:
        token_pair = flight.FlightClient(f"grpc://{a.addr}").authenticate_basic_token(USER, PASSWORD)
        options = flight.FlightCallOptions(headers=[token_pair])
        # GetFlightInfo of Flight SQL's CommandGetCatalogs (a protobuf Any with an empty value).
        url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandGetCatalogs"
        catalogs = flight.FlightDescriptor.for_command(b"\x0a" + bytes([len(url)]) + url)
        # Accepted where it was issued, refused elsewhere with the reason.
        flight.FlightClient(f"grpc://{a.addr}").get_flight_info(catalogs, options)
        with pytest.raises(flight.FlightUnauthenticatedError, match="key this server does not have"):
            flight.FlightClient(f"grpc://{b.addr}").get_flight_info(catalogs, options)
    finally:
        for replica in (a, b):
            _stop(replica.proc)
