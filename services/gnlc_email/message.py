"""MIME assembly, pure: a rendered email and its recipient become RFC 5322 bytes.

The structure is fixed, so it is written directly rather than through ``EmailMessage``
(whose header parsing and folding cost about 2 ms a message, more than everything else the
service does for it): ``multipart/alternative`` with the text part first and the HTML part
second (clients show the last part they can), wrapped in ``multipart/mixed`` when there is
an attachment (the ``.ics`` of a deadline reminder). Bodies are UTF-8, quoted-printable for
mostly-Latin text and base64 where that is shorter (Arabic, Chinese, Korean ...); headers
with non-ASCII text are RFC 2047 encoded and folded by ``email.header``. The tests parse what
this writes with the standard library's parser (``email.policy.default``) and compare.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from gnlc_email.render import Attachment, RenderedEmail

EVENT_ID_HEADER = "X-GNLC-Event-Id"
_MESSAGE_ID_NAMESPACE = uuid.UUID("8d0b8f5e-1f6a-4d0e-a2f4-52b8a3d7c901")
CRLF = "\r\n"
_WORD_BYTES = 42  # base64 of 42 bytes is 56 characters; with "=?utf-8?b?...?=" 68


@dataclass(frozen=True)
class Recipient:
    name: str
    address: str
    key: str  # the ledger's recipient: "city-id:address"


def message_id(event_id: str, recipient_key: str, domain: str) -> str:
    """The same notice always gets the same Message-ID, so a copy sent twice (a crash
    between the server's "250" and the ledger write) is recognisable as one."""
    return f"<{uuid.uuid5(_MESSAGE_ID_NAMESPACE, f'{event_id}/{recipient_key}')}@{domain}>"


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 "B" encoded-words of at most 68 characters, folded with CRLF
    and a space, never splitting a UTF-8 sequence: with a header name of up to 10
    characters every line stays within 78. (``email.header`` does the same, a hundred
    times slower.)"""
    data = text.encode()
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a UTF-8 sequence
            end -= 1
        words.append(data[start:end])
        start = end
    return f"{CRLF} ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


def header(name: str, value: str) -> str:
    """One header line (folded as needed), CRLF-terminated; non-ASCII as RFC 2047."""
    if not value.isascii():
        return f"{name}: {encoded_words(value)}{CRLF}"
    if len(name) + len(value) < 77 or " " not in value:
        return f"{name}: {value}{CRLF}"
    return f"{name}: {Header(value, 'us-ascii', header_name=name).encode(linesep=CRLF)}{CRLF}"


@lru_cache(maxsize=4096)
def address(display_name: str, email: str, *, name: str) -> str:
    """An address header: ``Name <local@domain>``, the name quoted or encoded as needed."""
    if not display_name:
        return header(name, email)
    if display_name.isascii():
        return header(name, formataddr((display_name, email)))
    return f"{name}: {encoded_words(display_name)}{CRLF} <{email}>{CRLF}"


@lru_cache(maxsize=64)
def mailbox_header(name: str, value: str) -> str:
    """A header from a configured ``Name <address>`` string."""
    display_name, email = parseaddr(value)
    return address(display_name, email or value, name=name)


def _encode_body(data: bytes) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body with CRLF line ends): quoted-printable,
    unless base64 is shorter (text mostly outside Latin script)."""
    qp = binascii.b2a_qp(data, istext=True)
    base64_length = 4 * -(-len(data) // 3) * 77 // 76 + 1  # with its line breaks
    if len(qp) <= base64_length:
        return "quoted-printable", qp.replace(b"\n", b"\r\n")
    return "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    encoding, body = _encode_body(data)
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}"
    )
    return head.encode() + body


@lru_cache(maxsize=256)  # the same .ics goes to every city of a language
def _attachment_part(attachment: Attachment) -> bytes:
    filename = attachment.filename.replace('"', "")
    body = base64.encodebytes(attachment.data).replace(b"\n", b"\r\n")
    head = (
        f'Content-Type: {attachment.content_type}; charset="utf-8";{CRLF} name="{filename}"{CRLF}'
        f'Content-Disposition: attachment;{CRLF} filename="{filename}"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
    )
    return head.encode() + body


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    """The parts between boundary lines. A boundary starting ``=_`` cannot occur in
    quoted-printable or base64 text, so it needs no check against the content."""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{CRLF}{CRLF}'.encode()
    delimiter = f"--{boundary}{CRLF}".encode()
    body = b"".join(delimiter + part + CRLF.encode() for part in parts)
    return head + body + f"--{boundary}--{CRLF}".encode()


def compose(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: Recipient,
    event_id: str,
    sent_at: datetime,
    message_id_domain: str,
    reply_to: str | None = None,
    unsubscribe_url: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    preferences_url: str | None = None,
    message_id_of: str | None = None,
) -> bytes:
    """The whole message as bytes for SMTP ``DATA`` (CRLF line ends, no dot-stuffing);
    ``extra_headers`` (ASCII) go last, before the MIME structure. ``message_id_of``: what
    the Message-ID derives from instead of the event id (a resend's own request)."""
    msg_id = message_id(message_id_of or event_id, recipient.key, message_id_domain)
    seed = hashlib.sha256(msg_id.encode()).hexdigest()[:24]
    personal = rendered.for_recipient(
        unsubscribe_url, (recipient.address, recipient.name), preferences_url
    )
    body = _multipart(
        "alternative",
        f"=_alt_{seed}",
        [_text_part("plain", personal.text), _text_part("html", personal.html)],
    )
    if personal.attachments:
        body = _multipart(
            "mixed",
            f"=_mix_{seed}",
            [body, *(_attachment_part(a) for a in personal.attachments)],
        )
    lines = [
        header("Date", format_datetime(sent_at)),
        mailbox_header("From", sender),
        mailbox_header("Reply-To", reply_to) if reply_to else "",
        address(recipient.name, recipient.address, name="To"),
        header("Subject", personal.subject),
        header("Message-ID", msg_id),
        header("MIME-Version", "1.0"),
        header("Content-Language", personal.language),
        header("Auto-Submitted", "auto-generated"),
        header(EVENT_ID_HEADER, event_id),
    ]
    if personal.optional and unsubscribe_url:
        lines.append(header("List-Unsubscribe", f"<{unsubscribe_url}>"))
        lines.append(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    lines.extend(header(name, value) for name, value in extra_headers)
    return "".join(lines).encode("utf-8") + body  # UTF-8 only for an SMTPUTF8 address
