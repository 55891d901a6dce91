#!/usr/bin/env python3
"""dev/demo's probes and live status line, from the services' Prometheus endpoints.

Standard library only (it runs with the system python3 that dev/stack needs anyway).

  status.py ready URL             exit 0 if URL answers 200 (a /health probe), 1 otherwise
  status.py metric URL NAME       print the sum of NAME over all its series (0 if absent)
  status.py watch [OPTIONS]       print the status line until SIGTERM:
      --ingest URL --batch URL --server URL   the /metrics endpoints
      --current PATH              the object store's CURRENT (the published snapshot manifest)
      --schedule-secs N           the batch interval (for "next batch in")
      --every SECS                seconds between lines (default 2)
      --tty / --no-tty            redraw one line in place (default: when stdout is a terminal)

Metrics read (names from ingest/src/metrics.rs, batch/src/run.rs, server/src/query/mod.rs):
  stockflight_ingest_written_total        -> updates/s (rate between two scrapes)
  stockflight_ingest_consumer_lag         -> lag (summed over partitions)
  stockflight_batch_runs_total{result}    -> failed scheduled runs
  stockflight_server_queries_total{outcome} -> queries served (and failed)
  CURRENT (published_at, tables.availability_snapshot.rows) -> last snapshot, age, rows
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def fetch(url: str, timeout: float = 1.5) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (OSError, ValueError):
        return 0, ""


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, value))
    return samples


def total(samples, name: str, **labels: str) -> float | None:
    """Sum of NAME's series whose labels include LABELS; None when there is none."""
    values = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
    return sum(values) if values else None


def scrape(url: str | None):
    """Samples from URL, or None when the endpoint does not answer."""
    if not url:
        return None
    status, body = fetch(url)
    return parse(body) if status == 200 else None


def human(n: float | None) -> str:
    if n is None:
        return "?"
    return f"{int(round(n)):,}"


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def read_current(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


class Watch:
    """Builds one status line per tick; keeps the previous counter to compute a rate."""

    # A busy process (the batch in the middle of a run) may miss a scrape: its last answer
    # stands in for this long before the line says it does not answer.
    STALE_AFTER = 15.0

    def __init__(self, args):
        self.args = args
        self.prev: tuple[float, float] | None = None  # (monotonic time, written total)
        self.last: dict[str, tuple[float, list]] = {}

    def scrape(self, url: str | None):
        samples = scrape(url)
        now = time.monotonic()
        if samples is not None:
            self.last[url] = (now, samples)
            return samples
        seen = self.last.get(url)
        if seen and now - seen[0] < self.STALE_AFTER:
            return seen[1]
        return None

    def line(self) -> str:
        a = self.args
        now = time.time()
        parts = [datetime.now().strftime("%H:%M:%S")]

        ingest = self.scrape(a.ingest)
        if ingest is None:
            parts.append("ingest down")
        else:
            written = total(ingest, "stockflight_ingest_written_total") or 0.0
            t = time.monotonic()
            rate = None
            if self.prev is not None and t > self.prev[0]:
                rate = max(0.0, (written - self.prev[1]) / (t - self.prev[0]))
            self.prev = (t, written)
            lag = total(ingest, "stockflight_ingest_consumer_lag")
            rate_text = "…" if rate is None else f"{rate:,.0f}"
            parts.append(f"updates/s {rate_text}, lag {human(lag)}")

        current = read_current(a.current)
        if current is None:
            parts.append("snapshot none yet")
        else:
            rows = current.get("tables", {}).get("availability_snapshot", {}).get("rows")
            published = current.get("published_at", "")
            age = ""
            try:
                when = datetime.fromisoformat(published.replace("Z", "+00:00"))
                age = f" ({ago(now - when.timestamp())} ago)"
            except ValueError:
                pass
            parts.append(f"snapshot {current.get('run_id', '?')}{age}, {human(rows)} rows")

        batch = self.scrape(a.batch)
        if batch is None:
            parts.append("batch down")
        else:
            ok = total(batch, "stockflight_batch_runs_total", result="success") or 0
            failed = total(batch, "stockflight_batch_runs_total", result="failure") or 0
            text = "next batch"
            if a.schedule_secs > 0:
                next_at = (int(now) // a.schedule_secs + 1) * a.schedule_secs
                text += f" in {ago(next_at - now)}"
            if failed:
                text += f" ({int(failed)} of {int(ok + failed)} scheduled runs failed)"
            parts.append(text)

        server = self.scrape(a.server)
        if server is None:
            parts.append("server down")
        else:
            queries = total(server, "stockflight_server_queries_total") or 0
            ok = total(server, "stockflight_server_queries_total", outcome="ok") or 0
            text = f"queries {int(queries)}"
            if queries - ok:
                text += f" ({int(queries - ok)} failed)"
            parts.append(text)
        return " | ".join(parts)


def watch(args) -> int:
    tty = sys.stdout.isatty() if args.tty is None else args.tty
    w = Watch(args)

    def stop(_signum, _frame):
        # dev/demo moves to a fresh line itself once this process is gone.
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        text = w.line()
        if tty:
            width = shutil.get_terminal_size((160, 24)).columns
            if len(text) > width - 1:
                text = text[: width - 2] + "…"
            sys.stdout.write("\r\033[K" + text)
        else:
            sys.stdout.write("status: " + text + "\n")
        sys.stdout.flush()
        time.sleep(args.every)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="status.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("url")
    m = sub.add_parser("metric")
    m.add_argument("url")
    m.add_argument("name")
    w = sub.add_parser("watch")
    w.add_argument("--ingest")
    w.add_argument("--batch")
    w.add_argument("--server")
    w.add_argument("--current")
    w.add_argument("--schedule-secs", type=int, default=0)
    w.add_argument("--every", type=float, default=2.0)
    w.add_argument("--tty", dest="tty", action="store_true", default=None)
    w.add_argument("--no-tty", dest="tty", action="store_false")
    args = p.parse_args(argv)
    if args.cmd == "ready":
        return 0 if fetch(args.url)[0] == 200 else 1
    if args.cmd == "metric":
        samples = scrape(args.url)
        if samples is None:
            print(f"status.py: {args.url} does not answer", file=sys.stderr)
            return 1
        print(int(total(samples, args.name) or 0))
        return 0
    return watch(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
