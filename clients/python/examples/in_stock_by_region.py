#!/usr/bin/env python3
"""In-stock rate by region, from Stockflight's Flight SQL server into pandas and a PNG chart.

    python in_stock_by_region.py --uri grpc://127.0.0.1:50051 --out in_stock_by_region.png
    STOCKFLIGHT_PASSWORD=... python in_stock_by_region.py --uri grpc+tls://flight.example:50051 \\
        --user analyst --tls-root-certs ca.pem --out chart.png

Reads the region level of `availability_by_region_category` (one row per region, written by
every batch run) through ADBC (adbc-driver-flightsql) into a pandas DataFrame, prints it and
saves a bar chart. With auth enabled on the server, pass --user and the password in
$STOCKFLIGHT_PASSWORD (or --password; a flag is visible in `ps`): the driver sends them as
Basic auth in the Flight handshake and uses the Bearer token it gets back.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

QUERY = """
SELECT region, items_tracked, in_stock, low_stock, out_of_stock, discontinued,
       in_stock_rate, units_available
FROM availability_by_region_category
WHERE level = 'region'
ORDER BY region
"""


def connect(uri: str, user: str | None, password: str | None, tls_root_certs: Path | None):
    """A DB-API connection; autocommit on, since a read-only Flight SQL server has no
    transactions (ADBC warns otherwise)."""
    db_kwargs: dict[str, str] = {}
    if user is not None:
        db_kwargs["username"] = user
        db_kwargs["password"] = password or ""
    if tls_root_certs is not None:
        db_kwargs[adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value] = tls_root_certs.read_text()
    return flight_sql.connect(uri, db_kwargs=db_kwargs, autocommit=True)


def in_stock_by_region(conn) -> pd.DataFrame:
    """One row per region of the current snapshot, sorted by region."""
    with conn.cursor() as cur:
        cur.execute(QUERY)
        return cur.fetch_df()


def save_chart(frame: pd.DataFrame, out: Path) -> None:
    """A bar per region: in-stock rate in percent, labelled, with the rows counted below."""
    labels = [f"{r}\n({n:,} rows)" for r, n in zip(frame["region"], frame["items_tracked"])]
    rates = frame["in_stock_rate"].astype(float) * 100
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.bar(labels, rates, color="#2a7ab0")
    ax.bar_label(bars, labels=[f"{r:.1f} %" for r in rates], fontsize=8)
    ax.set_ylabel("in-stock rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title("In-stock rate by region (current snapshot)")
    fig.tight_layout()
    fig.savefig(out, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051", help="grpc://HOST:PORT or grpc+tls://HOST:PORT")
    parser.add_argument("--user", help="Basic-auth user (server with auth.users)")
    parser.add_argument(
        "--password",
        default=os.environ.get("STOCKFLIGHT_PASSWORD"),
        help="password (default: $STOCKFLIGHT_PASSWORD)",
    )
    parser.add_argument("--tls-root-certs", type=Path, help="PEM file of the CA that signed the server's certificate")
    parser.add_argument("--out", type=Path, default=Path("in_stock_by_region.png"), help="PNG file to write")
    parser.add_argument("--csv", action="store_true", help="print the figures as CSV instead of a table")
    args = parser.parse_args(argv)

    with connect(args.uri, args.user, args.password, args.tls_root_certs) as conn:
        frame = in_stock_by_region(conn)

    if frame.empty:
        print("no regions in the current snapshot (has a batch run been published?)", file=sys.stderr)
        return 1
    if args.csv:
        # Full precision, for scripts (and the test that checks these figures).
        print(frame.to_csv(index=False, float_format="%.17g"), end="")
    else:
        print(frame.to_string(index=False, formatters={"in_stock_rate": "{:.1%}".format}))
    save_chart(frame, args.out)
    print(f"chart written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
