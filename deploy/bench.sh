#!/usr/bin/env bash
# Every benchmark under tests/perf/, against the real broker (and PostgreSQL), started here
# if none runs. They print their figures; the README keeps the latest.
#   deploy/bench.sh                  all of them
#   deploy/bench.sh pipeline [ARGS]  both consumers' throughput and latency (--events, --rate, --seconds)
#   deploy/bench.sh email [ARGS]     email renders alone, and throughput to an SMTP sink
#   deploy/bench.sh webhook [ARGS]   webhook throughput, latency at 500/s, a timing-out endpoint
#   deploy/bench.sh flood [ARGS]     webhook first-attempt latency beside 50,000 retries due at once
#   deploy/bench.sh http [ARGS]      the webhook HTTP client alone: CPU per request, by transport
#   deploy/bench.sh scheduler        scheduler start, lateness and burst (SQLite and PostgreSQL)
#   deploy/bench.sh restart [ARGS]   email and webhook: start to ready, resume after kill -9 (--rounds)
#   deploy/bench.sh cluster [ARGS]   1, 2, 3 webhook consumer processes on a 3-broker cluster (--events, --rate)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
what=all
case ${1:-} in
  all | pipeline | email | webhook | flood | http | scheduler | restart | cluster) what=$1; shift ;;
esac
run() {
  if [[ $what == all || $what == pipeline ]]; then
    .venv/bin/python -m tests.perf.bench_pipeline "$@"
  fi
  if [[ $what == all || $what == email ]]; then
    .venv/bin/python -m tests.perf.bench_email "$@"
  fi
  if [[ $what == all || $what == webhook ]]; then
    .venv/bin/python -m tests.perf.bench_webhook "$@"
  fi
  if [[ $what == all || $what == flood ]]; then
    .venv/bin/python -m tests.perf.bench_flood "$@"
  fi
  if [[ $what == all || $what == http ]]; then
    .venv/bin/python -m tests.perf.bench_http "$@"
  fi
  if [[ $what == all || $what == scheduler ]]; then
    .venv/bin/python -m tests.perf.bench_scheduler
    .venv/bin/python -m tests.perf.bench_scheduler --database-url "$GNLC_TEST_POSTGRES_URL"
  fi
  if [[ $what == all || $what == restart ]]; then
    .venv/bin/python -m tests.perf.bench_restart "$@"
  fi
  if [[ $what == all || $what == cluster ]]; then
    .venv/bin/python -m tests.perf.bench_cluster "$@"
  fi
}
export -f run
export what
deploy/with-services.sh --postgres --scratch bash -c 'run "$@"' run "$@"
