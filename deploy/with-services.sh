#!/usr/bin/env bash
# Runs a command with the local services it needs up, and stops afterwards only what it
# started:
#   - the Kafka broker, unless KAFKA_BOOTSTRAP_SERVERS names one (exported for the command);
#   - with --postgres, a PostgreSQL server too, unless GNLC_TEST_POSTGRES_URL names one
#     (exported for the command);
#   - with --scratch (tests, benchmarks), the broker and PostgreSQL are throw-away ones of
#     this run alone: free ports chosen at start (unless KAFKA_PORT, KAFKA_CONTROLLER_PORT or
#     PG_PORT are set), state in a directory of their own under .local/scratch/, deleted when
#     they stop. Two runs side by side (even of one checkout) never share or stop each
#     other's services, and no fixed port needs to be free.
# SIGTERM or SIGINT (Ctrl-C) to this script is passed on to the command; once the command
# has ended (or a minute later, killed), what this script started is stopped. One signal
# stops everything.
# Usage: deploy/with-services.sh [--postgres] [--scratch] COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
postgres=0
scratch=0
while [[ ${1:-} == --* ]]; do
  case $1 in
    --postgres) postgres=1 ;;
    --scratch) scratch=1 ;;
    *) echo "with-services: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# Compiled modules are cached (in __pycache__, beside the sources: services, tests, .venv)
# even where the environment says not to (PYTHONDONTWRITEBYTECODE): without the cache every
# process compiles what it imports again, and a service then takes about 4.5 s to import
# instead of 1.5 s, for each of the hundreds of processes a test run starts.
unset PYTHONDONTWRITEBYTECODE

free_port() {
  "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

scratch_dir=
if ((scratch)); then
  mkdir -p "$root/.local/scratch"
  scratch_dir=$(mktemp -d "$root/.local/scratch/run-XXXXXX")
  chmod 755 "$scratch_dir" # the PostgreSQL server runs as its own user
  export KAFKA_STATE_DIR=$scratch_dir/kafka
  export KAFKA_PORT=${KAFKA_PORT:-$(free_port)}
  export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$(free_port)}
  export PG_STATE_DIR=$scratch_dir/postgres
  export PG_PORT=${PG_PORT:-$(free_port)}
fi

started_kafka=0
started_postgres=0
child=
cleanup() {
  trap - EXIT INT TERM
  if ((started_postgres)); then "$here/postgres.sh" stop || true; fi
  if ((started_kafka)); then "$here/kafka.sh" stop || true; fi
  if [[ -n $scratch_dir ]]; then rm -rf "$scratch_dir"; fi
}
on_signal() { # the signal to pass on
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -"$1" "$child" 2>/dev/null || true
    local patience=$((SECONDS + 60))
    while kill -0 "$child" 2>/dev/null && ((SECONDS < patience)); do sleep 0.2; done
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  cleanup
  exit 143
}
trap cleanup EXIT
trap "on_signal INT" INT
trap "on_signal TERM" TERM

if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! "$here/kafka.sh" status 2>/dev/null; then
  started_kafka=1
fi
postgres_pid=
if ((postgres)) && [[ -z ${GNLC_TEST_POSTGRES_URL:-} ]]; then
  if ! "$here/postgres.sh" status 2>/dev/null; then
    started_postgres=1
  fi
  "$here/postgres.sh" start & # beside the broker's start: each waits on its own server
  postgres_pid=$!
fi
"$here/kafka.sh" start
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}
if [[ -n $postgres_pid ]]; then
  wait "$postgres_pid"
  GNLC_TEST_POSTGRES_URL=$("$here/postgres.sh" url)
  export GNLC_TEST_POSTGRES_URL
fi

# In the background, so that this shell can take a signal and pass it on (a foreground
# child would be waited for first), in a process group of its own (job control on while it
# starts), so that Ctrl-C reaches this script alone, which passes on the same signal:
# SIGINT (pytest tears its fixtures down, the run command stops its services) or SIGTERM.
set -m
"$@" <&0 &
child=$!
set +m
status=0
wait "$child" || status=$?
child=
exit "$status"
