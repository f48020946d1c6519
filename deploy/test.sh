#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests against a real Kafka broker.
# Does its own set-up on a fresh machine (.venv, the broker fetched from Maven Central) and
# stops the broker afterwards if it started it. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The rest, once the broker and PostgreSQL are up (deploy/with-services.sh runs this script
# again with --with-services) and the set-up has finished.
if [[ ${1:-} == --with-services ]]; then
  shift
  status_file=$GNLC_TEST_SETUP_STATUS
  for _ in $(seq 1 3000); do # the set-up, at most 10 minutes
    [[ -s $status_file ]] && break
    sleep 0.2
  done
  setup=$(cat "$status_file" 2>/dev/null || echo "timed out")
  if [[ $setup != 0 ]]; then
    echo "set-up failed ($setup)" >&2
    exit 1
  fi
  export PATH=$root/.venv/bin:$PATH

  echo "== ruff" >&2
  ruff check .
  ruff format --check .

  # mypy runs beside the tests, at a lower priority: a full check needs one core for about
  # half a minute, taken from the time the tests spend waiting on brokers and clocks rather
  # than from the services they time; its verdict counts as much as theirs. Its cache is
  # kept per user, as the broker's jars are (~/.cache/gnlc-notify): mypy checks each cached
  # module's source hash, so a clean clone re-checks only what differs from the last run
  # (27 s of CPU cold, about 2 s when nothing does).
  export MYPY_CACHE_DIR=${MYPY_CACHE_DIR:-${GNLC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$root}/.cache}/gnlc-notify}/mypy}
  mypy_log=$(mktemp)
  trap 'rm -f "$mypy_log"' EXIT
  nice -n 10 mypy >"$mypy_log" 2>&1 &
  mypy_pid=$!

  echo "== pytest" >&2
  # Three workers on two cores: the run waits more than it computes (brokers restarting,
  # services killed and started again, retries coming due), and with two the cores were
  # busy 1.4 of 2 on average (sampled from /proc over a whole run). Clean clones, one after
  # the other: two workers 7 min 20 s to 8 min 23 s, three 5 min 53 s to 6 min 53 s. (A
  # third worker had been tried before and found no faster, and it made the tests that hold
  # the services to their timing promises, a retry at most 1 s late, fail now and then;
  # measured again on today's suite, it is faster and they pass.) A file's tests stay on
  # one worker (--dist loadfile), in the order of tests/conftest.py: the few files marked
  # long first, then the others with the most tests first. The services the tests start
  # are forks of a process that imported them once (tests/forkserver.py).
  tests=0
  python -m pytest -m "not perf" -n 3 --dist loadfile --no-loadscope-reorder "$@" || tests=$?

  echo "== mypy" >&2
  types=0
  wait "$mypy_pid" || types=$?
  cat "$mypy_log"
  if ((types)); then echo "mypy failed" >&2; fi
  if ((tests)); then echo "pytest failed" >&2; fi
  exit $((tests ? tests : types))
fi

# The set-up (.venv) runs while the broker and PostgreSQL start; its exit status goes to a
# file the second half waits for.
status_file=$(mktemp)
trap 'rm -f "$status_file"' EXIT
(
  set +e
  deploy/setup.sh
  echo $? >"$status_file"
) &
export GNLC_TEST_SETUP_STATUS=$status_file
code=0
deploy/with-services.sh --postgres --scratch bash "$root/deploy/test.sh" --with-services "$@" ||
  code=$?
wait
exit $code
