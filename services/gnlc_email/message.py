"""MIME assembly, pure: a rendered email becomes an RFC 5322 multipart/alternative message."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from gnlc_email.render import RenderedEmail

EVENT_ID_HEADER = "X-GNLC-Event-Id"


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to_name: str,
    to_address: str,
    event_id: str,
    sent_at: datetime,
    message_id_domain: str,
    reply_to: str | None = None,
) -> EmailMessage:
    """Text first, HTML second (clients show the last part they can); non-ASCII names and
    subjects are encoded by the email package's policy."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    username, _, domain = to_address.rpartition("@")
    message["To"] = Address(display_name=to_name, username=username, domain=domain)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid(domain=message_id_domain)
    message[EVENT_ID_HEADER] = event_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
