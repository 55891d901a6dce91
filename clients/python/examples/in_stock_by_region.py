#!/usr/bin/env python3
"""In-stock rate by region, from Stockflight's Flight SQL server into pandas and a PNG chart.

    python in_stock_by_region.py --uri grpc://127.0.0.1:50051 --out in_stock_by_region.png

Reads the region level of `availability_by_region_category` (one row per region, written by
every batch run), prints it, and saves a bar chart. With auth enabled on the server, pass
--user and --password (Basic auth, exchanged for a Bearer token by the driver).
"""

from __future__ import annotations

import argparse
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

QUERY = """
SELECT region, items_tracked, in_stock, low_stock, out_of_stock, in_stock_rate, units_available
FROM availability_by_region_category
WHERE level = 'region'
ORDER BY in_stock_rate DESC
"""


def connect(uri: str, user: str | None, password: str | None):
    kwargs = {}
    if user is not None:
        kwargs["db_kwargs"] = {"username": user, "password": password or ""}
    return flight_sql.connect(uri, **kwargs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051", help="Flight SQL endpoint")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--out", default="in_stock_by_region.png", help="PNG file to write")
    args = parser.parse_args(argv)

    with connect(args.uri, args.user, args.password) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        frame = cur.fetch_df()

    if frame.empty:
        print("no regions in the current snapshot", file=sys.stderr)
        return 1
    print(frame.to_string(index=False))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(frame["region"], frame["in_stock_rate"] * 100, color="#2a7ab0")
    ax.set_ylabel("in-stock rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title("In-stock rate by region (current snapshot)")
    for x, rate in zip(frame["region"], frame["in_stock_rate"]):
        ax.annotate(f"{rate:.1%}", (x, rate * 100), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"chart written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
