#!/usr/bin/env bash
# Runs a command with the local Kafka broker up: started here unless it already runs or
# KAFKA_BOOTSTRAP_SERVERS names another broker, and stopped afterwards only if started here.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=0
if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! "$here/kafka.sh" status 2>/dev/null; then
  started=1
fi
cleanup() { if ((started)); then "$here/kafka.sh" stop; fi; }
trap cleanup EXIT
"$here/kafka.sh" start
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}
"$@"
