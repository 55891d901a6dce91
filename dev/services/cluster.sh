# shellcheck shell=bash
# Cluster mode of dev/stack (`--cluster`, STOCKFLIGHT_STACK_CLUSTER=1): shared helpers.
# A service with a cluster implementation (kafka, cassandra) defines SVC_cluster_*
# functions in dev/services/SVC-cluster.sh; svc_impl (dev/lib.sh) picks them in cluster
# mode. Each node has its own directory $STATE/SVC-N (N = 1..3) with pid, ports, conf/,
# data/ and logs/, exactly like a single-node service directory.
# $STATE/stack-mode holds "cluster" once a cluster was started in the state dir, so
# later calls without --cluster (down, status, env, nodetool, up) act on the cluster.

STACK_CLUSTER_SIZE=3
# addr:port pairs handed out during this run on any address (see node_port).
STACK_ASSIGNED_ADDR_PORTS=()

stack_mode_file() { printf '%s/stack-mode' "$STATE_DIR"; }

# stack_resolve_mode REQUEST: set STACK_CLUSTER from REQUEST (--cluster, else
# $STOCKFLIGHT_STACK_CLUSTER): 1 = cluster, 0 = single node, empty = whatever the state
# dir holds (cluster if $STATE/stack-mode says so).
# shellcheck disable=SC2034  # STACK_CLUSTER is read in dev/lib.sh and dev/stack
stack_resolve_mode() {
  case ${1,,} in
    1 | yes | true | on) STACK_CLUSTER=1 ;;
    0 | no | false | off) STACK_CLUSTER=0 ;;
    "")
      STACK_CLUSTER=0
      if [[ -f $(stack_mode_file) && $(<"$(stack_mode_file)") == cluster ]]; then STACK_CLUSTER=1; fi
      ;;
    *) die "STOCKFLIGHT_STACK_CLUSTER must be 1 or 0, not '$1'" ;;
  esac
}

# stack_mark_cluster: remember that this state dir holds a cluster.
stack_mark_cluster() { printf 'cluster\n' >"$(stack_mode_file)"; }

# stack_unmark_cluster_if_gone: forget cluster mode once no cluster node directory is left.
stack_unmark_cluster_if_gone() {
  local svc
  for svc in "${STACK_SERVICES[@]}"; do
    if declare -F "${svc}_cluster_exists" >/dev/null && "${svc}_cluster_exists"; then return 0; fi
  done
  rm -f "$(stack_mode_file)"
}

# has_cluster_impl SVC: SVC can run as a cluster.
has_cluster_impl() { declare -F "${1}_cluster_running" >/dev/null; }

# cluster_node_dirs_exist SVC: some $STATE/SVC-N directory exists.
cluster_node_dirs_exist() {
  local n
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do
    [[ -d $STATE_DIR/$1-$n ]] && return 0
  done
  return 1
}

# csv_item CSV N: the N-th (1-based) comma-separated item of CSV (empty if none).
csv_item() {
  local items=()
  IFS=, read -r -a items <<<"$1"
  printf '%s' "${items[$2 - 1]:-}"
}

# ---------------------------------------------------------------- ports on any loopback address

# addr_port_free ADDR PORT: nothing listens on ADDR:PORT (or on the wildcard address).
addr_port_free() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# pick_port_on "ADDR..." [EXCLUDED...]: a port the kernel hands out for bind(0) on the
# first ADDR that is also free on every other ADDR, not in EXCLUDED.
pick_port_on() {
  python3 - "$@" <<'PY'
import socket, sys
addrs = sys.argv[1].split()
excluded = {int(p) for p in sys.argv[2:]}
held = []
def bind(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s
try:
    for _ in range(64):
        first = bind(addrs[0], 0)
        if first is None:
            sys.exit(1)
        port = first.getsockname()[1]
        if port in excluded:
            continue
        if all(bind(a, port) is not None for a in addrs[1:]):
            print(port)
            sys.exit(0)
    sys.exit(1)
finally:
    for s in held:
        s.close()
PY
}

# addr_port_assigned ADDR PORT: ADDR:PORT was handed out earlier in this run (ports of
# single-node services, all on 127.0.0.1, count too).
addr_port_assigned() {
  if [[ $1 == 127.0.0.1 ]] && port_in_list "$2" "${STACK_ASSIGNED_PORTS[@]}"; then return 0; fi
  port_in_list "$1:$2" "${STACK_ASSIGNED_ADDR_PORTS[@]}"
}

# node_port NODE NAME DEFAULT OVERRIDE KEEP ADDR...: decide port NAME of cluster node
# NODE ($STATE/NODE), which must be free on every ADDR; the result is in NODE_PORT.
# KEEP=1 (other nodes of the cluster run and know this port): the port recorded in
# $STATE/NODE/ports, no other. Otherwise, as for single nodes: OVERRIDE (from the
# environment), else with --ephemeral-ports the recorded port if still free or a new
# kernel-chosen one, else DEFAULT. Dies at once if the port is taken.
# shellcheck disable=SC2034  # NODE_PORT is the result, read by the callers
NODE_PORT=
# shellcheck disable=SC2034
node_port() {
  local node=$1 name=$2 def=$3 override=$4 keep=$5 port="" src old a holder free
  shift 5
  old=$(port_of "$node" "$name")
  if ((keep)) && [[ -n $old ]]; then
    port=$old
    src="recorded; the running nodes use it"
    [[ -z $override || $override == "$old" ]] || warn "$node: keeping $name port $old (other nodes run with it), not $override"
  elif [[ -n $override ]]; then
    port=$override
    src="from the environment"
  elif [[ $STACK_EPHEMERAL == 1 ]]; then
    if [[ -n $old ]]; then
      free=1
      for a in "$@"; do
        if addr_port_assigned "$a" "$old" || ! addr_port_free "$a" "$old"; then free=0; fi
      done
      ((free)) && port=$old
    fi
    if [[ -z $port ]]; then
      port=$(pick_port_on "$*" "${STACK_ASSIGNED_PORTS[@]}" "${STACK_ASSIGNED_ADDR_PORTS[@]##*:}") ||
        die "$node: could not pick a free $name port on $*"
    fi
    src="ephemeral"
  else
    port=$def
    src="default"
  fi
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "$node: invalid $name port '$port' ($src)"
  fi
  for a in "$@"; do
    if addr_port_assigned "$a" "$port"; then
      die "$node: $name port $a:$port ($src) is already given to another service in this run; use --ephemeral-ports"
    fi
    if ! addr_port_free "$a" "$port"; then
      holder=$(port_holder "$port")
      die "$node: $name port $a:$port ($src) is already in use by another process${holder:+ [$holder]}
  -> stop that process, or run with --ephemeral-ports (STOCKFLIGHT_STACK_EPHEMERAL=1); see dev/stack --help for the port variables"
    fi
  done
  for a in "$@"; do
    STACK_ASSIGNED_ADDR_PORTS+=("$a:$port")
    [[ $a == 127.0.0.1 ]] && STACK_ASSIGNED_PORTS+=("$port")
  done
  NODE_PORT=$port
}

# tcp_open_on ADDR PORT: something accepts TCP connections on ADDR:PORT.
tcp_open_on() {
  # shellcheck disable=SC2016  # $1 and $2 are for the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# ---------------------------------------------------------------- generated config files

# conf_set FILE SEP KEY=VALUE...: in a generated config file of "KEY<SEP>VALUE" lines
# (SEP "=" for .properties, ": " for top-level YAML scalars), replace each KEY's line,
# or append it when absent. Indented and comment lines are never touched.
conf_set() {
  local file=$1 sep=$2 pair key line out=""
  local -A want=() seen=()
  local order=()
  shift 2
  for pair in "$@"; do
    key=${pair%%=*}
    want[$key]=${pair#*=}
    order+=("$key")
  done
  while IFS= read -r line || [[ -n $line ]]; do
    key=${line%%"$sep"*}
    if [[ $line == *"$sep"* && $key != [[:space:]#]* && -n ${want[$key]+set} ]]; then
      line="$key$sep${want[$key]}"
      seen[$key]=1
    fi
    out+=$line$'\n'
  done <"$file"
  for key in "${order[@]}"; do
    [[ -n ${seen[$key]+set} ]] || out+="$key$sep${want[$key]}"$'\n'
  done
  printf '%s' "$out" >"$file"
}

# stop_nodes SVC N...: stop the given nodes of SVC in parallel (SIGTERM, wait, SIGKILL).
stop_nodes() {
  local svc=$1 n pids=()
  shift
  for n in "$@"; do
    stop_pid "$STATE_DIR/$svc-$n/pid" "$STATE_DIR/$svc-$n" "$svc-$n" &
    pids+=("$!")
  done
  ((${#pids[@]} == 0)) || wait "${pids[@]}"
}

# The node-generic parts of SVC_cluster_pids, _ports_line, _down and _env (dev/stack calls
# them by the SVC_cluster_ prefix; each service's file delegates here).

# cluster_pids SVC: "SVC-1 pid P1, SVC-2 pid P2, ..." of every node (for messages).
cluster_pids() {
  local n out=()
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do out+=("$1-$n pid $(pid_of "$STATE_DIR/$1-$n/pid")"); done
  (IFS=,; printf '%s' "${out[*]}") | sed 's/,/, /g'
}

# cluster_ports_line SVC: "SVC-1: a=1 b=2; SVC-2: ..." of every node.
cluster_ports_line() {
  local n out=()
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do out+=("$1-$n: $(ports_line "$1-$n")"); done
  (IFS=';'; printf '%s' "${out[*]}") | sed 's/;/; /g'
}

# cluster_pid_files SVC: the pid files of every node, comma-separated.
cluster_pid_files() {
  local n out=()
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do out+=("$STATE_DIR/$1-$n/pid"); done
  (IFS=,; printf '%s' "${out[*]}")
}

# cluster_down SVC WIPE: stop every node of SVC (SVC_cluster_stop) and say which ran; delete
# their state too when WIPE is 1.
cluster_down() {
  local svc=$1 wipe=$2 n running=()
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do "${svc}_node_running" "$n" && running+=("$n"); done
  "${svc}_cluster_stop"
  for ((n = 1; n <= STACK_CLUSTER_SIZE; n++)); do
    if port_in_list "$n" "${running[@]}"; then log "$svc-$n: stopped"; else log "$svc-$n: not running"; fi
    if ((wipe)) && [[ -d $STATE_DIR/$svc-$n ]]; then
      log "$svc-$n: deleting $STATE_DIR/$svc-$n"
      rm -rf "${STATE_DIR:?}/$svc-$n"
    fi
  done
}
