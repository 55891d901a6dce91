# Helpers of the ingest benchmarks (bench/ingest.sh, bench/ring.sh), sourced.
# They read: ingest_bin, loadgen_bin, keyspace, MAX_IN_FLIGHT.

# jq reads the JSON summaries and logs; curl reads /metrics.
for tool in jq curl; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done

# start_ingest TOPIC LOG [ARGS...]: starts ingest in the background (with ARGS added), sets
# ingest_pid and ingest_addr once it is healthy.
start_ingest() {
  local topic=$1 log=$2
  shift 2
  "$ingest_bin" --kafka-topic "$topic" --cassandra-keyspace "$keyspace" --ingest-group-id "bench-$topic" \
    --ingest-max-in-flight "$MAX_IN_FLIGHT" --metrics-addr 127.0.0.1:0 --log-format json \
    --log-level info,scylla=warn "$@" 2>"$log" &
  ingest_pid=$!
  ingest_addr=
  for _ in $(seq 1 600); do
    ingest_addr=$(jq -r 'select(.message == "serving /metrics and /health") | .addr' "$log" 2>/dev/null | head -1)
    [[ -n $ingest_addr ]] && break
    sleep 0.1
  done
  [[ -n $ingest_addr ]] || { cat "$log" >&2; exit 1; }
  until curl -sf "http://$ingest_addr/health" >/dev/null; do sleep 0.2; done
}
metric() { # metric NAME [LABELS]: the value of one sample, 0 if absent
  curl -s "http://$ingest_addr/metrics" | awk -v m="$1${2:-}" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'
}
quantile() { # quantile NAME Q: Q-quantile of a Prometheus histogram, interpolated within buckets
  curl -s "http://$ingest_addr/metrics" | awk -v m="$1_bucket" -v q="$2" '
    index($1, m "{le=\"") == 1 { le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); n++; bound[n] = le; count[n] = $2 }
    END {
      total = count[n]; if (total == 0) { print 0; exit }
      rank = q * total; lower = 0; prev = 0
      for (i = 1; i <= n; i++) {
        if (count[i] >= rank) {
          if (bound[i] == "+Inf") { print lower; exit }
          printf "%.4f\n", lower + (bound[i] - lower) * (rank - prev) / (count[i] - prev); exit
        }
        lower = bound[i]; prev = count[i]
      }
    }'
}
stop_ingest() { kill -TERM "$ingest_pid"; wait "$ingest_pid" || true; }

# measure_backlog N: waits until the running ingest has written N records; sets ingest_rate
# (records/s, timed from the first written row to the last, sampled every 0.5 s).
measure_backlog() {
  local n=$1 written now t_first="" w_first=0 t_last
  while :; do
    written=$(metric stockflight_ingest_written_total)
    now=$(date +%s.%N)
    if [[ -z $t_first ]] && awk -v w="$written" 'BEGIN { exit !(w > 0) }'; then t_first=$now; w_first=$written; fi
    if awk -v w="$written" -v n="$n" 'BEGIN { exit !(w >= n) }'; then t_last=$now; break; fi
    sleep 0.5
  done
  ingest_rate=$(awk -v n="$n" -v w="$w_first" -v a="$t_first" -v b="$t_last" 'BEGIN { printf "%.0f", (n - w) / (b - a) }')
}

# measure_latency TOPIC RATE SECS OUT: produces RATE msg/s to TOPIC for SECS seconds (summary
# in OUT), waits until the running ingest has written them all; sets p50 and p99 of
# produce-to-row latency and w50 and w99 of Cassandra write latency (seconds).
measure_latency() {
  local sent
  "$loadgen_bin" produce --kafka-topic "$1" --produce-rate "$2" --produce-count 0 \
    --produce-duration-secs "$3" --produce-progress false --log-level warn >"$4"
  sent=$(jq .messages "$4")
  until awk -v w="$(metric stockflight_ingest_written_total)" -v n="$sent" 'BEGIN { exit !(w >= n) }'; do sleep 0.5; done
  p50=$(quantile stockflight_ingest_end_to_end_seconds 0.5)
  p99=$(quantile stockflight_ingest_end_to_end_seconds 0.99)
  w50=$(quantile stockflight_ingest_write_seconds 0.5)
  w99=$(quantile stockflight_ingest_write_seconds 0.99)
}
