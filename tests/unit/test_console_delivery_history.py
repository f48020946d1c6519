"""The delivery page's history in process (the status service's real API on SQLite, the
webhook API answered by a table): every channel shows the states its receipts told, in the
city's zone and the viewer's; a webhook's attempts stay beside them; a status service that
does not answer is said in place and the attempts are still shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gnlc_core.events import NoticeStatus
from gnlc_status import view
from tests.unit.console_support import ConsoleHarness, console_harness, sign_in
from tests.unit.test_console_ops_pages import EVENT, NOW, Published, WebhookApi, _status_app

EMAIL = {"event_id": EVENT, "channel": "email", "recipient": "kathmandu:focal@kathmandu.example"}
HOOK = {"event_id": EVENT, "channel": "webhook", "recipient": "partner-a"}


def retried(channel: str, recipient: str, reason: str) -> NoticeStatus:
    """An earlier attempt than the delivered or failed state the ops fixture records."""
    return NoticeStatus(
        event_id=EVENT,
        channel=channel,
        recipient=recipient,
        state="retrying",
        attempts=1,
        reason=reason,
        state_time=NOW - timedelta(minutes=8),
    )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[ConsoleHarness]:
    status_app, engine = await _status_app(tmp_path, Published())
    await view.apply(
        engine,
        [
            retried("webhook", "partner-a", "HTTP 503 <busy>"),
            retried("email", EMAIL["recipient"], "421 mailbox busy"),
        ],
    )
    async with console_harness(
        tmp_path,
        webhook_transport=httpx.MockTransport(WebhookApi()),
        status_transport=httpx.ASGITransport(app=status_app),
    ) as harness:
        yield harness
    await engine.dispose()


def section(html: str, heading_id: str) -> str:
    """The table under the heading ``heading_id``."""
    after = html.split(f'<h2 id="{heading_id}">', 1)[1]
    return after.split("<table", 1)[1].split("</table>", 1)[0]


async def test_an_emails_history_in_the_citys_zone_and_the_viewers(
    harness: ConsoleHarness,
) -> None:
    async with harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/deliveries/notice", params=EMAIL)
        assert page.status_code == 200, page.text
    table = section(page.text, "history")
    headers = ["When", "State", "Attempt", "Reason"]
    assert [f'<th scope="col">{h}</th>' in table for h in headers] == [True] * 4
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    assert len(rows) == 2
    assert ">failed<" in rows[0]
    assert ">retrying<" in rows[1]
    assert "<td>1</td>" in rows[1]
    assert "421 mailbox busy" in rows[1]
    assert "Asia/Kathmandu" in rows[1]
    assert "your time (UTC)" in rows[1]


async def test_a_webhooks_history_beside_its_attempts(harness: ConsoleHarness) -> None:
    async with harness.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/deliveries/notice", params=HOOK)
        assert page.status_code == 200, page.text
    history = section(page.text, "history")
    assert "HTTP 503 &lt;busy&gt;" in history  # a reason is escaped
    assert history.count("<tr>") == 3  # the header and two states
    attempts = section(page.text, "attempts")
    assert "&lt;b&gt;busy&lt;/b&gt;" in attempts  # the response the webhook API logged


async def test_a_status_service_away_is_said_in_place(tmp_path: Path) -> None:
    async with (
        console_harness(tmp_path, webhook_transport=httpx.MockTransport(WebhookApi())) as harness,
        harness.client() as client,
    ):
        await sign_in(client, "vi")
        page = await client.get("/deliveries/notice", params=HOOK)
    assert page.status_code == 200, page.text
    assert "The status service does not answer" in page.text
    assert "Not known while the status service does not answer" in page.text
    assert "HTTP 503" in section(page.text, "attempts")  # the webhook API's log stands
