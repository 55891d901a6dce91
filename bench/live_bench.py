"""The live tables' benchmark (issue 13); run through bench/live.sh, which starts the services,
builds the snapshot, measures the maximum ingest rate and keeps ingest running on the snapshot's
keyspace. Through ADBC, against a release stockflight-server, each figure beside its reference
in the same run:

1. 1% of the snapshot's rows changed (produced through Kafka, applied by ingest, read from the
   change log by the server): a region-level aggregate over availability_current beside the same
   aggregate over availability_snapshot, interleaved, each run with a new literal (so no result
   cache answers either side); also the precomputed region rows of
   availability_by_region_category_current beside availability_by_region_category.
2. Point lookup of one item across all nodes: availability_live (Cassandra at query time) beside
   availability_snapshot, interleaved, a different item each run.
3. Produce -> visible through availability_live at half the maximum ingest rate: the load
   generator produces at that rate; meanwhile single updates are produced one at a time (kcat,
   JSON) and looked up by key on availability_live until they show. Afterwards ingest must have
   written every record produced to it (nothing lost at that rate).

Every answer compared is checked against a model of the loaded rows computed here from the
loader's own formula (stockflight-batch-bench load), never against the server's output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_bench import Server, load_average, manifest, pct, rss_mib, start_server, stop, timed  # noqa: E402

SOURCE = "live-bench"
REGIONS = 5
MASK = (1 << 64) - 1


def loaded_qty(i: int) -> int:
    """available_qty of loaded row i, as stockflight-batch-bench load derives it."""
    return ((i * 0x9E3779B97F4A7C15) & MASK) % 200


def item(i: int) -> str:
    return f"sku-{i:08d}"


def node(n: int) -> str:
    return f"node-{n:05d}"


def region(n: int) -> str:
    return f"region-{n % REGIONS}"


class Model:
    """Per region, how many rows have each available_qty: the snapshot's, then with changes."""

    def __init__(self, rows: int, nodes: int) -> None:
        self.nodes = nodes
        self.hist = {region(n): [0] * 200 for n in range(min(nodes, REGIONS))}
        for i in range(rows):
            self.hist[region(i % nodes)][loaded_qty(i)] += 1

    def change(self, i: int, new_qty: int) -> None:
        h = self.hist[region(i % self.nodes)]
        h[loaded_qty(i)] -= 1
        h[new_qty] += 1

    def aggregate(self, k: int) -> list[tuple]:
        """(region, rows, units) with available_qty >= k, by region."""
        out = []
        for r, h in sorted(self.hist.items()):
            n = sum(h[k:])
            if n:
                out.append((r, n, sum(q * c for q, c in enumerate(h) if q >= k)))
        return out


def update_line(i: int, nodes: int, qty: int, sequence: int) -> str:
    """`key|value` for kcat -K '|': the contract's key (node/item) and the update's JSON."""
    it, nd = item(i // nodes), node(i % nodes)
    value = {
        "itemId": it, "nodeId": nd, "availableQty": str(qty), "reservedQty": "0",
        "status": "AVAILABILITY_STATUS_IN_STOCK" if qty > 0 else "AVAILABILITY_STATUS_OUT_OF_STOCK",
        "eventTimeUs": str(time.time_ns() // 1000), "source": SOURCE, "sequence": str(sequence),
    }
    return f"{nd}/{it}|{json.dumps(value, separators=(',', ':'))}\n"


def kcat(args, *extra: str) -> list[str]:
    return [args.kcat, "-P", "-b", args.brokers, "-t", args.topic, "-K", "|",
            "-H", "content-type=application/json", *extra]


def metrics(url: str) -> dict[str, float]:
    out = {}
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def histogram_quantile(before: dict, after: dict, name: str, q: float) -> float:
    """q-quantile of what a Prometheus histogram saw between two scrapes (within-bucket linear)."""
    prefix = f'{name}_bucket{{le="'
    buckets = []
    for key, value in after.items():
        if key.startswith(prefix):
            le = key[len(prefix):-2]
            buckets.append((float("inf") if le == "+Inf" else float(le), value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return 0.0
    rank, lower, prev = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower if bound == float("inf") else lower + (bound - lower) * (rank - prev) / max(count - prev, 1e-9)
        lower, prev = bound, count
    return lower


def wait_for(what: str, check, timeout: float, poll: float = 0.2):
    """Runs check() until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
            last = got
        except Exception as err:  # the live tables answer a moment after the snapshot loads
            last = err
        time.sleep(poll)
    raise SystemExit(f"{what}: not within {timeout:.0f} s (last: {last})")


def rows_of(table) -> list[tuple]:
    return [tuple(int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in row.values())
            for row in table.to_pylist()]


def change_one_percent(args, server: Server, model: Model, rng: random.Random, work: Path) -> dict:
    """Produces updates of 1% of the snapshot's pairs, waits until availability_current shows
    them all; returns how many and how long that took."""
    changed = rng.sample(range(args.rows), args.rows // 100)
    lines = []
    for seq, i in enumerate(changed, 1):
        qty = rng.randrange(200)
        model.change(i, qty)
        lines.append(update_line(i, args.nodes, qty, seq))
    path = work / "changes.txt"
    path.write_text("".join(lines))
    t = time.perf_counter()
    subprocess.run(kcat(args, "-l", str(path)), check=True)
    produced_s = time.perf_counter() - t
    count = f"SELECT count(*) AS n FROM availability_current WHERE source = '{SOURCE}'"
    wait_for("availability_current showing the changes",
             lambda: server.run(count).column(0)[0].as_py() == len(changed), 120, 0.1)
    return {"changed": len(changed), "produce_s": produced_s, "visible_s": time.perf_counter() - t}


AGG_SQL = ("SELECT region, count(*) AS row_count, sum(available_qty) AS units FROM {table} "
           "WHERE available_qty >= {k} GROUP BY region ORDER BY region")
PRE_SQL = ("SELECT region, items_tracked, units_available FROM {table} "
           "WHERE level = 'region' AND items_tracked >= {k} ORDER BY region")


def aggregates(args, server: Server, model: Model, snapshot_model: Model, rng: random.Random) -> dict:
    """Region aggregates, current beside snapshot, interleaved, a new literal each run; every
    answer checked against the model (the precomputed tables against the first query's)."""
    out = {"current": [], "snapshot": [], "pre_current": [], "pre_snapshot": [], "mismatches": []}
    ks = list(range(args.agg_runs + 1))
    rng.shuffle(ks)
    for run, k in enumerate(ks):
        pairs = [("current", "availability_current", model), ("snapshot", "availability_snapshot", snapshot_model)]
        if run % 2:
            pairs.reverse()
        for name, table, want in pairs:
            sql = AGG_SQL.format(table=table, k=k)
            ms, got = timed(lambda: server.run(sql))
            if rows_of(got) != want.aggregate(k):
                out["mismatches"].append({"sql": sql, "got": rows_of(got)[:5], "want": want.aggregate(k)[:5]})
            if run:  # the first run of each is a warm-up
                out[name].append(ms)
        pre = [("pre_current", "availability_by_region_category_current", model),
               ("pre_snapshot", "availability_by_region_category", snapshot_model)]
        if run % 2:
            pre.reverse()
        for name, table, want in pre:
            sql = PRE_SQL.format(table=table, k=k)
            ms, got = timed(lambda: server.run(sql))
            expected = [(r, n, u) for r, n, u in want.aggregate(0) if n >= k]
            if rows_of(got) != expected:
                out["mismatches"].append({"sql": sql, "got": rows_of(got)[:5], "want": expected[:5]})
            if run:
                out[name].append(ms)
    return out


LOOKUP_SQL = "SELECT * FROM {table} WHERE item_id = '{item}'"


def lookups(args, server: Server, rng: random.Random) -> dict:
    """One item across all nodes, live beside snapshot, interleaved, a different item each run."""
    out = {"live": [], "snapshot": [], "mismatches": []}
    items = rng.sample(range(args.rows // args.nodes), min(args.lookup_runs + 1, args.rows // args.nodes))
    for run, i in enumerate(items):
        pairs = [("live", "availability_live"), ("snapshot", "availability_snapshot")]
        if run % 2:
            pairs.reverse()
        for name, table in pairs:
            sql = LOOKUP_SQL.format(table=table, item=item(i))
            ms, got = timed(lambda: server.run(sql))
            if got.num_rows != args.nodes:
                out["mismatches"].append({"sql": sql, "rows": got.num_rows, "want": args.nodes})
            if run:
                out[name].append(ms)
    out["columns"] = got.num_columns
    return out


PROBE_SQL = "SELECT available_qty FROM availability_live WHERE item_id = '{item}' AND node_id = '{node}'"


def freshness(args, server: Server, rng: random.Random, work: Path) -> dict:
    """At half the maximum ingest rate: each probe update is produced, then looked up on
    availability_live until its quantity shows; produce -> visible per probe."""
    half = args.max_rate // 2
    warmup = 5
    before = metrics(args.ingest_metrics)
    load = subprocess.Popen(
        [args.loadgen, "produce", "--kafka-topic", args.topic, "--produce-rate", str(half), "--produce-count", "0",
         "--produce-duration-secs", str(args.live_secs + warmup + 2), "--produce-progress", "false",
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=open(work / "loadgen-live.log", "ab"), text=True)
    # One kcat per probe: a long-running kcat reading stdin sent the probes only when its input
    # closed. Starting kcat (connect, metadata) is counted in each probe's time: conservative.
    probe = kcat(args, "-X", "linger.ms=0")
    probe_log = open(work / "kcat-probe.log", "ab")
    latencies, polls, timeouts = [], [], 0
    candidates = rng.sample(range(args.rows), min(args.rows, 20000))
    try:
        time.sleep(warmup)
        end = time.monotonic() + args.live_secs
        seq = 0
        while time.monotonic() < end and seq < len(candidates):
            i = candidates[seq]
            seq += 1
            qty = 1000 + seq  # above any loaded quantity (0..199): its own value shows it arrived
            sql = PROBE_SQL.format(item=item(i // args.nodes), node=node(i % args.nodes))
            line = update_line(i, args.nodes, qty, 10_000_000 + seq)
            t0 = time.perf_counter()
            subprocess.run(probe, input=line.encode(), stderr=probe_log, check=True)
            while True:
                ms, got = timed(lambda: server.run(sql))
                polls.append(ms)
                if got.num_rows and got.column(0)[0].as_py() == qty:
                    latencies.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 30:
                    timeouts += 1
                    break
                time.sleep(0.002)
    finally:
        report = load.communicate(timeout=args.live_secs + 120)[0].strip().splitlines()
        if load.returncode or not report:
            raise SystemExit(f"the load generator failed: see {work / 'loadgen-live.log'}")
        produced = json.loads(report[-1])
    after_load = metrics(args.ingest_metrics)
    return {"half": half, "probes": seq, "latencies": latencies, "polls": polls, "timeouts": timeouts,
            "load": produced, "before": before, "after": after_load}


def drained(args, expected: float, timeout: float = 180) -> float | None:
    """Seconds until ingest has written `expected` records in all; None if it has not within
    `timeout` (the report says so)."""
    t = time.perf_counter()
    try:
        wait_for(f"ingest writing all {expected:.0f} records",
                 lambda: metrics(args.ingest_metrics).get("stockflight_ingest_written_total", 0) >= expected,
                 timeout, 0.5)
    except SystemExit as err:
        print(f"[bench] {err}", flush=True)
        return None
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    for flag in ("--server", "--loadgen", "--kcat", "--data", "--work", "--out", "--brokers", "--topic",
                 "--cassandra", "--keyspace", "--ingest-metrics", "--load", "--job"):
        ap.add_argument(flag, required=True)
    for flag in ("--rows", "--nodes", "--max-rate", "--rate-messages", "--live-secs", "--agg-runs", "--lookup-runs"):
        ap.add_argument(flag, type=int, required=True)
    ap.add_argument("--seed", type=int, default=20261205)
    args = ap.parse_args()
    root, work = Path(args.data).resolve(), Path(args.work).resolve()
    rng = random.Random(args.seed)
    r = {"load_before": load_average(), "manifest": manifest(root), "args": vars(args)}

    snapshot_model = Model(args.rows, args.nodes)
    model = Model(args.rows, args.nodes)
    t = time.perf_counter()
    proc, uri = start_server(args.server, root, work, ["--cassandra-nodes", args.cassandra,
                                                       "--cassandra-keyspace", args.keyspace])
    try:
        server = Server(uri)
        wait_for("the live tables answering", lambda: server.run("SELECT count(*) FROM availability_current"), 300)
        r["startup_s"] = time.perf_counter() - t
        total = server.run("SELECT count(*) FROM availability_current").column(0)[0].as_py()
        if total != args.rows:
            raise SystemExit(f"availability_current has {total} rows, the loader wrote {args.rows}")
        print("[bench] 1% of the rows changed", flush=True)
        r["changes"] = change_one_percent(args, server, model, rng, work)
        print(f"[bench]   {r['changes']}", flush=True)
        r["aggregates"] = aggregates(args, server, model, snapshot_model, rng)
        print("[bench] point lookups", flush=True)
        r["lookups"] = lookups(args, server, rng)
        print(f"[bench] produce -> visible at half of {args.max_rate} msg/s for {args.live_secs} s", flush=True)
        r["fresh"] = freshness(args, server, rng, work)
        r["server_rss_mib"] = rss_mib(proc.pid)
        server.close()
    finally:
        stop(proc)
    f = r["fresh"]
    expected = r["changes"]["changed"] + f["probes"] + f["load"]["messages"]
    r["expected_written"] = expected
    r["drain_s"] = drained(args, expected)
    r["written"] = metrics(args.ingest_metrics).get("stockflight_ingest_written_total", 0)
    r["load_after"] = load_average()
    report = render(r)
    out = Path(args.out)
    out.write_text(report)
    out.with_suffix(".summary").write_text(summary(r))
    slim = {k: v for k, v in r.items() if k != "fresh"} | {"fresh": {k: v for k, v in f.items() if k not in ("before", "after")}}
    out.with_suffix(".json").write_text(json.dumps(slim, default=str, indent=1))
    print(report)


def figures(r: dict) -> dict:
    a, lk, f = r["aggregates"], r["lookups"], r["fresh"]
    lat = [x * 1000 for x in f["latencies"]] or [float("nan")]
    return {
        "agg_current": pct(a["current"], 50), "agg_snapshot": pct(a["snapshot"], 50),
        "pre_current": pct(a["pre_current"], 50), "pre_snapshot": pct(a["pre_snapshot"], 50),
        "live": pct(lk["live"], 50), "snap": pct(lk["snapshot"], 50),
        "fresh_p50": pct(lat, 50), "fresh_p99": pct(lat, 99), "fresh_max": max(lat),
    }


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def wrong(part: dict) -> str:
    n = len(part["mismatches"])
    return f", **{n} wrong answers**" if n else ""


def summary(r: dict) -> str:
    x, f = figures(r), r["fresh"]
    agg = x["agg_current"] / x["agg_snapshot"]
    fresh_ok = x["fresh_p99"] < 2000 and not f["timeouts"]
    return "\n".join([
        f"| live | produce -> visible through availability_live, p99 at half the max ingest rate "
        f"({f['half']} of {r['args']['max_rate']} msg/s), {len(f['latencies'])} probes | {x['fresh_p99'] / 1000:.3f} s "
        f"(p50 {x['fresh_p50'] / 1000:.3f} s, {f['timeouts']} timeouts) | < 2 s | {met(fresh_ok)} |",
        f"| live | region aggregate, 1% of rows changed: availability_current / availability_snapshot, p50 | "
        f"{agg:.2f}x ({x['agg_current']:.1f} vs {x['agg_snapshot']:.1f} ms){wrong(r['aggregates'])} | <= 2x | "
        f"{met(agg <= 2 and not r['aggregates']['mismatches'])} |",
        f"| live | point lookup of one item across all {r['args']['nodes']} nodes on availability_live, p50 (ADBC) | "
        f"{x['live']:.1f} ms (snapshot {x['snap']:.1f} ms, {x['live'] / x['snap']:.2f}x){wrong(r['lookups'])} | "
        f"< 20 ms | {met(x['live'] < 20 and not r['lookups']['mismatches'])} |",
    ]) + "\n"


def render(r: dict) -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    a, lk, f, c = r["aggregates"], r["lookups"], r["fresh"], r["changes"]
    x = figures(r)
    args = r["args"]
    cell = lambda v: f"{pct(v, 50):.1f} / {pct(v, 99):.1f}"  # noqa: E731
    lat = [v * 1000 for v in f["latencies"]]
    load = f["load"]
    e2e = [histogram_quantile(f["before"], f["after"], "stockflight_ingest_end_to_end_seconds", q) for q in (0.5, 0.99)]
    mismatches = a["mismatches"] + lk["mismatches"]
    tables = r["manifest"]["tables"]
    lines = [
        "# Live tables benchmark",
        "",
        f"Command: `bench/live.sh` (BENCH_ROWS={args['rows']}, BENCH_NODES={args['nodes']}, "
        f"RATE_MESSAGES={args['rate_messages']}, LIVE_SECS={args['live_secs']}, AGG_RUNS={args['agg_runs']}, "
        f"LOOKUP_RUNS={args['lookup_runs']}), run {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}.",
        "",
        f"Machine: {os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB RAM, {platform.platform()}. "
        f"Kafka, Cassandra (1 GiB heap), ingest, the load generator, the server and the client all share these "
        f"cores; load average before/after: {r['load_before']} / {r['load_after']}.",
        f"Data: {args['rows']:,} (item, node) rows ({args['rows'] // args['nodes']:,} items x {args['nodes']} nodes) "
        f"loaded into Cassandra (`{args['load'].strip()}`), then one batch run (`{args['job'].strip()}`): snapshot "
        f"`{r['manifest']['run_id']}`, " + ", ".join(f"{n} {t['rows']:,} rows" for n, t in sorted(tables.items()))
        + ".",
        f"Server: release build, defaults (live.poll_ms 500, result cache on), `--cassandra-keyspace` of the "
        f"snapshot; ready with the snapshot and its live tables in {r['startup_s']:.1f} s; RSS at the end "
        f"{r['server_rss_mib']:.0f} MiB. Client: ADBC Flight SQL (one connection, one reused cursor; every "
        "statement prepared, as DB-API does).",
        "",
        "| measure | value | reference, same run | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| produce -> visible through `availability_live` (a key lookup polled until the update shows), "
        f"with the load generator at {f['half']} msg/s = half the max ingest rate; {len(lat)} probes, p50 / p99 / max "
        f"| {x['fresh_p50']:.0f} / **{x['fresh_p99']:.0f}** / {x['fresh_max']:.0f} ms "
        f"| ingest's own produce-to-row in the same window (its histogram): p50 {e2e[0] * 1000:.0f} / p99 "
        f"{e2e[1] * 1000:.0f} ms | | p99 < 2 s: {met(x['fresh_p99'] < 2000 and not f['timeouts'])} |",
        f"| region aggregate over `availability_current`, {c['changed']:,} rows (1%) changed since the snapshot, "
        f"p50 / p99 (ms) | {cell(a['current'])} | `availability_snapshot`: {cell(a['snapshot'])} "
        f"| **{x['agg_current'] / x['agg_snapshot']:.2f}x** | <= 2x: {met(x['agg_current'] <= 2 * x['agg_snapshot'])} |",
        f"| region rows of `availability_by_region_category_current` (p50 / p99, ms) | {cell(a['pre_current'])} "
        f"| `availability_by_region_category`: {cell(a['pre_snapshot'])} | {x['pre_current'] / x['pre_snapshot']:.2f}x "
        "| (reported) |",
        f"| point lookup of one item across all {args['nodes']} nodes ({lk['columns']} columns), p50 / p99 (ms) "
        f"| `availability_live`: {cell(lk['live'])} | `availability_snapshot`: {cell(lk['snapshot'])} "
        f"| {x['live'] / x['snap']:.2f}x | p50 < 20 ms: {met(x['live'] < 20)} |",
        f"| the same key lookup on `availability_live` under the half-rate load (every poll of the probes), p50 / p99 (ms) "
        f"| {cell(f['polls'])} | | | (reported) |",
        "",
        f"Maximum ingest rate, same run: **{args['max_rate']} msg/s** (release stockflight-ingest with its change log, "
        f"over a {args['rate_messages']:,}-message backlog, keyspace of its own). The half-rate load then produced "
        f"{load['messages']:,} messages in {load['seconds']:.1f} s ({load['messages'] / load['seconds']:.0f} msg/s) "
        "to the snapshot keyspace's ingest; "
        + (f"that ingest wrote all {r['expected_written']:,} records produced to it (changes, probes, load) "
           f"{r['drain_s']:.1f} s after the run ended (written counter {r['written']:.0f})."
           if r["drain_s"] is not None else
           f"**that ingest had written only {r['written']:.0f} of the {r['expected_written']:,} records produced "
           "to it 180 s after the run ended**."),
        "",
        f"The 1% of changes: {c['changed']:,} updates of distinct snapshot pairs, produced through Kafka (kcat, JSON) "
        f"in {c['produce_s']:.1f} s; `availability_current` showed all of them {c['visible_s']:.1f} s after the "
        "produce started.",
        "",
        "How: aggregate runs are interleaved (order alternating), each with a new literal "
        f"(`{AGG_SQL.format(table='<table>', k='<k>')}`, k = 0..{args['agg_runs']} shuffled), after one warm-up "
        "each, so neither side is answered from the result cache (the live tables never are). Point lookups: "
        f"`{LOOKUP_SQL.format(table='<table>', item='<item>')}`, a different item each run. Freshness: each probe is "
        "one JSON update, produced by a kcat of its own (`linger.ms=0`; its start-up counted), of a snapshot pair with a quantity no loaded row has, timed from the "
        f"write to kcat until `{PROBE_SQL.format(item='<item>', node='<node>')}` returns it; probes go one at a time, after a {5} s warm-up of the load.",
        "",
        ("Answers checked against the model of the loaded rows (the loader's formula plus the changes produced): "
         "all equal." if not mismatches else
         f"**{len(mismatches)} answers differ from the model**: {json.dumps(mismatches[:3], default=str)}"),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
