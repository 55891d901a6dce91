#!/usr/bin/env python3
"""dev/demo's side-by-side: the same questions asked of the live tables and of the snapshot.

  live.py URI [--wait SECS]

Through ADBC (adbc-driver-flightsql, pyarrow), as an analyst would:
  1. the most recently updated item, node by node: availability_live (Cassandra, now) next to
     availability_snapshot (the last batch run);
  2. units and rows per region: availability_by_region_category_current (the snapshot plus the
     changes since) next to availability_by_region_category (the snapshot alone).
Waits up to --wait seconds for the live tables to answer. Exit 0 when both were printed.
"""

from __future__ import annotations

import argparse
import sys
import time

ITEM_SQL = "SELECT item_id FROM availability_current ORDER BY event_time DESC LIMIT 1"
LIVE_SQL = (
    "SELECT node_id, available_qty, status_name, event_time FROM availability_live "
    "WHERE item_id = '{item}' ORDER BY node_id"
)
SNAPSHOT_SQL = (
    "SELECT node_id, available_qty, status_name, event_time FROM availability_snapshot "
    "WHERE item_id = '{item}' ORDER BY node_id"
)
REGIONS_SQL = (
    "SELECT region, items_tracked, units_available FROM {table} WHERE level = 'region' ORDER BY region"
)


def rows(conn, sql: str) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().to_pylist()


def cell(row: dict | None, key: str) -> str:
    if row is None:
        return "-"
    value = row[key]
    if hasattr(value, "strftime"):
        return value.strftime("%H:%M:%S.%f")[:-3]
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("--wait", type=float, default=60)
    args = parser.parse_args()
    try:
        import adbc_driver_flightsql.dbapi as flightsql
    except ImportError:
        print("  (needs adbc-driver-flightsql and pyarrow: run dev/tools, or pip install them)")
        return 1
    deadline = time.monotonic() + args.wait
    with flightsql.connect(args.uri, autocommit=True) as conn:
        while True:
            try:
                item = rows(conn, ITEM_SQL)[0]["item_id"]
                break
            except Exception as err:  # the live tables load a moment after the snapshot
                if time.monotonic() > deadline:
                    print(f"  live tables not answering after {args.wait:.0f} s: {err}")
                    return 1
                time.sleep(1)
        live = {r["node_id"]: r for r in rows(conn, LIVE_SQL.format(item=item))}
        snap = {r["node_id"]: r for r in rows(conn, SNAPSHOT_SQL.format(item=item))}
        print(f"Item {item}, node by node: availability_live (now) | availability_snapshot (last batch)")
        print(f"  {'node':<12} {'qty now':>8} {'status now':<13} {'updated':<12} | {'qty then':>8} {'updated':<12}")
        for node in sorted(set(live) | set(snap))[:8]:
            now, then = live.get(node), snap.get(node)
            print(
                f"  {node:<12} {cell(now, 'available_qty'):>8} {cell(now, 'status_name'):<13} "
                f"{cell(now, 'event_time'):<12} | {cell(then, 'available_qty'):>8} {cell(then, 'event_time'):<12}"
            )
        print(f"  SQL: {LIVE_SQL.format(item=item)}")
        current = rows(conn, REGIONS_SQL.format(table="availability_by_region_category_current"))
        before = {r["region"]: r for r in rows(conn, REGIONS_SQL.format(table="availability_by_region_category"))}
        print("Units per region: availability_by_region_category_current (now) | ..._category (last batch)")
        print(f"  {'region':<12} {'rows now':>9} {'units now':>11} | {'rows then':>9} {'units then':>11}")
        for r in current:
            then = before.get(r["region"])
            print(
                f"  {r['region']:<12} {r['items_tracked']:>9} {r['units_available']:>11} | "
                f"{cell(then, 'items_tracked'):>9} {cell(then, 'units_available'):>11}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
