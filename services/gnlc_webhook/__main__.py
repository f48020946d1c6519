"""``python -m gnlc_webhook``: run the webhook service (``GNLC_WEBHOOK_WORKERS`` processes)."""

from gnlc_core.service import run
from gnlc_webhook.app import create_app, prepare

if __name__ == "__main__":
    run(
        "webhook",
        create_app,
        lambda settings: settings.webhook_port,
        workers=lambda settings: settings.webhook_workers,
        worker_factory="gnlc_webhook.app:worker_app",
        prepare=prepare,
        operator_api=True,
    )
