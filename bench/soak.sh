#!/usr/bin/env bash
# bench/soak.sh: the slow fault scenarios that dev/test leaves out because of their length.
#
#   1. a Cassandra outage of 330 s, longer than Kafka's default max.poll.interval.ms (300 s),
#      while updates keep flowing: ingest must stay in its consumer group (same member id, no
#      revocation), commit nothing past unwritten data, resume by itself, and end with a table
#      equal to the model and every partition committed to its end
#      (tests/tests/ingest_cassandra_outage.rs, the `#[ignore]`d test).
#
# Writes bench/results/soak.md and bench/results/soak.summary. Starts its own services on
# ephemeral ports in $STOCKFLIGHT_STATE_DIR (default .stockflight/soak) so the outage it causes
# never touches another stack; stops them afterwards. Exits non-zero if a scenario fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockflight/target}
export STOCKFLIGHT_STATE_DIR=${STOCKFLIGHT_STATE_DIR:-$root/.stockflight/soak}
out=$root/bench/results/soak.md
log=$STOCKFLIGHT_STATE_DIR/soak.log
mkdir -p "$STOCKFLIGHT_STATE_DIR"

say() { printf '[soak] %s\n' "$*" >&2; }

say "building (the workspace's dev build, like dev/test)"
cargo build --workspace --locked
cargo test --workspace --locked --no-run
dev/stack up --ephemeral-ports kafka cassandra >&2
trap 'dev/stack down kafka cassandra >&2 || true' EXIT

say "1. Cassandra outage longer than max.poll.interval.ms (log: $log)"
start=$(date +%s)
status=passed
cargo test --workspace --locked --test ingest_cassandra_outage -- --ignored --nocapture \
  cassandra_outage_longer_than_max_poll_interval_loses_nothing >"$log" 2>&1 || status=FAILED
seconds=$(($(date +%s) - start))
result=$(grep -E '^test result' "$log" | tail -1)

cat >"$out" <<MD
# Soak

Command: \`bench/soak.sh\`, run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM.

| scenario | outcome | wall time |
|---|---|---:|
| Cassandra down for 330 s (> max.poll.interval.ms 300 s) while updates for its 3 partitions keep arriving: same group member before and after, no revocation, nothing committed past unwritten data, table equals the model, every partition committed to its end | **$status** (\`$result\`) | ${seconds} s |

The test is \`cassandra_outage_longer_than_max_poll_interval_loses_nothing\` in
\`tests/tests/ingest_cassandra_outage.rs\`; its shorter sibling runs in \`dev/test\`.
MD
met=$([ "$status" = passed ] && echo yes || echo "**no**")
cat >"${out%.md}.summary" <<MD
| soak | Cassandra outage of 330 s > max.poll.interval.ms: nothing lost, no eviction | $status | passes | $met |
MD
cat "$out"
[ "$status" = passed ] || { tail -50 "$log" >&2; exit 1; }
