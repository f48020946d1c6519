#!/usr/bin/env bash
# Creates .venv and installs the project with its development tools, once per change of
# pyproject.toml (a stamp file remembers what was installed).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=$root/.venv
stamp=$venv/.installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
# The console's browser tests and the screenshots drive Debian's Chromium (with fonts for
# Arabic and CJK); installed once, as root, where it is missing.
if ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium and fonts ..." >&2
    # one apt-get at a time (the test command may be installing PostgreSQL meanwhile)
    flock "${TMPDIR:-/tmp}/gnlc-notify-apt.lock" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive flock "${TMPDIR:-/tmp}/gnlc-notify-apt.lock" \
      apt-get install -y -qq --no-install-recommends chromium fonts-noto-core fonts-noto-cjk >&2
  else
    echo "setup: chromium is missing (apt-get install chromium fonts-noto-core fonts-noto-cjk)" >&2
  fi
fi
if [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
  exit 0
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python 3.11 or newer is needed (found $("$python" --version 2>&1))" >&2
  exit 1
}
echo "setup: installing into .venv ..." >&2
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
# uv installs the project and its tools (about 5 s with its cache, pip needs about 40 s);
# pip only installs uv itself.
"$venv/bin/python" -m pip install -q --disable-pip-version-check "uv>=0.9,<0.14" >&2
"$venv/bin/uv" pip install -q --python "$venv/bin/python" -e ".[dev]" >&2
echo "$want" >"$stamp"
