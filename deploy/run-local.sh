#!/usr/bin/env bash
# The whole system on this machine with embedded defaults: a local Kafka broker, the sample
# city directory, a local SMTP mailbox and a webhook receiver, a demo deadline. Ctrl-C stops
# everything, including the broker if this script started it. Arguments go to
# `gnlc-notify dev up` (e.g. --exit-after-mail 4).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

deploy/setup.sh
started_kafka=0
if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! deploy/kafka.sh status 2>/dev/null; then
  started_kafka=1
fi
cleanup() { if ((started_kafka)); then deploy/kafka.sh stop; fi; }
trap cleanup EXIT
deploy/kafka.sh start
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}
.venv/bin/gnlc-notify dev up "$@"
