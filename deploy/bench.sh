#!/usr/bin/env bash
# The benchmarks under tests/perf/, against the real broker (started here if none runs).
# They print their figures; the README keeps the latest.
#   deploy/bench.sh                   all of them
#   deploy/bench.sh pipeline [ARGS]   both consumers' throughput and latency (--events, --rate, --seconds)
#   deploy/bench.sh email [ARGS]      email renders alone, and throughput to an SMTP sink (--events, --connections)
#   deploy/bench.sh --events 2000 ... the pipeline benchmark, as before
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
what=all
case ${1:-} in
  all | pipeline | email) what=$1; shift ;;
  -*) what=pipeline ;;
esac
if [[ $what == all || $what == pipeline ]]; then
  deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_pipeline "$@"
fi
if [[ $what == all || $what == email ]]; then
  deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_email "$@"
fi
