# shellcheck shell=bash
# Shared helpers for dev/stack (sourced, never executed). Small functions only;
# everything service-specific lives in dev/services/<svc>.sh.

STACK_DEV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
STACK_REPO_ROOT=$(dirname "$STACK_DEV_DIR")
STACK_SERVICES=(kafka cassandra swift)
# Set by stack_init_state: absolute path of the state directory.
STATE_DIR=
STACK_EPHEMERAL=${STOCKFLIGHT_STACK_EPHEMERAL:-0}
STACK_POLL_INTERVAL=${STOCKFLIGHT_STACK_POLL_INTERVAL:-0.5}
STACK_STOP_TIMEOUT=${STOCKFLIGHT_STACK_STOP_TIMEOUT:-60}
# Ports handed out during this run (so two services never get the same one).
STACK_ASSIGNED_PORTS=()
# 1 in cluster mode (dev/stack --cluster; see dev/services/cluster.sh).
STACK_CLUSTER=0

# ---------------------------------------------------------------- messages

log()  { printf '[stack] %s\n' "$*" >&2; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Print the last lines of each log file that exists, with its path.
show_logs() {
  local n=$1 f
  shift
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf '[stack] ---- last %s lines of %s ----\n' "$n" "$f" >&2
    tail -n "$n" "$f" | cut -c1-500 >&2 || true
  done
  for f in "$@"; do
    [[ -e $f ]] && printf '[stack] log: %s\n' "$f" >&2
  done
  return 0
}

# ---------------------------------------------------------------- state

# Resolve STOCKFLIGHT_STATE_DIR (default <repo>/.stockflight) to an absolute path.
stack_init_state() {
  local dir=${STOCKFLIGHT_STATE_DIR:-$STACK_REPO_ROOT/.stockflight}
  mkdir -p "$dir" || die "cannot create state dir $dir"
  STATE_DIR=$(cd "$dir" && pwd -P)
  # Keep git from ever picking up the state dir (it may sit inside the repo).
  [[ -e $STATE_DIR/.gitignore ]] || printf '*\n' >"$STATE_DIR/.gitignore"
  export STOCKFLIGHT_STATE_DIR=$STATE_DIR
}

svc_dir() { printf '%s/%s' "$STATE_DIR" "$1"; }

# Take the state dir's lock (fd 9) so concurrent up/down calls queue up. Launched
# services never inherit fd 9 (see launch).
stack_lock() {
  local lock="$STATE_DIR/.stack-lock"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$lock"
  if ! flock -n 9; then
    log "another dev/stack up/down holds $lock; waiting for it"
    flock -w 900 9 || die "timed out waiting for $lock"
  fi
}

# ---------------------------------------------------------------- ports

# port_of SVC NAME: the port NAME of SVC recorded in $STATE/SVC/ports (empty if none).
port_of() {
  local file line
  file="$(svc_dir "$1")/ports"
  [[ -f $file ]] || return 0
  while IFS= read -r line; do
    if [[ $line == "$2="* ]]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$file"
}

# ports_line SVC: "a=1 b=2" from the ports file.
ports_line() {
  local file
  file="$(svc_dir "$1")/ports"
  [[ -f $file ]] || return 0
  tr '\n' ' ' <"$file" | sed 's/ $//'
}

# port_free PORT: true if nothing listens on 127.0.0.1:PORT (or on the wildcard address).
# Binds with SO_REUSEADDR, as the servers do, so TIME_WAIT leftovers do not count.
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# pick_free_port [EXCLUDED...]: a port the kernel hands out for bind(0), not in EXCLUDED.
pick_free_port() {
  python3 - "$@" <<'PY'
import socket, sys
excluded = {int(p) for p in sys.argv[1:]}
held = []
try:
    for _ in range(64):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        held.append(s)
        port = s.getsockname()[1]
        if port not in excluded:
            print(port)
            sys.exit(0)
    sys.exit(1)
finally:
    for s in held:
        s.close()
PY
}

# port_holder PORT: a short description of who listens on PORT (best effort).
port_holder() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Htlnp "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -n 3 | paste -sd ';' -
}

# resolve_ports SVC: decide the ports of SVC (not running) and write $STATE/SVC/ports.
# Reads "NAME ENVVAR DEFAULT" lines from SVC_ports_spec. Priority: ENVVAR, then (with
# --ephemeral-ports) the port remembered from last time if still free or a new
# kernel-chosen one, then DEFAULT. Dies at once if a port is taken.
resolve_ports() {
  local svc=$1 name var def port src out="" old holder
  while read -r name var def; do
    [[ -n $name ]] || continue
    old=$(port_of "$svc" "$name")
    if [[ -n ${!var:-} ]]; then
      port=${!var}
      src="from \$$var"
    elif [[ $STACK_EPHEMERAL == 1 ]]; then
      if [[ -n $old ]] && ! port_in_list "$old" "${STACK_ASSIGNED_PORTS[@]}" && port_free "$old"; then
        port=$old
      else
        port=$(pick_free_port "${STACK_ASSIGNED_PORTS[@]}") || die "could not pick a free port"
      fi
      src="ephemeral"
    else
      port=$def
      src="default"
    fi
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
      die "$svc: invalid $name port '$port' ($src)"
    fi
    if port_in_list "$port" "${STACK_ASSIGNED_PORTS[@]}"; then
      die "$svc: $name port $port ($src) is already given to another service in this run; set $var=<port> or use --ephemeral-ports"
    fi
    if ! port_free "$port"; then
      holder=$(port_holder "$port")
      die "$svc: $name port 127.0.0.1:$port ($src) is already in use by another process${holder:+ [$holder]}
  -> stop that process, choose another port with $var=<port>, or run with --ephemeral-ports (STOCKFLIGHT_STACK_EPHEMERAL=1)"
    fi
    STACK_ASSIGNED_PORTS+=("$port")
    out+="$name=$port"$'\n'
  done < <("${svc}_ports_spec")
  mkdir -p "$(svc_dir "$svc")"
  printf '%s' "$out" >"$(svc_dir "$svc")/ports"
}

port_in_list() {
  local p=$1 x
  shift
  for x in "$@"; do [[ $x == "$p" ]] && return 0; done
  return 1
}

# tcp_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
tcp_open() {
  # shellcheck disable=SC2016  # $1 is for the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ---------------------------------------------------------------- processes

# pid_alive PIDFILE TAG: the pid in PIDFILE is alive and is ours (its environment
# carries STOCKFLIGHT_STACK_TAG=TAG), so a stale pid file whose pid was reused after
# a reboot, or a zombie, does not count.
pid_alive() {
  local pidfile=$1 tag=$2 pid envs
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -d /proc/$pid ]]; then
    envs=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || return 1
    [[ $'\n'$envs$'\n' == *$'\n'"STOCKFLIGHT_STACK_TAG=$tag"$'\n'* ]] || return 1
  fi
  return 0
}

pid_of() {
  [[ -s $1 ]] && cat "$1"
  return 0
}

# launch PIDFILE TAG LOGFILE CMD...: start CMD detached (own session, stdin from
# /dev/null, stdout+stderr appended to LOGFILE, every other inherited file descriptor
# closed so callers' pipes and our lock are never held open by a service,
# STOCKFLIGHT_STACK_TAG=TAG in its environment) and record its pid in PIDFILE once
# it is exec'd.
launch() {
  local pidfile=$1 tag=$2 logfile=$3 i
  shift 3
  rm -f "$pidfile" "$pidfile.tmp"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  # shellcheck disable=SC2016  # $$, $1 and $f are for the inner bash
  STOCKFLIGHT_STACK_TAG=$tag setsid -f bash -c '
    for f in /proc/$$/fd/*; do
      f=${f##*/}
      if [ "$f" -gt 2 ] 2>/dev/null; then eval "exec $f>&-"; fi
    done
    echo $$ >"$1.tmp" && mv -f "$1.tmp" "$1" || exit 1
    shift
    exec "$@"' stack-launch "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&-
  for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.05
  done
  die "could not start: $* (no pid after 5 s; see $logfile)"
}

# wait_until TIMEOUT CHECK [ALIVE]: poll CHECK every STACK_POLL_INTERVAL seconds.
# Returns 0 once CHECK succeeds, 2 as soon as ALIVE (if given) fails, 1 on timeout.
wait_until() {
  local timeout=$1 check=$2 alive=${3:-} deadline
  deadline=$((SECONDS + timeout))
  while :; do
    if "$check"; then return 0; fi
    if [[ -n $alive ]] && ! "$alive"; then
      "$check" && return 0
      return 2
    fi
    ((SECONDS < deadline)) || return 1
    sleep "$STACK_POLL_INTERVAL"
  done
}

# stop_pid PIDFILE TAG LABEL [TIMEOUT]: SIGTERM, wait, then SIGKILL. Removes PIDFILE.
stop_pid() {
  local pidfile=$1 tag=$2 label=$3 timeout=${4:-$STACK_STOP_TIMEOUT} pid deadline
  if ! pid_alive "$pidfile" "$tag"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(<"$pidfile")
  log "stopping $label (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while pid_alive "$pidfile" "$tag" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if pid_alive "$pidfile" "$tag"; then
    warn "$label (pid $pid) still alive after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while pid_alive "$pidfile" "$tag" && ((SECONDS < deadline)); do
      sleep 0.2
    done
  fi
  rm -f "$pidfile"
}

# rotate_log FILE: keep the previous run's log as FILE.prev so readiness checks only
# ever see lines of the current run.
rotate_log() {
  [[ -e $1 ]] && mv -f "$1" "$1.prev"
  return 0
}

# ---------------------------------------------------------------- installs

as_root() {
  if [[ $(id -u) == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $status == "install ok installed" ]]
}

# ensure_apt_packages PKG...: install the missing ones (--no-install-recommends),
# without letting their init scripts start system services (a policy-rc.d that
# denies service starts is in place during the install when none exists).
ensure_apt_packages() {
  local missing=() p rc=0 policy=/usr/sbin/policy-rc.d made_policy=0
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get to install them"
  log "installing Debian packages: ${missing[*]} (once per machine)"
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# written by stockflight dev/stack during apt-get install\nexit 101\n' |
      as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
  fi
  mkdir -p "$STATE_DIR"
  {
    as_root apt-get update -q &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
  ((made_policy)) && as_root rm -f "$policy"
  if ((rc != 0)); then
    show_logs 40 "$STATE_DIR/apt.log"
    die "apt-get install ${missing[*]} failed"
  fi
}

ensure_java() {
  command -v java >/dev/null 2>&1 || ensure_apt_packages openjdk-17-jre-headless
  command -v mvn >/dev/null 2>&1 || ensure_apt_packages maven
}

# ---------------------------------------------------------------- maven

# classpath_valid FILE: every entry of the classpath in FILE still exists.
classpath_valid() {
  local entries e
  [[ -s $1 ]] || return 1
  IFS=: read -r -a entries <"$1"
  ((${#entries[@]})) || return 1
  for e in "${entries[@]}"; do [[ -e $e ]] || return 1; done
}

# maven_classpath SVC POM: print the path of a file holding the runtime classpath of
# POM's dependencies, resolved by Maven into ~/.m2 (no copies). Cached in
# $STATE/SVC/classpath-<hash of POM>.txt; $STATE/SVC/classpath links to the current one.
maven_classpath() {
  local svc=$1 pom=$2 dir hash out work start
  dir=$(svc_dir "$svc")
  hash=$(sha256sum "$pom" | cut -c1-16)
  out="$dir/classpath-$hash.txt"
  if ! classpath_valid "$out"; then
    ensure_java
    work="$dir/maven"
    mkdir -p "$work"
    cp -f "$pom" "$work/pom.xml"
    log "$svc: resolving jars with Maven into ~/.m2 (slow only the first time; log: $work/mvn.log)"
    start=$SECONDS
    if ! (cd "$work" && mvn -B -ntp -f pom.xml dependency:build-classpath \
      -Dmdep.outputFile="$out.tmp" -Dmdep.includeScope=runtime) >"$work/mvn.log" 2>&1; then
      show_logs 40 "$work/mvn.log"
      die "$svc: Maven could not resolve $pom"
    fi
    classpath_valid "$out.tmp" || die "$svc: Maven wrote an empty or broken classpath ($out.tmp)"
    find "$dir" -maxdepth 1 -name 'classpath-*.txt' ! -name "classpath-$hash.txt" -delete
    mv -f "$out.tmp" "$out"
    log "$svc: classpath resolved in $((SECONDS - start))s"
  fi
  ln -sfn "classpath-$hash.txt" "$dir/classpath"
  printf '%s' "$out"
}

# ---------------------------------------------------------------- env file

# svc_impl SVC: the prefix of the functions that run SVC in the current mode: SVC, or
# SVC_cluster in cluster mode when SVC has a cluster implementation.
svc_impl() {
  if [[ $STACK_CLUSTER == 1 ]] && declare -F "${1}_cluster_running" >/dev/null; then
    printf '%s_cluster' "$1"
  else
    printf '%s' "$1"
  fi
}

# svc_listed SVC: SVC belongs in stack.env (it runs; a cluster: any of its nodes runs).
svc_listed() {
  local impl
  impl=$(svc_impl "$1")
  if declare -F "${impl}_listed" >/dev/null; then "${impl}_listed"; else "${impl}_running"; fi
}

# write_env: rewrite $STATE/stack.env with the variables of every running service.
write_env() {
  local svc impl tmp="$STATE_DIR/stack.env.tmp"
  : >"$tmp"
  for svc in "${STACK_SERVICES[@]}"; do
    impl=$(svc_impl "$svc")
    if svc_listed "$svc"; then "${impl}_env" >>"$tmp"; fi
  done
  if [[ $STACK_CLUSTER == 1 && -s $tmp ]]; then
    printf 'STOCKFLIGHT_STACK_CLUSTER=1\n' >>"$tmp"
  fi
  mv -f "$tmp" "$STATE_DIR/stack.env"
}
