"""stockflight-server benchmark; run through bench/server.sh.

Over a snapshot built by the real pipeline (Cassandra -> stockflight-batch -> Parquet), beside
DuckDB in-process on the same Parquet files, same run:

1. Varied literals: every shape of bench/server_workload.py runs `--runs` times, each time with
   literals drawn afresh from the snapshot's real values (no two runs identical, so the result
   cache cannot answer); DuckDB runs the same statements, interleaved. p50/p99 per shape.
2. A statement's first run: each shape's first statement on a freshly started server (nothing
   cached, nothing planned), beside DuckDB's first run of the same statement on a fresh connection.
3. Repeated statements: one statement per shape, run `--runs` times (the result cache's case).
4. 64 concurrent clients on the varied mix (each a new statement), and DuckDB answering the same
   statements from 64 threads of one process: QPS, p50/p99, errors.
5. DoGet of the largest table: the server through pyarrow's C++ Flight client, DuckDB
   materialising it from the Parquet files, and pyarrow's own C++ Flight server serving the same
   table from memory (bench/flight_reference.py) to the same client.
6. The protocol's floor: `SELECT 1` through ADBC.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi
import duckdb
import numpy as np
import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parent))
import server_workload as workload  # noqa: E402

LARGEST = "availability_snapshot"


def pct(values, p):
    return float(np.percentile(values, p))


def manifest(root: Path) -> dict:
    return json.loads((root / "CURRENT").read_text())


def duckdb_connection(root: Path):
    """DuckDB with the snapshot's tables as views over read_parquet of exactly the files CURRENT
    lists, in a catalog `stockflight`, schema `public` (the server's names), also unqualified."""
    duck = duckdb.connect()
    duck.execute("ATTACH ':memory:' AS stockflight")
    duck.execute("CREATE SCHEMA IF NOT EXISTS stockflight.public")
    for name, table in manifest(root)["tables"].items():
        files = ", ".join("'" + str(root / f) + "'" for f in table["files"])
        hive = ", hive_partitioning = true" if table["partition_columns"] else ""
        source = f"SELECT * FROM read_parquet([{files}]{hive})"
        duck.execute(f"CREATE VIEW stockflight.public.{name} AS {source}")
        # Also in the default schema: a cursor (one per thread) starts there, whatever USE said.
        duck.execute(f"CREATE VIEW memory.main.{name} AS {source}")
    duck.execute("USE stockflight.public")
    return duck


def start_server(binary: str, root: Path, work: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFLIGHT_")}
    proc = subprocess.Popen(
        [binary, "--server-addr", "127.0.0.1:0", "--server-port-file", str(port_file),
         "--metrics-addr", f"127.0.0.1:{metrics}", "--storage-url", str(root), "--log-level", "warn",
         # Snapshot tables only: this bench starts no Cassandra (bench/live.sh measures live tables).
         "--live-enabled", "false", *extra],
        env=env, stderr=open(work / "server.log", "ab"), stdout=subprocess.DEVNULL,
    )
    wait_for_file(port_file, proc, work / "server.log")
    return proc, "grpc://" + port_file.read_text().strip()


def wait_for_file(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{proc.args[0]} did not start: {log.read_text()[-4000:]}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Server:
    """One ADBC connection and one reused cursor, as a dashboard application keeps them."""

    def __init__(self, uri: str) -> None:
        self.con = adbc_driver_flightsql.dbapi.connect(uri, autocommit=True)
        self.cursor = self.con.cursor()

    def run(self, sql: str):
        self.cursor.execute(sql)
        return self.cursor.fetch_arrow_table()

    def close(self) -> None:
        self.cursor.close()
        self.con.close()


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def normalized(table) -> list[tuple]:
    """Rows as comparable tuples: numbers as floats rounded to 9 significant digits (DuckDB sums
    integers to HUGEINT/DECIMAL, DataFusion to BIGINT), timestamps as ISO text, sorted."""

    def norm(v):
        if v is None:
            return None
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float, decimal.Decimal, np.integer, np.floating)):
            f = float(v)
            return float(f"{f:.9g}") if math.isfinite(f) else f
        if isinstance(v, (datetime.datetime, datetime.date)):
            return v.replace(tzinfo=None).isoformat() if isinstance(v, datetime.datetime) else v.isoformat()
        return str(v)

    rows = [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(rows, key=lambda r: tuple((x is None, str(x)) for x in r))


def check_same(shape: str, sql: str, got, want) -> None:
    if normalized(got) != normalized(want):
        raise SystemExit(f"{shape}: the server and DuckDB disagree on\n  {sql}\n"
                         f"server: {got.num_rows} rows {normalized(got)[:3]}\nduckdb: {want.num_rows} rows "
                         f"{normalized(want)[:3]}")


def first_runs(uri: str, root: Path, plan: dict) -> dict:
    """Each shape's first statement on a fresh server, and on a fresh DuckDB connection."""
    server = Server(uri)
    out = {}
    try:
        for name, statements in plan.items():
            sql = statements["first"]
            server_ms, got = timed(lambda: server.run(sql))
            duck = duckdb_connection(root)
            duck_ms, want = timed(lambda: duck.sql(sql).to_arrow_table())
            duck.close()
            check_same(name, sql, got, want)
            out[name] = {"server": server_ms, "duckdb": duck_ms}
    finally:
        server.close()
    return out


def varied(uri: str, duck, plan: dict) -> dict:
    """Every varied statement of every shape: the server and DuckDB interleaved, statement by
    statement; every result compared."""
    server = Server(uri)
    out = {}
    try:
        for name, statements in plan.items():
            row = {"server": [], "duckdb": []}
            for sql in statements["varied"]:
                ms, got = timed(lambda: server.run(sql))
                row["server"].append(ms)
                ms, want = timed(lambda: duck.sql(sql).to_arrow_table())
                row["duckdb"].append(ms)
                check_same(name, sql, got, want)
            out[name] = row
            print(f"varied {name}: server {pct(row['server'], 50):.1f} ms, duckdb {pct(row['duckdb'], 50):.1f} ms",
                  flush=True)
    finally:
        server.close()
    return out


def repeated(uri: str, duck, plan: dict, runs: int) -> dict:
    server = Server(uri)
    out = {}
    try:
        for name, statements in plan.items():
            sql = statements["first"]
            server.run(sql)
            duck.sql(sql).to_arrow_table()
            row = {"server": [], "duckdb": []}
            for _ in range(runs):
                row["server"].append(timed(lambda: server.run(sql))[0])
                row["duckdb"].append(timed(lambda: duck.sql(sql).to_arrow_table())[0])
            out[name] = row
    finally:
        server.close()
    return out


def protocol_floor(uri: str, runs: int) -> float:
    server = Server(uri)
    try:
        for _ in range(10):
            server.run("SELECT 1")
        return pct([timed(lambda: server.run("SELECT 1"))[0] for _ in range(runs * 5)], 50)
    finally:
        server.close()


def concurrent(run_factory, mixes: list[list[str]], seconds: float) -> dict:
    """`len(mixes)` threads, each running its own list of statements in turn for `seconds`."""
    stop_at = time.monotonic() + seconds
    latencies, errors, lock = [], [], threading.Lock()

    def client(i: int) -> None:
        run, close = run_factory()
        mine = []
        try:
            n = 0
            while time.monotonic() < stop_at:
                sql = mixes[i][n % len(mixes[i])]
                n += 1
                t = time.perf_counter()
                try:
                    run(sql)
                    mine.append((time.perf_counter() - t) * 1000)
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        errors.append(repr(e)[:200])
        finally:
            close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(mixes))]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    return {"queries": len(latencies), "seconds": elapsed, "qps": len(latencies) / elapsed,
            "p50": pct(latencies, 50) if latencies else 0.0, "p99": pct(latencies, 99) if latencies else 0.0,
            "errors": errors}


def statement_query(sql: str) -> bytes:
    """A Flight SQL CommandStatementQuery packed in google.protobuf.Any (two tiny messages)."""

    def field(number: int, payload: bytes) -> bytes:
        out, n = bytearray([number << 3 | 2]), len(payload)
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + payload

    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, type_url) + field(2, field(1, sql.encode()))


def doget(location: str, command: bytes) -> tuple[int, int, float]:
    """GetFlightInfo, then DoGet of every endpoint, through pyarrow's C++ Flight client."""
    client = flight.connect(location)
    try:
        t = time.perf_counter()
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
        nbytes = nrows = 0
        for endpoint in info.endpoints:
            for chunk in client.do_get(endpoint.ticket):
                nbytes += chunk.data.nbytes
                nrows += chunk.data.num_rows
        return nbytes, nrows, time.perf_counter() - t
    finally:
        client.close()


def mbps(run) -> float:
    nbytes, _, seconds = run
    return nbytes / seconds / 1e6


def reference_flight_server(root: Path, work: Path) -> tuple[subprocess.Popen, str]:
    table = manifest(root)["tables"][LARGEST]
    port_file = work / "reference.port"
    port_file.unlink(missing_ok=True)
    args = [sys.executable, str(Path(__file__).resolve().parent / "flight_reference.py"), "--port-file",
            str(port_file), "--parquet", *[str(root / f) for f in table["files"]]]
    if table["partition_columns"]:
        args += ["--root", str(root / Path(table["files"][0]).parents[len(table["partition_columns"])])]
    proc = subprocess.Popen(args, stderr=open(work / "reference.log", "ab"), stdout=subprocess.DEVNULL)
    wait_for_file(port_file, proc, work / "reference.log")
    return proc, f"grpc+tcp://127.0.0.1:{port_file.read_text().strip()}"


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="the stockflight-server binary")
    ap.add_argument("--data", required=True, help="storage root with a published snapshot (CURRENT)")
    ap.add_argument("--work", required=True, help="a directory for logs and port files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seed", type=int, default=20261205)
    args = ap.parse_args()
    root, work = Path(args.data).resolve(), Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    results = {"load_before": load_average(), "manifest": manifest(root), "clients": args.clients}
    duck = duckdb_connection(root)
    values = workload.Values(duck)
    plan = {}
    for shape in workload.SHAPES:
        statements = workload.statements(shape, values, rng, args.runs + 1)
        plan[shape.name] = {"first": statements[0], "varied": statements[1:], "distinct": len(statements)}
    mixes = [[rng.choice(workload.SHAPES).render(values, rng) for _ in range(200)] for _ in range(args.clients)]

    t = time.perf_counter()
    proc, uri = start_server(args.server, root, work, [])
    results["startup_s"] = time.perf_counter() - t
    try:
        results["first"] = first_runs(uri, root, plan)
        results["varied"] = varied(uri, duck, plan)
        results["repeated"] = repeated(uri, duck, plan, args.runs)
        results["floor"] = protocol_floor(uri, args.runs)

        def server_client():
            s = Server(uri)
            return s.run, s.close

        results["concurrent"] = concurrent(server_client, mixes, args.seconds)
        print("concurrent server", {k: v for k, v in results["concurrent"].items() if k != "errors"}, flush=True)
        results["doget_server"] = [doget(uri.replace("grpc://", "grpc+tcp://"), statement_query(f"SELECT * FROM {LARGEST}"))
                                   for _ in range(5)]
        server_rss = rss_mib(proc.pid)
    finally:
        stop(proc)
    results["server_rss_mib"] = server_rss

    def duck_client():
        cur = duck.cursor()
        return (lambda sql: cur.sql(sql).to_arrow_table()), cur.close

    results["concurrent_duckdb"] = concurrent(duck_client, mixes, args.seconds)
    print("concurrent duckdb", {k: v for k, v in results["concurrent_duckdb"].items() if k != "errors"}, flush=True)
    if results["concurrent_duckdb"]["errors"]:
        # A reference that fails answers nothing: its QPS would flatter neither side honestly.
        sys.exit(f"the DuckDB reference failed: {results['concurrent_duckdb']['errors'][0]}")
    wide = []
    for _ in range(5):
        ms, table = timed(lambda: duck.sql(f"SELECT * FROM {LARGEST}").to_arrow_table())
        wide.append((table.nbytes, table.num_rows, ms / 1000))
        del table
    results["doget_duckdb"] = wide
    ref, location = reference_flight_server(root, work)
    try:
        results["doget_reference"] = [doget(location, b"table") for _ in range(5)]
    finally:
        stop(ref)
    results["load_after"] = load_average()
    report = render(results, args)
    Path(args.out).write_text(report)
    Path(args.out).with_suffix(".summary").write_text(summary(results))
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, default=str, indent=1))
    print(report)


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ratios(r: dict) -> dict:
    varied = {n: pct(row["server"], 50) / pct(row["duckdb"], 50) for n, row in r["varied"].items()}
    repeated = {n: pct(row["server"], 50) / pct(row["duckdb"], 50) for n, row in r["repeated"].items()}
    first = {n: row["server"] / pct(r["varied"][n]["duckdb"], 50) for n, row in r["first"].items()}
    first_vs_first = {n: row["server"] / row["duckdb"] for n, row in r["first"].items()}
    return {"varied": varied, "repeated": repeated, "first": first, "first_vs_first": first_vs_first}


def summary(r: dict) -> str:
    x = ratios(r)
    geo = statistics.geometric_mean
    met = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    c, d = r["concurrent"], r["concurrent_duckdb"]
    server_doget = statistics.median(mbps(x) for x in r["doget_server"])
    duck_doget = statistics.median(mbps(x) for x in r["doget_duckdb"])
    ref_doget = statistics.median(mbps(x) for x in r["doget_reference"])
    vg, vw, rg, fw = geo(x["varied"].values()), max(x["varied"].values()), geo(x["repeated"].values()), max(x["first"].values())
    return "\n".join([
        f"| server | varied literals: p50 / DuckDB on the same Parquet, geometric mean of {len(x['varied'])} shapes "
        f"| {vg:.2f}x | <= 0.8x | {met(vg <= 0.8)} |",
        f"| server | varied literals: p50 / DuckDB, worst shape | {vw:.2f}x | <= 1.5x | {met(vw <= 1.5)} |",
        f"| server | repeated statements: p50 / DuckDB, geometric mean | {rg:.2f}x | <= 0.2x | {met(rg <= 0.2)} |",
        f"| server | a statement's first run (fresh server) / DuckDB's p50, worst shape | {fw:.2f}x | <= 1.5x | "
        f"{met(fw <= 1.5)} |",
        f"| server | {r['clients']} clients, varied mix: p99, errors, QPS vs DuckDB "
        f"from {r['clients']} threads | p99 {c['p99']:.0f} ms, {len(c['errors'])} errors, {c['qps']:.0f} vs {d['qps']:.0f} QPS "
        f"({c['qps'] / d['qps']:.2f}x) | p99 <= 1 s, 0 errors, > 1x | "
        f"{met(c['p99'] <= 1000 and not c['errors'] and c['qps'] > d['qps'])} |",
        f"| server | DoGet of {LARGEST}: server / DuckDB materialising it | {server_doget / duck_doget:.2f}x "
        f"({server_doget:.0f} vs {duck_doget:.0f} MB/s) | >= 2x | {met(server_doget >= 2 * duck_doget)} |",
        f"| server | DoGet of {LARGEST}: server / pyarrow's C++ Flight server from memory | "
        f"{server_doget / ref_doget:.2f}x ({server_doget:.0f} vs {ref_doget:.0f} MB/s) | >= 0.9x | "
        f"{met(server_doget >= 0.9 * ref_doget)} |",
    ]) + "\n"


def render(r: dict, args) -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    tables = r["manifest"]["tables"]
    x = ratios(r)
    geo = statistics.geometric_mean
    cell = lambda v: f"{pct(v, 50):.1f} / {pct(v, 99):.1f}"  # noqa: E731
    lines = [
        "# stockflight-server benchmark",
        "",
        f"Machine: {os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB RAM, {platform.platform()}. "
        f"Load average before/after: {r['load_before']} / {r['load_after']}.",
        f"Data: the snapshot `{r['manifest']['run_id']}` built by the real pipeline (rows loaded into Cassandra, "
        "then `stockflight-batch`): " + ", ".join(f"{n} {t['rows']:,} rows" for n, t in sorted(tables.items()))
        + f"; {sum(t['bytes'] for t in tables.values()) / 1e6:.0f} MB of Parquet on local disk (page cache warm).",
        "Server: release build, defaults (tables held in memory, result cache on) but live tables off (no Cassandra in this bench), loopback, no TLS, no auth; "
        f"start-up with the snapshot loaded {r['startup_s']:.1f} s; RSS after the run {r['server_rss_mib']:.0f} MiB.",
        f"Reference: DuckDB {duckdb.__version__} in-process ({os.cpu_count()} threads), views over `read_parquet` "
        "of exactly the files `CURRENT` lists, same statements, same run, interleaved. Client: ADBC Flight SQL "
        f"{adbc_driver_flightsql.__version__} (one connection, one reused cursor); the protocol floor, "
        f"`SELECT 1`, is {r['floor']:.2f} ms p50. DuckDB pays no protocol.",
        "Command: `bench/server.sh` (shapes in bench/server_workload.py).",
        "",
        f"## Varied literals ({args.runs} runs per shape, each with new literals drawn from the snapshot; ms)",
        "",
        "| shape | distinct statements | server p50 / p99 | DuckDB p50 / p99 | p50 server / DuckDB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in r["varied"].items():
        lines.append(f"| {name} | {len(row['server'])} | {cell(row['server'])} | {cell(row['duckdb'])} | "
                     f"{x['varied'][name]:.2f}x |")
    lines += [
        f"| geometric mean | | | | **{geo(x['varied'].values()):.2f}x** |",
        f"| worst | | | | **{max(x['varied'].values()):.2f}x** |",
        "",
        "## A statement's first run (fresh server: nothing planned or cached; ms)",
        "",
        "| shape | server | DuckDB, fresh connection | server / DuckDB first | server / DuckDB p50 (varied) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in r["first"].items():
        lines.append(f"| {name} | {row['server']:.1f} | {row['duckdb']:.1f} | {x['first_vs_first'][name]:.2f}x | "
                     f"{x['first'][name]:.2f}x |")
    lines += [
        f"| worst | | | {max(x['first_vs_first'].values()):.2f}x | **{max(x['first'].values()):.2f}x** |",
        "",
        f"## Repeated statements (one statement per shape, {args.runs} runs; ms)",
        "",
        "| shape | server p50 / p99 | DuckDB p50 / p99 | p50 server / DuckDB |",
        "|---|---:|---:|---:|",
    ]
    for name, row in r["repeated"].items():
        lines.append(f"| {name} | {cell(row['server'])} | {cell(row['duckdb'])} | {x['repeated'][name]:.2f}x |")
    lines += [f"| geometric mean | | | **{geo(x['repeated'].values()):.2f}x** |", ""]
    c, d = r["concurrent"], r["concurrent_duckdb"]
    lines += [
        f"## {args.clients} concurrent clients on the varied mix ({args.seconds:.0f} s each; every client its own "
        "list of new statements over all shapes)",
        "",
        "| engine | queries | QPS | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
        f"| server, {args.clients} ADBC connections | {c['queries']:,} | {c['qps']:.1f} | {c['p50']:.1f} | "
        f"{c['p99']:.1f} | {len(c['errors'])} |",
        f"| DuckDB, {args.clients} threads of one process (a cursor each) | {d['queries']:,} | {d['qps']:.1f} | "
        f"{d['p50']:.1f} | {d['p99']:.1f} | {len(d['errors'])} |",
    ]
    if c["errors"]:
        lines.append(f"\nFirst server error: `{c['errors'][0]}`")
    lines += ["", f"## DoGet of the largest table (`SELECT * FROM {LARGEST}`; MB/s of Arrow data received)", ""]
    for label, key in (("stockflight-server, pyarrow C++ Flight client (GetFlightInfo + DoGet)", "doget_server"),
                       ("pyarrow's C++ Flight server, the same table from memory, same client", "doget_reference"),
                       ("DuckDB in-process materialising it from the Parquet files", "doget_duckdb")):
        runs = r[key]
        lines.append(f"- {label}: median of {len(runs)} **{statistics.median(mbps(v) for v in runs):.0f} MB/s** "
                     f"({runs[0][1]:,} rows, {runs[0][0] / 1e6:.0f} MB; runs {', '.join(f'{mbps(v):.0f}' for v in runs)})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
