"""Faults on the way to the SMTP server: it is down for a while, it says "try later", it
says "no such user", and the consumer is killed in the middle of a batch. Each time every
notice is delivered once or recorded as failed, and nothing is sent twice."""

from __future__ import annotations

import asyncio
import time

import pytest

from gnlc_core.events import Audience
from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER
from gnlc_core.ledger import Status
from gnlc_devtools.mailbox import LocalMailbox
from tests.integration.conftest import System
from tests.integration.email_support import (
    announcement,
    ledger_status,
    publish,
    recipients,
    reminder,
    settle,
    wait_for_status,
)
from tests.integration.kafka_io import consume, headers_of
from tests.support import free_port

pytestmark = pytest.mark.integration
ALL = Audience(all_members=True)
MEMBERS = 29  # active cities in the sample directory, one contact each
KATHMANDU = "lll@kathmandu.example.org"
LAVAL = "apprendre@laval.example.org"


def message_ids(mailbox: LocalMailbox) -> set[str]:
    return {str(m["Message-ID"]) for m in mailbox.messages}


def test_smtp_server_down_for_a_while_then_back_delivers_everything_once(
    system: System,
) -> None:
    port = free_port()  # nothing listens here yet
    system.service(
        "email", GNLC_SMTP_PORT=str(port), GNLC_EMAIL_RETRY_DELAYS_SECONDS="[2, 4, 8, 16]"
    ).start()
    event = reminder(ALL)
    publish(system, event)
    # every first attempt fails and waits on the ladder: 2 s (± 10 %) in the 1 s tier first
    retries = asyncio.run(consume(system.kafka, f"{system.prefix}email.retry.1s", MEMBERS))
    assert len(retries) == MEMBERS
    key = f"kathmandu:{KATHMANDU}"
    assert wait_for_status(system, event.id, key, Status.RETRYING) is Status.RETRYING

    with LocalMailbox(port=port) as mailbox:  # the server comes back
        settle(mailbox, MEMBERS, timeout=120, system=system)
        assert len(mailbox.messages) == MEMBERS
        assert set(recipients(mailbox).values()) == {1}
        assert len(message_ids(mailbox)) == MEMBERS
    status, attempts, _ = ledger_status(system, event.id, f"kathmandu:{KATHMANDU}")
    assert status is Status.DELIVERED
    assert attempts >= 2


def test_a_4xx_reply_is_retried_later_and_then_delivered_once(system: System) -> None:
    system.mailbox.script_rcpt(KATHMANDU, "451 4.7.1 Greylisted, try again later")
    system.service("email", GNLC_EMAIL_RETRY_DELAYS_SECONDS="[1, 2]").start()
    event = reminder(Audience(cities=("kathmandu", "laval")))
    publish(system, event)
    settle(system.mailbox, 2, timeout=90, system=system)  # a second retry would show
    assert recipients(system.mailbox) == {KATHMANDU: 1, LAVAL: 1}
    assert system.mailbox.rcpt_count(KATHMANDU) == 2  # refused once, accepted on the retry
    assert system.mailbox.rcpt_count(LAVAL) == 1  # never held up by Kathmandu's trouble
    assert ledger_status(system, event.id, f"kathmandu:{KATHMANDU}")[:2] == (Status.DELIVERED, 2)
    assert ledger_status(system, event.id, f"laval:{LAVAL}")[:2] == (Status.DELIVERED, 1)


def test_a_5xx_reply_is_recorded_against_that_recipient_and_not_retried(system: System) -> None:
    # refused once only: a retry would be accepted, so any retry would show in the mailbox
    system.mailbox.script_rcpt(KATHMANDU, "550 5.1.1 No such user here")
    system.service("email", GNLC_EMAIL_RETRY_DELAYS_SECONDS="[1, 1]").start()
    event = announcement(Audience(cities=("kathmandu", "laval")))
    publish(system, event)
    parked = asyncio.run(consume(system.kafka, f"{system.prefix}email.dead-letter", 1))
    assert len(parked) == 1
    assert headers_of(parked[0])[RECIPIENT_HEADER] == f"kathmandu:{KATHMANDU}"
    assert headers_of(parked[0])[REASON_HEADER] == (
        "permanent failure: smtp 550: 5.1.1 No such user here"
    )
    settle(system.mailbox, 1, timeout=60, system=system)  # and no retry pending
    assert recipients(system.mailbox) == {LAVAL: 1}
    assert system.mailbox.rcpt_count(KATHMANDU) == 1
    status, attempts, error = ledger_status(system, event.id, f"kathmandu:{KATHMANDU}")
    assert (status, attempts) == (Status.FAILED, 1)
    assert error == "smtp 550: 5.1.1 No such user here"


def test_consumer_killed_mid_batch_then_restarted_loses_nothing_and_sends_nothing_twice(
    system: System,
) -> None:
    env = {"GNLC_SMTP_CONNECTIONS": "2"}
    email = system.service("email", **env).start()
    system.mailbox.rcpt_delay = 0.3  # slow enough to catch the batch half done
    event = reminder(ALL)
    publish(system, event)
    deadline = time.monotonic() + 90
    while system.mailbox.count < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert system.mailbox.count >= 6, email.tail()
    system.mailbox.rcpt_delay = 60.0  # what is in flight now hangs before the server accepts
    time.sleep(2)  # the notices already accepted reach the ledger meanwhile
    before = system.mailbox.count
    email.kill()  # a crash: no commit, no cleanup
    assert 6 <= before < MEMBERS

    system.mailbox.rcpt_delay = 0.0
    system.service("email", **env).start()
    settle(system.mailbox, MEMBERS, timeout=120, system=system)
    assert len(system.mailbox.messages) == MEMBERS  # none lost
    assert set(recipients(system.mailbox).values()) == {1}  # none twice
    assert len(message_ids(system.mailbox)) == MEMBERS
