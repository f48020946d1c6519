"""The bounce loop end to end, on the real broker and real SMTP servers: the email service
sends through a relay that bounces (a DSN back to the VERP return path, over SMTP, to the
service's inbound listener), through SendGrid's signed event webhook, and takes a feedback
loop's ARF complaint."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gnlc_core.events import Audience
from gnlc_core.ledger import Status
from gnlc_email.verp import MailKind, ReturnPaths
from tests.integration.bounce_support import HARD, SOFT, BouncingRelay, arf, dsn, send_report
from tests.integration.conftest import System
from tests.integration.email_support import (
    announcement,
    ledger_status,
    publish,
    reminder,
    wait_for_status,
)
from tests.support import HTTP, Service, free_port

pytestmark = pytest.mark.integration

DOMAIN = "bounces.gnlc.test"
SECRET = "bounce-secret-of-the-test"
ADDRESS = "lll@kathmandu.example.org"
KATHMANDU = f"kathmandu:{ADDRESS}"
ONLY_KATHMANDU = Audience(cities=("kathmandu",))


@pytest.fixture
def bounce_port() -> int:
    return free_port()


@pytest.fixture
def relay(bounce_port: int) -> Iterator[BouncingRelay]:
    with BouncingRelay(bounce_port) as relay:
        yield relay


def email_service(system: System, relay: BouncingRelay, bounce_port: int, **extra: str) -> Service:
    return system.service(
        "email",
        GNLC_SMTP_PORT=str(relay.port),
        GNLC_BOUNCE_DOMAIN=DOMAIN,
        GNLC_BOUNCE_SECRETS=json.dumps([SECRET]),
        GNLC_BOUNCE_SMTP_PORT=str(bounce_port),
        GNLC_BOUNCE_SOFT_THRESHOLD="2",
        **extra,
    ).start()


def bouncing(system: System, email: Service) -> list[dict[str, object]]:
    response = system.api_at("GET", email.url, "/v1/bouncing")
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_hard_bounce_from_the_relay_marks_the_contact_and_the_next_reminder_is_dropped(
    system: System, relay: BouncingRelay, bounce_port: int
) -> None:
    email = email_service(system, relay, bounce_port)
    relay.failing[ADDRESS] = HARD
    first = reminder(ONLY_KATHMANDU, deadline_id="progress-report")
    publish(system, first)
    assert relay.wait(lambda: relay.reports_sent == 1), "no DSN was sent"
    assert "OK" in relay.report_replies[0]
    mail_from, rcpt, _message = relay.messages[0]
    assert rcpt == ADDRESS
    local, _, domain = mail_from.partition("@")
    assert local.startswith("bounces+")
    assert domain == DOMAIN
    assert wait_for_status(system, first.id, KATHMANDU, Status.BOUNCED) is Status.BOUNCED
    [marked] = bouncing(system, email)
    assert (marked["city_id"], marked["address"], marked["in_directory"]) == (
        "kathmandu",
        ADDRESS,
        True,
    )
    assert "hard bounce" in str(marked["reason"])
    assert "5.1.1" in str(marked["reason"])
    alerts = system.api_at("GET", email.url, "/v1/alerts").json()
    assert [(a["kind"], a["city_id"]) for a in alerts] == [("no-deliverable-contact", "kathmandu")]

    second = reminder(ONLY_KATHMANDU, deadline_id="survey-2027")
    publish(system, second)
    assert wait_for_status(system, second.id, KATHMANDU, Status.DROPPED) is Status.DROPPED
    assert ledger_status(system, second.id, KATHMANDU)[2] == "contact bouncing"
    assert len(relay.messages) == 1

    # an operator clears the mark: the next reminder goes out again
    relay.failing.clear()
    cleared = system.api_at("DELETE", email.url, f"/v1/bouncing/kathmandu/{ADDRESS}")
    assert cleared.status_code == 204
    assert (
        system.api_at("DELETE", email.url, f"/v1/bouncing/kathmandu/{ADDRESS}").status_code == 404
    )
    third = reminder(ONLY_KATHMANDU, deadline_id="registration-2027")
    publish(system, third)
    assert wait_for_status(system, third.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED


def test_a_forged_bounce_and_a_soft_bounce_below_the_threshold_change_nothing(
    system: System, relay: BouncingRelay, bounce_port: int
) -> None:
    email = email_service(system, relay, bounce_port)
    relay.failing[ADDRESS] = SOFT
    event = reminder(ONLY_KATHMANDU)
    publish(system, event)
    assert wait_for_status(system, event.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED
    # the relay's answer comes once the listener has handled the report
    assert relay.wait(lambda: relay.reports_sent == 1), "no DSN was sent"
    assert "OK" in relay.report_replies[0]
    assert ledger_status(system, event.id, KATHMANDU)[0] is Status.DELIVERED
    assert bouncing(system, email) == []

    # a bounce for the same notice, signed with another secret
    forged = ReturnPaths(["not the secret"], DOMAIN).token(event.id, KATHMANDU, MailKind.REQUIRED)
    assert forged is not None
    report = dsn(f"bounces+{forged}@{DOMAIN}", ADDRESS, b"Subject: x\r\n\r\n", HARD)
    assert "OK" in send_report(bounce_port, f"bounces+{forged}@{DOMAIN}", report)
    assert ledger_status(system, event.id, KATHMANDU)[0] is Status.DELIVERED
    assert bouncing(system, email) == []
    log = email.log.read_text()
    assert "feedback refused" in log
    assert SECRET not in log
    # the listener is no relay: other domains are refused at RCPT
    with pytest.raises(Exception, match="550"):
        send_report(bounce_port, "someone@example.org", report)

    later = reminder(ONLY_KATHMANDU, deadline_id="survey-2027")
    relay.failing.clear()
    publish(system, later)
    assert wait_for_status(system, later.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED


def sendgrid_post(
    url: str, key: ec.EllipticCurvePrivateKey, events: list[dict[str, object]]
) -> httpx.Response:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return HTTP.post(
        f"{url}/bounces/sendgrid",
        content=body,
        headers={
            "content-type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
        timeout=10,
    )


def test_a_sendgrid_webhook_bounce_does_what_a_dsn_does(
    system: System, relay: BouncingRelay, bounce_port: int
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    email = email_service(
        system,
        relay,
        bounce_port,
        GNLC_BOUNCE_SENDGRID_PUBLIC_KEY=base64.b64encode(public).decode(),
    )
    first = reminder(ONLY_KATHMANDU)
    publish(system, first)
    assert wait_for_status(system, first.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED
    _mail_from, _rcpt, message = relay.messages[0]
    token = json.loads(str(message["X-SMTPAPI"]))["unique_args"]["gnlc_notice"]
    event = {
        "email": ADDRESS,
        "event": "bounce",
        "type": "bounce",
        "gnlc_notice": token,
        "status": "5.1.1",
        "reason": "550 5.1.1 user unknown",
        "timestamp": 1,
    }

    # signed by someone else: refused, nothing changes
    impostor = ec.generate_private_key(ec.SECP256R1())
    refused = sendgrid_post(email.url, impostor, [event])
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the signature does not verify"
    assert ledger_status(system, first.id, KATHMANDU)[0] is Status.DELIVERED

    answer = sendgrid_post(email.url, key, [event, {"event": "delivered", "email": ADDRESS}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == 1
    assert answer.json()["ignored"] == 1
    assert ledger_status(system, first.id, KATHMANDU)[0] is Status.BOUNCED
    assert [b["city_id"] for b in bouncing(system, email)] == ["kathmandu"]
    second = reminder(ONLY_KATHMANDU, deadline_id="survey-2027")
    publish(system, second)
    assert wait_for_status(system, second.id, KATHMANDU, Status.DROPPED) is Status.DROPPED
    assert ledger_status(system, second.id, KATHMANDU)[2] == "contact bouncing"


def test_an_arf_complaint_unsubscribes_from_announcements_only(
    system: System, relay: BouncingRelay, bounce_port: int
) -> None:
    email = email_service(system, relay, bounce_port)
    news = announcement(ONLY_KATHMANDU)
    publish(system, news)
    assert wait_for_status(system, news.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED
    return_path, _rcpt, message = relay.messages[0]
    headers = "".join(f"{name}: {value}\r\n" for name, value in message.items()[:6])
    # a feedback loop reports to the plain address; the report names the return path
    reply = send_report(bounce_port, f"bounces@{DOMAIN}", arf(return_path, ADDRESS, headers))
    assert "OK" in reply
    assert bouncing(system, email) == []
    assert ledger_status(system, news.id, KATHMANDU)[0] is Status.DELIVERED

    later_news = announcement(ONLY_KATHMANDU, "study-visit")
    publish(system, later_news)
    assert (
        wait_for_status(system, later_news.id, KATHMANDU, Status.UNSUBSCRIBED)
        is Status.UNSUBSCRIBED
    )
    assert ledger_status(system, later_news.id, KATHMANDU)[2] == "unsubscribed"
    required = reminder(ONLY_KATHMANDU)
    publish(system, required)
    assert wait_for_status(system, required.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED

    # a complaint about the reminder: an alert, and reminders keep coming
    reminder_path = relay.messages[-1][0]
    assert "OK" in send_report(
        bounce_port, f"bounces@{DOMAIN}", arf(reminder_path, ADDRESS, "Subject: x\r\n")
    )
    alerts = system.api_at("GET", email.url, "/v1/alerts").json()
    assert [(a["kind"], a["city_id"]) for a in alerts] == [
        ("complaint-about-required-mail", "kathmandu")
    ]
    again = reminder(ONLY_KATHMANDU, deadline_id="survey-2027")
    publish(system, again)
    assert wait_for_status(system, again.id, KATHMANDU, Status.DELIVERED) is Status.DELIVERED
