"""``python -m gnlc_webhook``: run the webhook service."""

from gnlc_core.service import run
from gnlc_webhook.app import create_app

if __name__ == "__main__":
    run("webhook", create_app, lambda settings: settings.webhook_port)
