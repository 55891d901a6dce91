#!/usr/bin/env bash
# Benchmark of stockflight-batch: the whole job (token-range scan -> DataFusion join and
# aggregates -> Parquet -> publish) against a raw token-range scan of the same table that only
# counts rows, measured in the same run on the same Cassandra.
#
#   bench/batch.sh [ROWS]        default 10000000; set BENCH_SKIP_LOAD=1 to reuse a loaded table
#
# Then the distributed job (distributed.workers): two `stockflight-batch worker` processes on
# loopback beside the coordinator, measured between two single-process jobs over the same table;
# the figure is CPU-seconds per row of every batch process (coordinator + workers) against the
# single-process job's (this machine has 2 cores: a CPU cost, not a speed-up).
#
# Two layouts, each measured scan, job, scan:
#   - separate cores (the figure the target is judged on): Cassandra pinned to CPU 0, the job or
#     the scan to CPU 1, as in production, where the database and the batch run on different
#     machines and neither takes the other's CPU;
#   - shared cores: no pinning, Cassandra and the client compete for the same cores (on a
#     2-core machine the job's own CPU directly slows Cassandra).
# Before measuring, it waits until Cassandra has no pending compaction, so every measurement
# reads the same SSTables.
#
# Uses its own stack (state dir .stockflight/bench-batch, ephemeral ports) and a release build of
# stockflight-batch (`cargo build --release -p stockflight-batch --bins --locked`).
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
cpus=$(nproc)

cargo build --release -p stockflight-batch --bins --locked
bench=$CARGO_TARGET_DIR/release/stockflight-batch-bench
batch=$CARGO_TARGET_DIR/release/stockflight-batch
dev/stack up --ephemeral-ports cassandra
set -a; . "$STOCKFLIGHT_STATE_DIR/stack.env"; set +a
common=(--cassandra "$STOCKFLIGHT_CASSANDRA_NODES" --keyspace stockflight_bench --storage "$data"
        --parallelism "$parallelism" --memory-mb "$memory_mb")

if [ "${BENCH_SKIP_LOAD:-0}" != 1 ]; then
  load=$("$bench" "${common[@]}" load --rows "$rows")
  echo "$load"
  # Flush memtables so every measurement reads SSTables, as a six-hourly job would.
  dev/stack nodetool flush stockflight_bench >/dev/null
fi

# Compactions started by the load would take CPU from whichever measurement they overlap.
settle() {
  local pending
  for _ in $(seq 600); do
    pending=$(dev/stack nodetool compactionstats 2>/dev/null | sed -n 's/^pending tasks: *\([0-9]*\).*/\1/p; s/^pending tasks *\([0-9]*\).*/\1/p' | head -1)
    [ "${pending:-1}" = 0 ] && return 0
    sleep 1
  done
  echo "bench/batch.sh: compactions still pending after 10 minutes" >&2
  return 1
}
settle

cassandra_pid=$(<"$STOCKFLIGHT_STATE_DIR/cassandra/pid")
cassandra_cpu() { awk '{ print $14 + $15 }' "/proc/$cassandra_pid/stat"; }
# measure MODE [taskset args...]: one run of the scan or the job, with Cassandra's CPU seconds.
measure() {
  local mode=$1 before out after
  shift
  before=$(cassandra_cpu)
  out=$("$@" "$bench" "${common[@]}" "$mode")
  after=$(cassandra_cpu)
  echo "$out cassandra_cpu_seconds=$(awk -v a="$before" -v b="$after" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / t }')"
}

# A freshly started Cassandra (BENCH_SKIP_LOAD=1) reads cold SSTables and runs unoptimised code
# for its first full scan; one unmeasured scan warms both, so "before" and "after" compare.
"$bench" "${common[@]}" scan >/dev/null

if [ "$cpus" -ge 2 ]; then
  taskset -a -p -c 0 "$cassandra_pid" >/dev/null
  pinned=(taskset -c 1)
  p_scan=$(measure scan "${pinned[@]}"); echo "pinned $p_scan"
  p_job=$(measure job "${pinned[@]}"); echo "pinned $p_job"
  p_scan2=$(measure scan "${pinned[@]}"); echo "pinned $p_scan2"
  taskset -a -p -c "0-$((cpus - 1))" "$cassandra_pid" >/dev/null
fi
scan=$(measure scan); echo "shared $scan"
job=$(measure job); echo "shared $job"
scan2=$(measure scan); echo "shared $scan2"

# The distributed job: two workers on loopback, measured between two single-process jobs.
workers_dir=$STOCKFLIGHT_STATE_DIR/workers
rm -rf "$workers_dir"; mkdir -p "$workers_dir"
worker_pids=()
stop_workers() {
  for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_workers EXIT
for w in 1 2; do
  "$batch" worker --worker-addr 127.0.0.1:0 --worker-port-file "$workers_dir/w$w.port" \
    --metrics-addr 127.0.0.1:0 --storage-url "$data" --memory-limit-mb "$memory_mb" \
    --log-format json 2>"$workers_dir/w$w.log" &
  worker_pids+=($!)
done
addresses=()
for w in 1 2; do
  for _ in $(seq 600); do [ -s "$workers_dir/w$w.port" ] && break; sleep 0.1; done
  [ -s "$workers_dir/w$w.port" ] || { echo "bench/batch.sh: worker $w wrote no port file" >&2; cat "$workers_dir/w$w.log" >&2; exit 1; }
  addresses+=("$(<"$workers_dir/w$w.port")")
done
workers_cpu() { # CPU seconds of every worker so far
  local total=0 pid
  for pid in "${worker_pids[@]}"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }'
}
distributed() {
  local before out after c_before c_after
  before=$(workers_cpu); c_before=$(cassandra_cpu)
  out=$("$bench" "${common[@]}" --workers "$(IFS=,; echo "${addresses[*]}")" job)
  after=$(workers_cpu); c_after=$(cassandra_cpu)
  echo "$out workers_cpu_seconds=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.1f", b - a }')" \
    "cassandra_cpu_seconds=$(awk -v a="$c_before" -v b="$c_after" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / t }')"
}
d_single=$(measure job); echo "single $d_single"
d_dist=$(distributed); echo "distributed $d_dist"
d_single2=$(measure job); echo "single $d_single2"
stop_workers
trap - EXIT

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
per_row() { # MEASUREMENT: CPU microseconds per row of every batch process in it
  awk -v c="$(field "$1" cpu_seconds)" -v w="$(field "$1" workers_cpu_seconds)" -v r="$(field "$1" rows)" \
    'BEGIN { printf "%.3f", (c + w) * 1e6 / r }'
}
dist_ratio() { # distributed per row over the mean of the single-process jobs around it
  awk -v d="$(per_row "$d_dist")" -v a="$(per_row "$d_single")" -v b="$(per_row "$d_single2")" \
    'BEGIN { printf "%.2f", d / ((a + b) / 2) }'
}
row() {
  echo "| $1 | $(field "$2" rows) | $(field "$2" seconds) | $(field "$2" rows_per_s) | $(field "$2" peak_rss_mib) | $(field "$2" cpu_seconds) | $(field "$2" cassandra_cpu_seconds) |"
}
ratio() { # JOB SCAN SCAN2: job rows/s over the mean of the two scans
  awk -v j="$(field "$1" rows_per_s)" -v a="$(field "$2" rows_per_s)" -v b="$(field "$3" rows_per_s)" \
    'BEGIN { printf "%.2f", j / ((a + b) / 2) }'
}
header="| measurement | rows | seconds | rows/s | peak RSS (MiB) | CPU s (process) | CPU s (Cassandra) |
|---|---:|---:|---:|---:|---:|---:|"

{
  cat <<MD
# stockflight-batch benchmark

Command: \`bench/batch.sh $rows\` (release build, parallelism $parallelism, memory pool ${memory_mb} MiB),
run $(date -u +%Y-%m-%dT%H:%MZ). Machine: $cpus cores, $(lscpu | sed -n 's/Model name: *//p'),
$(free -g | awk '/Mem:/ {print $2}') GiB RAM; Cassandra single node on the same machine (1 GiB heap), no pending
compactions when each layout starts. The raw scan is the job's own token-range reader (same splits,
parallelism and page size) that only counts the rows of each page.
MD
  if [ "$cpus" -ge 2 ]; then
    cat <<MD

## Separate cores (Cassandra on CPU 0, the client on CPU 1)

$header
$(row "raw token-range scan, count only (before)" "$p_scan")
$(row "batch job end to end" "$p_job")
$(row "raw token-range scan, count only (after)" "$p_scan2")

Job / raw scan: **$(ratio "$p_job" "$p_scan" "$p_scan2")x** (target >= 0.8x). The single pass (scan, join,
drill-down table, aggregates) took $(field "$p_job" pass_seconds) s of the job's $(field "$p_job" seconds) s.
Peak RSS of the job: **$(field "$p_job" peak_rss_mib) MiB** with a ${memory_mb} MiB pool (target <= 2048 MiB).
MD
  fi
  cat <<MD

## Shared cores (no pinning)

$header
$(row "raw token-range scan, count only (before)" "$scan")
$(row "batch job end to end" "$job")
$(row "raw token-range scan, count only (after)" "$scan2")

Job / raw scan: **$(ratio "$job" "$scan" "$scan2")x**; peak RSS $(field "$job" peak_rss_mib) MiB. Here the client's CPU is
Cassandra's loss: the scan and the job ask Cassandra for the same pages, so the job's own CPU
seconds (joins, aggregates, zstd Parquet of every row), about $(awk -v j="$(field "$job" cpu_seconds)" -v s="$(field "$scan" cpu_seconds)" 'BEGIN { printf "%.0f", j / s }')x the counting scan's, come out of the
same $cpus cores. Per CPU second of its own the job handles $(awk -v r="$(field "$job" rows)" -v c="$(field "$job" cpu_seconds)" 'BEGIN { printf "%.0f", r / c / 1000 }')k rows, so on a machine of its own it
keeps up with far more than one Cassandra node serves.
MD
  cat <<MD

## Distributed: 2 workers on this machine

The same job with \`distributed.workers\` naming two \`stockflight-batch worker\` processes on loopback
(datafusion-distributed: the scan's token ranges dealt to both, joins, \`GROUPING SETS\` aggregation
and every Parquet file on the workers, the coordinator plans and publishes), between two
single-process jobs over the same table, no pinning. Every process shares the $cpus cores with
Cassandra, so the figure is CPU cost per row, not speed.

| measurement | rows | seconds | CPU s (coordinator) | CPU s (workers) | CPU us per row | CPU s (Cassandra) |
|---|---:|---:|---:|---:|---:|---:|
| single-process job (before) | $(field "$d_single" rows) | $(field "$d_single" seconds) | $(field "$d_single" cpu_seconds) | - | $(per_row "$d_single") | $(field "$d_single" cassandra_cpu_seconds) |
| distributed job, 2 workers | $(field "$d_dist" rows) | $(field "$d_dist" seconds) | $(field "$d_dist" cpu_seconds) | $(field "$d_dist" workers_cpu_seconds) | $(per_row "$d_dist") | $(field "$d_dist" cassandra_cpu_seconds) |
| single-process job (after) | $(field "$d_single2" rows) | $(field "$d_single2" seconds) | $(field "$d_single2" cpu_seconds) | - | $(per_row "$d_single2") | $(field "$d_single2" cassandra_cpu_seconds) |

CPU per row, distributed / single-process: **$(dist_ratio)x** (target <= 1.3x). Peak RSS of the
coordinator: $(field "$d_dist" peak_rss_mib) MiB.
MD
} >bench/results/batch.md
met() { awk "BEGIN { exit !($1) }" && echo yes || echo "**no**"; }
{
  if [ "$cpus" -ge 2 ]; then
    r=$(ratio "$p_job" "$p_scan" "$p_scan2")
    echo "| batch | job / raw token-range scan, $rows rows, separate cores | ${r}x | >= 0.8x | $(met "$r >= 0.8") |"
    rss=$(field "$p_job" peak_rss_mib)
  else
    rss=$(field "$job" peak_rss_mib)
  fi
  r=$(ratio "$job" "$scan" "$scan2")
  echo "| batch | job / raw token-range scan, shared cores (Cassandra and job on the same $cpus cores) | ${r}x | (see notes) | - |"
  echo "| batch | peak RSS of the job, ${memory_mb} MiB pool | $rss MiB | <= 2048 MiB | $(met "$rss <= 2048") |"
  r=$(dist_ratio)
  echo "| batch | 2 workers: CPU-seconds per row of all batch processes / single-process job, $rows rows | ${r}x | <= 1.3x | $(met "$r <= 1.3") |"
} >bench/results/batch.summary
cat bench/results/batch.md
