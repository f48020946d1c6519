"""What an SMTP failure means: retry later, or give up for this recipient."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from gnlc_email.sender import classify


@pytest.mark.parametrize(
    ("error", "transient", "code"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b")]),
            True,
            450,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b")]
            ),
            False,
            550,
        ),
        (aiosmtplib.SMTPDataError(554, "rejected as spam"), False, 554),
        (aiosmtplib.SMTPDataError(451, "local error"), True, 451),
        (aiosmtplib.SMTPResponseException(421, "closing"), True, 421),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), True, 535),
        (aiosmtplib.SMTPSenderRefused(553, "sender not allowed", "x@y"), True, 553),
        (aiosmtplib.SMTPConnectError("refused"), True, None),
        (aiosmtplib.SMTPServerDisconnected("gone"), True, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), True, None),
        (ConnectionRefusedError(111, "refused"), True, None),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), True, None),
        (TimeoutError(), True, None),
        (ValueError("address has a newline"), False, None),
    ],
)
def test_classify(error: BaseException, transient: bool, code: int | None) -> None:
    failure = classify(error)
    assert failure.transient is transient
    assert failure.code == code
    assert failure.reason
