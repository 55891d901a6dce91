#!/usr/bin/env bash
# bench/live.sh: the live tables (issue 13) against their three targets, each beside its
# reference in the same run, on the real services (Kafka, Cassandra, ingest with its change log,
# the batch, the server):
#
#   1. a snapshot: BENCH_ROWS (item, node) rows loaded into Cassandra (stockflight-batch-bench
#      load: BENCH_NODES nodes per item), then one batch run over them (stockflight-batch-bench
#      job), published to a local directory; meanwhile RATE_MESSAGES updates are pre-filled;
#   2. the maximum ingest rate: a release stockflight-ingest (change log on, as the live tables
#      need it) over that backlog, into a keyspace of its own;
#   3. bench/live_bench.py, with ingest running on the snapshot's keyspace and a release
#      stockflight-server serving the snapshot and its live tables, through ADBC:
#      - 1% of the rows changed since the snapshot (produced through Kafka): a region-level
#        aggregate over availability_current beside the same over availability_snapshot (p50);
#      - point lookup of one item across all nodes on availability_live beside the same on
#        availability_snapshot (p50);
#      - produce -> visible through availability_live at half the maximum ingest rate: the load
#        generator produces at that rate while single updates are produced one at a time and
#        looked up until they show (p50/p99);
#   and writes bench/results/live.md (+ .summary, .json). Answers are checked against a model
#   of the loaded rows computed by the bench (the loader's formula), not by the server.
#
# Services: dev/stack in $BENCH_STATE_DIR (default .stockflight/bench-live), ephemeral ports,
# stopped at the end. Needs the workspace's release build (shared by every bench; 15+ min on
# 2 cores from scratch) and the client venv + kcat (dev/tools).
#
# Knobs: BENCH_ROWS (1000000), BENCH_NODES (200), RATE_MESSAGES (1500000), PARTITIONS (6),
#        MAX_IN_FLIGHT (2048), LIVE_SECS (60: the freshness run), AGG_RUNS (30), LOOKUP_RUNS (200).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib/ingest.sh
. "$root/bench/lib/ingest.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
cache=${STOCKFLIGHT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight}
export STOCKFLIGHT_STATE_DIR=${BENCH_STATE_DIR:-$root/.stockflight/bench-live}
ROWS=${BENCH_ROWS:-1000000}
NODES=${BENCH_NODES:-200}
RATE_MESSAGES=${RATE_MESSAGES:-1500000}
PARTITIONS=${PARTITIONS:-6}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-2048}
LIVE_SECS=${LIVE_SECS:-60}
work=$STOCKFLIGHT_STATE_DIR/work
data=$work/data
rm -rf "$work"
mkdir -p "$work"

say() { printf '[bench] %s\n' "$*" >&2; }

[ -f "$cache/tools.env" ] || dev/tools
set -a
# shellcheck disable=SC1091
. "$cache/tools.env"
set +a
[ -x "${STOCKFLIGHT_KCAT:-}" ] || { echo "bench/live.sh: kcat missing: run dev/tools" >&2; exit 1; }
cargo build --release --workspace --bins --locked
release=$CARGO_TARGET_DIR/release
ingest_bin=$release/stockflight-ingest
loadgen_bin=$release/stockflight-loadgen

prefill_pid=
ingest_pid=
cleanup() {
  [[ -n $prefill_pid ]] && kill "$prefill_pid" 2>/dev/null
  [[ -n $ingest_pid ]] && kill -TERM "$ingest_pid" 2>/dev/null && wait "$ingest_pid" 2>/dev/null
  dev/stack down >/dev/null 2>&1 || true
}
trap cleanup EXIT

dev/stack up --ephemeral-ports kafka cassandra >&2
set -a
# shellcheck disable=SC1091
. "$STOCKFLIGHT_STATE_DIR/stack.env"
set +a

run=$(date +%s)
live_keyspace=bench_live_$run
rate_topic=bench_live_rate_$run
live_topic=bench_live_$run
for topic in "$rate_topic" "$live_topic"; do
  dev/stack kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$STOCKFLIGHT_KAFKA_BROKERS" \
    --create --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1 >&2
done

say "1. snapshot of $ROWS rows ($NODES nodes per item) while $RATE_MESSAGES updates are pre-filled"
"$loadgen_bin" produce --kafka-topic "$rate_topic" --produce-count "$RATE_MESSAGES" --produce-progress false \
  --log-level warn >"$work/prefill.json" &
prefill_pid=$!
loader=("$release/stockflight-batch-bench" --cassandra "$STOCKFLIGHT_CASSANDRA_NODES" --keyspace "$live_keyspace"
        --storage "$data")
"${loader[@]}" load --rows "$ROWS" --nodes "$NODES" | tee "$work/load.txt" >&2
"${loader[@]}" job 2>"$work/job.log" | tee "$work/job.txt" >&2
wait "$prefill_pid"
prefill_pid=

say "2. maximum ingest rate over the $RATE_MESSAGES-message backlog (change log on)"
keyspace=${live_keyspace}_rate
start_ingest "$rate_topic" "$work/ingest-rate.log"
measure_backlog "$RATE_MESSAGES"
stop_ingest
ingest_pid=
say "ingest: $ingest_rate msg/s"

say "3. ingest on the snapshot's keyspace, the server, the measurements (bench/live_bench.py)"
keyspace=$live_keyspace
start_ingest "$live_topic" "$work/ingest-live.log"
"$STOCKFLIGHT_PYTHON" "$root/bench/live_bench.py" \
  --server "$release/stockflight-server" --loadgen "$loadgen_bin" --kcat "$STOCKFLIGHT_KCAT" \
  --data "$data" --work "$work" --out "$root/bench/results/live.md" \
  --brokers "$STOCKFLIGHT_KAFKA_BROKERS" --topic "$live_topic" \
  --cassandra "$STOCKFLIGHT_CASSANDRA_NODES" --keyspace "$live_keyspace" \
  --ingest-metrics "http://$ingest_addr/metrics" \
  --rows "$ROWS" --nodes "$NODES" --max-rate "$ingest_rate" --rate-messages "$RATE_MESSAGES" \
  --live-secs "$LIVE_SECS" --agg-runs "${AGG_RUNS:-30}" --lookup-runs "${LOOKUP_RUNS:-200}" \
  --load "$(cat "$work/load.txt")" --job "$(cat "$work/job.txt")"
stop_ingest
ingest_pid=
