#!/usr/bin/env bash
# The whole system on this machine with embedded defaults: a local Kafka broker, the sample
# city directory, a local SMTP mailbox and a webhook receiver, a demo deadline. Ctrl-C (or
# SIGTERM to this script) stops everything, including the broker if this script started it.
# Arguments go to `gnlc-notify dev up` (e.g. --exit-after-mail 4); ports are read from
# GNLC_SCHEDULER_PORT, GNLC_EMAIL_PORT, GNLC_WEBHOOK_PORT, GNLC_MAILBOX_PORT, GNLC_RECEIVER_PORT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup.sh
# exec: a signal to this script's process reaches the wrapper that stops what it started
exec deploy/with-services.sh .venv/bin/gnlc-notify dev up "$@"
