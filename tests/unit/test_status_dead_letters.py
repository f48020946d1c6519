"""Dead letters in the status service: what a record becomes (``parked``), where a redrive
sends it (``plan_redrive``, a table), the body shown (``body_view``), and the API in
process (``httpx.ASGITransport``) with a recording publisher: list, filters, paging, one
record, redrive one (twice: 409 unless forced; twins marked with it), redrive all,
refusals, operators only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER, SOURCE_TOPIC_HEADER, Topics
from gnlc_core.settings import Settings
from gnlc_core.tier_reader import ATTEMPT_HEADER
from gnlc_status import dead_letters
from gnlc_status.api import caller_of
from gnlc_status.dead_letter_api import dead_letter_router
from gnlc_status.partners import PartnerDirectory
from gnlc_webhook.consumer import RESEND_PREFIX

TOPICS = Topics("p.")
TOKEN = "test-operator-token"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
PARTNER = {"authorization": "Bearer whk-partner-token"}
EVENT = json.dumps({"id": "evt-1", "type": "announcement.published", "data": {}}).encode()


def test_the_resend_prefix_is_the_webhook_consumers() -> None:
    assert dead_letters.RESEND_PREFIX == RESEND_PREFIX


def record(
    topic: str = "p.webhook.dead-letter",
    offset: int = 0,
    value: bytes | None = EVENT,
    *,
    source: str | None = "p.announcement.published",
    recipient: str | None = None,
    reason: str = "invalid event: data.title: Field required",
) -> dict[str, Any]:
    headers: list[tuple[str, bytes | None]] = [(REASON_HEADER, reason.encode())]
    if source is not None:
        headers.append((SOURCE_TOPIC_HEADER, source.encode()))
    if recipient is not None:
        headers.append((RECIPIENT_HEADER, recipient.encode()))
    return dead_letters.parked(
        TOPICS,
        topic=topic,
        partition=1,
        offset=offset,
        timestamp_ms=1_764_000_000_000 + offset,
        key=b"news",
        value=value,
        headers=headers,
    )


def test_a_record_becomes_a_row() -> None:
    row = record(recipient="portal")
    assert row["channel"] == "webhook"
    assert row["source_topic"] == "p.announcement.published"
    assert row["recipient"] == "portal"
    assert (row["event_id"], row["event_type"]) == ("evt-1", "announcement.published")
    assert row["size"] == len(EVENT)
    assert row["parked_at"].isoformat() == "2025-11-24T16:00:00+00:00"
    poison = record("p.email.dead-letter", value=b"\xff\x00not json", source=None, reason="")
    assert poison["channel"] == "email"
    assert (poison["event_id"], poison["event_type"], poison["source_topic"]) == (None, None, None)
    assert poison["reason"] == "no reason given"
    assert record(value=None)["size"] == 0


@pytest.mark.parametrize(
    ("topic", "source", "recipient", "expected"),
    [
        # a poison record: back to its source topic, as it was
        ("p.webhook.dead-letter", "p.announcement.published", None, "p.announcement.published"),
        ("p.email.dead-letter", "p.deadline.reminder", None, "p.deadline.reminder"),
        ("p.email.dead-letter", "p.deadline.updated", None, "p.deadline.updated"),
        ("p.scheduler.dead-letter", "p.deadline.submitted", None, "p.deadline.submitted"),
        # one endpoint's delivery: to that endpoint alone, as a resend
        ("p.webhook.dead-letter", "p.announcement.published", "portal", "p.webhook.retry.0s"),
        # refused
        ("p.email.dead-letter", "p.deadline.reminder", "kathmandu:a@x.org", "email ledger"),
        ("p.email.dead-letter", "retry", None, "not a topic the services read"),
        ("p.email.dead-letter", None, None, "not a topic the services read"),
        ("p.webhook.dead-letter", "q.announcement.published", None, "not a topic"),
        ("p.scheduler.dead-letter", "p.notice.status", None, "not a topic"),
    ],
)
def test_where_a_redrive_goes(
    topic: str, source: str | None, recipient: str | None, expected: str
) -> None:
    row = {**record(topic, source=source, recipient=recipient), "id": 7}
    plan = dead_letters.plan_redrive(TOPICS, row, now_ms=1234)
    if isinstance(plan, dead_letters.Refusal):
        assert expected in plan.why
        return
    assert plan.topic == expected
    assert (plan.key, plan.value) == (b"news", EVENT)
    assert plan.headers[dead_letters.REDRIVEN_FROM_HEADER] == f"{topic}/1/0"
    assert plan.to_source is (recipient is None)
    if recipient:
        assert plan.headers[RECIPIENT_HEADER] == f"resend:{recipient}"
        assert plan.headers[ATTEMPT_HEADER] == "1"


@pytest.mark.parametrize(
    ("value", "limit", "shown", "cut"),
    [
        (b'{"a":1}', 100, '{\n  "a": 1\n}', False),
        (b"plain \x1b[31m text", 100, "plain \\x1b[31m text", False),
        (b"\xff\xfe", 100, "\\xff\\xfe", False),
        (b"<script>alert(1)</script>", 100, "<script>alert(1)</script>", False),
        (b"x" * 50, 10, "x" * 10, True),
        ("line\u2028sep".encode(), 100, "line\\x2028sep", False),
    ],
)
def test_the_body_shown(value: bytes, limit: int, shown: str, cut: bool) -> None:
    assert dead_letters.body_view(value, limit) == (shown, cut)


@dataclass
class Published:
    records: list[tuple[str, bytes | None, bytes, dict[str, str]]] = field(default_factory=list)
    fail: bool = False

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.records.append((topic, key, value, headers))


def webhook_api(request: httpx.Request) -> httpx.Response:
    if request.headers["authorization"] == PARTNER["authorization"]:
        return httpx.Response(200, json=[{"id": "portal"}])
    return httpx.Response(401, json={"detail": "unknown bearer token"})


@dataclass
class Harness:
    client: httpx.AsyncClient
    published: Published


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}") as made:
        yield made


@asynccontextmanager
async def harness(url: str) -> AsyncIterator[Harness]:
    """The API over a migrated database at ``url`` with five dead letters."""
    engine = create_engine(url)
    await migrate(engine, "status")
    rows = [
        record(offset=0),  # 1: webhook, poison
        record("p.email.dead-letter", offset=0),  # 2: its twin on email
        record(offset=1, recipient="portal", reason="gave up after 5 attempts: HTTP 500"),  # 3
        record("p.email.dead-letter", offset=1, recipient="kathmandu:a@x.org", reason="gone"),
        record("p.email.dead-letter", offset=2, source="retry", reason="invalid retry"),  # 5
    ]
    await dead_letters.record(engine, rows)
    await dead_letters.record(engine, rows[:2])  # read twice: kept once
    partners = PartnerDirectory("http://webhook.test", transport=httpx.MockTransport(webhook_api))
    settings = Settings(operator_token=SecretStr(TOKEN))
    published = Published()
    app = FastAPI()
    answer_errors(app)
    app.include_router(dead_letter_router(TOPICS, engine, caller_of(settings, partners), published))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://status.test"
    ) as client:
        yield Harness(client, published)
    await partners.aclose()
    await engine.dispose()


async def test_the_list_its_filters_and_paging(api: Harness) -> None:
    page = (await api.client.get("/v1/dead-letters", headers=OPERATOR)).json()
    assert page["total"] == 5
    assert [i["id"] for i in page["items"]] == [5, 4, 3, 2, 1]  # latest first
    one = page["items"][-1]
    assert one["reason"] == "invalid event: data.title: Field required"
    assert (one["redrivable"], one["redrive_note"]) == (True, "back to p.announcement.published")
    assert "value" not in one
    assert "key" not in one
    webhook = (
        await api.client.get("/v1/dead-letters?channel=webhook&limit=1", headers=OPERATOR)
    ).json()
    assert [i["id"] for i in webhook["items"]] == [3]
    assert (webhook["total"], webhook["next_offset"]) == (2, 1)
    found = (await api.client.get("/v1/dead-letters?reason=GAVE%20up", headers=OPERATOR)).json()
    assert [i["id"] for i in found["items"]] == [3]
    literal = (await api.client.get("/v1/dead-letters?reason=%25", headers=OPERATOR)).json()
    assert literal["total"] == 0  # a % is a character, not a wildcard
    counts = (await api.client.get("/v1/dead-letters/counts", headers=OPERATOR)).json()
    assert counts == {"email": 3, "webhook": 2}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "channel=sms",
        "state=lost",
        "reason=" + "x" * 201,
        "event_id=" + "e" * 65,
        "since=2026-01-01T00:00:00",  # no offset
        "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ],
)
async def test_bad_queries_are_refused_naming_what(api: Harness, query: str) -> None:
    answer = await api.client.get(f"/v1/dead-letters?{query}", headers=OPERATOR)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


async def test_one_record_with_its_body(api: Harness) -> None:
    answer = await api.client.get("/v1/dead-letters/4", headers=OPERATOR)
    assert answer.status_code == 200
    body = answer.json()
    assert body["recipient"] == "kathmandu:a@x.org"
    assert body["key"] == "news"
    assert '"id": "evt-1"' in body["body"]
    assert body["body_truncated"] is False
    assert body["redrivable"] is False
    assert "email ledger" in body["redrive_note"]
    assert (await api.client.get("/v1/dead-letters/99", headers=OPERATOR)).status_code == 404
    assert (await api.client.get("/v1/dead-letters/x", headers=OPERATOR)).status_code == 422


async def test_redrive_one_then_again(api: Harness) -> None:
    answer = await api.client.post(
        "/v1/dead-letters/1/redrive", headers=OPERATOR, json={"by": "console:ed"}
    )
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["redriven_by"], done["redrive_count"]) == ("console:ed", 1)
    assert done["redrive_topic"] == "p.announcement.published"
    assert done["redriven_at"]
    [(topic, key, value, headers)] = api.published.records
    assert (topic, key, value) == ("p.announcement.published", b"news", EVENT)
    assert headers[dead_letters.REDRIVEN_FROM_HEADER] == "p.webhook.dead-letter/1/0"
    # its twin (the same record, parked by the email consumer) went back with it
    twin = (await api.client.get("/v1/dead-letters/2", headers=OPERATOR)).json()
    assert twin["redriven_by"] == "console:ed (with 1)"
    again = await api.client.post("/v1/dead-letters/1/redrive", headers=OPERATOR)
    assert again.status_code == 409
    assert "already redriven" in again.json()["detail"]
    assert len(api.published.records) == 1
    forced = await api.client.post(
        "/v1/dead-letters/1/redrive", headers=OPERATOR, json={"force": True}
    )
    assert forced.status_code == 200
    assert forced.json()["redrive_count"] == 2
    assert len(api.published.records) == 2
    parked = (await api.client.get("/v1/dead-letters?state=parked", headers=OPERATOR)).json()
    assert [i["id"] for i in parked["items"]] == [5, 4, 3]


async def test_an_endpoints_delivery_goes_to_that_endpoint_alone(api: Harness) -> None:
    answer = await api.client.post("/v1/dead-letters/3/redrive", headers=OPERATOR)
    assert answer.status_code == 200
    [(topic, _key, _value, headers)] = api.published.records
    assert topic == "p.webhook.retry.0s"
    assert headers[RECIPIENT_HEADER] == "resend:portal"


@pytest.mark.parametrize(("ident", "why"), [(4, "email ledger"), (5, "'retry' is not a topic")])
async def test_what_cannot_be_redriven_is_refused(api: Harness, ident: int, why: str) -> None:
    answer = await api.client.post(f"/v1/dead-letters/{ident}/redrive", headers=OPERATOR)
    assert answer.status_code == 409
    assert why in answer.json()["detail"]
    assert api.published.records == []
    row = (await api.client.get(f"/v1/dead-letters/{ident}", headers=OPERATOR)).json()
    assert row["redriven_at"] is None


async def test_a_broker_that_fails_changes_nothing(api: Harness) -> None:
    api.published.fail = True
    answer = await api.client.post("/v1/dead-letters/1/redrive", headers=OPERATOR)
    assert answer.status_code == 503
    for ident in (1, 2):
        row = (await api.client.get(f"/v1/dead-letters/{ident}", headers=OPERATOR)).json()
        assert (row["redriven_at"], row["redrive_count"]) == (None, 0)


async def test_redrive_all_that_match(api: Harness) -> None:
    answer = await api.client.post(
        "/v1/dead-letters/redrive", headers=OPERATOR, json={"by": "cli:ops"}
    )
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["matched"] == 5
    assert sorted(done["redriven"]) == [1, 2, 3]
    assert done["skipped_count"] == 2
    assert sorted(s["id"] for s in done["skipped"]) == [4, 5]
    # the twins went once, the endpoint's delivery once
    assert sorted(r[0] for r in api.published.records) == [
        "p.announcement.published",
        "p.webhook.retry.0s",
    ]
    again = (await api.client.post("/v1/dead-letters/redrive", headers=OPERATOR, json={})).json()
    assert again["redriven"] == []
    webhook = await api.client.post(
        "/v1/dead-letters/redrive",
        headers=OPERATOR,
        json={"channel": "webhook", "force": True, "limit": 1},
    )
    assert webhook.json()["matched"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "sms"},
        {"limit": 1001},
        {"by": ""},
        {"by": "x" * 101},
        {"by": "a\nb"},
        {"unknown": 1},
        {"since": "2026-01-01T00:00:00"},
    ],
)
async def test_bad_redrive_bodies_are_refused(api: Harness, body: dict[str, Any]) -> None:
    answer = await api.client.post("/v1/dead-letters/redrive", headers=OPERATOR, json=body)
    assert answer.status_code == 422, answer.text
    assert api.published.records == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/dead-letters"),
        ("GET", "/v1/dead-letters/1"),
        ("GET", "/v1/dead-letters/counts"),
        ("POST", "/v1/dead-letters/1/redrive"),
        ("POST", "/v1/dead-letters/redrive"),
    ],
)
async def test_operators_only(api: Harness, method: str, path: str) -> None:
    body: dict[str, Any] | None = {} if method == "POST" else None
    partner = await api.client.request(method, path, headers=PARTNER, json=body)
    assert partner.status_code == 403
    nobody = await api.client.request(method, path, json=body)
    assert nobody.status_code == 401
    unknown = await api.client.request(
        method, path, headers={"authorization": "Bearer nope"}, json=body
    )
    assert unknown.status_code == 401
    assert api.published.records == []
