"""dev/demo end to end: the README's first command, as a user runs it.

The demo runs for real (its own Kafka and Cassandra through dev/stack, the real binaries, a local
directory as the object store) on ephemeral ports with its own state dir and a one-minute batch
schedule. The test reads the connection info it prints, queries the Flight SQL server through
ADBC until a snapshot is served, waits (polling) for the next scheduled snapshot and checks that
it is fresher, checks the live side-by-side it printed (availability_live next to
availability_snapshot, the current regions next to the snapshot's), runs the ADBC snippet the demo
printed, then sends SIGINT and checks the demo exits 0 and leaves no process behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "dev" / "demo"
STACK = REPO_ROOT / "dev" / "stack"

# First start on a machine where dev/test already ran: jars cached, binaries built; Kafka and
# Cassandra still need to start (about a minute on 2 cores).
STARTUP_TIMEOUT = float(os.environ.get("STOCKFLIGHT_DEMO_TEST_STARTUP_TIMEOUT", "420"))
SCHEDULE_SECS = 60

# One query, so all three values come from the same snapshot.
FRESHNESS_SQL = """
SELECT
  (SELECT max(run_id) FROM availability_trend) AS run_id,
  (SELECT items_tracked FROM availability_by_region_category WHERE level = 'total') AS items_tracked,
  (SELECT max(event_time) FROM availability_snapshot) AS latest_event
"""


class Demo:
    """A running dev/demo whose stdout is collected line by line in the background."""

    def __init__(self, state_dir: Path, args: list[str], log: Path):
        self.state_dir = state_dir
        self.log = log
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stderr = open(log, "wb")
        env = dict(os.environ, STOCKFLIGHT_STATE_DIR=str(state_dir))
        self.proc = subprocess.Popen(
            [str(DEMO), *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def stderr_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output():
                m = regex.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                self._reader.join(5)
                for line in self.output():
                    m = regex.search(line)
                    if m:
                        return m
                pytest.fail(
                    f"dev/demo exited {self.proc.returncode} before printing /{pattern}/;\n"
                    f"stderr:\n{self.stderr_tail()}"
                )
            time.sleep(0.5)
        pytest.fail(f"no line matching /{pattern}/ within {timeout}s;\nstderr:\n{self.stderr_tail()}")

    def stop(self, sig: int, timeout: float) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)
            self.proc.stdout.close()
            self._stderr.close()


def demo_processes(state_dir: Path) -> dict[int, str]:
    """Processes started for this state dir: the services and demo processes (by their
    STOCKFLIGHT_STACK_TAG) and any other child that carries the state dir in its environment."""
    found = {}
    tag_prefix = f"STOCKFLIGHT_STACK_TAG={state_dir}/".encode()
    state_var = f"STOCKFLIGHT_STATE_DIR={state_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        tags = [e for e in environ if e.startswith(tag_prefix)]
        if tags:
            found[int(entry.name)] = tags[0].decode().split("=", 1)[1][len(str(state_dir)) + 1 :]
        elif state_var in environ:
            found[int(entry.name)] = cmdline[:120]
    return found


def flight_query(uri: str, sql: str):
    import adbc_driver_flightsql.dbapi as flightsql

    with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().to_pylist()


def poll_query(uri: str, sql: str, accept, timeout: float, what: str):
    """Runs SQL until accept(rows) holds; returns those rows."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            rows = flight_query(uri, sql)
            if accept(rows):
                return rows
            last = rows
        except Exception as err:  # noqa: BLE001 - not served yet; the last error is reported
            last = err
        time.sleep(2)
    pytest.fail(f"{what}: not within {timeout}s (last answer: {last!r})")


@pytest.fixture
def demo_state(tmp_path):
    """A state dir of its own; anything left running in it is stopped afterwards."""
    state = tmp_path / "state"
    state.mkdir()
    yield state
    leftovers = demo_processes(state)
    if leftovers:
        subprocess.run([str(STACK), "--state-dir", str(state), "down"], capture_output=True, timeout=180)
        for pid in demo_processes(state):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_demo_serves_fresh_aggregates_and_stops_cleanly_on_ctrl_c(demo_state, tmp_path):
    demo = Demo(
        demo_state,
        ["--ephemeral-ports", "--schedule", "1m", "--status-every", "2", "--no-tools"],
        tmp_path / "demo.stderr",
    )
    try:
        uri = demo.wait_for_line(r"Flight SQL\s+(grpc://127\.0\.0\.1:\d+)", STARTUP_TIMEOUT).group(1)
        demo.wait_for_line(r"jdbc:arrow-flight-sql://127\.0\.0\.1:\d+/\?useEncryption=false", 5)

        # The demo prints the connection info once the first batch has published.
        first = poll_query(
            uri, FRESHNESS_SQL, lambda r: r and r[0]["run_id"] is not None, 30, "a first snapshot over ADBC"
        )[0]
        assert first["items_tracked"] > 0, first

        # The live tables answered next to the snapshot's: one item node by node, the regions.
        demo.wait_for_line(r"^Live next to the snapshot", 30)
        item = demo.wait_for_line(r"^Item (\S+), node by node: availability_live \(now\)", 90).group(1)
        demo.wait_for_line(r"^Units per region: availability_by_region_category_current \(now\)", 30)
        out = demo.output()
        at = next(i for i, line in enumerate(out) if line.startswith(f"Item {item}, node by node"))
        node_rows = [line for line in out[at + 2 : at + 10] if re.match(r"^  \S+ +\d+ ", line)]
        assert node_rows, out[at : at + 10]

        # The next scheduled run (at most a minute away) must bring fresher aggregates.
        second = poll_query(
            uri,
            FRESHNESS_SQL,
            lambda r: r and r[0]["run_id"] is not None and r[0]["run_id"] > first["run_id"],
            SCHEDULE_SECS + 90,
            f"a snapshot newer than {first['run_id']}",
        )[0]
        assert second["items_tracked"] > first["items_tracked"], (first, second)
        assert second["latest_event"] > first["latest_event"], (first, second)

        # The status line names the new snapshot and a non-zero update rate.
        status = demo.wait_for_line(rf"status: .*updates/s ([\d,]+?), lag .*snapshot {second['run_id']}", 30)
        assert int(status.group(1).replace(",", "")) > 0, status.group(0)

        # The grpcurl health check the demo printed answers SERVING.
        health = demo.wait_for_line(r"grpcurl -plaintext (127\.0\.0\.1:\d+) grpc\.health\.v1\.Health/Check", 5)
        grpcurl = os.environ.get("STOCKFLIGHT_GRPCURL") or shutil.which("grpcurl")
        assert grpcurl, "grpcurl not found: run dev/tools and load its tools.env (STOCKFLIGHT_GRPCURL)"
        checked = subprocess.run(
            [grpcurl, "-plaintext", health.group(1), "grpc.health.v1.Health/Check"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0 and '"SERVING"' in checked.stdout, checked

        # The ADBC snippet the demo printed runs as printed.
        out = demo.output()
        start = next(i for i, line in enumerate(out) if line.endswith("<<'PY'"))
        end = next(i for i in range(start + 1, len(out)) if out[i].strip() == "PY")
        snippet = textwrap.dedent("\n".join(out[start + 1 : end]))
        ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert "region" in ran.stdout and "items_tracked" in ran.stdout, ran.stdout

        running = set(demo_processes(demo_state).values())
        expected = {"kafka", "cassandra", "demo/ingest", "demo/loadgen", "demo/batch", "demo/server"}
        assert expected <= running, f"expected {expected} running, found {running}"
    except BaseException:
        if demo.proc.poll() is None:
            demo.stop(signal.SIGTERM, 180)
        raise

    # Ctrl-C: everything stops, exit status 0.
    rc = demo.stop(signal.SIGINT, 180)
    assert rc == 0, f"dev/demo exited {rc} on SIGINT;\n{demo.stderr_tail()}"
    assert demo_processes(demo_state) == {}, "processes left behind after Ctrl-C"
    assert not (demo_state / "demo" / "connect.env").exists()


def test_demo_refuses_a_taken_port_naming_it(demo_state, tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        env = dict(os.environ, STOCKFLIGHT_STATE_DIR=str(demo_state), DEMO_SERVER_PORT=str(port))
        ran = subprocess.run(
            [str(DEMO), "--no-build", "--no-tools"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 1, ran
    assert f"127.0.0.1:{port}" in ran.stderr and "DEMO_SERVER_PORT" in ran.stderr, ran.stderr
    # Nothing was started.
    assert not (demo_state / "kafka").exists() and demo_processes(demo_state) == {}


def test_demo_rejects_a_schedule_that_does_not_divide_a_day(demo_state):
    ran = subprocess.run(
        [str(DEMO), "--schedule", "7m", "--no-build", "--no-tools", "--state-dir", str(demo_state)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 1, ran
    assert "--schedule 7m must divide a day" in ran.stderr, ran.stderr
