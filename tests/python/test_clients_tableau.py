"""The Tableau guide's queries on the real pipeline (fixture ``stockflight_pipeline``): each block
of the sample dashboard (clients/tableau/dashboard.sql) and of the live sheet
(clients/tableau/live.sql) runs through ADBC as written and wrapped the way Tableau wraps Custom
SQL. The dashboard's must return rows equal to what DuckDB computes from the same Parquet files
(the ones CURRENT lists); the live sheet's must agree with the snapshot where nothing changed
since the batch and with the server's own current rows where something may have. So neither a
renamed column nor a server change can let the guide rot unnoticed.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from pathlib import Path

import duckdb
import pytest

from conftest import REPO_ROOT

DASHBOARD = REPO_ROOT / "clients" / "tableau" / "dashboard.sql"
LIVE_SHEET = REPO_ROOT / "clients" / "tableau" / "live.sql"
PARAMETER = re.compile(r"<Parameters\.(\w+)>")


def blocks(path: Path = DASHBOARD) -> dict[str, str]:
    """name -> SQL (comment lines dropped) of every `-- name:` block of a Custom SQL file."""
    out: dict[str, str] = {}
    name = None
    for line in path.read_text().splitlines():
        if line.startswith("-- name:"):
            name = line.removeprefix("-- name:").strip()
            out[name] = ""
        elif name and not line.startswith("--"):
            out[name] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


BLOCKS = blocks()
LIVE_BLOCKS = blocks(LIVE_SHEET)


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


def shown_blocks(listing: str) -> dict[str, str]:
    """name -> SQL (whitespace folded) of a README listing whose comment lines name the block,
    optionally followed by ` (remark)` or `: remark`."""
    shown: dict[str, str] = {}
    name = None
    for line in listing.splitlines():
        if line.startswith("-- "):
            name = re.split(r" \(|:", line.removeprefix("-- "))[0].strip()
            shown[name] = ""
        elif name:
            shown[name] += line + "\n"
    return {k: " ".join(v.split()) for k, v in shown.items()}


def test_guide_shows_exactly_the_tested_queries():
    """clients/tableau/README.md repeats the Custom SQL blocks for reading, the dashboard's
    (section 4) and then the live sheet's; they must be the ones this file runs."""
    guide = (REPO_ROOT / "clients" / "tableau" / "README.md").read_text()
    dashboard, live = re.findall(r"```sql\n(.*?)```", guide, re.S)
    folded = lambda blocks: {k: " ".join(v.split()) for k, v in blocks.items()}  # noqa: E731
    tested = folded(BLOCKS)
    del tested["tableau_generated_region_bars"]
    assert shown_blocks(dashboard) == tested
    assert shown_blocks(live) == folded(LIVE_BLOCKS)


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


def test_live_sheet_file_has_every_block():
    assert set(LIVE_BLOCKS) == {"live_item_by_node", "snapshot_item_by_node", "in_stock_by_region_now_and_then"}
    for name, sql in LIVE_BLOCKS.items():
        assert sql.upper().startswith("SELECT") and not sql.rstrip().endswith(";"), name


def run_both_ways(cur, sql: str, values: list[str]) -> tuple[list[tuple], list[str], list[tuple]]:
    """(rows, column names) of `sql` as written, and its rows wrapped as Tableau wraps Custom SQL."""
    cur.execute(sql, parameters=values or None)
    rows = normalise(cur.fetchall())
    columns = [d[0] for d in cur.description]
    cur.execute(f'SELECT * FROM (\n{sql}\n) "Custom SQL Query"', parameters=values or None)
    return rows, columns, normalise(cur.fetchall())


@pytest.fixture(scope="module")
def item(reference) -> str:
    """The catalog item at the most nodes. Every update the pipeline produced was ingested before
    its batch ran and no test produces one for a catalog item afterwards, so Cassandra's rows of
    this item are the snapshot's."""
    (item,) = reference.execute(
        "SELECT item_id FROM availability_snapshot GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 1"
    ).fetchone()
    return item


@pytest.mark.parametrize("name", ["live_item_by_node", "snapshot_item_by_node"])
def test_live_sheet_item_query_matches_the_snapshot(name, stockflight_pipeline, reference, item):
    sql, values = bind(LIVE_BLOCKS[name], {"Item": item})
    with stockflight_pipeline.server.connect() as conn, conn.cursor() as cur:
        got, columns, wrapped = run_both_ways(cur, sql, values)
    # The same columns read from the snapshot: the live table is in availability_snapshot's columns.
    reference_sql = sql.replace("availability_live", "availability_snapshot")
    want = normalise(reference.execute(reference_sql, values).fetchall())
    assert want, f"{name}: the item has rows in the snapshot"
    assert columns == [d[0] for d in reference.description], name
    assert_same_rows(sorted(got, key=repr), sorted(want, key=repr), name)
    assert_same_rows(sorted(wrapped, key=repr), sorted(want, key=repr), f"{name} (wrapped)")


def test_live_sheet_region_query_is_now_and_the_last_batch(stockflight_pipeline, reference):
    """'last batch' rows are the snapshot's region rows (DuckDB on the Parquet); 'now' rows are
    the region measures recomputed by DuckDB from the server's availability_current rows (the
    snapshot plus whatever other tests ingested since)."""
    sql = LIVE_BLOCKS["in_stock_by_region_now_and_then"]
    with stockflight_pipeline.server.connect() as conn, conn.cursor() as cur:
        got, columns, wrapped = run_both_ways(cur, sql, [])
        cur.execute("SELECT region, status, available_qty FROM availability_current")
        current = cur.fetch_arrow_table()
    assert columns == ["as_of", "region", "items_tracked", "in_stock_rate", "units_available"]

    then = normalise(
        reference.execute(
            "SELECT 'last batch', region, items_tracked, in_stock_rate, units_available "
            "FROM availability_by_region_category WHERE level = 'region'"
        ).fetchall()
    )
    db = duckdb.connect()
    db.register("availability_current", current)
    now = normalise(
        db.execute(
            "SELECT 'now', region, count(*), "
            "count(*) FILTER (WHERE status IN (1, 2))::DOUBLE / nullif(count(*) FILTER (WHERE status <> 4), 0), "
            "sum(coalesce(available_qty, 0)) FROM availability_current GROUP BY region"
        ).fetchall()
    )
    assert len(now) >= len(then) > 1
    want = sorted(now + then, key=repr)
    assert_same_rows(sorted(got, key=repr), want, "in_stock_by_region_now_and_then")
    assert_same_rows(sorted(wrapped, key=repr), want, "in_stock_by_region_now_and_then (wrapped)")
