"""``python -m gnlc_email``: run the email service."""

from gnlc_core.service import run
from gnlc_email.app import create_app

if __name__ == "__main__":
    run("email", create_app, lambda settings: settings.email_port)
