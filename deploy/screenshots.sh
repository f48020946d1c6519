#!/usr/bin/env bash
# Pictures for the README, by headless Chromium: one email per language for a sample city,
# the preference page in English and Arabic, and the operator console's main pages (the scheduler, the webhook service and the console
# run on a scratch broker for it):
#   deploy/screenshots.sh [DIR]          (default docs/screenshots)
# Needs Debian's chromium and fonts for Arabic and CJK (fonts-noto-core, fonts-noto-cjk;
# deploy/setup.sh installs them). Extra arguments go to python -m gnlc_email.preview.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || deploy/setup.sh
dir="${1:-docs/screenshots}"
shift || true
.venv/bin/python -m gnlc_email.preview --screenshots "$dir" "$@"
.venv/bin/python -m gnlc_email.preview --preference-pages "$dir"
deploy/with-services.sh --scratch .venv/bin/python -m gnlc_devtools.console_shots "$dir"
