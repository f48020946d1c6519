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
# KAFKA_STATE_DIR (.local/kafka), KAFKA_HEAP (512m), KAFKA_START_TIMEOUT (90 seconds).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
port=${KAFKA_PORT:-19092}
controller_port=${KAFKA_CONTROLLER_PORT:-19093}
state_dir=${KAFKA_STATE_DIR:-$root/.local/kafka}
libs_dir=$root/.cache/kafka-$kafka_version/libs
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
  printf '%s' "$pid"
}

fetch() {
  if [[ -f $libs_dir/.complete ]]; then
    return 0
  fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the broker from Maven Central"; exit 1; }
  command -v java >/dev/null || { say "Java 17+ is needed to run the broker"; exit 1; }
  say "fetching Apache Kafka $kafka_version from Maven Central (once) ..."
  rm -rf "$libs_dir"
  mkdir -p "$libs_dir"
  if ! mvn -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs_dir" >"$libs_dir.fetch.log" 2>&1; then
    tail -n 40 "$libs_dir.fetch.log" >&2
    say "fetching failed; the whole Maven log is in $libs_dir.fetch.log"
    exit 1
  fi
  touch "$libs_dir/.complete"
}

java_opts=(-Xms128m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/kafka/log4j2.properties" -cp "$libs_dir/*")

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
    java_cmd kafka.tools.StorageTool format --ignore-formatted \
      -t "$(java_cmd kafka.tools.StorageTool random-uuid)" -c "$config_file" >>"$log_file" 2>&1
  fi
  say "starting on 127.0.0.1:$port (log: $log_file)"
  : >>"$log_file"
  local mark
  mark=$(wc -l <"$log_file")
  # setsid: the broker gets a process group of its own, so stop can end all of it.
  setsid java "${java_opts[@]}" kafka.Kafka "$config_file" >>"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! running_pid >/dev/null; then
      say "the broker exited during start; last lines of $log_file:"
      tail -n 30 "$log_file" >&2
      rm -f "$pid_file"
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
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 30s; killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
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

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  reset) stop; rm -rf "$state_dir"; say "data removed" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
