#!/usr/bin/env bash
# Benchmark of stockflight-server (issue 14): dashboard shapes with literals drawn afresh on every
# run, each shape's first run, repeated statements, 64 concurrent clients and DoGet of the largest
# table, each beside DuckDB in-process on the same Parquet files (and, for DoGet, pyarrow's own
# C++ Flight server), same run. Writes bench/results/server.md (+ .summary, .json).
#
#   bench/server.sh [--runs N] [--seconds S] [--clients N]      (passed to bench/server_bench.py)
#
# Data: a snapshot built by the real pipeline: BENCH_ROWS (default 2000000) rows of
# (item, node) availability loaded into a Cassandra of its own (state dir .stockflight/bench-server,
# ephemeral ports), then one `stockflight-batch` run over it (stockflight-batch-bench job). The
# snapshot is kept in .stockflight/bench-server/data and reused while BENCH_ROWS is unchanged
# (BENCH_REBUILD=1 builds it again). Needs the workspace's release build (shared by every bench;
# 15+ min on 2 cores from scratch) and the client venv (dev/tools).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
cache=${STOCKFLIGHT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight}
rows=${BENCH_ROWS:-2000000}
nodes=${BENCH_NODES:-200}
export STOCKFLIGHT_STATE_DIR=${BENCH_STATE_DIR:-$root/.stockflight/bench-server}
data=$STOCKFLIGHT_STATE_DIR/data
mkdir -p "$STOCKFLIGHT_STATE_DIR"

[ -f "$cache/tools.env" ] || dev/tools
set -a
# shellcheck disable=SC1091
. "$cache/tools.env"
set +a
cargo build --release --workspace --bins --locked

marker=$data/.built-from
if [ "${BENCH_REBUILD:-0}" = 1 ] || [ "$(cat "$marker" 2>/dev/null)" != "rows=$rows nodes=$nodes" ]; then
  rm -rf "$data"
  dev/stack up --ephemeral-ports cassandra
  trap 'dev/stack down >/dev/null 2>&1 || true' EXIT
  set -a; . "$STOCKFLIGHT_STATE_DIR/stack.env"; set +a
  bench=("$CARGO_TARGET_DIR/release/stockflight-batch-bench" --cassandra "$STOCKFLIGHT_CASSANDRA_NODES"
         --keyspace stockflight_bench --storage "$data")
  "${bench[@]}" load --rows "$rows" --nodes "$nodes"
  "${bench[@]}" job
  dev/stack down
  trap - EXIT
  echo "rows=$rows nodes=$nodes" >"$marker"
fi

exec "$STOCKFLIGHT_PYTHON" "$root/bench/server_bench.py" \
  --server "$CARGO_TARGET_DIR/release/stockflight-server" --data "$data" \
  --work "$STOCKFLIGHT_STATE_DIR/work" --out "$root/bench/results/server.md" "$@"
