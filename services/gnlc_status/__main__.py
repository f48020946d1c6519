"""``python -m gnlc_status``: run the status view and its API."""

from gnlc_core.service import run
from gnlc_status.app import create_app

if __name__ == "__main__":
    run("status", create_app, lambda settings: settings.status_port, operator_api=True)
