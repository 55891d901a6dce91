#!/usr/bin/env bash
# Benchmark of stockflight-batch: the whole job (token-range scan -> DataFusion join and
# aggregates -> Parquet -> publish) against a raw token-range scan of the same table that only
# counts rows, measured in the same run on the same Cassandra.
#
#   bench/batch.sh [ROWS]        default 10000000; set BENCH_SKIP_LOAD=1 to reuse a loaded table
#
# Uses its own stack (state dir .stockflight/bench-batch, ephemeral ports) and a release build.
# Writes figures to bench/results/batch.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rows=${1:-10000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
export STOCKFLIGHT_STATE_DIR=${BENCH_STATE_DIR:-$root/.stockflight/bench-batch}
parallelism=${BENCH_PARALLELISM:-8}
memory_mb=${BENCH_MEMORY_MB:-1024}
data=$STOCKFLIGHT_STATE_DIR/data

cargo build --release -p stockflight-batch --bin stockflight-batch-bench
bench=$CARGO_TARGET_DIR/release/stockflight-batch-bench
dev/stack up --ephemeral-ports cassandra
set -a; . "$STOCKFLIGHT_STATE_DIR/stack.env"; set +a
common=(--cassandra "$STOCKFLIGHT_CASSANDRA_NODES" --keyspace stockflight_bench --storage "$data"
        --parallelism "$parallelism" --memory-mb "$memory_mb")

if [ "${BENCH_SKIP_LOAD:-0}" != 1 ]; then
  load=$("$bench" "${common[@]}" load --rows "$rows")
  echo "$load"
  # Flush memtables so both measurements read SSTables, as a six-hourly job would.
  dev/stack nodetool flush stockflight_bench >/dev/null
fi

scan=$("$bench" "${common[@]}" scan); echo "$scan"
job=$("$bench" "${common[@]}" job); echo "$job"
scan2=$("$bench" "${common[@]}" scan); echo "$scan2"

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
scan_rate=$(( ( $(field "$scan" rows_per_s) + $(field "$scan2" rows_per_s) ) / 2 ))
job_rate=$(field "$job" rows_per_s)
ratio=$(awk -v a="$job_rate" -v b="$scan_rate" 'BEGIN { printf "%.2f", a / b }')

cat >bench/results/batch.md <<MD
# stockflight-batch benchmark

Command: \`bench/batch.sh $rows\` (release build, parallelism $parallelism, memory pool ${memory_mb} MiB).
Machine: $(nproc) cores, $(lscpu | sed -n 's/Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM;
Cassandra single node on the same machine (1 GiB heap).

| measurement | rows | seconds | rows/s | peak RSS (MiB) |
|---|---:|---:|---:|---:|
| raw token-range scan, count only (before) | $(field "$scan" rows) | $(field "$scan" seconds) | $(field "$scan" rows_per_s) | $(field "$scan" peak_rss_mib) |
| batch job end to end | $(field "$job" rows) | $(field "$job" seconds) | $(field "$job" rows_per_s) | $(field "$job" peak_rss_mib) |
| raw token-range scan, count only (after) | $(field "$scan2" rows) | $(field "$scan2" seconds) | $(field "$scan2" rows_per_s) | $(field "$scan2" peak_rss_mib) |

Job / raw scan (mean of before and after): **${ratio}x** (target >= 0.8x).
Peak RSS of the job: **$(field "$job" peak_rss_mib) MiB** with a ${memory_mb} MiB pool (target <= 2048 MiB).
MD
cat bench/results/batch.md
