# shellcheck shell=bash
# Cluster mode: Apache Kafka 4.x, 3 KRaft nodes, each broker + controller, on 127.0.0.1.
# Reuses dev/services/kafka.sh (generated config, log4j2 files, jars) for every node and
# changes only what differs: node.id, the static 3-voter quorum and replication (topics
# and internal topics RF 3, min.insync.replicas 2).
# State: $STATE/kafka-N/{pid,ports,conf/,data/,logs/server.log,logs/stdout.log} (N = 1..3);
#        $STATE/kafka-1/{classpath,cluster-id} are shared by the three nodes.
# The quorum is static (controller.quorum.voters lists all three controllers, storage of
# each node formatted with the same cluster id), so the ports may change whenever the
# whole cluster restarts; while any node runs, the others restart on their recorded ports.

KAFKA_CLUSTER_START_TIMEOUT=${KAFKA_CLUSTER_START_TIMEOUT:-300}
KAFKA_CLUSTER_XMS=${KAFKA_CLUSTER_XMS:-256m}
KAFKA_CLUSTER_XMX=${KAFKA_CLUSTER_XMX:-512m}

kafka_node_dir() { printf '%s/kafka-%s' "$STATE_DIR" "$1"; }
kafka_node_running() { pid_alive "$(kafka_node_dir "$1")/pid" "$(kafka_node_dir "$1")"; }
kafka_node_ready() {
  grep -q 'Kafka Server started' "$(kafka_node_dir "$1")/logs/server.log" 2>/dev/null &&
    tcp_open "$(port_of "kafka-$1" kafka)"
}
kafka_cluster_nodes() { seq 1 "$STACK_CLUSTER_SIZE"; }

kafka_cluster_running() {
  local n
  for n in $(kafka_cluster_nodes); do kafka_node_running "$n" || return 1; done
}
kafka_cluster_listed() {
  local n
  for n in $(kafka_cluster_nodes); do kafka_node_running "$n" && return 0; done
  return 1
}
kafka_cluster_exists() { cluster_node_dirs_exist kafka; }

# kafka_cluster_bootstrap: host:port of every node's client listener, comma-separated.
kafka_cluster_bootstrap() {
  local n out=()
  for n in $(kafka_cluster_nodes); do out+=("127.0.0.1:$(port_of "kafka-$n" kafka)"); done
  (IFS=,; printf '%s' "${out[*]}")
}

# kafka_cluster_java CLASS ARGS...: a Kafka tool in the foreground (classpath of node 1).
kafka_cluster_java() {
  local d
  d=$(kafka_node_dir 1)
  [[ -s $d/classpath && -f $d/conf/tools-log4j2.xml ]] || die "the Kafka cluster was never started here; run dev/stack up --cluster kafka"
  java -cp "$(<"$d/classpath")" -Dlog4j2.configurationFile="file:$d/conf/tools-log4j2.xml" "$@"
}

# kafka_cluster_brokers: how many brokers are registered and unfenced (the ones the
# cluster metadata hands to clients), asked over the client protocol.
kafka_cluster_brokers() {
  local d out
  d=$(kafka_node_dir 1)
  [[ -s $d/classpath ]] || { printf '0'; return 0; }
  out=$(timeout 60 java -cp "$(<"$d/classpath")" -Dlog4j2.configurationFile="file:$d/conf/tools-log4j2.xml" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$(kafka_cluster_bootstrap)" 2>/dev/null) || true
  grep -oE '\(id: [0-9]+ ' <<<"$out" | sort -u | wc -l
}

kafka_cluster_ready() {
  local n
  for n in $(kafka_cluster_nodes); do kafka_node_ready "$n" || return 1; done
  (($(kafka_cluster_brokers) == STACK_CLUSTER_SIZE))
}

# kafka_cluster_prepare: clear stale pid files of the nodes that do not run and decide
# their ports (the recorded ones while any node runs).
kafka_cluster_prepare() {
  local n keep=0 out
  kafka_cluster_listed && keep=1
  for n in $(kafka_cluster_nodes); do
    kafka_node_running "$n" && continue
    stop_pid "$(kafka_node_dir "$n")/pid" "$(kafka_node_dir "$n")" "kafka-$n"
    if ((keep)) && [[ -z $(port_of "kafka-$n" kafka) ]]; then
      die "kafka-$n has no recorded ports but other nodes run; stop the cluster first (dev/stack down kafka)"
    fi
    node_port "kafka-$n" kafka $((9092 + 100 * (n - 1))) "$(csv_item "${KAFKA_CLUSTER_PORTS:-}" "$n")" "$keep" 127.0.0.1
    out="kafka=$NODE_PORT"$'\n'
    node_port "kafka-$n" controller $((9093 + 100 * (n - 1))) "$(csv_item "${KAFKA_CLUSTER_CONTROLLER_PORTS:-}" "$n")" "$keep" 127.0.0.1
    out+="controller=$NODE_PORT"$'\n'
    mkdir -p "$(kafka_node_dir "$n")"
    printf '%s' "$out" >"$(kafka_node_dir "$n")/ports"
  done
}

# kafka_cluster_write_config N: the single node's config (kafka_write_config) with the
# cluster's settings.
kafka_cluster_write_config() {
  local n=$1 d m voters=()
  d=$(kafka_node_dir "$n")
  for m in $(kafka_cluster_nodes); do voters+=("$m@127.0.0.1:$(port_of "kafka-$m" controller)"); done
  kafka_write_config "$d" "$(port_of "kafka-$n" kafka)" "$(port_of "kafka-$n" controller)"
  conf_set "$d/conf/server.properties" = \
    "node.id=$n" \
    "controller.quorum.voters=$(IFS=,; printf '%s' "${voters[*]}")" \
    default.replication.factor=3 \
    min.insync.replicas=2 \
    offsets.topic.replication.factor=3 \
    transaction.state.log.replication.factor=3 \
    transaction.state.log.min.isr=2 \
    share.coordinator.state.topic.replication.factor=3 \
    share.coordinator.state.topic.min.isr=2 \
    unclean.leader.election.enable=false
  printf '# Cluster node %s of %s (dev/services/kafka-cluster.sh)\n' "$n" "$STACK_CLUSTER_SIZE" >>"$d/conf/server.properties"
}

# kafka_cluster_id: the cluster id all nodes are formatted with (made once).
kafka_cluster_id() {
  local d1 f id="" n
  d1=$(kafka_node_dir 1)
  if [[ -s $d1/cluster-id ]]; then
    cat "$d1/cluster-id"
    return 0
  fi
  for n in $(kafka_cluster_nodes); do # recover it from a formatted node
    f="$(kafka_node_dir "$n")/data/meta.properties"
    [[ -f $f ]] && id=$(sed -n 's/^cluster\.id=//p' "$f")
    [[ -n $id ]] && break
  done
  if [[ -z $id ]]; then
    id=$(kafka_cluster_java kafka.tools.StorageTool random-uuid 2>>"$d1/logs/format.log") ||
      { show_logs 40 "$d1/logs/format.log"; die "kafka: StorageTool random-uuid failed"; }
  fi
  printf '%s\n' "$id" >"$d1/cluster-id"
  printf '%s\n' "$id"
}

# kafka_cluster_start: write every stopped node's config, format its storage once (same
# cluster id everywhere), launch it (no waiting).
kafka_cluster_start() {
  local n d cp id flags=()
  # Runs as an `if` condition (run_step), where errexit is off: fail explicitly.
  mkdir -p "$(kafka_node_dir 1)/logs"
  cp=$(maven_classpath kafka-1 "$KAFKA_POM") || return 1
  for n in $(kafka_cluster_nodes); do
    kafka_node_running "$n" && continue
    d=$(kafka_node_dir "$n")
    mkdir -p "$d/conf" "$d/data" "$d/logs"
    kafka_cluster_write_config "$n"
  done
  id=$(kafka_cluster_id) || return 1
  [[ -n $id ]] || { log "kafka: no cluster id"; return 1; }
  for n in $(kafka_cluster_nodes); do
    kafka_node_running "$n" && continue
    d=$(kafka_node_dir "$n")
    if [[ ! -f $d/data/meta.properties ]]; then
      log "kafka-$n: formatting KRaft storage in $d/data (cluster id $id)"
      kafka_cluster_java kafka.tools.StorageTool format -t "$id" -c "$d/conf/server.properties" \
        >>"$d/logs/format.log" 2>&1 ||
        { show_logs 40 "$d/logs/format.log"; die "kafka-$n: StorageTool format failed"; }
    fi
    rotate_log "$d/logs/server.log"
    rotate_log "$d/logs/stdout.log"
    log "kafka-$n: starting on 127.0.0.1:$(port_of "kafka-$n" kafka) (controller $(port_of "kafka-$n" controller))"
    mapfile -t flags < <(kafka_jvm_flags "$d")
    launch "$d/pid" "$d" "$d/logs/stdout.log" \
      java "-Xms$KAFKA_CLUSTER_XMS" "-Xmx$KAFKA_CLUSTER_XMX" "${flags[@]}" \
      -cp "$(<"$cp")" kafka.Kafka "$d/conf/server.properties"
  done
}

KAFKA_WAIT_NODE=
kafka_wait_node_ready() { kafka_node_ready "$KAFKA_WAIT_NODE"; }
kafka_wait_node_alive() { kafka_node_running "$KAFKA_WAIT_NODE"; }

# kafka_cluster_wait: every node logged "Kafka Server started" and accepts TCP, then all
# three brokers are registered.
kafka_cluster_wait() {
  local n d rc deadline left start=$SECONDS
  deadline=$((SECONDS + KAFKA_CLUSTER_START_TIMEOUT))
  for n in $(kafka_cluster_nodes); do
    d=$(kafka_node_dir "$n")
    KAFKA_WAIT_NODE=$n
    left=$((deadline - SECONDS))
    rc=0
    wait_until "$((left > 0 ? left : 1))" kafka_wait_node_ready kafka_wait_node_alive || rc=$?
    case $rc in
      0) ;;
      2) show_logs 40 "$d/logs/server.log" "$d/logs/stdout.log"; log "kafka-$n: the process died during start-up"; return 1 ;;
      *) show_logs 40 "$d/logs/server.log" "$d/logs/stdout.log"; log "kafka-$n: not ready after ${KAFKA_CLUSTER_START_TIMEOUT}s (KAFKA_CLUSTER_START_TIMEOUT)"; return 1 ;;
    esac
  done
  while (($(kafka_cluster_brokers) != STACK_CLUSTER_SIZE)); do
    for n in $(kafka_cluster_nodes); do
      kafka_node_running "$n" || { log "kafka-$n: the process died"; return 1; }
    done
    if ((SECONDS >= deadline)); then
      log "kafka: not all $STACK_CLUSTER_SIZE brokers registered after ${KAFKA_CLUSTER_START_TIMEOUT}s (KAFKA_CLUSTER_START_TIMEOUT)"
      return 1
    fi
    sleep 2
  done
  log "kafka: cluster ready, $STACK_CLUSTER_SIZE brokers registered, bootstrap $(kafka_cluster_bootstrap) ($((SECONDS - start))s)"
}

kafka_cluster_stop() {
  # shellcheck disable=SC2046  # node numbers
  stop_nodes kafka $(kafka_cluster_nodes)
}

kafka_cluster_pids() { cluster_pids kafka; }
kafka_cluster_ports_line() { cluster_ports_line kafka; }
# kafka_cluster_down WIPE: stop every node (and delete their state when WIPE is 1).
kafka_cluster_down() { cluster_down kafka "$1"; }

kafka_cluster_env() {
  printf 'STOCKFLIGHT_KAFKA_BROKERS=%s\n' "$(kafka_cluster_bootstrap)"
  printf 'STOCKFLIGHT_STACK_KAFKA_PID_FILES=%s\n' "$(cluster_pid_files kafka)"
}

# kafka_cluster_logs [N]: log files of node N (all nodes when N is empty).
kafka_cluster_logs() {
  local n
  for n in ${1:-$(kafka_cluster_nodes)}; do
    printf '%s\n' "$(kafka_node_dir "$n")/logs/server.log" "$(kafka_node_dir "$n")/logs/stdout.log"
  done
}

# kafka_cluster_status: one line for the cluster, one per node.
kafka_cluster_status() {
  local n up=0 state brokers=0 lines=()
  for n in $(kafka_cluster_nodes); do
    if kafka_node_running "$n"; then
      up=$((up + 1))
      if kafka_node_ready "$n"; then state=ready; else state=not-ready; fi
      lines+=("$(printf '  %-12s %-10s %-12s 127.0.0.1  ports %s' "kafka-$n" "$state" "pid $(pid_of "$(kafka_node_dir "$n")/pid")" "$(ports_line "kafka-$n")")")
    else
      lines+=("$(printf '  %-12s %-10s' "kafka-$n" stopped)")
    fi
  done
  ((up)) && brokers=$(kafka_cluster_brokers)
  if ((up == 0)); then
    state=stopped
  elif ((up == STACK_CLUSTER_SIZE && brokers == STACK_CLUSTER_SIZE)); then
    state=ready
  else
    state=degraded
  fi
  printf '%-10s %-10s cluster: %s/%s nodes running, %s brokers registered\n' kafka "$state" "$up" "$STACK_CLUSTER_SIZE" "$brokers"
  printf '%s\n' "${lines[@]}"
}
