"""``python -m gnlc_scheduler``: run the scheduler service."""

from gnlc_core.service import run
from gnlc_scheduler.app import create_app

if __name__ == "__main__":
    run("scheduler", create_app, lambda settings: settings.scheduler_port, operator_api=True)
