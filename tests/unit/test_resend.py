"""Email resend in process: ``POST /v1/notices/resend`` (httpx.ASGITransport) over the real
consumer on FastStream's test broker, SQLite and a real SMTP server on loopback. A settled
notice goes again once per request, with a Message-ID of its own, its attempts counted on;
the contact's choices and bounces refuse it (409, saying which); the refusals of bad input
in FastAPI's list shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.kafka import RECIPIENT_HEADER
from gnlc_core.ledger import Status
from gnlc_core.settings import Settings
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_email.bounce_store import BounceStore
from gnlc_email.choices import Choice
from gnlc_email.resend_api import ResendApiState, resend_api_router
from gnlc_email.resend_store import Resend, ResendStore
from gnlc_email.store import Preferences
from tests.unit.test_consumer_handlers import Wired, attempts_of, wire
from tests.unit.test_digest_consumer import handle, news, reminder

TOKEN = "resend-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
DURBAN = "durban:focal.point@durban.example.org"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
    await migrate(engine, "email")
    yield engine
    await engine.dispose()


@pytest.fixture
def mailbox() -> Iterator[LocalMailbox]:
    with LocalMailbox() as box:
        yield box


def api(wired: Wired, engine: Any) -> FastAPI:
    state = ResendApiState(
        ResendStore(engine, wired.ledger),
        refusal=wired.consumer.refuse_resend,
        enqueue=wired.consumer.enqueue_resend,
    )
    app = FastAPI()
    answer_errors(app)
    app.include_router(resend_api_router(state, Settings(operator_token=SecretStr(TOKEN))))
    return app


@pytest.fixture
async def sent(engine: Any, mailbox: LocalMailbox) -> tuple[Wired, str]:
    """A reminder delivered to Durban: its event id."""
    wired = wire(engine, smtp_port=mailbox.port, resends=True)
    await handle(wired, reminder("report"))
    assert mailbox.wait_for(1, timeout=10)
    return wired, str(mailbox.messages[0]["X-GNLC-Event-Id"])


async def post(app: FastAPI, body: object, headers: dict[str, str] = AUTH) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://email") as client:
        return await client.post("/v1/notices/resend", json=body, headers=headers)


async def test_a_settled_notice_is_sent_again_once_per_request(
    engine: Any, mailbox: LocalMailbox, sent: tuple[Wired, str]
) -> None:
    wired, event_id = sent
    app = api(wired, engine)
    assert await attempts_of(engine, event_id, DURBAN) == (Status.DELIVERED, 1)
    async with TestKafkaBroker(wired.broker):
        answer = await post(app, {"event_id": event_id, "recipient": DURBAN})
        assert answer.status_code == 202, answer.text
        assert answer.json()["queued"] == 1
        (queued,) = wired.retried
        recipient = queued[RECIPIENT_HEADER]
        assert recipient == f"resend:{answer.json()['resend_id']}:{DURBAN}"
        await wired.consumer.deliver_one(queued["body"], recipient, 1)
        await wired.consumer.deliver_one(queued["body"], recipient, 1)  # read again: no send
        assert mailbox.wait_for(2, timeout=10)
        assert await attempts_of(engine, event_id, DURBAN) == (Status.DELIVERED, 2)
        # a second request: a second send, with a Message-ID of its own again
        answer = await post(app, {"event_id": event_id, "recipient": DURBAN})
        assert answer.status_code == 202, answer.text
        await wired.consumer.deliver_one(queued["body"], wired.retried[1][RECIPIENT_HEADER], 1)
        assert mailbox.wait_for(3, timeout=10)
    assert len(mailbox.messages) == 3
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(set(ids)) == 3
    assert {str(m["X-GNLC-Event-Id"]) for m in mailbox.messages} == {event_id}
    assert await attempts_of(engine, event_id, DURBAN) == (Status.DELIVERED, 3)


async def test_a_bounced_contacts_resend_is_refused_and_not_sent(
    engine: Any, mailbox: LocalMailbox, sent: tuple[Wired, str]
) -> None:
    wired, event_id = sent
    await BounceStore(engine).mark("durban", "focal.point@durban.example.org", "550", event_id)
    async with TestKafkaBroker(wired.broker):
        answer = await post(api(wired, engine), {"event_id": event_id, "recipient": DURBAN})
    assert answer.status_code == 409
    assert "contact bouncing" in answer.json()["detail"]
    assert wired.retried == []
    assert len(mailbox.messages) == 1


async def test_a_bounce_after_the_request_stops_the_send(
    engine: Any, mailbox: LocalMailbox, sent: tuple[Wired, str]
) -> None:
    wired, event_id = sent
    async with TestKafkaBroker(wired.broker):
        answer = await post(api(wired, engine), {"event_id": event_id, "recipient": DURBAN})
        assert answer.status_code == 202
        await BounceStore(engine).mark("durban", "focal.point@durban.example.org", "550", None)
        (queued,) = wired.retried
        await wired.consumer.deliver_one(queued["body"], queued[RECIPIENT_HEADER], 1)
    assert len(mailbox.messages) == 1
    assert await attempts_of(engine, event_id, DURBAN) == (Status.DELIVERED, 1)
    resend = Resend.parse(queued[RECIPIENT_HEADER])
    assert resend is not None
    assert await ResendStore(engine, wired.ledger).pending(resend) is None  # done with


@pytest.mark.parametrize(
    ("unsubscribed", "choice", "expected"),
    [
        (True, Choice(), "unsubscribed"),
        (False, Choice(frozenset({"event"})), "category off: event"),
    ],
)
async def test_an_announcement_resend_respects_the_contacts_choice(
    engine: Any, mailbox: LocalMailbox, unsubscribed: bool, choice: Choice, expected: str
) -> None:
    wired = wire(engine, smtp_port=mailbox.port, resends=True)
    await handle(wired, news())
    assert mailbox.wait_for(1, timeout=10)
    event_id = str(mailbox.messages[0]["X-GNLC-Event-Id"])
    address = DURBAN.partition(":")[2]
    await Preferences(engine).save(address, "durban", choice, subscribed=not unsubscribed)
    async with TestKafkaBroker(wired.broker):
        answer = await post(api(wired, engine), {"event_id": event_id, "recipient": DURBAN})
    assert answer.status_code == 409
    assert expected in answer.json()["detail"]


async def test_a_required_reminder_is_resent_to_an_unsubscribed_contact(
    engine: Any, mailbox: LocalMailbox, sent: tuple[Wired, str]
) -> None:
    wired, event_id = sent
    await Preferences(engine).save(DURBAN.partition(":")[2], "durban", Choice(), subscribed=False)
    async with TestKafkaBroker(wired.broker):
        answer = await post(api(wired, engine), {"event_id": event_id, "recipient": DURBAN})
    assert answer.status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"event_id": "nope", "recipient": DURBAN}, 404, None),
        ({"event_id": "e", "recipient": "no-colon"}, 422, ["body", "recipient"]),
        ({"event_id": "x" * 65, "recipient": DURBAN}, 422, ["body", "event_id"]),
        ({"event_id": "e", "recipient": DURBAN, "more": 1}, 422, ["body", "more"]),
        ({"recipient": DURBAN}, 422, ["body", "event_id"]),
        ([], 422, ["body"]),
    ],
)
async def test_bad_requests_are_named(
    engine: Any, body: object, status: int, where: list[str] | None
) -> None:
    wired = wire(engine, resends=True)
    answer = await post(api(wired, engine), body)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    if where is None:
        assert isinstance(detail, str)
    else:
        assert isinstance(detail, list)
        assert detail[0]["loc"] == where


async def test_the_token_is_required(engine: Any) -> None:
    wired = wire(engine, resends=True)
    answer = await post(api(wired, engine), {"event_id": "e", "recipient": DURBAN}, headers={})
    assert answer.status_code == 401


async def test_starting_answers_503() -> None:
    app = FastAPI()
    answer_errors(app)
    settings = Settings(operator_token=SecretStr(TOKEN))
    app.include_router(resend_api_router(ResendApiState(), settings))
    answer = await post(app, {"event_id": "e", "recipient": DURBAN})
    assert answer.status_code == 503


async def test_documented_in_openapi(engine: Any) -> None:
    spec = api(wire(engine, resends=True), engine).openapi()
    operation = spec["paths"]["/v1/notices/resend"]["post"]
    assert {"202", "401", "404", "409", "410", "422", "503"} <= set(operation["responses"])
    fields = spec["components"]["schemas"]["ResendIn"]["properties"]
    assert fields["event_id"]["maxLength"] == 64
    assert fields["recipient"]["maxLength"] == 320
