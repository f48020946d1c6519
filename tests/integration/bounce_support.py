"""A relay that bounces: an SMTP server (aiosmtpd) that accepts every recipient at RCPT and
the message at DATA, keeps it, and then, for the addresses told to fail, does what a
mail server does when the next hop refuses after it has taken responsibility: it writes a
delivery status notification (RFC 3464) and sends it, from the null sender, to the
message's return path over SMTP (here: the email service's inbound listener)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import free_port

HARD = ("failed", "5.1.1", "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown")
SOFT = ("delayed", "4.2.2", "smtp; 452 4.2.2 <{rcpt}>: Mailbox full")


def dsn(return_path: str, recipient: str, original: bytes, failure: tuple[str, str, str]) -> bytes:
    """An RFC 3464 report about ``recipient``, with the original message's headers."""
    action, status, diagnostic = failure
    headers = original.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    boundary = "=_dsn_boundary"
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n"
        f"To: <{return_path}>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: {make_msgid(domain='relay.test')}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is the mail system at host relay.test. Your message could not be delivered.\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; relay.test\r\n"
        f"Arrival-Date: {format_datetime(datetime.now(UTC))}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mx.far-away.test\r\n"
        f"Diagnostic-Code: {diagnostic.format(rcpt=recipient)}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


#: How often, and how far apart, the relay offers a report the listener defers (4xx).
RELAY_TRIES = 40
RELAY_RETRY_SECONDS = 0.25


class BouncingRelay:
    """``failing[address] = HARD or SOFT`` makes the relay bounce mail to ``address``."""

    def __init__(self, bounce_port: int) -> None:
        self.bounce_port = bounce_port
        self.failing: dict[str, tuple[str, str, str]] = {}
        self.messages: list[tuple[str, str, EmailMessage]] = []  # (mail from, rcpt, message)
        self.reports_sent = 0
        self.report_replies: list[str] = []
        self.deferred = 0  # reports the listener answered with a 4xx (tried again)
        self._lock = threading.Condition()
        self._controller = Controller(
            self, hostname="127.0.0.1", port=free_port(), decode_data=False, ready_timeout=10
        )

    @property
    def port(self) -> int:
        return int(self._controller.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        mail_from = str(envelope.mail_from)
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((mail_from, rcpt, parsed))
            self._lock.notify_all()
        for rcpt in envelope.rcpt_tos:
            if (failure := self.failing.get(rcpt)) and mail_from:
                asyncio.get_running_loop().create_task(self._bounce(mail_from, rcpt, raw, failure))
        return "250 2.0.0 queued"

    async def _bounce(
        self, return_path: str, rcpt: str, raw: bytes, failure: tuple[str, str, str]
    ) -> None:
        report = dsn(return_path, rcpt, raw, failure)
        for _ in range(RELAY_TRIES):  # a relay's queue: a 4xx answer is tried again later
            try:
                outcome = await deliver(self.bounce_port, return_path, report)
                break
            except aiosmtplib.SMTPResponseException as exc:
                outcome = f"error: {exc}"
                if not 400 <= exc.code < 500:
                    break
                self.deferred += 1
                await asyncio.sleep(RELAY_RETRY_SECONDS)
            except aiosmtplib.SMTPException as exc:
                outcome = f"error: {exc}"
                break
        with self._lock:
            self.reports_sent += 1
            self.report_replies.append(outcome)
            self._lock.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = 60) -> bool:
        with self._lock:
            return bool(self._lock.wait_for(condition, timeout))

    def __enter__(self) -> BouncingRelay:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


async def deliver(port: int, rcpt: str, report: bytes) -> str:
    """Send ``report`` from the null sender (``MAIL FROM:<>``, as every DSN and report is)
    to ``rcpt`` at the listener on ``port``; the final reply's text."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
        await client.mail("")
        await client.rcpt(rcpt)
        reply = await client.data(report)
    return str(reply.message)


def send_report(port: int, rcpt: str, report: bytes) -> str:
    """Hand a report to the listener as a remote server would: the reply's text."""
    return asyncio.run(deliver(port, rcpt, report))


def arf(return_path: str, recipient: str, original_headers: str) -> bytes:
    """A feedback report (RFC 5965) as a mailbox provider's feedback loop sends it."""
    boundary = "=_arf_boundary"
    return (
        f"From: Feedback Loop <fbl@isp.test>\r\n"
        f"To: <postmaster@isp.test>\r\n"
        f"Subject: FW: complaint\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain\r\n\r\n"
        f"This is an email abuse report for a message received from us.\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\n"
        f"User-Agent: isp-fbl/2.1\r\n"
        f"Version: 1\r\n"
        f"Original-Mail-From: <{return_path}>\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n"
        f"Arrival-Date: {format_datetime(datetime.now(UTC))}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"{original_headers}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
