"""The bounce loop's pure parts: VERP tokens, the decisions, reading DSNs and ARF reports,
SendGrid's signature and events."""

from __future__ import annotations

import base64
import json
from email import message_from_bytes

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gnlc_email.bounces import Action, Decision, Feedback, decide, drop_reason, undeliverable
from gnlc_email.reports import read
from gnlc_email.sendgrid import feedback_of, load_public_key, signature_problem, smtpapi_header
from gnlc_email.verp import TOKEN_LENGTH, BadBounceToken, MailKind, ReturnPaths, recipient_digest

EVENT = "1fbcfa17-9717-5eed-b918-c4062534eda3"
KEY = "kathmandu:lll@kathmandu.example.org"

# -- VERP ----------------------------------------------------------------------------------


def test_a_token_names_its_notice_and_fits_a_local_part() -> None:
    paths = ReturnPaths(["s3cret"], "Bounce.Example.org")
    token = paths.token(EVENT, KEY, MailKind.OPTIONAL)
    assert token is not None
    assert len(token) == TOKEN_LENGTH
    address = paths.address(token)
    assert len(address.partition("@")[0]) <= 64  # RFC 5321
    assert address.endswith("@bounce.example.org")
    assert paths.token_of(address.upper()) == token  # a server may change the case
    ref = paths.verify(token.upper())
    assert (ref.event_id, ref.kind, ref.recipient_digest) == (
        EVENT,
        MailKind.OPTIONAL,
        recipient_digest(KEY),
    )


def test_a_rotated_secret_still_verifies_old_tokens_and_others_do_not() -> None:
    old = ReturnPaths(["old"], "b.example").token(EVENT, KEY, MailKind.REQUIRED)
    assert old is not None
    assert ReturnPaths(["old", "new"], "b.example").verify(old).event_id == EVENT
    with pytest.raises(BadBounceToken, match="bad signature"):
        ReturnPaths(["new"], "b.example").verify(old)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"), "bad signature"),
        (lambda t: ("b" if t[0] != "b" else "c") + t[1:], "bad signature"),
        (lambda t: t[:-1], "length"),
        (lambda t: "1" * len(t), "encoding"),
        (lambda t: "", "length"),
    ],
)
def test_a_damaged_or_forged_token_is_refused(mangle: object, problem: str) -> None:
    paths = ReturnPaths(["s"], "b.example")
    token = paths.token(EVENT, KEY, MailKind.REQUIRED)
    assert token is not None
    with pytest.raises(BadBounceToken, match=problem):
        paths.verify(mangle(token))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("address", "token", "accepted"),
    [
        ("bounces+abc@b.example", "abc", True),
        ("<Bounces+ABC@B.Example>", "abc", True),
        ("bounces@b.example", None, True),
        ("bounces+abc@other.example", None, False),
        ("postmaster@b.example", None, False),
        ("nobounces+abc@b.example", None, False),
        ("no-at-sign", None, False),
    ],
)
def test_which_addresses_are_ours(address: str, token: str | None, accepted: bool) -> None:
    paths = ReturnPaths(["s"], "b.example")
    assert paths.token_of(address) == token
    assert paths.accepts(address) is accepted


def test_an_event_id_that_is_no_uuid_gets_no_token() -> None:
    assert ReturnPaths(["s"], "b.example").token("evt-1", KEY, MailKind.REQUIRED) is None


# -- decisions -----------------------------------------------------------------------------

WEEK = 7 * 86400.0


@pytest.mark.parametrize(
    ("feedback", "kind", "soft", "expected"),
    [
        (Feedback.HARD, MailKind.REQUIRED, 0, Decision(Action.MARK_BOUNCING, "hard bounce")),
        (Feedback.HARD, MailKind.OPTIONAL, 0, Decision(Action.MARK_BOUNCING, "hard bounce")),
        (
            Feedback.SOFT,
            MailKind.REQUIRED,
            1,
            Decision(Action.COUNT, "soft bounce 1 of 3 within 7 days"),
        ),
        (
            Feedback.SOFT,
            MailKind.REQUIRED,
            2,
            Decision(Action.COUNT, "soft bounce 2 of 3 within 7 days"),
        ),
        (
            Feedback.SOFT,
            MailKind.OPTIONAL,
            3,
            Decision(Action.MARK_BOUNCING, "3 soft bounces within 7 days"),
        ),
        (
            Feedback.COMPLAINT,
            MailKind.OPTIONAL,
            0,
            Decision(Action.UNSUBSCRIBE, "complaint: unsubscribed from announcements"),
        ),
        (
            Feedback.COMPLAINT,
            MailKind.REQUIRED,
            0,
            Decision(Action.ALERT, "complaint about required mail: not unsubscribed"),
        ),
    ],
)
def test_what_feedback_does(
    feedback: Feedback, kind: MailKind, soft: int, expected: Decision
) -> None:
    assert decide(feedback, kind, soft_in_window=soft, threshold=3, window=WEEK) == expected


@pytest.mark.parametrize(
    ("contacts", "bouncing", "expected"),
    [
        (["a@x.org"], {"a@x.org"}, True),
        (["A@x.org", "b@x.org"], {"a@x.org", "b@x.org"}, True),
        (["a@x.org", "b@x.org"], {"a@x.org"}, False),
        ([], set(), False),
    ],
)
def test_a_city_is_undeliverable_when_every_contact_bounces(
    contacts: list[str], bouncing: set[str], expected: bool
) -> None:
    assert undeliverable(contacts, bouncing) is expected


def test_a_bouncing_contact_is_dropped_with_the_reason() -> None:
    assert drop_reason(True) == "contact bouncing"
    assert drop_reason(False) is None


# -- reading what comes back ---------------------------------------------------------------


def dsn(action: str, status: str, recipient: str = "lll@kathmandu.example.org") -> bytes:
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+tok@b.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B
Content-Type: text/rfc822-headers

From: GNLC <gnlc@example.org>
Subject: Reminder

--B--
""".encode()


def arf(feedback_type: str) -> bytes:
    return f"""From: Feedback Loop <fbl@isp.example>
To: bounces@b.example
Subject: FW: Reminder
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.
--F
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: FBL/1.0
Version: 1
Original-Mail-From: <bounces+fromreport@b.example>
Original-Rcpt-To: <LLL@kathmandu.example.org>

--F
Content-Type: message/rfc822

Return-Path: <bounces+fromheaders@b.example>
From: GNLC <gnlc@example.org>
Subject: Announcement

Body.
--F--
""".encode()


@pytest.mark.parametrize(
    ("raw", "feedback", "detail"),
    [
        (dsn("failed", "5.1.1"), Feedback.HARD, "5.1.1; smtp; 550 5.1.1 user unknown"),
        (dsn("delayed", "4.2.2"), Feedback.SOFT, "4.2.2; smtp; 550 5.1.1 user unknown"),
        (arf("abuse"), Feedback.COMPLAINT, "feedback report: abuse"),
    ],
)
def test_reading_dsns_and_feedback_reports(raw: bytes, feedback: Feedback, detail: str) -> None:
    reading = read(message_from_bytes(raw))
    assert reading is not None
    assert reading.feedback is feedback
    assert reading.addresses == {"lll@kathmandu.example.org"}
    assert reading.detail == detail


def test_a_feedback_report_names_the_return_paths_of_the_reported_message() -> None:
    reading = read(message_from_bytes(arf("abuse")))
    assert reading is not None
    assert reading.return_paths == ("bounces+fromreport@b.example", "bounces+fromheaders@b.example")


@pytest.mark.parametrize(
    "raw",
    [
        arf("not-spam"),
        arf("auth-failure"),
        dsn("delivered", "2.0.0"),
        b"From: someone@x.org\nSubject: Out of office\n\nI am away until Monday.\n",
    ],
)
def test_what_is_no_bounce_or_complaint_is_none(raw: bytes) -> None:
    assert read(message_from_bytes(raw)) is None


# -- SendGrid ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def test_sendgrid_signatures(sendgrid_key: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    private, public = sendgrid_key
    key = load_public_key(public)
    body = b'[{"event":"bounce"}]'
    good = sign(private, "1700000000", body)

    def problem(
        signature: str | None, timestamp: str | None, data: bytes, now: float
    ) -> str | None:
        return signature_problem(key, signature, timestamp, data, now=now, max_age=600)

    assert problem(good, "1700000000", body, 1700000100) is None
    assert problem(good, "1700000000", body + b" ", 1700000100) == "the signature does not verify"
    assert problem(good, "1700000001", body, 1700000100) == "the signature does not verify"
    assert problem(good, "1700000000", body, 1700001000) is not None  # too old
    assert problem(None, "1700000000", body, 1700000000) is not None
    assert problem("not base64!", "1700000000", body, 1700000000) is not None
    assert problem(good, "17e8", body, 1700000000) is not None
    other = ec.generate_private_key(ec.SECP256R1())
    forged = sign(other, "1700000000", body)
    assert problem(forged, "1700000000", body, 1700000000) == "the signature does not verify"


@pytest.mark.parametrize("text", ["", "bm90IGEga2V5", "-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_a_bad_sendgrid_key_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="GNLC_BOUNCE_SENDGRID_PUBLIC_KEY"):
        load_public_key(text)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"event": "bounce", "type": "bounce"}, Feedback.HARD),
        ({"event": "bounce"}, Feedback.HARD),
        ({"event": "bounce", "type": "blocked"}, Feedback.SOFT),
        ({"event": "deferred"}, Feedback.SOFT),
        ({"event": "spamreport"}, Feedback.COMPLAINT),
        ({"event": "delivered"}, None),
        ({"event": "dropped"}, None),
        ({}, None),
    ],
)
def test_what_a_sendgrid_event_says(event: dict[str, str], expected: Feedback | None) -> None:
    assert feedback_of(event) is expected


def test_the_smtpapi_header_carries_the_token_as_a_unique_arg() -> None:
    name, value = smtpapi_header("abc")
    assert name == "X-SMTPAPI"
    assert json.loads(value) == {"unique_args": {"gnlc_notice": "abc"}}
