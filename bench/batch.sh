#!/usr/bin/env bash
# Benchmark of stockflight-batch: the whole job (token-range scan -> DataFusion join and
# aggregates -> Parquet -> publish) against a raw token-range scan of the same table that only
# counts rows, measured in the same run on the same Cassandra.
#
#   bench/batch.sh [ROWS]        default 10000000; set BENCH_SKIP_LOAD=1 to reuse a loaded table
#
# Uses its own stack (state dir .stockflight/bench-batch, ephemeral ports) and the workspace's
# release build (`cargo build --release --workspace --bins --locked`, shared by every bench).
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

cargo build --release --workspace --bins --locked
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

# CPU seconds Cassandra used during a command: the job and the raw scan share 2 cores with it.
cassandra_pid=$(<"$STOCKFLIGHT_STATE_DIR/cassandra/pid")
cassandra_cpu() { awk '{ print $14 + $15 }' "/proc/$cassandra_pid/stat"; }
measure() {
  local before out after
  before=$(cassandra_cpu)
  out=$("$bench" "${common[@]}" "$1")
  after=$(cassandra_cpu)
  echo "$out cassandra_cpu_seconds=$(awk -v a="$before" -v b="$after" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / t }')"
}
scan=$(measure scan); echo "$scan"
job=$(measure job); echo "$job"
scan2=$(measure scan); echo "$scan2"

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
scan_rate=$(( ( $(field "$scan" rows_per_s) + $(field "$scan2" rows_per_s) ) / 2 ))
job_rate=$(field "$job" rows_per_s)
ratio=$(awk -v a="$job_rate" -v b="$scan_rate" 'BEGIN { printf "%.2f", a / b }')

cat >bench/results/batch.md <<MD
# stockflight-batch benchmark

Command: \`bench/batch.sh $rows\` (release build, parallelism $parallelism, memory pool ${memory_mb} MiB).
Machine: $(nproc) cores, $(lscpu | sed -n 's/Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM;
Cassandra single node on the same machine (1 GiB heap).

| measurement | rows | seconds | rows/s | peak RSS (MiB) | CPU s (process) | CPU s (Cassandra) |
|---|---:|---:|---:|---:|---:|---:|
| raw token-range scan, count only (before) | $(field "$scan" rows) | $(field "$scan" seconds) | $(field "$scan" rows_per_s) | $(field "$scan" peak_rss_mib) | $(field "$scan" cpu_seconds) | $(field "$scan" cassandra_cpu_seconds) |
| batch job end to end | $(field "$job" rows) | $(field "$job" seconds) | $(field "$job" rows_per_s) | $(field "$job" peak_rss_mib) | $(field "$job" cpu_seconds) | $(field "$job" cassandra_cpu_seconds) |
| raw token-range scan, count only (after) | $(field "$scan2" rows) | $(field "$scan2" seconds) | $(field "$scan2" rows_per_s) | $(field "$scan2" peak_rss_mib) | $(field "$scan2" cpu_seconds) | $(field "$scan2" cassandra_cpu_seconds) |

Job / raw scan (mean of before and after): **${ratio}x** (target >= 0.8x). Of the job's
$(field "$job" seconds) s, the single pass (scan, join, drill-down table, aggregates) took $(field "$job" pass_seconds) s;
the rest is connecting, the small tables and publication.
Peak RSS of the job: **$(field "$job" peak_rss_mib) MiB** with a ${memory_mb} MiB pool (target <= 2048 MiB).
MD
cat bench/results/batch.md
