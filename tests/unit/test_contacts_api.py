"""The email service's ``/v1/cities/{id}/contacts`` in process: each contact's choices and
bouncing mark with their moments, the defaults, the token, 404, 422 and 503; the row
itself table-driven."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import City, Directory
from gnlc_core.settings import Settings
from gnlc_email.bounce_store import BounceStore, Bouncing
from gnlc_email.choices import Choice, Digest
from gnlc_email.contacts_api import ContactsApiState, contact_choices, contacts_api_router
from gnlc_email.store import Preferences, Recorded

TOKEN = "contacts-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
LAVAL = City.model_validate(
    {
        "id": "laval",
        "name": "Laval",
        "country": "CA",
        "region": "North America",
        "timezone": "America/Toronto",
        "languages": ["fr", "en"],
        "contacts": ["Ami@laval.example.org", "bo@laval.example.org", "cy@laval.example.org"],
        "digest": True,
    }
)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MARK = Bouncing("laval", "bo@laval.example.org", "550 no such user", "e-1", T0)


@pytest.mark.parametrize(
    ("city_digest", "recorded", "mark", "expected"),
    [
        (
            True,
            None,
            None,
            {"unsubscribed": False, "categories_off": [], "digest": "city", "digest_wanted": True},
        ),
        (
            False,
            Recorded(Choice(frozenset({"news", "award"}), Digest.ON), T0, T0),
            None,
            {
                "unsubscribed": True,
                "categories_off": ["award", "news"],  # the canonical order
                "digest": "on",
                "digest_wanted": True,
            },
        ),
        (
            True,
            Recorded(Choice(digest=Digest.OFF), T0),
            MARK,
            {"unsubscribed": False, "categories_off": [], "digest": "off", "digest_wanted": False},
        ),
    ],
)
def test_a_contacts_row(
    city_digest: bool, recorded: Recorded | None, mark: Bouncing | None, expected: dict[str, object]
) -> None:
    row = contact_choices("X@laval.example.org", city_digest, recorded, mark)
    assert row.address == "X@laval.example.org"
    assert row.model_dump(include=set(expected)) == expected
    assert (row.bouncing is not None) is (mark is not None)


@dataclass
class Api:
    client: httpx.AsyncClient
    state: ContactsApiState
    preferences: Preferences
    bounces: BounceStore


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'email.db'}")
    await migrate(engine, "email")
    state = ContactsApiState(Preferences(engine), BounceStore(engine))
    app = FastAPI()
    answer_errors(app)
    settings = Settings(operator_token=SecretStr(TOKEN))
    app.include_router(contacts_api_router(state, settings, Directory((LAVAL,))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://email.test") as client:
        yield Api(client, state, state.preferences, state.bounces)  # type: ignore[arg-type]
    await engine.dispose()


async def test_each_contact_with_its_choices_and_mark(api: Api) -> None:
    await api.preferences.save(
        "ami@laval.example.org",
        "laval",
        Choice(frozenset({"news"}), Digest.OFF),
        subscribed=False,
    )
    await api.bounces.mark("laval", "BO@laval.example.org", "550 no such user", "e-1")
    await api.bounces.mark("aswan", "cy@laval.example.org", "another city's mark", None)
    answer = await api.client.get("/v1/cities/laval/contacts", headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["city_id"] == "laval"
    assert body["digest"] is True
    ami, bo, cy = body["contacts"]
    assert ami["address"] == "Ami@laval.example.org"
    assert ami["unsubscribed"] is True
    assert ami["unsubscribed_at"]
    assert ami["categories_off"] == ["news"]
    assert ami["digest"] == "off"
    assert ami["digest_wanted"] is False
    assert ami["choices_at"]
    assert ami["bouncing"] is None
    assert bo["bouncing"]["reason"] == "550 no such user"
    assert bo["bouncing"]["event_id"] == "e-1"
    assert datetime.fromisoformat(bo["bouncing"]["since"]).tzinfo is not None
    assert bo["unsubscribed"] is False
    assert bo["choices_at"] is None
    assert bo["digest"] == "city"
    assert cy["bouncing"] is None  # a mark under another city is not this city's


async def test_limit_token_unknown_city_and_bad_input(api: Api) -> None:
    one = await api.client.get("/v1/cities/laval/contacts", params={"limit": 1}, headers=AUTH)
    assert [c["address"] for c in one.json()["contacts"]] == ["Ami@laval.example.org"]
    assert (await api.client.get("/v1/cities/laval/contacts")).status_code == 401
    missing = await api.client.get("/v1/cities/nowhere/contacts", headers=AUTH)
    assert missing.status_code == 404
    assert "nowhere" in missing.json()["detail"]
    bad = await api.client.get("/v1/cities/Not_A_City/contacts", params={"limit": 0}, headers=AUTH)
    assert bad.status_code == 422
    assert sorted(tuple(p["loc"]) for p in bad.json()["detail"]) == [
        ("path", "city_id"),
        ("query", "limit"),
    ]
    api.state.bounces = None
    starting = await api.client.get("/v1/cities/laval/contacts", headers=AUTH)
    assert starting.status_code == 503


async def test_documented_in_openapi(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/cities/{city_id}/contacts"]["get"]
    assert {"200", "401", "404", "422", "503"} <= set(operation["responses"])
    contacts = spec["components"]["schemas"]["CityContacts"]["properties"]["contacts"]
    assert contacts["maxItems"] == 10
