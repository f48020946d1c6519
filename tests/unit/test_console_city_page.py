"""A city's page in the console: its form, its contacts' choices from the email service's
API (in process, over a SQLite file) and its recent notices from the status service (a
canned answer); either service away, the page says so in place and the form still saves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import load_csv
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_email.bounce_store import BounceStore
from gnlc_email.choices import Choice, Digest
from gnlc_email.contacts_api import ContactsApiState, contacts_api_router
from gnlc_email.store import Preferences
from tests.unit.console_support import console_harness, csrf_of, sign_in
from tests.unit.scheduler_api import TOKEN

CONTACT = "lll@kathmandu.example.org"
SENT = datetime(2026, 3, 2, 3, 15, tzinfo=UTC)  # 09:00 in Kathmandu (UTC+05:45)


def _notice(**fields: object) -> dict[str, object]:
    return {
        "event_id": "e-1",
        "channel": "email",
        "recipient": f"kathmandu:{CONTACT}",
        "state": "delivered",
        "reason": None,
        "attempts": 1,
        "state_time": SENT.isoformat(),
        "event_type": "deadline.reminder_due",
        "event_time": SENT.isoformat(),
        "deadline_id": "progress-report",
        "step": "-7d",
        "announcement_id": None,
        "city_id": "kathmandu",
        "partner_id": None,
        "send_at": None,
        **fields,
    }


class StatusApi:
    """The status service's city route, canned; it records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url)
        if request.url.path != "/v1/status/cities/kathmandu":
            return httpx.Response(404, json={"detail": "not here"})
        items = [
            _notice(),
            _notice(
                event_id="e-2",
                channel="webhook",
                recipient="partner-a",
                state="failed",
                reason="HTTP 500 from the endpoint",
                step="-1d",
            ),
        ]
        return httpx.Response(200, json={"items": items, "next_offset": None})


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
async def email(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, AsyncEngine]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'email.db'}")
    await migrate(engine, "email")
    app = FastAPI()
    answer_errors(app)
    state = ContactsApiState(Preferences(engine), BounceStore(engine))
    settings = Settings(operator_token=SecretStr(TOKEN))
    app.include_router(contacts_api_router(state, settings, load_csv(SAMPLE_DIRECTORY)))
    yield app, engine
    await engine.dispose()


async def test_the_city_page_shows_choices_and_recent_notices(
    tmp_path: Path, email: tuple[FastAPI, AsyncEngine]
) -> None:
    app, engine = email
    await Preferences(engine).save(
        CONTACT, "kathmandu", Choice(frozenset({"news", "award"}), Digest.ON), subscribed=False
    )
    await BounceStore(engine).mark("kathmandu", CONTACT, "550 5.1.1 no such user", "e-0")
    status = StatusApi()
    async with (
        console_harness(
            tmp_path,
            email_transport=httpx.ASGITransport(app=app),
            status_transport=httpx.MockTransport(status),
        ) as h,
        h.client() as client,
    ):
        await sign_in(client, "ed")
        client.cookies.set("tz", "Europe/Paris")
        page = await client.get("/directory/kathmandu/edit")
        assert page.status_code == 200, page.text
        html = page.text
        contacts = html[html.index('id="city-contacts"') : html.index('id="city-notices"')]
        assert f'<th scope="row" class="url">{CONTACT}</th>' in contacts
        assert "unsubscribed" in contacts
        assert "award, news" in contacts
        assert ">on</td>" in contacts  # the digest chosen
        assert "550 5.1.1 no such user" in contacts
        notices = html[html.index('id="city-notices"') :]
        assert "Mon 02 Mar 2026, 09:00 (Asia/Kathmandu, UTC+05:45)" in notices
        assert "04:15 your time (Europe/Paris)" in notices
        assert "progress-report" in notices
        assert "deadline.reminder_due" in notices
        assert "-7d" in notices
        assert "HTTP 500 from the endpoint" in notices
        assert 'class="state-failed"' in notices
        assert status.asked[0].params["limit"] == "20"
        assert "does not answer" not in html


async def test_services_away_are_named_in_place_and_the_city_still_saves(
    tmp_path: Path,
) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:  # email, status down
        await sign_in(client, "ed")
        page = await client.get("/directory/kathmandu/edit")
        assert page.status_code == 200, page.text
        assert "The email service does not answer at http" in page.text  # (its URL)
        assert "The status service does not answer at" in page.text
        assert "the city can still be edited" in page.text
        form = {
            "csrf_token": csrf_of(page.text),
            "name": "Kathmandu",
            "country": "NP",
            "region": "Asia and the Pacific",
            "timezone": "Asia/Kathmandu",
            "languages": "ne en",
            "contacts": CONTACT,
            "active": "on",
        }
        refused = await client.post("/directory/kathmandu/edit", data={**form, "country": "N"})
        assert refused.status_code == 422
        assert "The email service does not answer" in refused.text  # panels on the 422 too
        saved = await client.post("/directory/kathmandu/edit", data=form)
        assert saved.status_code == 303
        city = (await h.scheduler.client.get("/v1/cities/kathmandu")).json()
        assert city["languages"] == ["ne", "en"]


async def test_a_city_the_email_service_does_not_know_yet(
    tmp_path: Path, email: tuple[FastAPI, AsyncEngine]
) -> None:
    app, _engine = email
    async with (
        console_harness(
            tmp_path,
            email_transport=httpx.ASGITransport(app=app),
            status_transport=httpx.MockTransport(
                lambda r: httpx.Response(200, json={"items": [], "next_offset": None})
            ),
        ) as h,
        h.client() as client,
    ):
        await sign_in(client, "ed")
        imported = await client.post(
            "/directory/import",
            data={"csrf_token": csrf_of((await client.get("/directory")).text)},
            files={
                "file": (
                    "c.csv",
                    b"id,name,country,region,timezone,language,contact_email\n"
                    b"new-town,New Town,NP,Asia and the Pacific,Asia/Kathmandu,en,"
                    b"a@n.example.org\n",
                    "text/csv",
                )
            },
        )
        assert imported.status_code == 303, imported.text
        page = await client.get("/directory/new-town/edit")
        assert page.status_code == 200
        assert "The email service does not know new-town yet" in page.text
        assert "No notice in the last 30 days." in page.text
