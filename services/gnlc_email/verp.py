"""VERP return paths: every message's envelope sender names its notice, signed.

``bounces+<token>@<bounce domain>``, where the token is 32 bytes in lower-case base32
(52 characters, so the local part stays within RFC 5321's 64 octets; base32 because some
servers change the case of a local part):

======  =================================================================================
bytes   what
======  =================================================================================
16      the event id (every event id is a UUID)
1       the kind of mail: 0 required (a reminder), 1 optional (an announcement)
6       the first bytes of SHA-256 of the ledger's recipient key (``city-id:address``);
        the notice is found among the event's notices by it
9       HMAC-SHA256 of the 23 bytes before, under the bounce secret, truncated (72 bits:
        every guess costs an SMTP transaction or a signed webhook call)
======  =================================================================================

Nothing in the token is secret (the address is not in it, only a digest); the MAC makes it
impossible to name a notice one was not sent, so a forged bounce changes nothing. The
secrets are a list, current last, so a rotated secret keeps the bounces of mail already
sent verifying.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

_MAC_BYTES = 9
_DIGEST_BYTES = 6
_PAYLOAD_BYTES = 16 + 1 + _DIGEST_BYTES
TOKEN_LENGTH = 52  # base32 of 32 bytes, no padding
_CONTEXT = b"gnlc-notify/verp/v1\x00"


class MailKind(IntEnum):
    REQUIRED = 0
    OPTIONAL = 1


class BadBounceToken(ValueError):
    """Not a token of ours: malformed, or its MAC does not verify."""


@dataclass(frozen=True)
class NoticeRef:
    """What a verified token names."""

    event_id: str
    kind: MailKind
    recipient_digest: bytes


def recipient_digest(recipient_key: str) -> bytes:
    return hashlib.sha256(recipient_key.encode()).digest()[:_DIGEST_BYTES]


class ReturnPaths:
    """Makes and checks the VERP addresses of one bounce domain."""

    def __init__(self, secrets: Sequence[str], domain: str, local_part: str = "bounces") -> None:
        if not secrets or not all(secrets):
            raise ValueError("a bounce secret is needed")
        self._keys = [s.encode() for s in reversed(secrets)]  # current first
        self.domain = domain.lower()
        self.local_part = local_part.lower()

    def _mac(self, key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def token(self, event_id: str, recipient_key: str, kind: MailKind) -> str | None:
        """The token of one notice; None for an event id that is not a UUID."""
        try:
            event = uuid.UUID(event_id).bytes
        except ValueError:
            return None
        payload = event + bytes([kind]) + recipient_digest(recipient_key)
        raw = payload + self._mac(self._keys[0], payload)
        return base64.b32encode(raw).decode().rstrip("=").lower()

    def address(self, token: str) -> str:
        """The return path that carries ``token``."""
        return f"{self.local_part}+{token}@{self.domain}"

    def verify(self, token: str) -> NoticeRef:
        if len(token) != TOKEN_LENGTH:
            raise BadBounceToken("not a bounce token (length)")
        try:
            raw = base64.b32decode(token.upper() + "====")
        except (binascii.Error, ValueError):
            raise BadBounceToken("not a bounce token (encoding)") from None
        payload, mac = raw[:_PAYLOAD_BYTES], raw[_PAYLOAD_BYTES:]
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in self._keys):
            raise BadBounceToken("bad signature")
        try:
            kind = MailKind(payload[16])
        except ValueError:
            raise BadBounceToken("unknown kind of mail") from None
        return NoticeRef(str(uuid.UUID(bytes=payload[:16])), kind, payload[17:])

    def token_of(self, address: str) -> str | None:
        """The token of a ``<local>+<token>@<domain>`` address of this domain, else None
        (any other address, or the plain ``<local>@<domain>``)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        base, plus, token = local.partition("+")
        if not plus or base.lower() != self.local_part:
            return None
        return token.lower()

    def accepts(self, address: str) -> bool:
        """An address the inbound listener takes mail for: ``<local>[+...]@<domain>``."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        return (
            bool(at)
            and domain.lower() == self.domain
            and (local.partition("+")[0].lower() == self.local_part)
        )
