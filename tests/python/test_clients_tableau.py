"""The sample Tableau dashboard's queries (clients/tableau/dashboard.sql) on the real pipeline
(fixture ``stockflight_pipeline``): each block runs through ADBC as written and wrapped the way
Tableau wraps Custom SQL, and must return rows equal to what DuckDB computes from the same
Parquet files (the ones CURRENT lists), so neither a renamed column nor a server change can let
the guide rot unnoticed.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import duckdb
import pytest

from conftest import REPO_ROOT

DASHBOARD = REPO_ROOT / "clients" / "tableau" / "dashboard.sql"
PARAMETER = re.compile(r"<Parameters\.(\w+)>")


def blocks() -> dict[str, str]:
    """name -> SQL (comment lines dropped) of every `-- name:` block of dashboard.sql."""
    out: dict[str, str] = {}
    name = None
    for line in DASHBOARD.read_text().splitlines():
        if line.startswith("-- name:"):
            name = line.removeprefix("-- name:").strip()
            out[name] = ""
        elif name and not line.startswith("--"):
            out[name] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


BLOCKS = blocks()


def reference_db(pipeline) -> duckdb.DuckDBPyConnection:
    """DuckDB with every published table as a view, unqualified and as stockflight.public.*."""
    db = duckdb.connect()
    db.execute("ATTACH ':memory:' AS stockflight")
    db.execute("CREATE SCHEMA stockflight.public")
    for table, entry in pipeline.manifest["tables"].items():
        files = ", ".join(f"'{pipeline.root / f}'" for f in entry["files"])
        db.execute(
            f"CREATE VIEW stockflight.public.{table} AS "
            f"SELECT * FROM read_parquet([{files}], hive_partitioning = {bool(entry['partition_columns'])})"
        )
    db.execute("USE stockflight.public")
    return db


@pytest.fixture(scope="module")
def reference(stockflight_pipeline):
    db = reference_db(stockflight_pipeline)
    yield db
    db.close()


@pytest.fixture(scope="module")
def parameters(reference) -> dict[str, str]:
    """Values a user would pick: the region and node with the most unavailable rows, and that
    region's largest department."""
    region, node = reference.execute(
        "SELECT region, node_id FROM availability_snapshot WHERE status_name IN ('out_of_stock', 'low_stock') "
        "GROUP BY region, node_id ORDER BY count(*) DESC, node_id LIMIT 1"
    ).fetchone()
    (department,) = reference.execute(
        "SELECT department FROM availability_snapshot WHERE region = ? GROUP BY department "
        "ORDER BY count(*) DESC, department LIMIT 1",
        [region],
    ).fetchone()
    return {"Region": region, "Department": department, "Node": node}


def bind(sql: str, parameters: dict[str, str]) -> tuple[str, list[str]]:
    """Tableau's <Parameters.X> as bound `?` parameters, in order of appearance."""
    values = [parameters[m] for m in PARAMETER.findall(sql)]
    return PARAMETER.sub("?", sql), values


def normalise(rows) -> list[tuple]:
    def cell(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dt.datetime):
            return v.replace(tzinfo=None)
        return v

    return [tuple(cell(v) for v in row) for row in rows]


def assert_same_rows(got: list[tuple], want: list[tuple], what: str):
    assert len(got) == len(want), f"{what}: {len(got)} rows, DuckDB {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        same = len(g) == len(w) and all(
            math.isclose(a, b, rel_tol=1e-12) if isinstance(b, float) and isinstance(a, float) else a == b
            for a, b in zip(g, w)
        )
        assert same, f"{what}: row {i}: {g} != {w}"


def test_dashboard_file_has_every_block():
    assert set(BLOCKS) == {
        "kpi_network",
        "in_stock_by_region",
        "region_department_heatmap",
        "categories_of_region_department",
        "worst_nodes",
        "trend_by_region",
        "most_unavailable_items",
        "node_drill_down",
        "tableau_generated_region_bars",
    }
    for name, sql in BLOCKS.items():
        assert sql.upper().startswith("SELECT") and not sql.rstrip().endswith(";"), name


def test_guide_shows_exactly_the_tested_queries():
    """clients/tableau/README.md repeats the Custom SQL blocks for reading; they must be the ones
    this file runs (the README's comment lines name the block, optionally with a remark)."""
    guide = (REPO_ROOT / "clients" / "tableau" / "README.md").read_text()
    (listing,) = re.findall(r"```sql\n(.*?)```", guide, re.S)
    shown: dict[str, str] = {}
    name = None
    for line in listing.splitlines():
        if line.startswith("-- "):
            name = line.removeprefix("-- ").split(" (")[0].strip()
            shown[name] = ""
        elif name:
            shown[name] += line + "\n"
    shown = {k: " ".join(v.split()) for k, v in shown.items()}
    tested = {k: " ".join(v.split()) for k, v in BLOCKS.items() if k != "tableau_generated_region_bars"}
    assert shown == tested


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_dashboard_query_matches_duckdb_on_the_same_parquet(name, stockflight_pipeline, reference, parameters):
    sql, values = bind(BLOCKS[name], parameters)
    ordered = "ORDER BY" in sql.upper()
    want = normalise(reference.execute(sql, values).fetchall())
    want_columns = [d[0] for d in reference.description]
    assert want, f"{name}: DuckDB finds no rows; the sample data should exercise every sheet"

    with stockflight_pipeline.server.connect() as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=values or None)
        got = normalise(cur.fetchall())
        got_columns = [d[0] for d in cur.description]
        # Tableau sends Custom SQL as a subquery; row order is then not guaranteed.
        cur.execute(f'SELECT * FROM (\n{sql}\n) "Custom SQL Query"', parameters=values or None)
        wrapped = normalise(cur.fetchall())

    assert got_columns == want_columns, name
    if not ordered:
        got, want = sorted(got), sorted(want)
    assert_same_rows(got, want, name)
    assert_same_rows(sorted(wrapped, key=repr), sorted(want, key=repr), f"{name} (wrapped)")


def test_kpi_and_region_rates_agree_with_the_drill_down(stockflight_pipeline, reference):
    """The roll-up rows the KPI tiles and bars show equal the rates recomputed from the
    item x node drill-down (what the batch promises in batch/src/tables.rs)."""
    recomputed = dict(
        reference.execute(
            "SELECT coalesce(region, '*'), count(*) FILTER (WHERE status IN (1, 2))::DOUBLE "
            "/ count(*) FILTER (WHERE status <> 4) FROM availability_snapshot GROUP BY ROLLUP (region)"
        ).fetchall()
    )
    with stockflight_pipeline.server.connect() as conn, conn.cursor() as cur:
        cur.execute(BLOCKS["kpi_network"])
        ((total,),) = [(r[5],) for r in cur.fetchall()]
        cur.execute(BLOCKS["in_stock_by_region"])
        by_region = {r[0]: r[6] for r in cur.fetchall()}
    assert total == pytest.approx(recomputed.pop("*"), rel=1e-12)
    assert by_region == pytest.approx(recomputed, rel=1e-12)
