"""stockflight-server benchmark; run through bench/server.sh.

1. Dashboard queries (filters, group-bys, top-N, roll-up drill-downs): p50/p99 latency through
   ADBC against the server, beside DuckDB in-process on the same Parquet files, same run.
2. DoGet throughput of a wide multi-million-row result (MB/s of Arrow data received).
3. 64 concurrent ADBC clients running the dashboard mix: QPS and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

QUERIES = {
    "filter": "SELECT count(*) AS n, sum(available_qty) AS qty FROM availability_snapshot "
    "WHERE region = 'west' AND in_stock AND reserved_qty > 2",
    "group_by_region": "SELECT region, count(*) AS n, sum(available_qty) AS qty, avg(available_qty) AS avg_qty "
    "FROM availability_snapshot GROUP BY region ORDER BY region",
    "top_items": "SELECT item_id, sum(available_qty) AS qty FROM availability_snapshot "
    "GROUP BY item_id ORDER BY qty DESC, item_id LIMIT 20",
    "rollup_dept_nodetype": "SELECT i.department, n.node_type, sum(a.available_qty) AS qty "
    "FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id "
    "JOIN nodes n ON a.node_id = n.node_id GROUP BY i.department, n.node_type "
    "ORDER BY i.department, n.node_type",
    "drill_category_region": "SELECT i.category, a.region, sum(a.available_qty) AS qty, "
    "count(*) FILTER (WHERE NOT a.in_stock) AS out_of_stock "
    "FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id "
    "WHERE i.department = 'toys' GROUP BY i.category, a.region ORDER BY i.category, a.region",
    "point_lookup": "SELECT * FROM availability_snapshot WHERE item_id = 'sku-001234' ORDER BY node_id",
    "small_table": "SELECT node_type, region, count(*) AS nodes FROM nodes GROUP BY node_type, region "
    "ORDER BY node_type, region",
}
WIDE = "SELECT * FROM availability_snapshot"


def write_data(root: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    nodes_n = 200
    items_n = rows // nodes_n
    regions = np.array(["east", "west", "north", "south"])
    items = pa.table(
        {
            "item_id": [f"sku-{i:06}" for i in range(items_n)],
            "name": [f"Item {i}" for i in range(items_n)],
            "department": np.array(["grocery", "apparel", "home", "toys", "garden"])[np.arange(items_n) % 5],
            "category": [f"cat-{i % 40}" for i in range(items_n)],
            "brand": [f"brand-{i % 97}" for i in range(items_n)],
            "price": rng.uniform(1, 500, items_n),
        }
    )
    nodes = pa.table(
        {
            "node_id": [f"node-{n:04}" for n in range(nodes_n)],
            "node_type": np.array(["store", "warehouse", "fulfilment_centre"])[np.arange(nodes_n) % 3],
            "region": regions[np.arange(nodes_n) % 4],
            "state": [f"S{n % 50}" for n in range(nodes_n)],
            "city": [f"City {n}" for n in range(nodes_n)],
            "latitude": rng.uniform(25, 49, nodes_n),
            "longitude": rng.uniform(-124, -67, nodes_n),
        }
    )
    tables = {}
    run = "bench1"

    def put(name, table, sub=""):
        rel = f"snapshots/{run}/{name}/{sub + '/' if sub else ''}part-0.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel, row_group_size=128 * 1024)
        return rel

    for name, table in (("items", items), ("nodes", nodes)):
        rel = put(name, table)
        tables[name] = {"files": [rel], "partition_columns": [], "rows": table.num_rows,
                        "bytes": (root / rel).stat().st_size}
    files, total = [], 0
    item_idx = np.repeat(np.arange(items_n), nodes_n)
    node_idx = np.tile(np.arange(nodes_n), items_n)
    qty = rng.integers(0, 60, rows) * (rng.random(rows) > 0.15)
    item_ids = np.array(items["item_id"].to_pylist())
    node_ids = np.array(nodes["node_id"].to_pylist())
    node_region = regions[node_idx % 4]
    base_ts = np.datetime64("2026-11-25T00:00:00", "us")
    for region in regions:
        mask = node_region == region
        part = pa.table(
            {
                "item_id": item_ids[item_idx[mask]],
                "node_id": node_ids[node_idx[mask]],
                "available_qty": pa.array(qty[mask], pa.int64()),
                "reserved_qty": pa.array(rng.integers(0, 5, int(mask.sum())), pa.int32()),
                "in_stock": pa.array(qty[mask] > 0),
                "price": pa.array(rng.uniform(1, 500, int(mask.sum()))),
                "updated_at": pa.array(base_ts + rng.integers(0, 6 * 3600 * 10**6, int(mask.sum())), pa.timestamp("us")),
            }
        )
        files.append(put("availability_snapshot", part, f"region={region}"))
        total += part.num_rows
    tables["availability_snapshot"] = {"files": files, "partition_columns": ["region"], "rows": total,
                                       "bytes": sum((root / f).stat().st_size for f in files)}
    manifest = {"format_version": 1, "run_id": run, "started_at": "2026-11-25T06:00:00Z",
                "published_at": "2026-11-25T06:05:00Z", "tables": tables}
    (root / "CURRENT").write_text(json.dumps(manifest))


def start_server(binary: str, root: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port_file = work / "port"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFLIGHT_")}
    proc = subprocess.Popen(
        [binary, "--server-addr", "127.0.0.1:0", "--server-port-file", str(port_file),
         "--metrics-addr", f"127.0.0.1:{metrics}", "--storage-url", str(root),
         "--limits-max-concurrent-queries", "8", "--log-level", "warn"],
        env=env, stderr=open(work / "server.log", "wb"), stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start: {(work / 'server.log').read_text()}")
        time.sleep(0.05)
    return proc, "grpc://" + port_file.read_text().strip()


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values, p):
    return float(np.percentile(values, p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="stockflight-bench-"))
    root, work = tmp / "data", tmp / "work"
    root.mkdir()
    work.mkdir()
    try:
        t = time.perf_counter()
        write_data(root, args.rows)
        print(f"data: {args.rows} rows in {time.perf_counter() - t:.1f} s", flush=True)
        proc, uri = start_server(args.server, root, work)
        try:
            report = run(uri, root, args)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(report)
    print(report)


def run(uri: str, root: Path, args) -> str:
    con = adbc_driver_flightsql.dbapi.connect(uri, autocommit=True)
    duck = duckdb.connect()
    snap = root / "snapshots/bench1"
    duck.execute(f"CREATE VIEW availability_snapshot AS SELECT * FROM read_parquet('{snap}/availability_snapshot/*/*.parquet', hive_partitioning = true)")
    duck.execute(f"CREATE VIEW items AS SELECT * FROM read_parquet('{snap}/items/*.parquet')")
    duck.execute(f"CREATE VIEW nodes AS SELECT * FROM read_parquet('{snap}/nodes/*.parquet')")

    def server_query(sql):
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()

    rows = []
    for name, sql in QUERIES.items():
        a = server_query(sql)
        b = duck.sql(sql).to_arrow_table()
        assert a.num_rows == b.num_rows, (name, a.num_rows, b.num_rows)
        for _ in range(2):
            server_query(sql)
            duck.sql(sql).to_arrow_table()
        s = timed(lambda: server_query(sql), args.runs)
        d = timed(lambda: duck.sql(sql).to_arrow_table(), args.runs)
        rows.append((name, pct(s, 50), pct(s, 99), pct(d, 50), pct(d, 99)))
        print(f"{name}: server p50 {pct(s, 50):.1f} ms, duckdb p50 {pct(d, 50):.1f} ms", flush=True)

    # DoGet throughput of the whole wide table.
    throughputs = []
    for _ in range(3):
        t = time.perf_counter()
        with con.cursor() as cur:
            cur.execute(WIDE)
            reader = cur.fetch_record_batch()
            nbytes, nrows = 0, 0
            for batch in reader:
                nbytes += batch.nbytes
                nrows += batch.num_rows
        elapsed = time.perf_counter() - t
        throughputs.append((nbytes / elapsed / 1e6, nrows, nbytes, elapsed))
    t = time.perf_counter()
    duck_wide = duck.sql(WIDE).to_arrow_table()
    duck_wide_s = time.perf_counter() - t
    best = max(throughputs)
    con.close()

    # 64 concurrent clients.
    clients = 64
    stop = time.monotonic() + args.seconds
    done, errors, lock = [0], [], threading.Lock()
    mix = [QUERIES[k] for k in ("filter", "group_by_region", "top_items", "point_lookup", "small_table")]

    def client(i):
        c = adbc_driver_flightsql.dbapi.connect(uri, autocommit=True)
        n = 0
        try:
            while time.monotonic() < stop:
                try:
                    with c.cursor() as cur:
                        cur.execute(mix[(i + n) % len(mix)])
                        cur.fetch_arrow_table()
                    with lock:
                        done[0] += 1
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        errors.append(repr(e)[:200])
                n += 1
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    qps = done[0] / elapsed

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    lines = [
        "# stockflight-server benchmark",
        "",
        f"Machine: {os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB RAM, {platform.platform()}.",
        f"Data: availability_snapshot {args.rows:,} rows in 4 Hive partitions (Parquet), items "
        f"{args.rows // 200:,} rows, nodes 200 rows. Server: release build, defaults but "
        "`limits.max_concurrent_queries = 8`, loopback, no TLS, no auth.",
        "Command: `bench/server.sh` (data generated by bench/server_bench.py; DuckDB "
        f"{duckdb.__version__} in-process on the same files, same run; ADBC Flight SQL "
        f"{adbc_driver_flightsql.__version__}).",
        "",
        f"## Dashboard queries ({args.runs} runs each after 2 warm-ups; ms)",
        "",
        "| query | server p50 | server p99 | DuckDB p50 | DuckDB p99 | p50 ratio server/DuckDB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, sp50, sp99, dp50, dp99 in rows:
        lines.append(f"| {name} | {sp50:.1f} | {sp99:.1f} | {dp50:.1f} | {dp99:.1f} | {sp50 / dp50:.2f}x |")
    geo = statistics.geometric_mean([r[1] / r[3] for r in rows])
    lines += [
        f"| geometric mean | | | | | {geo:.2f}x |",
        "",
        "## DoGet throughput (whole availability_snapshot, through ADBC)",
        "",
        f"- best of 3: {best[0]:.0f} MB/s of Arrow data ({best[1]:,} rows, {best[2] / 1e6:.0f} MB in {best[3]:.2f} s); "
        f"all runs: {', '.join(f'{t[0]:.0f}' for t in throughputs)} MB/s",
        f"- reference, DuckDB in-process materializing the same result: {duck_wide.nbytes / duck_wide_s / 1e6:.0f} MB/s "
        f"({duck_wide_s:.2f} s)",
        "",
        f"## {clients} concurrent clients ({args.seconds:.0f} s, mix of 5 dashboard queries)",
        "",
        f"- {done[0]:,} queries, {qps:.1f} QPS, {len(errors)} errors",
    ]
    if errors:
        lines.append(f"- first error: `{errors[0]}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
