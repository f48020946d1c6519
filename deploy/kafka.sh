#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker+controller) on loopback.
#
#   deploy/kafka.sh start    fetch the broker once, format storage once, start, wait until it answers
#   deploy/kafka.sh stop     stop the broker and everything it started
#   deploy/kafka.sh status   say whether it runs (exit 0) or not (exit 1)
#   deploy/kafka.sh fetch    only fetch the broker jars from Maven Central
#   deploy/kafka.sh reset    stop and delete the broker's data
#
# Idempotent: a second start finds the running broker. When KAFKA_BOOTSTRAP_SERVERS is
# set, start starts nothing: it only checks that this broker answers. stop only ever stops
# the broker this script started (its pid file), and everything in its process group.
#
# Settings (environment): KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093),
# KAFKA_STATE_DIR (.local/kafka), KAFKA_HEAP (512m), KAFKA_START_TIMEOUT (90 seconds),
# KAFKA_JVM_FLAGS (none; more JVM flags, e.g. -XX:TieredStopAtLevel=1: about half the CPU
# to start, for throw-away brokers in tests), GNLC_CACHE_DIR (where the broker's jars are
# kept, per version, for every checkout of this user: ~/.cache/gnlc-notify, or
# $XDG_CACHE_HOME/gnlc-notify), KAFKA_NO_CDS (set: no class data sharing archive, below).
#
# A cluster: KAFKA_BROKERS nodes (3), each a broker and a controller (all of them voters),
# on loopback; the internal topics get replication 3 and min.insync.replicas 2, which are
# also the brokers' defaults:
#   deploy/kafka.sh cluster start      start every node not running (formats new ones), wait
#   deploy/kafka.sh cluster stop       stop the nodes one after the other (process groups)
#   deploy/kafka.sh cluster status     exit 0 when every node runs
#   deploy/kafka.sh cluster bootstrap  print the bootstrap list (127.0.0.1:port,...)
#   deploy/kafka.sh cluster pids       print "node-id pid" per running node (kill -9 drills)
#   deploy/kafka.sh cluster reset      stop and delete the cluster's data
# Its state is in KAFKA_CLUSTER_STATE_DIR (.local/kafka-cluster), a directory per node;
# free ports are chosen at the first start and kept there (KAFKA_CLUSTER_PORTS="p1,p2,p3"
# and KAFKA_CLUSTER_CONTROLLER_PORTS choose them instead). KAFKA_HEAP and
# KAFKA_START_TIMEOUT apply to it; KAFKA_BOOTSTRAP_SERVERS, KAFKA_PORT and KAFKA_STATE_DIR
# do not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
port=${KAFKA_PORT:-19092}
controller_port=${KAFKA_CONTROLLER_PORT:-19093}
state_dir=${KAFKA_STATE_DIR:-$root/.local/kafka}
cache_dir=${GNLC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$root}/.cache}/gnlc-notify}
libs_dir=$cache_dir/kafka-$kafka_version/libs
data_dir=$state_dir/data
pid_file=$state_dir/broker.pid
log_file=$state_dir/broker.log
config_file=$state_dir/server.properties
start_timeout=${KAFKA_START_TIMEOUT:-90}

say() { printf 'kafka: %s\n' "$*" >&2; }

port_open() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

running_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  local _ state=
  # a broker killed with -9 whose parent has gone stays a zombie until init reaps it
  [[ -r /proc/$pid/stat ]] && read -r _ _ state _ <"/proc/$pid/stat"
  [[ $state != Z ]] || return 1
  printf '%s' "$pid"
}

fetch() {
  if [[ -f $libs_dir/.complete ]]; then
    return 0
  fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the broker from Maven Central"; exit 1; }
  command -v java >/dev/null || { say "Java 17+ is needed to run the broker"; exit 1; }
  mkdir -p "$(dirname "$libs_dir")"
  # the jars are shared by every checkout (and run of the tests) of this user: one fetch at
  # a time, into a directory of its own, moved into place once complete
  exec 8>"$libs_dir.lock"
  flock 8
  if [[ -f $libs_dir/.complete ]]; then
    exec 8>&-
    return 0
  fi
  say "fetching Apache Kafka $kafka_version from Maven Central (once) ..."
  local partial=$libs_dir.partial
  rm -rf "$partial"
  mkdir -p "$partial"
  if ! mvn -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$partial" >"$libs_dir.fetch.log" 2>&1; then
    tail -n 40 "$libs_dir.fetch.log" >&2
    say "fetching failed; the whole Maven log is in $libs_dir.fetch.log"
    exit 1
  fi
  touch "$partial/.complete"
  rm -rf "$libs_dir"
  mv "$partial" "$libs_dir"
  exec 8>&-
}

java_opts=(-Xms128m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC ${KAFKA_JVM_FLAGS:-} -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/kafka/log4j2.properties" -cp "$libs_dir/*")

# Class data sharing: the classes a broker loads, as the JVM left them after its first run
# (an archive per JDK and Kafka version, beside the jars). With it a broker starts on about
# half the CPU (2.9 s instead of 5 s, measured; the tests start several). The first broker
# started without one writes it as it exits; stop checks it (a JVM must start on it alone,
# -Xshare:on) and only then moves it into place. A broker that exits during its start on
# an archive removes it and starts again without (KAFKA_NO_CDS=1 never uses one).
java_bin=$(readlink -f "$(command -v java 2>/dev/null || echo java)" 2>/dev/null || echo java)
jdk_key=$(printf '%s %s' "$java_bin" "$(stat -c %Y "$java_bin" 2>/dev/null)" | cksum | cut -d' ' -f1)
cds_archive=${libs_dir%/libs}/broker-$jdk_key.jsa
cds_opts() { # the flags of a broker's JVM: use the archive, or (single node) write it at exit
  if [[ -n ${KAFKA_NO_CDS:-} ]]; then
    return 0
  elif [[ -f $cds_archive ]]; then
    printf '%s\n' "-XX:SharedArchiveFile=$cds_archive" -Xlog:cds=off -Xlog:cds+dynamic=off
  elif [[ ${1:-} == write ]]; then
    printf '%s\n' "-XX:ArchiveClassesAtExit=$state_dir/broker.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off
  fi
}

java_cmd() { # main-class args...
  java "${java_opts[@]}" "$@"
}

write_config() {
  mkdir -p "$data_dir"
  cat >"$config_file" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
EOF
}

new_cluster_id() {
  # what StorageTool random-uuid prints (a UUID in base64url), without a JVM start for it;
  # like Kafka's own, never one that starts with "-" (the storage tool would read it as an
  # option: one start in 64 failed so)
  "${PYTHON:-python3}" -c 'import base64, uuid
for _ in range(1000):
    text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not text.startswith("-"):
        break
print(text)'
}

start() {
  if [[ -n ${KAFKA_BOOTSTRAP_SERVERS:-} ]]; then
    local first=${KAFKA_BOOTSTRAP_SERVERS%%,*}
    if port_open "${first%:*}" "${first##*:}"; then
      say "using the broker at $KAFKA_BOOTSTRAP_SERVERS (KAFKA_BOOTSTRAP_SERVERS is set; nothing started)"
      return 0
    fi
    say "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not answer"
    exit 1
  fi
  if pid=$(running_pid) && port_open 127.0.0.1 "$port"; then
    say "already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if port_open 127.0.0.1 "$port"; then
    say "port $port is taken by another process; set KAFKA_PORT to a free port"
    exit 1
  fi
  fetch
  write_config
  if [[ ! -f $data_dir/meta.properties ]]; then
    say "formatting storage in $data_dir"
    java_cmd kafka.tools.StorageTool format --ignore-formatted -t "$(new_cluster_id)" \
      -c "$config_file" >>"$log_file" 2>&1
  fi
  say "starting on 127.0.0.1:$port (log: $log_file)"
  : >>"$log_file"
  local mark
  mark=$(wc -l <"$log_file")
  # setsid: the broker gets a process group of its own, so stop can end all of it.
  local cds
  mapfile -t cds < <(cds_opts write)
  rm -f "$state_dir/broker.jsa"
  # a JVM that crashes writes its report beside the broker's log, not where it was started
  setsid java "${java_opts[@]}" "${cds[@]}" "-XX:ErrorFile=$state_dir/hs_err_pid%p.log" \
    kafka.Kafka "$config_file" >>"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! running_pid >/dev/null; then
      rm -f "$pid_file"
      if ((${#cds[@]})) && [[ -f $cds_archive ]]; then
        say "the broker exited during start on the class archive; removing it, starting without"
        rm -f "$cds_archive"
        KAFKA_NO_CDS=1 exec bash "$here/kafka.sh" start
      fi
      say "the broker exited during start; last lines of $log_file:"
      tail -n 30 "$log_file" >&2
      exit 1
    fi
    if port_open 127.0.0.1 "$port" && tail -n +"$((mark + 1))" "$log_file" | grep -q 'Kafka Server started'; then
      say "ready on 127.0.0.1:$port (pid $(<"$pid_file"))"
      return 0
    fi
    sleep 0.5
  done
  say "the broker did not answer within ${start_timeout}s; see $log_file"
  stop
  exit 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file"
    say "not running"
    return 0
  fi
  say "stopping (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  local archive=$(dirname "$pid_file")/broker.jsa
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 30s; killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  elif [[ -s $archive && ! -f $cds_archive ]]; then
    # written by the JVM as it exited (see cds_opts): the next brokers start from it, once
    # a JVM has started on it (a cut archive would crash every broker)
    if java "${java_opts[@]}" "-XX:SharedArchiveFile=$archive" -Xshare:on \
      "-XX:ErrorFile=${archive%/*}/hs_err_pid%p.log" \
      kafka.tools.StorageTool random-uuid >/dev/null 2>&1; then
      mv "$archive" "$cds_archive.new.$$" && mv "$cds_archive.new.$$" "$cds_archive" || true
    fi
  fi
  rm -f "$pid_file" "$archive"
  say "stopped"
}

status() {
  if pid=$(running_pid) && port_open 127.0.0.1 "$port"; then
    say "running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  say "not running"
  return 1
}

# ---- a cluster of KAFKA_BROKERS nodes -------------------------------------------------

cluster_dir=${KAFKA_CLUSTER_STATE_DIR:-$root/.local/kafka-cluster}
cluster_size=${KAFKA_BROKERS:-3}

free_port() {
  "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The ports, one "node-id port controller-port" line per node, chosen once.
cluster_ports() {
  local file=$cluster_dir/ports
  if [[ ! -f $file ]]; then
    [[ $cluster_size =~ ^[1-9][0-9]*$ ]] || { say "KAFKA_BROKERS must be a number of nodes"; exit 2; }
    local ports controllers i
    IFS=, read -r -a ports <<<"${KAFKA_CLUSTER_PORTS:-}"
    IFS=, read -r -a controllers <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-}"
    mkdir -p "$cluster_dir"
    for ((i = 1; i <= cluster_size; i++)); do
      printf '%s %s %s\n' "$i" "${ports[i - 1]:-$(free_port)}" "${controllers[i - 1]:-$(free_port)}"
    done >"$file.new"
    mv "$file.new" "$file"
  fi
  cat "$file"
}

cluster_bootstrap() {
  local node port controller list=
  while read -r node port controller; do
    list+=${list:+,}127.0.0.1:$port
  done < <(cluster_ports)
  printf '%s\n' "$list"
}

use_node() { # node-id: point the broker's file names at that node's directory
  local dir=$cluster_dir/node-$1
  data_dir=$dir/data
  pid_file=$dir/broker.pid
  log_file=$dir/broker.log
  config_file=$dir/server.properties
}

write_node_config() { # node-id port controller-port voters nodes
  mkdir -p "$data_dir"
  local replicas=$5 min_isr=$(($5 > 1 ? $5 - 1 : 1))
  cat >"$config_file" <<EOF
process.roles=broker,controller
node.id=$1
controller.quorum.voters=$4
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir
num.partitions=6
default.replication.factor=$replicas
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
log.cleaner.dedupe.buffer.size=33554432
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
EOF
}

cluster_id() {
  local file=$cluster_dir/cluster.id
  if [[ ! -f $file ]]; then
    new_cluster_id >"$file"
  fi
  cat "$file"
}

cluster_start() {
  local lines line node port controller voters= id formats=() starting=() pid cds
  mapfile -t lines < <(cluster_ports)
  for line in "${lines[@]}"; do
    read -r node port controller <<<"$line"
    voters+=${voters:+,}$node@127.0.0.1:$controller
  done
  id=$(cluster_id)
  for line in "${lines[@]}"; do
    read -r node port controller <<<"$line"
    use_node "$node"
    if running_pid >/dev/null; then
      continue
    fi
    if port_open 127.0.0.1 "$port" || port_open 127.0.0.1 "$controller"; then
      say "node $node: port $port or $controller is taken by another process (cluster reset chooses new ones)"
      exit 1
    fi
    fetch
    write_node_config "$node" "$port" "$controller" "$voters" "${#lines[@]}"
    if [[ ! -f $data_dir/meta.properties ]]; then
      java_cmd kafka.tools.StorageTool format --ignore-formatted -t "$id" -c "$config_file" \
        >>"$log_file" 2>&1 &
      formats+=($!)
    fi
    starting+=("$node")
  done
  if ((${#formats[@]})); then
    say "formatting the storage of ${#formats[@]} node(s) in $cluster_dir"
    for pid in "${formats[@]}"; do
      wait "$pid" || { say "formatting failed; see the broker.log files in $cluster_dir"; exit 1; }
    done
  fi
  if ((${#starting[@]} == 0)); then
    say "cluster already running: $(cluster_bootstrap)"
    return 0
  fi
  local -A marks=()
  for node in "${starting[@]}"; do
    use_node "$node"
    : >>"$log_file"
    marks[$node]=$(wc -l <"$log_file")
    # setsid: each node gets a process group of its own, so stop can end all of it
    mapfile -t cds < <(cds_opts)
    setsid java "${java_opts[@]}" "${cds[@]}" "-XX:ErrorFile=${log_file%/*}/hs_err_pid%p.log" \
      kafka.Kafka "$config_file" >>"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
  done
  say "starting node(s) ${starting[*]} of ${#lines[@]} (logs: $cluster_dir/node-*/broker.log)"
  local deadline=$((SECONDS + start_timeout)) waiting=()
  while ((SECONDS < deadline)); do
    waiting=()
    for node in "${starting[@]}"; do
      use_node "$node"
      if ! running_pid >/dev/null; then
        say "node $node exited during start; last lines of $log_file:"
        tail -n 30 "$log_file" >&2
        cluster_stop
        exit 1
      fi
      if ! tail -n +"$((marks[$node] + 1))" "$log_file" | grep -q 'Kafka Server started'; then
        waiting+=("$node")
      fi
    done
    if ((${#waiting[@]} == 0)); then
      say "cluster ready: $(cluster_bootstrap)"
      return 0
    fi
    sleep 0.5
  done
  say "node(s) ${waiting[*]} did not start within ${start_timeout}s; see $cluster_dir/node-*/broker.log"
  cluster_stop
  exit 1
}

cluster_stop() {
  local node port controller stopped=0 pid patience running=0 nodes=0
  [[ -f $cluster_dir/ports ]] || { say "cluster not running"; return 0; }
  while read -r node port controller; do
    use_node "$node"
    nodes=$((nodes + 1))
    if running_pid >/dev/null; then running=$((running + 1)); fi
  done < <(cluster_ports)
  # One node after the other: each shuts down cleanly (its partitions handed over) while
  # the others hold a majority of the controller quorum. Once no majority is left, a node
  # waits for a controller that will not come: it gets 5 s, then SIGKILL (its log is
  # checked at the next start).
  while read -r node port controller; do
    use_node "$node"
    if pid=$(running_pid); then
      patience=$((running > nodes / 2 ? 30 : 5))
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + patience))
      while running_pid >/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
      done
      if running_pid >/dev/null; then
        say "node $node still running after ${patience}s; killing"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
      stopped=$((stopped + 1))
      running=$((running - 1))
    fi
    rm -f "$pid_file"
  done < <(cluster_ports)
  say "cluster stopped ($stopped node(s) were running)"
}

cluster_pids() {
  local node port controller pid
  [[ -f $cluster_dir/ports ]] || return 0
  while read -r node port controller; do
    use_node "$node"
    if pid=$(running_pid); then
      printf '%s %s\n' "$node" "$pid"
    fi
  done < <(cluster_ports)
}

cluster_status() {
  local node port controller down=0
  [[ -f $cluster_dir/ports ]] || { say "cluster not running"; return 1; }
  while read -r node port controller; do
    use_node "$node"
    if running_pid >/dev/null && port_open 127.0.0.1 "$port"; then
      say "node $node running on 127.0.0.1:$port"
    else
      say "node $node not running"
      down=1
    fi
  done < <(cluster_ports)
  return "$down"
}

usage() {
  awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0" >&2
  exit 2
}

cluster() {
  case ${1:-} in
    start) cluster_start ;;
    stop) cluster_stop ;;
    status) cluster_status ;;
    bootstrap) cluster_bootstrap ;;
    pids) cluster_pids ;;
    reset) cluster_stop; rm -rf "$cluster_dir"; say "cluster data removed" ;;
    *) usage ;;
  esac
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  reset) stop; rm -rf "$state_dir"; say "data removed" ;;
  cluster) shift; cluster "$@" ;;
  *) usage ;;
esac
