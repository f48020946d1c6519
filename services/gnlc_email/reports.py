"""Reading what comes back by mail, pure: a delivery status notification (RFC 3464, and the
non-standard bounces of many servers) or a feedback report (RFC 5965, ARF).

Bounces are detected by ``flufl.bounce`` (Mailman's detectors: RFC 3464 first, then the
formats of Exim, Postfix, qmail, Exchange, ...), which tells temporary failures from
permanent ones; feedback reports by the standard library's parser, which reads a
``message/feedback-report`` part as a block of fields. Nothing here matches text with
patterns of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

from gnlc_email.bounces import Feedback

#: Feedback types (RFC 5965 section 7.3) that are complaints about the mail itself.
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
_DETAIL = 300


@dataclass(frozen=True)
class Reading:
    """What a message says: the kind of feedback, the addresses it names (lower case),
    a short detail for people, and addresses that may carry our VERP token (for reports
    not sent to it, such as a feedback loop's)."""

    feedback: Feedback
    addresses: frozenset[str]
    detail: str
    return_paths: tuple[str, ...] = ()


def read(message: Message) -> Reading | None:
    """The feedback ``message`` carries, or None (an auto-reply, a warning, anything else)."""
    report = _feedback_report(message)
    if report is not None:
        return report
    temporary, permanent = all_failures(message)
    if permanent:
        return Reading(Feedback.HARD, _decoded(permanent), _dsn_detail(message))
    if temporary:
        return Reading(Feedback.SOFT, _decoded(temporary), _dsn_detail(message))
    return None


def _decoded(addresses: frozenset[bytes]) -> frozenset[str]:
    return frozenset(a.decode("ascii", "replace").lower() for a in addresses)


def _parts(message: Message, content_type: str) -> Iterator[Message]:
    for part in message.walk():
        if part.get_content_type() == content_type:
            yield part


def _fields(part: Message) -> list[Message]:
    """The header blocks of a ``message/delivery-status`` or ``message/feedback-report``
    part, as the standard parser makes them."""
    payload = part.get_payload()
    return (
        [block for block in payload if isinstance(block, Message)]
        if isinstance(payload, list)
        else []
    )


def _feedback_report(message: Message) -> Reading | None:
    for part in _parts(message, "message/feedback-report"):
        for fields in _fields(part):
            kind = str(fields.get("Feedback-Type", "")).strip().lower()
            if kind not in COMPLAINT_TYPES:
                return None
            recipients = [a for _, a in getaddresses(fields.get_all("Original-Rcpt-To", []))]
            return_paths = [a for _, a in getaddresses(fields.get_all("Original-Mail-From", []))]
            return_paths += _original_return_paths(message)
            return Reading(
                Feedback.COMPLAINT,
                frozenset(a.lower() for a in recipients if a),
                f"feedback report: {kind}",
                tuple(a for a in return_paths if a),
            )
    return None


def _original_return_paths(message: Message) -> list[str]:
    """The Return-Path of the reported message, enclosed whole (``message/rfc822``) or as
    its header (``text/rfc822-headers``)."""
    found: list[str] = []
    for part in _parts(message, "message/rfc822"):
        for original in _fields(part):
            found += [a for _, a in getaddresses(original.get_all("Return-Path", []))]
    for part in _parts(message, "text/rfc822-headers"):
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            headers = HeaderParser().parsestr(text.decode("utf-8", "replace"), headersonly=True)
            found += [a for _, a in getaddresses(headers.get_all("Return-Path", []))]
    return found


def _dsn_detail(message: Message) -> str:
    """The status and diagnostic of the first recipient a DSN reports, for people."""
    for part in _parts(message, "message/delivery-status"):
        for fields in _fields(part)[1:]:  # the first block is about the message
            status = " ".join(str(fields.get("Status", "")).split())
            diagnostic = " ".join(str(fields.get("Diagnostic-Code", "")).split())
            detail = "; ".join(x for x in (status, diagnostic) if x)
            if detail:
                return detail[:_DETAIL]
    subject = " ".join(str(message.get("Subject", "")).split())
    return f"bounce: {subject}"[:_DETAIL]
