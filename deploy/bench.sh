#!/usr/bin/env bash
# The benchmarks under tests/perf/, against the real broker (started here if none runs).
# They print their figures; the README keeps the latest. Arguments go to the benchmark
# (--events, --rate, --seconds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
deploy/with-services.sh .venv/bin/python -m tests.perf.bench_pipeline "$@"
