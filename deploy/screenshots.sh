#!/usr/bin/env bash
# One email per language for a sample city, pictured by headless Chromium:
#   deploy/screenshots.sh [DIR]          (default docs/screenshots)
# Needs Debian's chromium (apt-get install -y chromium) and fonts for Arabic and CJK
# (fonts-noto-core, fonts-noto-cjk). Extra arguments go to python -m gnlc_email.preview.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || deploy/setup.sh
dir="${1:-docs/screenshots}"
shift || true
exec .venv/bin/python -m gnlc_email.preview --screenshots "$dir" "$@"
