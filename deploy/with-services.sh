#!/usr/bin/env bash
# Runs a command with the local services it needs up, and stops afterwards only what it
# started:
#   - the Kafka broker, unless KAFKA_BOOTSTRAP_SERVERS names one (exported for the command);
#   - with --postgres, a PostgreSQL server too, unless GNLC_TEST_POSTGRES_URL names one
#     (exported for the command).
# Usage: deploy/with-services.sh [--postgres] COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
postgres=0
if [[ ${1:-} == --postgres ]]; then
  postgres=1
  shift
fi
started_kafka=0
started_postgres=0
cleanup() {
  if ((started_postgres)); then "$here/postgres.sh" stop; fi
  if ((started_kafka)); then "$here/kafka.sh" stop; fi
}
trap cleanup EXIT

if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! "$here/kafka.sh" status 2>/dev/null; then
  started_kafka=1
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
