"""stockflight-server through ADBC (adbc-driver-flightsql), as Python analysts use it.

The server is the real binary (fixture ``stockflight_server`` in conftest.py), serving a
snapshot written with pyarrow; expected answers are computed here with pyarrow from that data.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest


def test_dbapi_query_fetches_into_pyarrow(stockflight_server):
    snapshot = stockflight_server.tables["availability_snapshot"]
    expected = (
        snapshot.group_by("region").aggregate([("available_qty", "sum")]).sort_by("region").to_pydict()
    )
    with stockflight_server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT region, sum(available_qty) AS total FROM availability_snapshot "
            "GROUP BY region ORDER BY region"
        )
        table = cur.fetch_arrow_table()
    assert table.column_names == ["region", "total"]
    assert table.column("region").to_pylist() == expected["region"]
    assert table.column("total").to_pylist() == expected["available_qty_sum"]


def test_whole_table_round_trips(stockflight_server):
    snapshot = stockflight_server.tables["availability_snapshot"]
    with stockflight_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT item_id, node_id, available_qty, updated_at FROM availability_snapshot")
        table = cur.fetch_arrow_table()
    assert table.num_rows == snapshot.num_rows
    assert table.schema.field("item_id").type == pa.string()
    # Timestamps come without a zone (values are UTC): the JDBC driver maps those.
    assert table.schema.field("updated_at").type == pa.timestamp("us")
    got = table.sort_by([("item_id", "ascending"), ("node_id", "ascending")])
    want = snapshot.sort_by([("item_id", "ascending"), ("node_id", "ascending")])
    assert got.column("available_qty").to_pylist() == want.column("available_qty").to_pylist()
    assert got.column("updated_at").cast(pa.int64()).to_pylist() == want.column("updated_at").cast(
        pa.int64()
    ).to_pylist()


def test_parameterized_query(stockflight_server):
    items = stockflight_server.tables["items"]
    toys = items.filter(pc.equal(items["department"], "toys"))
    with stockflight_server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT item_id, price FROM items WHERE department = ? AND price > ? ORDER BY item_id",
            parameters=("toys", 5.0),
        )
        table = cur.fetch_arrow_table()
    want = toys.filter(pc.greater(toys["price"], 5.0)).sort_by("item_id")
    assert table.column("item_id").to_pylist() == want.column("item_id").to_pylist()


def test_get_objects_lists_catalog_schema_tables_columns(stockflight_server):
    with stockflight_server.connect() as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    assert "stockflight" in catalogs, catalogs.keys()
    schemas = {s["db_schema_name"]: s for s in catalogs["stockflight"]["catalog_db_schemas"]}
    assert "public" in schemas
    tables = {t["table_name"]: t for t in schemas["public"]["db_schema_tables"]}
    assert set(tables) == {"availability_snapshot", "items", "nodes"}
    columns = [c["column_name"] for c in tables["availability_snapshot"]["table_columns"]]
    assert columns == ["item_id", "node_id", "available_qty", "updated_at", "region"]


def test_get_table_schema(stockflight_server):
    with stockflight_server.connect() as conn:
        schema = conn.adbc_get_table_schema("availability_snapshot", db_schema_filter="public")
    assert schema.names == ["item_id", "node_id", "available_qty", "updated_at", "region"]
    assert schema.field("available_qty").type == pa.int64()
    assert schema.field("region").type == pa.string()


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELEC 1", "InvalidArgument"),
        ("SELECT * FROM no_such_table", "NotFound"),
        ("DROP TABLE items", "PermissionDenied"),
        ("COPY items TO '/tmp/x.parquet'", "PermissionDenied"),
        ("SELECT * FROM '/etc/passwd'", "PermissionDenied"),
    ],
)
def test_errors_carry_precise_codes(stockflight_server, sql, code):
    import adbc_driver_manager

    with stockflight_server.connect() as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as excinfo:
            cur.execute(sql)
            cur.fetchall()
    # The driver names the gRPC code the server sent, e.g. "(PermissionDenied; Prepare)".
    assert f"({code};" in str(excinfo.value), str(excinfo.value)


def test_wrong_password_is_refused(stockflight_server):
    import adbc_driver_manager

    with pytest.raises(adbc_driver_manager.Error) as excinfo:
        with stockflight_server.connect(db_kwargs={"password": "wrong"}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    assert "unauth" in str(excinfo.value).lower(), str(excinfo.value)
