#!/usr/bin/env bash
# Runs a command with the local services it needs up, and stops afterwards only what it
# started:
#   - the Kafka broker, unless KAFKA_BOOTSTRAP_SERVERS names one (exported for the command);
#   - with --postgres, a PostgreSQL server too, unless GNLC_TEST_POSTGRES_URL names one
#     (exported for the command);
#   - with --scratch, the broker is a throw-away one (tests, benchmarks): its own ports
#     (19192/19193) and state (.local/kafka-scratch), emptied when it starts and when it
#     stops, so the topics that tests create never pile up in the development broker.
# Usage: deploy/with-services.sh [--postgres] [--scratch] COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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
if ((scratch)); then
  export KAFKA_STATE_DIR=${KAFKA_STATE_DIR:-$(cd "$here/.." && pwd)/.local/kafka-scratch}
  export KAFKA_PORT=${KAFKA_PORT:-19192} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19193}
fi
started_kafka=0
started_postgres=0
cleanup() {
  if ((started_postgres)); then "$here/postgres.sh" stop; fi
  if ((started_kafka && scratch)); then
    "$here/kafka.sh" reset
  elif ((started_kafka)); then
    "$here/kafka.sh" stop
  fi
}
trap cleanup EXIT

if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! "$here/kafka.sh" status 2>/dev/null; then
  started_kafka=1
  if ((scratch)); then "$here/kafka.sh" reset 2>/dev/null; fi
fi
"$here/kafka.sh" start
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}

if ((postgres)) && [[ -z ${GNLC_TEST_POSTGRES_URL:-} ]]; then
  if ! "$here/postgres.sh" status 2>/dev/null; then
    started_postgres=1
  fi
  "$here/postgres.sh" start
  GNLC_TEST_POSTGRES_URL=$("$here/postgres.sh" url)
  export GNLC_TEST_POSTGRES_URL
fi
"$@"
