#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests against a real Kafka broker.
# Does its own set-up on a fresh machine (.venv, the broker fetched from Maven Central) and
# stops the broker afterwards if it started it. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

deploy/setup.sh
export PATH=$root/.venv/bin:$PATH

echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy" >&2
mypy

started_kafka=0
if [[ -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && ! deploy/kafka.sh status 2>/dev/null; then
  started_kafka=1
fi
cleanup() { if ((started_kafka)); then deploy/kafka.sh stop; fi; }
trap cleanup EXIT
deploy/kafka.sh start
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}

echo "== pytest" >&2
status=0
python -m pytest -m "not perf" "$@" || status=$?
if ((status == 5)); then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
