"""Aggregate navigation on the real pipeline's snapshot, through ADBC (issue 14).

Two stockflight-servers serve the snapshot `stockflight_pipeline` built (loadgen -> Kafka ->
ingest -> Cassandra -> batch): one answers GROUP BYs from cubes and verified lookups (cubes
allowed on a table this small with `catalog.aggregate_min_rows`), the other with navigation off
(`catalog.aggregate_cache_mb = 0`). Neither keeps results, so every statement executes. Every
dashboard-shaped query, with literals drawn from the data, must answer the same on both, and the
first server must really have answered from cubes (its rewrite counter), or the comparison
proves nothing. A third server, navigated and keeping results, answers each statement of the
first pass twice (executed, then kept): the same rows in the schema announced both times.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _clean_env, _logged_metrics_addr, _stop, prometheus_sum, workspace_binary

# {region}, {department}, {category}, {node_type}, {status} and {node} are filled from the data.
QUERIES = [
    "SELECT region, count(*) AS n, sum(available_qty) AS qty, avg(available_qty) AS a, "
    "min(available_qty) AS lo, max(reserved_qty) AS hi FROM availability_snapshot "
    "WHERE department = '{department}' GROUP BY region",
    "SELECT count(*), sum(available_qty), avg(reserved_qty) FROM availability_snapshot WHERE region = '{region}'",
    "SELECT category, count(*) FILTER (WHERE status_name = '{status}') AS s, sum(available_qty) AS qty "
    "FROM availability_snapshot WHERE region = '{region}' AND department = '{department}' GROUP BY category",
    "SELECT node_id, sum(available_qty) AS qty FROM availability_snapshot WHERE region = '{region}' "
    "AND node_type = '{node_type}' GROUP BY node_id ORDER BY qty DESC, node_id LIMIT 5",
    "SELECT region, department, category, sum(available_qty) AS qty, count(*) AS n "
    "FROM availability_snapshot GROUP BY ROLLUP (region, department, category)",
    "SELECT region, node_type, sum(available_qty) AS qty FROM availability_snapshot GROUP BY CUBE (region, node_type)",
    "SELECT department, count(DISTINCT category) AS cats, min(status_name) AS lo, max(status_name) AS hi "
    "FROM availability_snapshot GROUP BY department",
    "SELECT upper(region) AS r, sum(available_qty) AS qty FROM availability_snapshot "
    "WHERE category IN ('{category}', 'no-such-category') GROUP BY upper(region) HAVING sum(available_qty) >= 0",
    "SELECT i.department, n.node_type, sum(a.available_qty) AS qty, count(*) AS n FROM availability_snapshot a "
    "JOIN items i ON a.item_id = i.item_id JOIN nodes n ON a.node_id = n.node_id "
    "WHERE n.region = '{region}' GROUP BY ROLLUP (i.department, n.node_type)",
    "SELECT i.category, a.region, sum(a.available_qty) AS qty FROM availability_snapshot a "
    "JOIN items i ON a.item_id = i.item_id WHERE i.department = '{department}' GROUP BY i.category, a.region",
    "SELECT n.state, count(*) AS n, sum(a.reserved_qty) AS r FROM nodes n "
    "JOIN availability_snapshot a ON n.node_id = a.node_id GROUP BY n.state",
    # Both lookups at once, grouped by a node attribute NOT NULL in `nodes` but nullable in the
    # snapshot's copy (what Tableau sends for a brand-by-state sheet).
    "SELECT n.state, sum(a.available_qty) AS qty, count(*) AS n FROM availability_snapshot a "
    "JOIN items i ON a.item_id = i.item_id JOIN nodes n ON a.node_id = n.node_id "
    "WHERE i.category = '{category}' GROUP BY n.state ORDER BY n.state",
    # Not answerable from a cube (a per-row column): must still answer the same.
    "SELECT item_id, sum(available_qty) AS qty FROM availability_snapshot WHERE node_id = '{node}' "
    "GROUP BY item_id ORDER BY qty DESC, item_id LIMIT 10",
]


@contextlib.contextmanager
def _server(storage: Path, work: Path, args: list[str]):
    """stockflight-server on `storage` (127.0.0.1:0); yields (flight uri, metrics url)."""
    binary = workspace_binary("stockflight-server")
    work.mkdir(parents=True, exist_ok=True)
    port_file, log = work / "server.port", work / "server.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [str(binary), "--server-addr", "127.0.0.1:0", "--server-port-file", str(port_file),
             "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--storage-url", str(storage), *args],
            stdout=subprocess.DEVNULL, stderr=handle, env=_clean_env(),
        )
    try:
        metrics = f"http://{_logged_metrics_addr(proc, log)}/metrics"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"stockflight-server {args} did not start: {log.read_text()[-4000:]}")
            time.sleep(0.05)
        yield f"grpc://{port_file.read_text().strip()}", metrics
    finally:
        _stop(proc)


def _rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    rows = [tuple(r.values()) for r in cursor.fetch_arrow_table().to_pylist()]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal row for row; floats within 1e-9 relative (a sum of floats may add in another order)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for va, vb in zip(ra, rb):
            if isinstance(va, float) and isinstance(vb, float):
                if not math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif va != vb:
                return False
    return True


def _values(cursor, column: str) -> list[str]:
    cursor.execute(f"SELECT DISTINCT {column} FROM availability_snapshot WHERE {column} IS NOT NULL ORDER BY 1")
    return [str(v) for v in cursor.fetch_arrow_table().column(0).to_pylist()]


def test_navigated_answers_equal_unnavigated_ones(stockflight_pipeline, tmp_path):
    import adbc_driver_flightsql.dbapi as flightsql

    root = stockflight_pipeline.root
    with _server(root, tmp_path / "on", ["--catalog-aggregate-min-rows", "1", "--catalog-result-cache-mb", "0"]) \
            as (on_uri, on_metrics), \
            _server(root, tmp_path / "kept", ["--catalog-aggregate-min-rows", "1"]) as (kept_uri, _), \
            _server(root, tmp_path / "off", ["--catalog-aggregate-cache-mb", "0", "--catalog-result-cache-mb", "0"]) \
            as (off_uri, off_metrics), \
            flightsql.connect(on_uri, autocommit=True) as on, flightsql.connect(off_uri, autocommit=True) as off, \
            flightsql.connect(kept_uri, autocommit=True) as kept, \
            on.cursor() as on_cur, off.cursor() as off_cur, kept.cursor() as kept_cur:
        domains = {
            key: _values(off_cur, column)
            for key, column in (("region", "region"), ("department", "department"), ("category", "category"),
                                ("node_type", "node_type"), ("status", "status_name"), ("node", "node_id"))
        }
        assert all(domains.values()), f"the pipeline's snapshot lacks a dimension: {domains}"

        def cube_rewrites() -> float:
            return prometheus_sum(on_metrics, 'stockflight_server_aggregate_rewrites_total{to="cube"}')

        compared, passes = 0, 0
        deadline = time.monotonic() + 90
        # The first queries start the cubes in the background; pass again (other literals each
        # time) until most of a pass is answered from cubes (on a snapshot this small some
        # shapes are refused: a cube must be 8 times smaller than its table).
        while True:
            before = cube_rewrites()
            for sql in QUERIES:
                literals = {k: v[(passes * 7 + compared) % len(v)] for k, v in domains.items()}
                query = sql.format(**literals)
                expected, got = _rows(off_cur, query), _rows(on_cur, query)
                assert _same(got, expected), f"navigation changed the answer of\n{query}\n{got}\n!=\n{expected}"
                if passes == 0:
                    # Executed, then answered from the result cache: the same rows, in the schema
                    # announced for the statement both times.
                    for run in ("executed", "kept"):
                        again = _rows(kept_cur, query)
                        assert _same(again, expected), f"the {run} answer of\n{query}\n{again}\n!=\n{expected}"
                compared += 1
            passes += 1
            if passes >= 2 and cube_rewrites() - before >= len(QUERIES) // 2:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"after {passes} passes only {cube_rewrites() - before:.0f} of {len(QUERIES)} "
                            f"queries were answered from cubes (cubes built: "
                            f"{prometheus_sum(on_metrics, 'stockflight_server_cubes_built_total'):.0f})")
            time.sleep(0.2)
        assert prometheus_sum(off_metrics, "stockflight_server_aggregate_rewrites_total") == 0
