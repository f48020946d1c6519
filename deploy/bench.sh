#!/usr/bin/env bash
# Every benchmark under tests/perf/, against the real broker (and PostgreSQL), started here
# if none runs. They print their figures; the README keeps the latest.
#   deploy/bench.sh              all of them
#   deploy/bench.sh pipeline     consumers' throughput and end-to-end latency
#   deploy/bench.sh scheduler    scheduler start, lateness and burst (SQLite and PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
what=${1:-all}
run() {
  case $what in
    all | pipeline) .venv/bin/python -m tests.perf.bench_pipeline ;;
  esac
  case $what in
    all | scheduler)
      .venv/bin/python -m tests.perf.bench_scheduler
      .venv/bin/python -m tests.perf.bench_scheduler --database-url "$GNLC_TEST_POSTGRES_URL"
      ;;
  esac
}
export -f run
export what
deploy/with-services.sh --postgres bash -c run
