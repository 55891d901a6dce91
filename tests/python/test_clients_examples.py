"""The client examples of clients/ run against the real pipeline (fixture ``stockflight_pipeline``:
loadgen -> Kafka -> ingest -> Cassandra -> batch -> server). Expected figures are computed here
with DuckDB straight from the batch's Parquet drill-down table (the files CURRENT lists), not
through the server and not from the aggregate table the examples read.
"""

from __future__ import annotations

import csv
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import duckdb
import pytest

from conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "clients" / "python" / "examples" / "in_stock_by_region.py"


def expected_by_region(pipeline) -> dict[str, tuple[int, int, float]]:
    """region -> (rows, in-stock rows, in-stock rate) from the drill-down Parquet files."""
    rows = duckdb.sql(
        """
        SELECT region, count(*) AS n, count(*) FILTER (WHERE status = 1) AS in_stock,
               count(*) FILTER (WHERE status IN (1, 2))::DOUBLE
                   / nullif(count(*) FILTER (WHERE status <> 4), 0) AS rate
        FROM read_parquet($files, hive_partitioning = true)
        GROUP BY region ORDER BY region
        """,
        params={"files": pipeline.files("availability_snapshot")},
    ).fetchall()
    return {region: (n, in_stock, rate) for region, n, in_stock, rate in rows}


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, after checking its signature and every chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.append(kind)
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
    return struct.unpack(">II", data[16:24])


def run_example(pipeline, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    """Runs the example (with the pipeline server's --uri unless `pipeline` is None)."""
    env = {k: v for k, v in os.environ.items() if k != "STOCKFLIGHT_PASSWORD"}
    if password is not None:
        env["STOCKFLIGHT_PASSWORD"] = password
    uri = ["--uri", pipeline.server.uri] if pipeline is not None else []
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *uri, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_python_example_prints_in_stock_rate_by_region_and_saves_a_png(stockflight_pipeline, tmp_path):
    expected = expected_by_region(stockflight_pipeline)
    assert len(expected) >= 2, f"the data set should span several regions: {expected}"
    out = tmp_path / "chart.png"

    done = run_example(
        stockflight_pipeline, "--user", "analyst", "--out", str(out), "--csv",
        password=stockflight_pipeline.server.password,
    )

    assert done.returncode == 0, done.stderr
    printed = list(csv.DictReader(io.StringIO(done.stdout)))
    got = {r["region"]: (int(r["items_tracked"]), int(r["in_stock"]), float(r["in_stock_rate"])) for r in printed}
    assert got.keys() == expected.keys()
    for region, (n, in_stock, rate) in expected.items():
        assert got[region][:2] == (n, in_stock), region
        assert got[region][2] == pytest.approx(rate, rel=1e-12), region
    width, height = png_size(out)
    assert (width, height) == (960, 540), "8 x 4.5 in at 120 dpi"


def test_python_example_table_output_and_wrong_password(stockflight_pipeline, tmp_path):
    expected = expected_by_region(stockflight_pipeline)
    done = run_example(
        stockflight_pipeline, "--user", "analyst", "--out", str(tmp_path / "c.png"),
        password=stockflight_pipeline.server.password,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["region", "items_tracked", "in_stock"], lines[0]
    for region, (n, _, rate) in expected.items():
        row = next(line.split() for line in lines[1:] if line.split()[0] == region)
        assert int(row[1]) == n and f"{rate:.1%}" in row, (row, n, rate)

    refused = run_example(stockflight_pipeline, "--user", "analyst", "--out", str(tmp_path / "x.png"), password="nope")
    assert refused.returncode != 0
    assert "Unauthenticated" in refused.stderr or "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "x.png").exists()


def test_python_example_over_tls_with_a_pem_ca(stockflight_pipeline, stockflight_tls_server, tmp_path):
    """grpc+tls:// and --tls-root-certs, as in clients/python/README.md; without the CA the
    certificate is refused and no chart is written."""
    expected = expected_by_region(stockflight_pipeline)
    tls = stockflight_tls_server
    out = tmp_path / "tls.png"
    server = ["--uri", f"grpc+tls://{tls.addr}", "--user", tls.username]

    done = run_example(
        None, *server, "--tls-root-certs", str(tls.ca), "--out", str(out), "--csv", password=tls.password
    )
    assert done.returncode == 0, done.stderr
    got = {r["region"]: float(r["in_stock_rate"]) for r in csv.DictReader(io.StringIO(done.stdout))}
    assert got == pytest.approx({region: rate for region, (_, _, rate) in expected.items()}, rel=1e-12)
    png_size(out)

    untrusted = run_example(None, *server, "--out", str(tmp_path / "no.png"), password=tls.password)
    assert untrusted.returncode != 0
    assert not (tmp_path / "no.png").exists()
