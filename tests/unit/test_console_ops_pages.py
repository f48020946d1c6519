"""The console's deliveries, dead letters, endpoint health and dashboard chart in process:
over the status service's real API (in process, on SQLite, with a recording publisher) and
the webhook API answered by a table (``httpx.MockTransport``). Editors redrive and resend;
viewers see no button and their POSTs are refused; forms keep what was typed and show each
error at its field; a status service that does not answer leaves the rest of the page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.events import NoticeStatus
from gnlc_core.kafka import REASON_HEADER, SOURCE_TOPIC_HEADER, Topics
from gnlc_core.settings import Settings
from gnlc_status import dead_letters, view
from gnlc_status.api import caller_of, status_router
from gnlc_status.dead_letter_api import dead_letter_router
from gnlc_status.partners import PartnerDirectory
from tests.unit.console_support import ConsoleHarness, console_harness, csrf, sign_in
from tests.unit.scheduler_api import TOKEN

TOPICS = Topics("")
NOW = datetime.now(UTC).replace(microsecond=0)
EVENT = "5d0c6a56-0000-5000-8000-000000000001"


@dataclass
class WebhookApi:
    """The webhook API's answers the pages use, and the requests it got."""

    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/endpoints":
            return httpx.Response(
                200,
                json=[
                    {
                        "id": "partner-a",
                        "partner": "uil",
                        "url": "https://hooks.example.org/a",
                        "event_types": ["announcement.published"],
                        "regions": [],
                        "cities": [],
                        "description": "",
                        "state": "active",
                        "state_reason": None,
                        "failing_since": None,
                    }
                ],
            )
        if path == "/v1/partners":
            return httpx.Response(200, json=[{"id": "uil", "name": "UIL"}])
        if path == "/v1/endpoint-health":
            return httpx.Response(
                200,
                json=[
                    {
                        "endpoint_id": "partner-a",
                        "since": (NOW - timedelta(days=1)).isoformat(),
                        "requests": 40,
                        "delivered": 39,
                        "success_rate": 0.975,
                        "p50_ms": 12.4,
                        "p95_ms": 230.0,
                        "sampled": 40,
                    }
                ],
            )
        if path == "/v1/endpoints/partner-a/attempts":
            return httpx.Response(
                200,
                json=[
                    {
                        "event_id": EVENT,
                        "attempt": n,
                        "at": (NOW - timedelta(minutes=10 - n)).isoformat(),
                        "status": status,
                        "status_code": code,
                        "latency_ms": 20.0 * n,
                        "response_body": "<b>busy</b>" if code == 503 else "ok",
                        "error": None if code == 200 else f"HTTP {code}",
                    }
                    for n, status, code in ((2, "delivered", 200), (1, "retrying", 503))
                ],
            )
        if path == f"/v1/endpoints/partner-a/messages/{EVENT}/resend":
            return httpx.Response(202, json={"queued": 1})
        return httpx.Response(404, json={"detail": f"no {path}"})


@dataclass
class Published:
    records: list[tuple[str, bytes | None, bytes, dict[str, str]]] = field(default_factory=list)

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        self.records.append((topic, key, value, headers))


@dataclass
class Ops:
    harness: ConsoleHarness
    webhook: WebhookApi
    published: Published


def _receipt(recipient: str, channel: str, state: str, **facts: Any) -> NoticeStatus:
    return NoticeStatus(
        event_id=EVENT,
        channel=channel,
        recipient=recipient,
        state=state,
        attempts=2,
        state_time=NOW - timedelta(minutes=5),
        event_type="announcement.published",
        announcement_id="education-day",
        **facts,
    )


async def _status_app(tmp: Path, published: Published) -> tuple[FastAPI, Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / 'status.db'}")
    await migrate(engine, "status")
    await view.apply(
        engine,
        [
            _receipt("partner-a", "webhook", "delivered", partner_id="uil"),
            _receipt("kathmandu:focal@kathmandu.example", "email", "failed", city_id="kathmandu"),
            _receipt("aswan:focal@aswan.example", "email", "delivered", city_id="aswan"),
        ],
    )
    poison = b'{"id": "bad-1", "type": "announcement.published", "data": "<script>"}'
    await dead_letters.record(
        engine,
        [
            dead_letters.parked(
                TOPICS,
                topic="webhook.dead-letter",
                partition=0,
                offset=0,
                timestamp_ms=int(NOW.timestamp() * 1000),
                key=b"k",
                value=poison,
                headers=[
                    (REASON_HEADER, b"invalid event: data: Input should be an object"),
                    (SOURCE_TOPIC_HEADER, b"announcement.published"),
                ],
            ),
        ],
    )
    settings = Settings(operator_token=SecretStr(TOKEN))
    partners = PartnerDirectory("http://webhook.test", transport=httpx.MockTransport(WebhookApi()))
    app = FastAPI()
    answer_errors(app)
    app.include_router(status_router(settings, engine, partners))
    app.include_router(dead_letter_router(TOPICS, engine, caller_of(settings, partners), published))
    return app, engine


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[Ops]:
    published, webhook = Published(), WebhookApi()
    status_app, engine = await _status_app(tmp_path, published)
    async with console_harness(
        tmp_path,
        webhook_transport=httpx.MockTransport(webhook),
        status_transport=httpx.ASGITransport(app=status_app),
    ) as harness:
        yield Ops(harness, webhook, published)
    await engine.dispose()


async def test_an_operator_finds_an_announcements_deliveries(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "vi")
        empty = await client.get("/deliveries")
        assert empty.status_code == 200
        assert "notice(s)" not in empty.text  # nothing asked yet
        page = await client.get("/deliveries", params={"event": "education-day"})
        assert page.status_code == 200, page.text
        assert "3 notice(s)" in page.text
        assert "kathmandu:focal@kathmandu.example" in page.text
        assert "(Asia/Kathmandu, UTC+05:45)" in page.text  # the city's own time
        failed = await client.get(
            "/deliveries", params={"event": "education-day", "state": "failed"}
        )
        assert "1 notice(s)" in failed.text
        endpoint = await client.get("/deliveries", params={"endpoint": "partner-a"})
        assert "1 notice(s)" in endpoint.text
        assert "partner-a" in endpoint.text
        assert 'value="partner-a"' in endpoint.text  # the form keeps what was typed


async def test_a_search_with_errors_keeps_what_was_typed(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get(
            "/deliveries",
            params={"city": "Not a City", "event": "x" * 65, "endpoint": "partner-a"},
        )
        assert page.status_code == 422
        assert 'id="city-error"' in page.text
        assert 'id="event-error"' in page.text
        assert 'aria-invalid="true"' in page.text
        assert 'value="Not a City"' in page.text
        assert 'value="partner-a"' in page.text
        assert "notice(s)" not in page.text  # nothing asked of the API


async def test_a_webhook_deliverys_attempts_and_its_resend(ops: Ops) -> None:
    query = {"event_id": EVENT, "channel": "webhook", "recipient": "partner-a"}
    async with ops.harness.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/deliveries/notice", params=query)
        assert page.status_code == 200, page.text
        assert "HTTP 503" in page.text
        assert "&lt;b&gt;busy&lt;/b&gt;" in page.text  # a partner's response is escaped
        assert "delivered" in page.text
        assert "Resend to partner-a" in page.text
        token = await csrf(client, "/deliveries")
        resent = await client.post(
            "/deliveries/resend",
            data={"csrf_token": token, "endpoint_id": "partner-a", "event_id": EVENT},
        )
        assert resent.status_code == 303
        after = await client.get(resent.headers["location"])
        assert "Resend of" in after.text
    asked = [r.url.path for r in ops.webhook.requests if r.method == "POST"]
    assert asked == [f"/v1/endpoints/partner-a/messages/{EVENT}/resend"]


async def test_an_emails_page_says_what_is_known(ops: Ops) -> None:
    query = {
        "event_id": EVENT,
        "channel": "email",
        "recipient": "kathmandu:focal@kathmandu.example",
    }
    async with ops.harness.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/deliveries/notice", params=query)
        assert page.status_code == 200
        assert "history above" in page.text
        assert "Resend this email" in page.text  # test_console_email_resend
        bad = await client.get("/deliveries/notice", params={**query, "channel": "sms"})
        assert bad.status_code == 422
        odd = await client.get(
            "/deliveries/notice", params={**query, "channel": "webhook", "recipient": "../x"}
        )
        assert "is not an endpoint id" in odd.text
    assert not [r for r in ops.webhook.requests if "attempts" in r.url.path]


async def test_a_viewer_cannot_resend(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get(
            "/deliveries/notice",
            params={"event_id": EVENT, "channel": "webhook", "recipient": "partner-a"},
        )
        assert "Resend to" not in page.text
        token = await csrf(client, "/deliveries")
        refused = await client.post(
            "/deliveries/resend",
            data={"csrf_token": token, "endpoint_id": "partner-a", "event_id": EVENT},
        )
        assert refused.status_code == 403
    assert not [r for r in ops.webhook.requests if r.method == "POST"]


async def test_dead_letters_listed_shown_and_redriven_once(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/dead-letters")
        assert page.status_code == 200, page.text
        assert "invalid event: data: Input should be an object" in page.text
        assert "Redrive<span" in page.text
        shown = await client.get("/dead-letters/1")
        assert "&lt;script&gt;" in shown.text  # the body, escaped
        assert "<script>" not in shown.text.split("<main", 1)[1]
        token = await csrf(client, "/dead-letters")
        done = await client.post(
            "/dead-letters/1/redrive", data={"csrf_token": token, "back": "channel=webhook"}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/dead-letters?channel=webhook#dl-1"
        listed = await client.get(done.headers["location"])
        assert "redriven" in listed.text
        assert "by console:ed" in listed.text
        assert "Dead letter 1 redriven: back to announcement.published" in listed.text
        again = await client.post("/dead-letters/1/redrive", data={"csrf_token": token})
        after = await client.get(again.headers["location"])
        assert "already redriven" in after.text
        assert len(ops.published.records) == 1
        forced = await client.post(
            "/dead-letters/1/redrive",
            data={"csrf_token": token, "force": "yes", "back": "record"},
        )
        assert forced.headers["location"] == "/dead-letters/1"
        assert "redriven 2 time(s)" in (await client.get("/dead-letters/1")).text
    [(topic, key, value, _headers), _again] = ops.published.records
    assert (topic, key) == ("announcement.published", b"k")
    assert json.loads(value)["id"] == "bad-1"


async def test_redrive_all_and_the_filter_form(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "ed")
        bad = await client.get("/dead-letters", params={"channel": "sms", "reason": "x" * 201})
        assert bad.status_code == 422
        assert 'id="channel-error"' in bad.text
        assert 'id="reason-error"' in bad.text
        assert "x" * 201 in bad.text  # kept
        token = await csrf(client, "/dead-letters")
        done = await client.post(
            "/dead-letters/redrive", data={"csrf_token": token, "channel": "webhook"}
        )
        assert done.headers["location"] == "/dead-letters?channel=webhook"
        page = await client.get(done.headers["location"])
        assert "1 of 1 dead letter(s) redriven." in page.text
    assert len(ops.published.records) == 1


async def test_a_viewer_sees_no_redrive_and_is_refused(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/dead-letters")
        assert "invalid event" in page.text
        assert "Redrive" not in page.text
        assert "Redrive" not in (await client.get("/dead-letters/1")).text
        token = await csrf(client, "/dead-letters")
        for path in ("/dead-letters/1/redrive", "/dead-letters/redrive"):
            refused = await client.post(path, data={"csrf_token": token})
            assert refused.status_code == 403
            assert "is a viewer" in refused.text
    assert ops.published.records == []


async def test_endpoint_health_beside_its_actions(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/endpoints")
        assert page.status_code == 200, page.text
        assert "97.5%</strong> of 40 request(s)" in page.text
        assert "p50 12 ms · p95 230 ms" in page.text
        assert "Rotate secret" in page.text


async def test_the_dashboard_chart_and_dead_letters_needing_attention(ops: Ops) -> None:
    async with ops.harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/")
        assert page.status_code == 200, page.text
        assert "Deliveries of the last 24 hours" in page.text
        assert "<svg" in page.text
        table = page.text.split('<table class="chart-table">', 1)[1].split("</table>", 1)[0]
        assert "<td>email</td><td>failed</td><td>1</td>" in table
        assert "<td>webhook</td><td>delivered</td><td>1</td>" in table
        assert "1 from webhook" in page.text  # a dead letter not redriven


async def test_pages_say_when_the_status_service_is_down(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as harness, harness.client() as client:
        await sign_in(client, "vi")
        dashboard = await client.get("/")
        assert dashboard.status_code == 200
        assert "status service does not answer" in dashboard.text
        for path in ("/dead-letters", "/deliveries?event=x", "/dead-letters/1"):
            page = await client.get(path)
            assert page.status_code == 503, path
            assert "The status service does not answer" in page.text
        endpoints = await client.get("/endpoints")
        assert endpoints.status_code == 503  # the webhook service is down too here
