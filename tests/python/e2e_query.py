"""Runs SQL statements against a running stockflight-server through ADBC (adbc-driver-flightsql),
as a Python analyst does, and prints every result as one JSON document on stdout, for the
platform end-to-end test (tests/platform_e2e.rs) to compare with its own aggregates.

Usage: ``$STOCKFLIGHT_PYTHON tests/python/e2e_query.py URI USER PASSWORD SQL...``

Output: ``[{"sql": ..., "columns": [...], "types": [...], "rows": [[...], ...]}, ...]``.
Cells: integers as JSON numbers, text as strings, NULL as null, floating point as a string
(``repr``, which parses back to the same double; a JSON number could be rounded by the reader),
timestamps as microseconds since the epoch.

The statement ``!tables`` lists the catalog instead, as ``adbc_get_objects`` reports it: columns
``table_name`` and ``table_type``, one row per table of catalog ``stockflight``, schema ``public``.

Not a pytest module (no ``test_`` prefix): the Rust tests run it.
"""

from __future__ import annotations

import json
import sys


def _column(array) -> list:
    import pyarrow as pa

    if pa.types.is_timestamp(array.type):
        return array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.int64()).to_pylist()
    values = array.to_pylist()
    if pa.types.is_floating(array.type):
        return [None if v is None else repr(float(v)) for v in values]
    return values


def _tables(conn) -> dict:
    objects = conn.adbc_get_objects(depth="tables", catalog_filter="stockflight").read_all().to_pylist()
    rows = [
        [table["table_name"], table["table_type"]]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"]
        if schema["db_schema_name"] == "public"
        for table in schema["db_schema_tables"]
    ]
    return {"sql": "!tables", "columns": ["table_name", "table_type"], "types": [], "rows": rows}


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print("usage: e2e_query.py URI USER PASSWORD SQL...", file=sys.stderr)
        return 2
    import adbc_driver_flightsql.dbapi

    uri, user, password, statements = argv[0], argv[1], argv[2], argv[3:]
    results = []
    with adbc_driver_flightsql.dbapi.connect(
        uri, db_kwargs={"username": user, "password": password}, autocommit=True
    ) as conn:
        for sql in statements:
            if sql == "!tables":
                results.append(_tables(conn))
                continue
            with conn.cursor() as cur:
                cur.execute(sql)
                table = cur.fetch_arrow_table()
            columns = [_column(table.column(i).combine_chunks()) for i in range(table.num_columns)]
            results.append(
                {
                    "sql": sql,
                    "columns": table.column_names,
                    "types": [str(f.type) for f in table.schema],
                    "rows": [list(row) for row in zip(*columns)] if columns else [],
                }
            )
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
