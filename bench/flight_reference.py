"""pyarrow's own C++ Flight server serving one table from memory: the reference for DoGet throughput.

    python bench/flight_reference.py --parquet FILE [FILE ...] --port-file PATH [--hive]

Loads the Parquet files into one in-memory Arrow table (Hive partition columns added when --hive),
then serves it: any GetFlightInfo answers with one endpoint whose ticket DoGet streams the whole
table as it is held (`RecordBatchStream`, no copy, the C++ writer does the IPC framing). Listens on
an ephemeral loopback port, writes it to --port-file once ready, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal

import pyarrow.dataset as ds
import pyarrow.flight as flight


class TableServer(flight.FlightServerBase):
    def __init__(self, table, location: str) -> None:
        super().__init__(location)
        self.table = table

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(b"table", [])
        return flight.FlightInfo(self.table.schema, descriptor, [endpoint], self.table.num_rows, self.table.nbytes)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", nargs="+", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--root", help="directory the files are under (for Hive partition columns)")
    args = ap.parse_args()
    partitioning = "hive" if args.root else None
    dataset = ds.dataset(args.parquet, format="parquet", partitioning=partitioning,
                         partition_base_dir=args.root)
    table = dataset.to_table()
    server = TableServer(table, "grpc+tcp://127.0.0.1:0")
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.port}\n")
    os.rename(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    server.serve()


if __name__ == "__main__":
    main()
