#!/usr/bin/env bash
# bench/ring.sh: one stockflight-ingest on the 3-node Cassandra ring and 3-broker Kafka cluster
# of `dev/stack up --cluster`, beside the same measurement on the single-node stack, in one run.
#
# For each layout, one after the other (the other layout's services stopped, so they do not
# share the cores):
#   single  Kafka and Cassandra single nodes; topic replication factor 1, keyspace RF 1,
#           writes at ONE (what `cassandra.consistency = auto` picks for RF 1);
#   ring    3 brokers (topic RF 3, min.insync.replicas=2), 3 Cassandra nodes (keyspace RF 3),
#           writes at LOCAL_QUORUM, token-aware;
# it pre-fills a topic with $MESSAGES updates, runs a release ingest over the backlog
# (messages/s), then measures produce-to-row latency at half that layout's maximum for
# $LATENCY_SECS s. Writes bench/results/ring.md and ring.summary.
#
# Knobs: MESSAGES (1000000), PARTITIONS (6), LATENCY_SECS (30), MAX_IN_FLIGHT (2048),
#        BENCH_TARGET_DIR (target dir of the release build; default $CARGO_TARGET_DIR).
# State: .stockflight/bench-single and .stockflight/bench-ring (ephemeral ports), stopped
# at the end of each layout (data kept; `dev/stack down --wipe` with that state dir frees it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib/ingest.sh
. "$root/bench/lib/ingest.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
MESSAGES=${MESSAGES:-1000000}
PARTITIONS=${PARTITIONS:-6}
LATENCY_SECS=${LATENCY_SECS:-30}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-2048}
out=$root/bench/results/ring.md
work=$root/.stockflight/bench-ring-work
mkdir -p "$work"
say() { printf '[bench] %s\n' "$*" >&2; }

say "building the load generator (dev build) and ingest (release)"
cargo build --workspace --bins --locked
loadgen_bin=$CARGO_TARGET_DIR/debug/stockflight-loadgen
release_dir=${BENCH_TARGET_DIR:-$CARGO_TARGET_DIR}
CARGO_TARGET_DIR=$release_dir cargo build --release -p stockflight-ingest --bins --locked
ingest_bin=$release_dir/release/stockflight-ingest


run=$(date +%s)
declare -A rate p50s p99s w99s cpus

# layout NAME: measures one layout; fills rate[NAME], p50s[NAME], p99s[NAME], w99s[NAME].
layout() {
  local name=$1 rf stack_args=() ingest_args=()
  case "$name" in
    single) rf=1 ;;
    ring)
      rf=3
      stack_args=(--cluster)
      ingest_args=(--ingest-replication "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        --cassandra-consistency local_quorum)
      ;;
  esac
  export STOCKFLIGHT_STATE_DIR=$root/.stockflight/bench-$name
  say "$name: starting the services"
  dev/stack up "${stack_args[@]}" --ephemeral-ports kafka cassandra >&2
  set -a
  # shellcheck disable=SC1091
  . "$STOCKFLIGHT_STATE_DIR/stack.env"
  set +a
  keyspace=bench_ring_${name}_$run
  local topic=bench_ring_${name}_$run latency_topic=bench_ring_latency_${name}_$run t
  for t in "$topic" "$latency_topic"; do
    dev/stack kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$STOCKFLIGHT_KAFKA_BROKERS" \
      --create --topic "$t" --partitions "$PARTITIONS" --replication-factor "$rf" >&2
  done
  say "$name: pre-filling $MESSAGES messages"
  "$loadgen_bin" produce --kafka-topic "$topic" --produce-count "$MESSAGES" --produce-progress false \
    --log-level warn >"$work/prefill-$name.json"
  say "$name: ingest over the backlog"
  start_ingest "$topic" "$work/ingest-$name.log" "${ingest_args[@]}"
  measure_backlog "$MESSAGES"
  rate[$name]=$ingest_rate
  cpus[$name]=$(ps -o cputime= -p "$ingest_pid" | awk -F: '{ print ($1 * 3600) + ($2 * 60) + $3 }')
  stop_ingest
  say "$name: produce-to-row latency at $((ingest_rate / 2)) msg/s"
  start_ingest "$latency_topic" "$work/ingest-latency-$name.log" "${ingest_args[@]}"
  measure_latency "$latency_topic" "$((ingest_rate / 2))" "$LATENCY_SECS" "$work/latency-$name.json"
  stop_ingest
  p50s[$name]=$p50
  p99s[$name]=$p99
  w99s[$name]=$w99
  dev/stack down kafka cassandra >&2
}

layout single
layout ring

ratio=$(awk -v a="${rate[ring]}" -v b="${rate[single]}" 'BEGIN { printf "%.2f", a / b }')
cat >"$out" <<MD
# Ingest on the ring

Command: \`bench/ring.sh\` (MESSAGES=$MESSAGES, PARTITIONS=$PARTITIONS, LATENCY_SECS=$LATENCY_SECS,
MAX_IN_FLIGHT=$MAX_IN_FLIGHT), run $(date -u +%Y-%m-%dT%H:%MZ).

Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM. The ring
is three Cassandra nodes (768 MiB heap each) and three Kafka brokers on these same cores, so it does
three times the replica writes and fetches on the hardware of one node: the ring's figures show the
cost of replication and quorum writes, not a cluster's capacity (that grows with its machines; see
\`docs/scaling.md\`). One release ingest instance in both layouts, one layout at a time, each on services started
for it (cold JVMs, a $MESSAGES-message backlog, $LATENCY_SECS s of latency): the single-node row is
below \`bench/ingest.sh\`'s figures on its warmed stack with a larger backlog. Compare the two rows
of this table with each other.

| layout | topic | keyspace, writes | ingest over a $MESSAGES-message backlog | ingest CPU per message | produce-to-row at half the max rate | Cassandra write p99 |
|---|---|---|---:|---:|---|---:|
| single node | RF 1 | RF 1, ONE | **${rate[single]} msg/s** | $(awk -v n="$MESSAGES" -v c="${cpus[single]}" 'BEGIN { printf "%.0f", n / c }') msg per CPU-s | p50 ${p50s[single]} s, p99 **${p99s[single]} s** | ${w99s[single]} s |
| 3-node ring | RF 3, min.insync.replicas=2 | RF 3, LOCAL_QUORUM, token-aware | **${rate[ring]} msg/s** | $(awk -v n="$MESSAGES" -v c="${cpus[ring]}" 'BEGIN { printf "%.0f", n / c }') msg per CPU-s | p50 ${p50s[ring]} s, p99 **${p99s[ring]} s** | ${w99s[ring]} s |

Ring / single node: **${ratio}x** the throughput, p99 ${p99s[ring]} s vs ${p99s[single]} s.
MD
cat >"${out%.md}.summary" <<MD
| ring | ingest on the 3-node ring (RF 3, LOCAL_QUORUM) / the single node, same run, same cores | ${ratio}x | (reported) | - |
| ring | produce-to-row p99 at half the max rate: ring / single node | ${p99s[ring]} s / ${p99s[single]} s | (reported) | - |
MD
say "results in $out"
cat "$out"
