# shellcheck shell=bash
# Cluster mode: a 3-node Apache Cassandra 5.0 ring, node N on 127.0.0.N (N = 1..3).
# Reuses dev/services/cassandra.sh (generated config, JVM flags, jars) for every node and
# changes only what differs: addresses, tokens, heap, hinted handoff.
# State: $STATE/cassandra-N/{pid,ports,conf/,data/,logs/system.log,logs/stdout.log,tmp/};
#        $STATE/cassandra-1/classpath is shared by the three nodes.
# Ports: every node listens on its own address, so all three share one CQL (native) port
# and one storage port (a ring needs the same storage_port everywhere; drivers such as
# the scylla crate reach peers on the port of their first contact point); each node has
# its own JMX port on 127.0.0.1. Node 1 is the seed. Tokens are explicit and evenly
# spaced (4 per node, 12 in the ring), and fresh nodes join without streaming
# (auto_bootstrap: false), so the three can start together.

CASSANDRA_CLUSTER_START_TIMEOUT=${CASSANDRA_CLUSTER_START_TIMEOUT:-480}
CASSANDRA_CLUSTER_XMS=${CASSANDRA_CLUSTER_XMS:-512M}
CASSANDRA_CLUSTER_XMX=${CASSANDRA_CLUSTER_XMX:-768M}
# Tokens per node. Fixed: a node keeps the tokens of its first start.
CASSANDRA_CLUSTER_TOKENS_PER_NODE=4

cassandra_node_dir() { printf '%s/cassandra-%s' "$STATE_DIR" "$1"; }
cassandra_node_addr() { printf '127.0.0.%s' "$1"; }
cassandra_node_running() { pid_alive "$(cassandra_node_dir "$1")/pid" "$(cassandra_node_dir "$1")"; }
cassandra_node_ready() {
  grep -q 'Starting listening for CQL clients on' "$(cassandra_node_dir "$1")/logs/system.log" 2>/dev/null &&
    tcp_open_on "$(cassandra_node_addr "$1")" "$(port_of "cassandra-$1" native)"
}
cassandra_cluster_nodes() { seq 1 "$STACK_CLUSTER_SIZE"; }

cassandra_cluster_running() {
  local n
  for n in $(cassandra_cluster_nodes); do cassandra_node_running "$n" || return 1; done
}
cassandra_cluster_listed() {
  local n
  for n in $(cassandra_cluster_nodes); do cassandra_node_running "$n" && return 0; done
  return 1
}
cassandra_cluster_exists() { cluster_node_dirs_exist cassandra; }

# cassandra_cluster_first_running: the number of the first running node (1 if none).
cassandra_cluster_first_running() {
  local n
  for n in $(cassandra_cluster_nodes); do
    if cassandra_node_running "$n"; then
      printf '%s' "$n"
      return 0
    fi
  done
  printf '1'
}

# cassandra_node_nodetool N TIMEOUT ARGS...: nodetool against node N over its local JMX
# port (TIMEOUT seconds at most; 0 = no limit).
cassandra_node_nodetool() {
  local n=$1 to=$2 d cp flags=() lim=()
  shift 2
  d=$(cassandra_node_dir "$n")
  cp=$(cassandra_node_dir 1)/classpath
  [[ -s $cp && -f $d/conf/logback-tools.xml ]] || die "cassandra-$n was never started here; run dev/stack up --cluster cassandra"
  ((to > 0)) && lim=(timeout "$to")
  mapfile -t flags < <(cassandra_java17_flags)
  "${lim[@]}" java "${flags[@]}" -cp "$(<"$cp")" -Dcassandra.logdir="$d/logs" \
    -Dlogback.configurationFile="file://$d/conf/logback-tools.xml" \
    org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$(port_of "cassandra-$n" jmx)" "$@"
}

# cassandra_cluster_nodetool [--node N] ARGS...: `dev/stack nodetool` in cluster mode:
# against node N, by default node 1 (or the first running node when node 1 is down).
cassandra_cluster_nodetool() {
  local n
  if [[ ${1:-} == --node ]]; then
    n=${2:?--node needs a node number (1-$STACK_CLUSTER_SIZE)}
    shift 2
  elif [[ ${1:-} == --node=* ]]; then
    n=${1#*=}
    shift
  else
    n=$(cassandra_cluster_first_running)
    [[ $n == 1 ]] || log "nodetool: cassandra-1 is not running; asking cassandra-$n"
  fi
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > STACK_CLUSTER_SIZE)); then
    die "--node must be 1-$STACK_CLUSTER_SIZE, not '$n'"
  fi
  cassandra_node_nodetool "$n" 0 "$@"
}

# cassandra_cluster_ring_up: how many of the ring's nodes are Up and Normal (UN), as a
# running node (node 1 if it runs) sees them in `nodetool status`.
cassandra_cluster_ring_up() {
  local n out count=0
  [[ -s $(cassandra_node_dir 1)/classpath ]] || { printf '0'; return 0; }
  out=$(cassandra_node_nodetool "$(cassandra_cluster_first_running)" 60 status 2>/dev/null) || true
  for n in $(cassandra_cluster_nodes); do
    grep -qE "^UN +$(cassandra_node_addr "$n" | sed 's/\./\\./g')( |$)" <<<"$out" && count=$((count + 1))
  done
  printf '%s' "$count"
}

# cassandra_cluster_schema_versions: how many schema versions the nodes report (1 = agreement).
cassandra_cluster_schema_versions() {
  local out
  out=$(cassandra_node_nodetool "$(cassandra_cluster_first_running)" 60 describecluster 2>/dev/null) || true
  grep -cE '^[[:space:]]+[0-9a-f]{8}-[0-9a-f-]{27}: \[' <<<"$out" || true
}

cassandra_cluster_ready() {
  local n
  for n in $(cassandra_cluster_nodes); do cassandra_node_ready "$n" || return 1; done
  (($(cassandra_cluster_ring_up) == STACK_CLUSTER_SIZE))
}

# cassandra_cluster_prepare: clear stale pid files of the nodes that do not run and decide
# their ports (the recorded ones while any node runs).
cassandra_cluster_prepare() {
  local n keep=0 addrs=() native storage
  cassandra_cluster_listed && keep=1
  for n in $(cassandra_cluster_nodes); do
    cassandra_node_running "$n" && continue
    stop_pid "$(cassandra_node_dir "$n")/pid" "$(cassandra_node_dir "$n")" "cassandra-$n"
    addrs+=("$(cassandra_node_addr "$n")")
  done
  ((${#addrs[@]})) || return 0
  if ((keep)); then
    # The shared ports come from a running node; check them on the others' addresses.
    n=$(cassandra_cluster_first_running)
    [[ -n $(port_of "cassandra-$n" native) && -n $(port_of "cassandra-$n" storage) ]] ||
      die "cassandra-$n runs without recorded ports; stop the cluster first (dev/stack down cassandra)"
    node_port "cassandra-$n" native 9042 "" 1 "${addrs[@]}"
    native=$NODE_PORT
    node_port "cassandra-$n" storage 7000 "" 1 "${addrs[@]}"
    storage=$NODE_PORT
  else
    # One CQL port and one storage port free on all three addresses.
    mapfile -t addrs < <(for n in $(cassandra_cluster_nodes); do cassandra_node_addr "$n"; echo; done)
    node_port cassandra-1 native 9042 "${CASSANDRA_CLUSTER_PORT:-}" 0 "${addrs[@]}"
    native=$NODE_PORT
    node_port cassandra-1 storage 7000 "${CASSANDRA_CLUSTER_STORAGE_PORT:-}" 0 "${addrs[@]}"
    storage=$NODE_PORT
  fi
  for n in $(cassandra_cluster_nodes); do
    cassandra_node_running "$n" && continue
    if ((keep)) && [[ -z $(port_of "cassandra-$n" jmx) ]]; then
      die "cassandra-$n has no recorded ports but other nodes run; stop the cluster first (dev/stack down cassandra)"
    fi
    node_port "cassandra-$n" jmx $((7199 + 100 * (n - 1))) "$(csv_item "${CASSANDRA_CLUSTER_JMX_PORTS:-}" "$n")" 0 127.0.0.1
    mkdir -p "$(cassandra_node_dir "$n")"
    printf 'native=%s\nstorage=%s\njmx=%s\n' "$native" "$storage" "$NODE_PORT" >"$(cassandra_node_dir "$n")/ports"
  done
}

# cassandra_cluster_tokens N: node N's tokens, evenly spaced over the Murmur3 range and
# interleaved with the other nodes' (so each node owns a third of the ring).
cassandra_cluster_tokens() {
  python3 - "$1" "$STACK_CLUSTER_SIZE" "$CASSANDRA_CLUSTER_TOKENS_PER_NODE" <<'PY'
import sys
node, nodes, per_node = map(int, sys.argv[1:])
step = 2**64 // (nodes * per_node)
print(",".join(str(-2**63 + (i * nodes + node - 1) * step) for i in range(per_node)))
PY
}

# cassandra_cluster_write_config N: the single node's config (cassandra_write_config)
# with node N's settings. The seed (127.0.0.1, node 1) is already the single node's.
cassandra_cluster_write_config() {
  local n=$1 d addr tokens
  d=$(cassandra_node_dir "$n")
  addr=$(cassandra_node_addr "$n")
  tokens=$(cassandra_cluster_tokens "$n") || return 1
  cassandra_write_config "$d" "$(port_of "cassandra-$n" native)" "$(port_of "cassandra-$n" storage)"
  conf_set "$d/conf/cassandra.yaml" ": " \
    "cluster_name=stockflight-cluster" \
    "num_tokens=$CASSANDRA_CLUSTER_TOKENS_PER_NODE" \
    "initial_token=\"$tokens\"" \
    "listen_address=$addr" \
    "rpc_address=$addr" \
    "auto_bootstrap=false" \
    "hinted_handoff_enabled=true"
  printf '# Cluster node %s of %s (dev/services/cassandra-cluster.sh)\n' "$n" "$STACK_CLUSTER_SIZE" >>"$d/conf/cassandra.yaml"
}

# cassandra_cluster_launch N: launch node N (config already written; no waiting).
cassandra_cluster_launch() {
  local n=$1 d cp addr flags=()
  d=$(cassandra_node_dir "$n")
  cp=$(cassandra_node_dir 1)/classpath
  addr=$(cassandra_node_addr "$n")
  mapfile -t flags < <(cassandra_jvm_flags "$d" "$(port_of "cassandra-$n" jmx)" "$cp")
  rotate_log "$d/logs/system.log"
  rotate_log "$d/logs/stdout.log"
  log "cassandra-$n: starting on $addr:$(port_of "cassandra-$n" native) (storage $(port_of "cassandra-$n" storage), jmx 127.0.0.1:$(port_of "cassandra-$n" jmx))"
  launch "$d/pid" "$d" "$d/logs/stdout.log" \
    java "-Xms$CASSANDRA_CLUSTER_XMS" "-Xmx$CASSANDRA_CLUSTER_XMX" "${flags[@]}" \
    -cp "$(<"$cp")" \
    org.apache.cassandra.service.CassandraDaemon
}

# cassandra_cluster_start: write every stopped node's config; launch the seed (node 1) if
# it is stopped. The other stopped nodes are launched by cassandra_cluster_wait as soon
# as the seed accepts gossip connections.
cassandra_cluster_start() {
  local n d
  # Runs as an `if` condition (run_step), where errexit is off: fail explicitly.
  mkdir -p "$(cassandra_node_dir 1)"
  maven_classpath cassandra-1 "$CASSANDRA_POM" >/dev/null || return 1
  for n in $(cassandra_cluster_nodes); do
    cassandra_node_running "$n" && continue
    d=$(cassandra_node_dir "$n")
    mkdir -p "$d/conf" "$d/data" "$d/logs" "$d/tmp" "$d/triggers"
    cassandra_cluster_write_config "$n" || return 1
  done
  cassandra_node_running 1 || cassandra_cluster_launch 1
}

CASSANDRA_WAIT_NODE=
cassandra_wait_node_ready() { cassandra_node_ready "$CASSANDRA_WAIT_NODE"; }
cassandra_wait_node_alive() { cassandra_node_running "$CASSANDRA_WAIT_NODE"; }
cassandra_wait_seed_gossip() { tcp_open_on 127.0.0.1 "$(port_of cassandra-1 storage)"; }

# cassandra_cluster_node_failed N WHY: report why node N did not come up.
cassandra_cluster_node_failed() {
  local d
  d=$(cassandra_node_dir "$1")
  show_logs 40 "$d/logs/system.log" "$d/logs/stdout.log"
  log "cassandra-$1: $2"
}

# cassandra_cluster_wait: launch the stopped non-seed nodes once the seed listens for
# gossip, wait until every node logged "Starting listening for CQL clients on" and
# accepts CQL connections, then until all three are UN and agree on the schema.
cassandra_cluster_wait() {
  local n rc deadline left start=$SECONDS up versions
  deadline=$((SECONDS + CASSANDRA_CLUSTER_START_TIMEOUT))
  CASSANDRA_WAIT_NODE=1
  rc=0
  wait_until "$CASSANDRA_CLUSTER_START_TIMEOUT" cassandra_wait_seed_gossip cassandra_wait_node_alive || rc=$?
  case $rc in
    0) ;;
    2) cassandra_cluster_node_failed 1 "the process died during start-up"; return 1 ;;
    *) cassandra_cluster_node_failed 1 "no gossip (storage port) after ${CASSANDRA_CLUSTER_START_TIMEOUT}s (CASSANDRA_CLUSTER_START_TIMEOUT)"; return 1 ;;
  esac
  for n in $(cassandra_cluster_nodes); do
    cassandra_node_running "$n" || cassandra_cluster_launch "$n"
  done
  for n in $(cassandra_cluster_nodes); do
    CASSANDRA_WAIT_NODE=$n
    left=$((deadline - SECONDS))
    rc=0
    wait_until "$((left > 0 ? left : 1))" cassandra_wait_node_ready cassandra_wait_node_alive || rc=$?
    case $rc in
      0) ;;
      2) cassandra_cluster_node_failed "$n" "the process died during start-up"; return 1 ;;
      *) cassandra_cluster_node_failed "$n" "not ready after ${CASSANDRA_CLUSTER_START_TIMEOUT}s (CASSANDRA_CLUSTER_START_TIMEOUT)"; return 1 ;;
    esac
  done
  while :; do
    up=$(cassandra_cluster_ring_up)
    if ((up == STACK_CLUSTER_SIZE)); then
      versions=$(cassandra_cluster_schema_versions)
      ((versions == 1)) && break
    fi
    for n in $(cassandra_cluster_nodes); do
      if ! cassandra_node_running "$n"; then
        cassandra_cluster_node_failed "$n" "the process died"
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      cassandra_node_nodetool "$(cassandra_cluster_first_running)" 60 status >&2 || true
      log "cassandra: $up of $STACK_CLUSTER_SIZE nodes UN (schema versions: ${versions:-?}) after ${CASSANDRA_CLUSTER_START_TIMEOUT}s (CASSANDRA_CLUSTER_START_TIMEOUT)"
      return 1
    fi
    sleep 3
  done
  log "cassandra: ring ready, $STACK_CLUSTER_SIZE nodes UN, one schema version, contact points $(cassandra_cluster_contact_points) ($((SECONDS - start))s)"
}

cassandra_cluster_stop() {
  # shellcheck disable=SC2046  # node numbers
  stop_nodes cassandra $(cassandra_cluster_nodes)
}

cassandra_cluster_contact_points() {
  local n out=()
  for n in $(cassandra_cluster_nodes); do out+=("$(cassandra_node_addr "$n"):$(port_of "cassandra-$n" native)"); done
  (IFS=,; printf '%s' "${out[*]}")
}

cassandra_cluster_pids() { cluster_pids cassandra; }
cassandra_cluster_ports_line() { cluster_ports_line cassandra; }
# cassandra_cluster_down WIPE: stop every node (and delete their state when WIPE is 1).
cassandra_cluster_down() { cluster_down cassandra "$1"; }

cassandra_cluster_env() {
  printf 'STOCKFLIGHT_CASSANDRA_NODES=%s\n' "$(cassandra_cluster_contact_points)"
  printf 'STOCKFLIGHT_STACK_CASSANDRA_PID_FILES=%s\n' "$(cluster_pid_files cassandra)"
}

# cassandra_cluster_logs [N]: log files of node N (all nodes when N is empty).
cassandra_cluster_logs() {
  local n
  for n in ${1:-$(cassandra_cluster_nodes)}; do
    printf '%s\n' "$(cassandra_node_dir "$n")/logs/system.log" "$(cassandra_node_dir "$n")/logs/stdout.log"
  done
}

# cassandra_cluster_status: one line for the ring, one per node.
cassandra_cluster_status() {
  local n up=0 state ring=0 lines=()
  for n in $(cassandra_cluster_nodes); do
    if cassandra_node_running "$n"; then
      up=$((up + 1))
      if cassandra_node_ready "$n"; then state=ready; else state=not-ready; fi
      lines+=("$(printf '  %-12s %-10s %-12s %-10s ports %s' "cassandra-$n" "$state" "pid $(pid_of "$(cassandra_node_dir "$n")/pid")" "$(cassandra_node_addr "$n")" "$(ports_line "cassandra-$n")")")
    else
      lines+=("$(printf '  %-12s %-10s' "cassandra-$n" stopped)")
    fi
  done
  ((up)) && ring=$(cassandra_cluster_ring_up)
  if ((up == 0)); then
    state=stopped
  elif ((up == STACK_CLUSTER_SIZE && ring == STACK_CLUSTER_SIZE)); then
    state=ready
  else
    state=degraded
  fi
  printf '%-10s %-10s ring: %s/%s nodes running, %s UN (nodetool status on cassandra-%s)\n' cassandra "$state" "$up" "$STACK_CLUSTER_SIZE" "$ring" "$(cassandra_cluster_first_running)"
  printf '%s\n' "${lines[@]}"
}
