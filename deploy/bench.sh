#!/usr/bin/env bash
# The benchmarks under tests/perf/, against the real broker (started here if none runs).
# They print their figures; the README keeps the latest. Arguments go to the benchmark
# (--events, --rate, --seconds). `deploy/bench.sh --webhook [args]` runs the webhook
# channel's benchmark instead (tests/perf/bench_webhook.py: throughput, latency at a rate,
# isolation from a hanging endpoint); `deploy/bench.sh --all` runs both with defaults.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
case ${1:-} in
  --webhook) shift; deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_webhook "$@" ;;
  --all)
    deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_pipeline
    deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_webhook
    ;;
  *) deploy/with-kafka.sh .venv/bin/python -m tests.perf.bench_pipeline "$@" ;;
esac
