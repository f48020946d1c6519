"""The console's email resend in process: the delivery page's button (editors only), its
POST through the console's email backend (the email API answered by a table), the email
service's refusal shown on the page, a viewer refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.unit.console_support import ConsoleHarness, console_harness, csrf, sign_in
from tests.unit.test_console_ops_pages import EVENT, Published, _status_app

SENT = "aswan:focal@aswan.example"
BOUNCING = "kathmandu:focal@kathmandu.example"


@dataclass
class EmailApi:
    """``POST /v1/notices/resend``: queued for one contact, refused for the other."""

    asked: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/notices/resend" or request.method != "POST":
            return httpx.Response(404, json={"detail": "no such path"})
        body = json.loads(request.content)
        self.asked.append(body)
        if body["recipient"] == BOUNCING:
            return httpx.Response(409, json={"detail": "contact bouncing"})
        return httpx.Response(202, json={"queued": 1, "resend_id": 7})


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[ConsoleHarness, EmailApi]]:
    email = EmailApi()
    status_app, engine = await _status_app(tmp_path, Published())
    async with console_harness(
        tmp_path,
        email_transport=httpx.MockTransport(email),
        status_transport=httpx.ASGITransport(app=status_app),
    ) as console:
        yield console, email
    await engine.dispose()


@pytest.mark.parametrize(
    ("recipient", "shown"),
    [
        (SENT, f"Resend of {EVENT} to {SENT} queued"),
        (BOUNCING, "Not resent: contact bouncing"),
    ],
)
async def test_an_editor_resends_an_email_and_sees_the_answer(
    harness: tuple[ConsoleHarness, EmailApi], recipient: str, shown: str
) -> None:
    console, email = harness
    query = {"event_id": EVENT, "channel": "email", "recipient": recipient}
    async with console.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/deliveries/notice", params=query)
        assert "Resend this email" in page.text
        token = await csrf(client, "/deliveries")
        posted = await client.post(
            "/deliveries/resend-email",
            data={"csrf_token": token, "event_id": EVENT, "recipient": recipient},
        )
        assert posted.status_code == 303
        back = await client.get(posted.headers["location"])
        assert back.url.params["recipient"] == recipient
        assert shown in back.text
    assert email.asked == [{"event_id": EVENT, "recipient": recipient}]


async def test_a_viewer_has_no_email_resend(harness: tuple[ConsoleHarness, EmailApi]) -> None:
    console, email = harness
    async with console.client() as client:
        await sign_in(client, "vi")
        page = await client.get(
            "/deliveries/notice", params={"event_id": EVENT, "channel": "email", "recipient": SENT}
        )
        assert page.status_code == 200
        assert "Resend this email" not in page.text
        token = await csrf(client, "/deliveries")
        refused = await client.post(
            "/deliveries/resend-email",
            data={"csrf_token": token, "event_id": EVENT, "recipient": SENT},
        )
        assert refused.status_code == 403
    assert email.asked == []


async def test_a_resend_without_its_csrf_token_is_refused(
    harness: tuple[ConsoleHarness, EmailApi],
) -> None:
    console, email = harness
    async with console.client() as client:
        await sign_in(client, "ed")
        forged = await client.post(
            "/deliveries/resend-email", data={"event_id": EVENT, "recipient": SENT}
        )
        assert forged.status_code in (400, 403)
    assert email.asked == []
