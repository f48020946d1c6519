#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback for tests and local runs (Debian's packages).
#
#   deploy/postgres.sh start    install (once, as root) / initdb (once) / start / wait
#   deploy/postgres.sh stop     stop it
#   deploy/postgres.sh status   say whether it runs (exit 0) or not (exit 1)
#   deploy/postgres.sh url      print its SQLAlchemy URL
#   deploy/postgres.sh reset    stop and delete its data
#
# Settings (environment): PG_PORT (15432), PG_STATE_DIR (.local/postgres).
# Tuned for tests (fsync off): never point production data at it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
port=${PG_PORT:-15432}
state_dir=${PG_STATE_DIR:-$root/.local/postgres}
data_dir=$state_dir/data
log_file=$state_dir/server.log
user=gnlc

say() { printf 'postgres: %s\n' "$*" >&2; }

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
      printf '%s' "$dir"
      return 0
    fi
  done
  return 1
}

install() {
  if bin=$(find_bin); then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    say "PostgreSQL is not installed; run as root once, or: apt-get install postgresql"
    exit 1
  fi
  say "installing PostgreSQL from Debian's packages (once) ..."
  export DEBIAN_FRONTEND=noninteractive
  # one apt-get at a time (the test command's set-up may be installing Chromium meanwhile)
  flock "${TMPDIR:-/tmp}/gnlc-notify-apt.lock" apt-get update -qq >&2
  flock "${TMPDIR:-/tmp}/gnlc-notify-apt.lock" \
    apt-get install -y -qq --no-install-recommends postgresql >&2
  bin=$(find_bin)
}

# Root may not run the server: as root, every server command runs as the postgres user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [[ -f $data_dir/postmaster.pid ]] && as_owner "$bin/pg_ctl" -D "$data_dir" status >/dev/null 2>&1
}

start() {
  install
  mkdir -p "$state_dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$state_dir"; fi
  if running; then
    say "already running on 127.0.0.1:$port"
    return 0
  fi
  if [[ ! -f $data_dir/PG_VERSION ]]; then
    say "initialising $data_dir"
    as_owner "$bin/initdb" -D "$data_dir" -U "$user" --auth=trust -E UTF8 --locale=C >/dev/null
  fi
  say "starting on 127.0.0.1:$port (log: $log_file)"
  as_owner "$bin/pg_ctl" -D "$data_dir" -l "$log_file" -w -t 60 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -k $state_dir -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
  if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$user'" | grep -q 1; then
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$user"
  fi
  say "ready: $(url)"
}

stop() {
  bin=$(find_bin) || { say "not installed"; return 0; }
  if running; then
    as_owner "$bin/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null
    say "stopped"
  else
    say "not running"
  fi
}

url() { printf 'postgresql+asyncpg://%s@127.0.0.1:%s/%s\n' "$user" "$port" "$user"; }

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) bin=$(find_bin) && running && say "running on 127.0.0.1:$port" || { say "not running"; exit 1; } ;;
  url) url ;;
  reset) stop; rm -rf "$state_dir"; say "data removed" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
