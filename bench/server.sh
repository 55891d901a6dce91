#!/usr/bin/env bash
# Benchmark of stockflight-server (issue #5): dashboard queries through ADBC beside DuckDB
# in-process on the same Parquet files, DoGet throughput of a wide multi-million-row result,
# and 64 concurrent clients. Writes bench/results/server.md.
#
#   bench/server.sh [--rows N] [--runs N] [--seconds S] [--clients N]
#
# Needs: the workspace's release build (the same `cargo build --release --workspace --bins --locked`
# every benchmark shares; 15+ min on 2 cores from scratch) and the client venv (dev/tools).
# Data goes to a temporary directory, removed afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
cache=${STOCKFLIGHT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight}
[ -f "$cache/tools.env" ] || "$root/dev/tools"
set -a
# shellcheck disable=SC1091
. "$cache/tools.env"
set +a
(cd "$root" && cargo build --release --workspace --bins --locked)
exec "$STOCKFLIGHT_PYTHON" "$root/bench/server_bench.py" \
  --server "$CARGO_TARGET_DIR/release/stockflight-server" \
  --out "$root/bench/results/server.md" "$@"
