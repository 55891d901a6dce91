#!/usr/bin/env bash
# bench/ingest.sh: how close one stockflight-ingest instance gets to what Cassandra can absorb.
#
#   1. pre-fills a topic with $MESSAGES updates (stockflight-loadgen, default 5M);
#   2. measures the raw write ceiling of the same Cassandra (stockflight-ingest-ceiling, several
#      concurrency levels, straight from the scylla driver, no Kafka): `--mode plain`, plain
#      upserts of the same rows into one column per field without USING TIMESTAMP (the
#      reference), and `--mode ingest`, ingest's own exact last-write-wins write;
#   3. runs a release stockflight-ingest over the backlog: sustained messages/s and MB/s, as a
#      ratio of the plain ceiling;
#   4. produce-to-row latency p50/p99 at a fixed rate of half the measured maximum;
#   5. criterion benchmark of the decode+validate CPU path;
# and writes bench/results/ingest.md. Uses (or starts) the stack in $STOCKFLIGHT_STATE_DIR
# (default .stockflight/bench) on ephemeral ports; `dev/stack down` it afterwards.
#
# Knobs: MESSAGES (5000000), PARTITIONS (6), CEILING_ROWS (500000), LATENCY_SECS (60),
#        MAX_IN_FLIGHT (2048), BENCH_TARGET_DIR (target dir of the release build; default
#        $CARGO_TARGET_DIR: a separate one avoids waiting for another release build's lock),
#        LOADGEN (a prebuilt stockflight-loadgen instead of building it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib/ingest.sh
. "$root/bench/lib/ingest.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
export STOCKFLIGHT_STATE_DIR=${STOCKFLIGHT_STATE_DIR:-$root/.stockflight/bench}
MESSAGES=${MESSAGES:-5000000}
PARTITIONS=${PARTITIONS:-6}
CEILING_ROWS=${CEILING_ROWS:-500000}
LATENCY_SECS=${LATENCY_SECS:-60}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-2048}
out=$root/bench/results/ingest.md
work=$STOCKFLIGHT_STATE_DIR/bench-ingest
mkdir -p "$work"

say() { printf '[bench] %s\n' "$*" >&2; }

if [[ -n ${LOADGEN:-} ]]; then
  loadgen_bin=$LOADGEN
else
  say "building the load generator (the workspace's dev build: it only feeds Kafka, its speed is not measured)"
  # --workspace, like dev/test: building one package alone unifies features differently and
  # would recompile the whole dependency tree.
  cargo build --workspace --bins --locked
  loadgen_bin=$CARGO_TARGET_DIR/debug/stockflight-loadgen
fi
release_dir=${BENCH_TARGET_DIR:-$CARGO_TARGET_DIR}
ingest_bin=$release_dir/release/stockflight-ingest
ceiling_bin=$release_dir/release/stockflight-ingest-ceiling

dev/stack up --ephemeral-ports kafka cassandra >&2
set -a
# shellcheck disable=SC1091
. "$STOCKFLIGHT_STATE_DIR/stack.env"
set +a

run=$(date +%s)
keyspace=bench_ingest_$run
create_topic() {
  dev/stack kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$STOCKFLIGHT_KAFKA_BROKERS" \
    --create --topic "$1" --partitions "$PARTITIONS" --replication-factor 1 >&2
}


say "1. pre-filling $MESSAGES messages while the release build (ingest + ceiling) runs"
# Only the ingest package: its binaries are all this script runs in release.
(CARGO_TARGET_DIR=$release_dir cargo build --release -p stockflight-ingest --bins --locked >"$work/build.log" 2>&1) &
build_pid=$!
topic=bench_ingest_$run
create_topic "$topic"
"$loadgen_bin" produce --kafka-topic "$topic" --produce-count "$MESSAGES" --produce-progress false \
  --log-level warn >"$work/prefill.json"
payload_bytes=$(jq .bytes "$work/prefill.json")
wait "$build_pid" || { cat "$work/build.log" >&2; exit 1; }

rm -f "$work/ceiling-ingest.jsonl"
say "2. raw Cassandra write ceiling ($CEILING_ROWS rows per concurrency level): plain upserts, then ingest's write"
# plain, ingest, plain again: the reference gets the warmer Cassandra too (best of both rounds).
: >"$work/ceiling-plain.jsonl"
for mode in plain ingest plain; do
  "$ceiling_bin" --cassandra-nodes "$STOCKFLIGHT_CASSANDRA_NODES" --cassandra-keyspace "${keyspace}_ceiling_$mode" \
    --mode "$mode" --rows "$CEILING_ROWS" | tee -a "$work/ceiling-$mode.jsonl" >&2
done
cat "$work/ceiling-plain.jsonl" "$work/ceiling-ingest.jsonl" >"$work/ceiling.jsonl"
ceiling=$(jq -s 'max_by(.rows_per_sec) | .rows_per_sec' "$work/ceiling-plain.jsonl")
ceiling_conc=$(jq -s 'max_by(.rows_per_sec) | .concurrency' "$work/ceiling-plain.jsonl")
lww_ceiling=$(jq -s 'max_by(.rows_per_sec) | .rows_per_sec' "$work/ceiling-ingest.jsonl")
lww_ratio=$(awk -v a="$lww_ceiling" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }')

say "3. ingest over the backlog"
start_ingest "$topic" "$work/ingest-throughput.log"
measure_backlog "$MESSAGES"
ingest_mbs=$(awk -v r="$ingest_rate" -v bytes="$payload_bytes" -v n="$MESSAGES" 'BEGIN { printf "%.1f", r * bytes / n / 1e6 }')
ingest_cpu=$(ps -o cputime= -p "$ingest_pid" | awk -F: '{ print ($1 * 3600) + ($2 * 60) + $3 }')
stop_ingest
ratio=$(awk -v a="$ingest_rate" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }')
per_core=$(awk -v n="$MESSAGES" -v c="$ingest_cpu" 'BEGIN { printf "%.0f", n / c }')

say "4. produce-to-row latency at half the maximum rate"
half=$((ingest_rate / 2))
latency_topic=bench_latency_$run
create_topic "$latency_topic"
start_ingest "$latency_topic" "$work/ingest-latency.log"
measure_latency "$latency_topic" "$half" "$LATENCY_SECS" "$work/latency.json"
stop_ingest

say "5. criterion: decode + validate"
CARGO_TARGET_DIR=$release_dir cargo bench -p stockflight-ingest --bench decode -- --noplot 2>&1 | tee "$work/criterion.txt" >&2
crit_time() { grep -A1 "decode_validate/$1" "$work/criterion.txt" | grep -o 'time: *\[[^]]*\]' | head -1; }
# Records per second on one core from criterion's middle estimate.
crit() {
  crit_time "$1" | awk '{ v = $4; u = $5; f = (u == "ns") ? 1e-9 : (u == "µs") ? 1e-6 : (u == "ms") ? 1e-3 : 1;
    printf "%.2fM records/s per core", 1 / (v * f) / 1e6 }'
}

cat >"$out" <<MD
# Ingest benchmark

Command: \`bench/ingest.sh\` (MESSAGES=$MESSAGES, PARTITIONS=$PARTITIONS, CEILING_ROWS=$CEILING_ROWS,
LATENCY_SECS=$LATENCY_SECS, MAX_IN_FLIGHT=$MAX_IN_FLIGHT), run $(date -u +%Y-%m-%dT%H:%MZ).

Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM. Kafka, Cassandra (1 GiB heap),
the load generator and ingest all share these cores, so every figure is a lower bound of what
ingest does on its own machine; compare ratios, not absolutes.

| measure | value |
|---|---|
| raw Cassandra write ceiling: plain upserts of the same rows, one column per field, no \`USING TIMESTAMP\` (scylla driver, no Kafka; best of $(jq -sc 'map(.concurrency)' "$work/ceiling-plain.jsonl") in flight) | **$ceiling rows/s** at $ceiling_conc in flight |
| ingest's exact last-write-wins write alone (one frozen-UDT cell, \`USING TIMESTAMP\` event time; same driver, no Kafka) | $lww_ceiling rows/s (${lww_ratio}x the plain ceiling) |
| ingest, $MESSAGES-message backlog, one instance, release build, one write per update | **$ingest_rate msg/s**, $ingest_mbs MB/s of payload |
| ingest / plain ceiling | **${ratio}x** (target >= 0.9x) |
| ingest CPU per message (whole process: Kafka fetch, decode, driver, commits) | $per_core msg per CPU-second |
| produce-to-row latency at $half msg/s (half the max), $LATENCY_SECS s | p50 ${p50} s, p99 **${p99} s** (target < 0.25 s) |
| Cassandra write latency in that run | p50 ${w50} s, p99 ${w99} s |
| decode+validate, protobuf (criterion, per record) | $(crit_time protobuf) ($(crit protobuf)) |
| decode+validate, JSON (criterion, per record) | $(crit_time json) ($(crit json)) |

Ceiling runs (\`mode\` plain: the reference; ingest: ingest's write):

\`\`\`
$(cat "$work/ceiling.jsonl")
\`\`\`

Latency is the time from the record's Kafka timestamp (the producer's create time) to the end of
its Cassandra write (\`stockflight_ingest_end_to_end_seconds\`; quantiles interpolated within the buckets of
the Prometheus histogram of a fresh ingest instance that saw only the fixed-rate stream). Payload size: $payload_bytes bytes for $MESSAGES messages.
MD
met() { awk "BEGIN { exit !($1) }" && echo yes || echo "**no**"; }
proto_rate=$(crit protobuf | awk '{ print $1 }')
cat >"${out%.md}.summary" <<MD
| ingest | one instance with exact last-write-wins / raw ceiling of plain upserts | ${ratio}x | >= 0.9x | $(met "$ratio >= 0.9") |
| ingest | produce-to-row p99 at half the max rate | ${p99} s | < 0.25 s | $(met "$p99 < 0.25") |
| ingest | decode+validate per core, protobuf | ${proto_rate} records/s | >= 1M | $(met "${proto_rate%M} >= 1") |
MD
say "results in $out"
cat "$out"
