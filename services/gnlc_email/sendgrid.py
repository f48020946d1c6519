"""SendGrid's Event Webhook: bounces, deferrals and spam reports of mail relayed through
SendGrid, verified as SendGrid documents its *Signed Event Webhook*.

SendGrid signs each POST with ECDSA (P-256, SHA-256) over the timestamp header followed by
the raw body; the operator copies the verification key (base64 DER of the public key) from
SendGrid's settings into ``GNLC_BOUNCE_SENDGRID_PUBLIC_KEY``. Verification needs nothing
at run time but that key: no certificate to fetch, no shared password. A request without
both headers, with a bad signature or with a timestamp older than
``GNLC_BOUNCE_SENDGRID_MAX_AGE_SECONDS`` (or that far in the future) is refused (401) and
changes nothing.

Each message relayed through SendGrid carries its notice's bounce token as a *unique arg*
(``X-SMTPAPI: {"unique_args": {"gnlc_notice": "<token>"}}``), which SendGrid returns as
a field of every event about it; the token is verified like the one of a DSN.

Events: ``bounce`` is a hard bounce (``type: blocked`` a soft one: the receiver refused
for now, not the address), ``deferred`` a soft bounce, ``spamreport`` a complaint; the rest
(delivered, open, click, dropped, ...) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from fastapi import APIRouter, Header, HTTPException, Request, status

from gnlc_core.logs import get_logger
from gnlc_email.bounces import Feedback
from gnlc_email.feedback import FeedbackHandler, Outcome, Source

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TOKEN_ARG = "gnlc_notice"  # noqa: S105 (the name of a field, not a secret)
PATH = "/bounces/sendgrid"
#: Limits of one POST: its body (SendGrid batches events) and the events in it.
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 5000
_MAX_SIGNATURE = 512


def smtpapi_header(token: str) -> tuple[str, str]:
    """The header that makes SendGrid return ``token`` with every event of the message."""
    return "X-SMTPAPI", json.dumps({"unique_args": {TOKEN_ARG: token}}, separators=(",", ":"))


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 of the DER public key (as its settings page
    shows it), or the same as PEM."""
    data = text.strip().encode()
    try:
        key = (
            load_pem_public_key(data)
            if data.startswith(b"-----")
            else load_der_public_key(base64.b64decode(data, validate=True))
        )
    except (ValueError, binascii.Error):
        raise ValueError(
            "GNLC_BOUNCE_SENDGRID_PUBLIC_KEY is not a public key (base64 DER or PEM)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("GNLC_BOUNCE_SENDGRID_PUBLIC_KEY is not an elliptic-curve key")
    return key


def signature_problem(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: float,
    max_age: float,
) -> str | None:
    """Why the request is not SendGrid's (None: it is)."""
    if not signature or not timestamp:
        return f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} is not a Unix time"
    if abs(now - int(timestamp)) > max_age:
        return f"{TIMESTAMP_HEADER} is more than {max_age:g} s away from now"
    if len(signature) > _MAX_SIGNATURE:
        return f"{SIGNATURE_HEADER} is too long"
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return "the signature does not verify"
    return None


def feedback_of(event: Mapping[str, Any]) -> Feedback | None:
    """What one SendGrid event says about its notice (None: nothing we act on)."""
    kind = event.get("event")
    if kind == "bounce":
        return Feedback.SOFT if event.get("type") == "blocked" else Feedback.HARD
    if kind == "deferred":
        return Feedback.SOFT
    if kind == "spamreport":
        return Feedback.COMPLAINT
    return None


def _detail(event: Mapping[str, Any]) -> str:
    parts = [str(event.get(k)) for k in ("event", "status", "reason", "response") if event.get(k)]
    return "sendgrid: " + "; ".join(parts)


@dataclass
class SendGridState:
    """Filled in when the service has started."""

    handler: FeedbackHandler | None = None


def sendgrid_router(
    state: SendGridState,
    key: ec.EllipticCurvePublicKey,
    max_age: float,
    clock: Callable[[], float] = lambda: datetime.now(UTC).timestamp(),
) -> APIRouter:
    router = APIRouter(tags=["bounces"])

    @router.post(
        PATH,
        responses={
            401: {"description": "Not signed by SendGrid (missing, stale or bad signature)."},
            413: {"description": f"The body is larger than {MAX_BODY_BYTES} bytes."},
            422: {"description": f"Not a JSON array of at most {MAX_EVENTS} event objects."},
            503: {"description": "The service is starting."},
        },
    )
    async def events(
        request: Request,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
        timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
    ) -> dict[str, int]:
        """SendGrid's Event Webhook (signed): bounces, deferrals and spam reports."""
        body = await request.body()
        problem = signature_problem(key, signature, timestamp, body, now=clock(), max_age=max_age)
        if problem:
            log.warning("sendgrid webhook refused", why=problem)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, problem)
        try:
            items = json.loads(body)
        except ValueError:
            raise HTTPException(422, "the body is not JSON") from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise HTTPException(422, "the body is not a JSON array of event objects")
        if len(items) > MAX_EVENTS:
            raise HTTPException(422, f"more than {MAX_EVENTS} events in one request")
        handler = state.handler
        if handler is None:
            raise HTTPException(503, "the service is starting; SendGrid tries again")
        counts = {outcome.value: 0 for outcome in Outcome} | {"ignored": 0}
        for item in items:
            kind = feedback_of(item)
            token = item.get(TOKEN_ARG)
            if kind is None or not isinstance(token, str):
                counts["ignored"] += 1
                continue
            email = item.get("email")
            named = frozenset({email.lower()}) if isinstance(email, str) else frozenset()
            outcome = await handler.handle(token, kind, Source.SENDGRID, _detail(item)[:300], named)
            counts[outcome.value] += 1
        return counts

    return router
