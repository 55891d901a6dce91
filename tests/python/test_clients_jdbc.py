"""The JDBC example (clients/java, io.stockflight.clients.examples.InStockByRegion) through the
real Arrow Flight SQL JDBC driver against the real pipeline (fixture ``stockflight_pipeline``).
Expected figures come from DuckDB over the batch's Parquet drill-down table, not the server.
"""

from __future__ import annotations

import os
import re
import subprocess

import duckdb
import pytest

from conftest import require_env

MAIN = "io.stockflight.clients.examples.InStockByRegion"


def expected(pipeline, department: str) -> dict[str, tuple[int, int, int, int, float]]:
    rows = duckdb.sql(
        """
        SELECT region, count(*),
               count(*) FILTER (WHERE status = 1), count(*) FILTER (WHERE status = 2),
               count(*) FILTER (WHERE status = 3),
               count(*) FILTER (WHERE status IN (1, 2))::DOUBLE / nullif(count(*) FILTER (WHERE status <> 4), 0)
        FROM read_parquet($files, hive_partitioning = true)
        WHERE department = $department
        GROUP BY region ORDER BY region
        """,
        params={"files": pipeline.files("availability_snapshot"), "department": department},
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def departments(pipeline) -> list[str]:
    rows = duckdb.sql(
        "SELECT DISTINCT department FROM read_parquet($files, hive_partitioning = true) ORDER BY 1",
        params={"files": pipeline.files("availability_snapshot")},
    ).fetchall()
    return [r[0] for r in rows]


def run_java(url: str, department: str, user: str | None = None, password: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("STOCKFLIGHT_USER", "STOCKFLIGHT_PASSWORD")}
    if user is not None:
        env["STOCKFLIGHT_USER"], env["STOCKFLIGHT_PASSWORD"] = user, password
    return subprocess.run(
        ["java", *require_env("STOCKFLIGHT_JAVA_OPTS").split(), "-cp", require_env("STOCKFLIGHT_JDBC_CLASSPATH"),
         MAIN, url, department],
        capture_output=True, text=True, timeout=120, env=env,
    )


def parse_table(stdout: str) -> dict[str, tuple[int, int, int, int, float]]:
    lines = stdout.splitlines()
    assert lines and lines[0].split()[:2] == ["region", "rows"], stdout
    out = {}
    for line in lines[1:]:
        m = re.fullmatch(r"(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+) %", line.strip())
        assert m, f"unexpected line {line!r}"
        out[m[1]] = (int(m[2]), int(m[3]), int(m[4]), int(m[5]), float(m[6]))
    return out


def check(printed, want):
    assert printed.keys() == want.keys()
    for region, (n, in_stock, low, out, rate) in want.items():
        assert printed[region][:4] == (n, in_stock, low, out), region
        # Printed as a percentage with two decimals.
        assert printed[region][4] == pytest.approx(rate * 100, abs=0.005 + 1e-9), region


def test_jdbc_example_with_credentials_from_the_environment(stockflight_pipeline):
    host_port = stockflight_pipeline.server.uri.removeprefix("grpc://")
    department = departments(stockflight_pipeline)[0]
    want = expected(stockflight_pipeline, department)
    assert len(want) >= 2, want

    done = run_java(
        f"jdbc:arrow-flight-sql://{host_port}/?useEncryption=false", department,
        user="analyst", password=stockflight_pipeline.server.password,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    check(parse_table(done.stdout), want)


def test_jdbc_example_with_credentials_in_the_url_and_an_unknown_department(stockflight_pipeline):
    host_port = stockflight_pipeline.server.uri.removeprefix("grpc://")
    url = (
        f"jdbc:arrow-flight-sql://{host_port}/?useEncryption=false"
        f"&user=analyst&password={stockflight_pipeline.server.password}"
    )
    department = departments(stockflight_pipeline)[-1]

    done = run_java(url, department)
    assert done.returncode == 0, done.stdout + done.stderr
    check(parse_table(done.stdout), expected(stockflight_pipeline, department))

    # The department is a bound parameter: quotes in it are data, not SQL.
    none = run_java(url, "no-such-department' OR '1'='1")
    assert none.returncode == 1, none.stdout + none.stderr
    assert parse_table(none.stdout) == {}

    refused = run_java(url.replace(stockflight_pipeline.server.password, "wrong"), department)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]


def test_catalog_in_the_url_fails_on_close_with_driver_18_3(stockflight_pipeline):
    """The pitfall clients/tableau/README.md warns about: with `catalog=` the driver (18.3.0)
    answers the query, then Connection.close() throws "Channel shutdown invoked" (its CloseSession
    after the channel is shut, apache/arrow-java#66 and #863). If this starts passing after a
    driver bump, the warning in the guides can go."""
    host_port = stockflight_pipeline.server.uri.removeprefix("grpc://")
    department = departments(stockflight_pipeline)[0]
    done = run_java(
        f"jdbc:arrow-flight-sql://{host_port}/?useEncryption=false&catalog=stockflight", department,
        user="analyst", password=stockflight_pipeline.server.password,
    )
    check(parse_table(done.stdout), expected(stockflight_pipeline, department))
    assert done.returncode == 3 and "Channel shutdown invoked" in done.stderr, done.stdout + done.stderr


def test_jdbc_example_over_tls_with_a_pem_ca_and_a_static_token(stockflight_pipeline, stockflight_tls_server):
    """The TLS URL of clients/java/README.md (useEncryption=true&tlsRootCerts=ca.pem) with a
    static token (token=, the server's auth.tokens)."""
    tls_server = stockflight_tls_server
    department = departments(stockflight_pipeline)[0]
    tls = f"jdbc:arrow-flight-sql://{tls_server.addr}/?useEncryption=true&tlsRootCerts={tls_server.ca}"

    done = run_java(f"{tls}&token={tls_server.token}", department)
    assert done.returncode == 0, done.stdout + done.stderr
    check(parse_table(done.stdout), expected(stockflight_pipeline, department))

    wrong = run_java(f"{tls}&token=not-the-token", department)
    assert wrong.returncode == 3 and "UNAUTHENTICATED" in wrong.stderr, wrong.stdout + wrong.stderr
    plaintext = run_java(
        f"jdbc:arrow-flight-sql://{tls_server.addr}/?useEncryption=false&token={tls_server.token}", department
    )
    assert plaintext.returncode == 3, plaintext.stdout + plaintext.stderr
    # TLS is the driver's default; the test CA is in no trust store.
    untrusted = run_java(f"jdbc:arrow-flight-sql://{tls_server.addr}/?token={tls_server.token}", department)
    assert untrusted.returncode == 3, untrusted.stdout + untrusted.stderr
