#!/usr/bin/env bash
# The whole system on this machine with embedded defaults: a local Kafka broker, the sample
# city directory, a local SMTP mailbox and a webhook receiver, a demo deadline. Ctrl-C stops
# everything, including the broker if this script started it. Arguments go to
# `gnlc-notify dev up` (e.g. --exit-after-mail 4).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
deploy/with-services.sh .venv/bin/gnlc-notify dev up "$@"
