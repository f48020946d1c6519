"""The inbound SMTP listener of the bounce domain (aiosmtpd, in the email service's event
loop): it takes mail for ``bounces[+token]@<GNLC_BOUNCE_DOMAIN>`` only (anything else is
refused at RCPT, so it is no relay), reads each message (``gnlc_email.reports``) and hands
the feedback to ``FeedbackHandler`` under the token of the address it came to, or, for a
feedback report sent to the plain address (a feedback loop's), under the token of the
reported message's return path.

A message that is no bounce or complaint (an auto-reply) is accepted and dropped. When the
feedback cannot be recorded (the database does not answer), or names a notice whose
outcome is not in the ledger yet (a relay that bounces within the second the send took:
the ledger is written a moment after), the answer is 451, so the sending server tries
again later.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes

from aiosmtpd.smtp import SMTP, Envelope, Session

from gnlc_core.logs import get_logger
from gnlc_email.feedback import FeedbackHandler, Outcome, Source
from gnlc_email.reports import read

log = get_logger(__name__)

#: Largest message taken: a DSN carries the original message, and ours are small.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
#: Recipients per message (a bounce has one).
MAX_RECIPIENTS = 10


class NotYetKnown(Exception):
    """Feedback about a notice the ledger does not have yet: to be sent again later."""


class InboundHandler:
    """aiosmtpd handler."""

    def __init__(self, feedback: FeedbackHandler) -> None:
        self._feedback = feedback
        self._paths = feedback.return_paths

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._paths.accepts(address):
            return "550 5.1.1 not a bounce address of this domain"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        try:
            await self.take(raw, list(envelope.rcpt_tos))
        except NotYetKnown as exc:
            log.info("inbound feedback about a notice not recorded yet", event_ids=str(exc))
            return "451 4.3.0 that message is not recorded yet, try again later"
        except Exception as exc:  # a database error, say: the sender keeps it and retries
            log.error("inbound feedback not recorded", error=f"{type(exc).__name__}: {exc}")
            return "451 4.3.0 cannot record this now, try again later"
        return "250 OK"

    async def take(self, raw: bytes, recipients: list[str]) -> int:
        """Hand the feedback in ``raw`` on; the number of notices it was about."""
        message = message_from_bytes(raw)  # the compat32 Message flufl.bounce expects
        reading = read(message)
        if reading is None:
            log.info("inbound mail is no bounce or complaint: dropped")
            return 0
        tokens = {t for r in recipients if (t := self._paths.token_of(r))}
        if not tokens:
            tokens = {t for a in reading.return_paths if (t := self._paths.token_of(a))}
        if not tokens:
            log.warning("inbound feedback names no notice", feedback=reading.feedback.value)
            return 0
        unknown = [
            token
            for token in sorted(tokens)
            if await self._feedback.handle(
                token, reading.feedback, Source.SMTP, reading.detail, reading.addresses
            )
            is Outcome.UNKNOWN
        ]
        if unknown:  # the whole report comes again (a bounce names one notice)
            raise NotYetKnown(", ".join(unknown))
        return len(tokens)


async def start_listener(
    handler: InboundHandler, host: str, port: int, hostname: str
) -> asyncio.Server:
    """The listener on ``host:port`` in the running loop (stop it with ``close()``)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            hostname=hostname,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
        ),
        host=host,
        port=port,
    )
