"""The operator API in process (SQLite, the in-memory test broker): bad input is a 4xx
naming the field, never a 5xx; every body, text and list is bounded before anything is
stored; edits change what they name; answers say what was left out, and carry offsets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gnlc_core.directory import MAX_CITIES
from gnlc_core.events import MAX_LANGUAGES
from gnlc_core.kafka import MAX_EVENT_BYTES
from gnlc_core.receipts import RECEIPT_TYPE
from gnlc_scheduler import store
from gnlc_scheduler.deadlines import Deadline
from gnlc_scheduler.limits import MAX_IMPORT_BODY, MAX_JSON_BODY
from gnlc_scheduler.tables import outbox
from tests.unit.scheduler_api import OperatorApi, operator_api

EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[OperatorApi]:
    async with operator_api(tmp_path) as api:
        yield api


def soon(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def deadline(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "survey-2027",
        "title": {"en": "Survey", "fr": "Enquête", "es": "Encuesta"},
        "due_at": soon(days=10),
        "audience": {"regions": ["Africa"]},
        "reminders": ["-7d", "0d"],
        "delivery_hour": 14,
    }
    return body | overrides


def announcement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "study-visit",
        "category": "event",
        "title": {"en": "Study visit", "fr": "Visite d'étude"},
        "body": {"en": "Details follow.", "fr": "Détails à suivre."},
        "audience": {"all_members": True},
        "publish_at": soon(hours=2),
    }
    return body | overrides


def locs(response: httpx.Response) -> list[list[str | int]]:
    """The 422's locations; every entry has exactly loc, msg and type."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    for entry in detail:
        assert set(entry) == {"loc", "msg", "type"}, entry
    return [entry["loc"] for entry in detail]


def messages(response: httpx.Response) -> str:
    return " | ".join(entry["msg"] for entry in response.json()["detail"])


# -- 1. no 500s at the extremes -----------------------------------------------------------


@pytest.mark.parametrize("instant", EXTREMES)
async def test_extreme_instants_are_refused_naming_the_field(
    api: OperatorApi, instant: str
) -> None:
    c = api.client
    assert ["body", "due_at"] in locs(await c.post("/v1/deadlines", json=deadline(due_at=instant)))
    assert ["body", "publish_at"] in locs(
        await c.post("/v1/announcements", json=announcement(publish_at=instant))
    )
    await c.post("/v1/deadlines", json=deadline())
    submitted = await c.post(
        "/v1/deadlines/survey-2027/submissions",
        json={"city_id": "durban", "submitted_at": instant},
    )
    assert ["body", "submitted_at"] in locs(submitted)


async def test_a_plan_step_past_the_calendar_is_refused(api: OperatorApi) -> None:
    body = deadline(due_at="9999-12-31T23:00:00Z", reminders=["+3d"])
    response = await api.client.post("/v1/deadlines", json=body)
    assert locs(response) == [["body", "due_at"]]
    assert "2200-01-01" in messages(response)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"[" * 1000 + b"]" * 1000),
        ("application/yaml", b"[" * 1000 + b"]" * 1000),
        ("application/yaml", b"- " * 1000 + b"x\n"),
    ],
)
async def test_deeply_nested_imports_are_refused(
    api: OperatorApi, content_type: str, body: bytes
) -> None:
    response = await api.client.post(
        "/v1/cities/import", content=body, headers={"content-type": content_type}
    )
    assert locs(response) == [["body"]]
    assert "nested more than" in messages(response)


async def test_yaml_alias_bombs_are_refused_before_they_expand(api: OperatorApi) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]\n" for n in range(6)
    )
    assert len(bomb) < 500
    response = await api.client.post(
        "/v1/cities/import", content=bomb.encode(), headers={"content-type": "application/yaml"}
    )
    assert "anchors and aliases" in messages(response)
    assert len((await api.client.get("/v1/cities")).json()) == len(api.service.directory)


# -- 2. limits, before anything is stored -------------------------------------------------


async def test_bodies_over_the_limit_are_413_naming_it(api: OperatorApi) -> None:
    huge = deadline(title={"en": "x" * (MAX_JSON_BODY + 10)})
    response = await api.client.post("/v1/deadlines", json=huge)
    assert response.status_code == 413
    assert str(MAX_JSON_BODY) in response.json()["detail"]
    big_import = b"id,name\n" + b"x" * MAX_IMPORT_BODY
    response = await api.client.post(
        "/v1/cities/import", content=big_import, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 413
    assert str(MAX_IMPORT_BODY) in response.json()["detail"]
    assert (await api.client.get("/v1/deadlines/survey-2027")).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/deadlines", deadline(title={"en": "x" * 301}), ["body", "title", "en"]),
        ("/v1/deadlines", deadline(description={"en": "x" * 20_001}), ["body", "description"]),
        (
            "/v1/deadlines",
            deadline(title={f"l{chr(97 + n // 26)}{chr(97 + n % 26)}": "t" for n in range(17)}),
            ["body", "title"],
        ),
        ("/v1/deadlines", deadline(title={}), ["body", "title"]),
        ("/v1/deadlines", deadline(link="https://" + "x" * 2000), ["body", "link"]),
        ("/v1/deadlines", deadline(id="x" * 64), ["body", "id"]),
        (
            "/v1/deadlines",
            deadline(audience={"regions": [f"r{n}" for n in range(21)]}),
            ["body", "audience", "regions"],
        ),
        (
            "/v1/deadlines",
            deadline(audience={"regions": ["x" * 101]}),
            ["body", "audience", "regions", 0],
        ),
        (
            "/v1/deadlines",
            deadline(audience={"cities": [f"c{n}" for n in range(2001)]}),
            ["body", "audience", "cities"],
        ),
        (
            "/v1/deadlines",
            deadline(reminders=[f"-{n}h" for n in range(1, 22)]),
            ["body", "reminders"],
        ),
        ("/v1/deadlines", deadline(reminders=["-400d"]), ["body", "reminders"]),
        ("/v1/announcements", announcement(body={"en": "x" * 20_001}), ["body", "body", "en"]),
        ("/v1/announcements", announcement(audience={}), ["body", "audience"]),
        ("/v1/deadlines/survey-2027/submissions", {"city_id": "x" * 64}, ["body", "city_id"]),
    ],
)
async def test_every_text_and_list_is_bounded(
    api: OperatorApi, path: str, body: dict[str, Any], loc: list[str | int]
) -> None:
    await api.client.post("/v1/deadlines", json=deadline(id="other"))
    path = path.replace("survey-2027", "other")
    found = locs(await api.client.post(path, json=body))
    assert any(f[: len(loc)] == loc for f in found), found


@pytest.mark.parametrize(
    ("path", "field", "make"),
    [("/v1/announcements", "body", announcement), ("/v1/deadlines", "description", deadline)],
)
async def test_an_event_too_large_for_kafka_is_refused_and_nothing_is_stored(
    api: OperatorApi, path: str, field: str, make: Any
) -> None:
    # 16 languages of 16,300 four-byte characters: under the body limit, over Kafka's
    text = "\N{GRINNING FACE}" * 16_300
    body = make(**{field: {f"l{chr(97 + n // 26)}{chr(97 + n % 26)}": text for n in range(16)}})
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert MAX_EVENT_BYTES < len(raw) < MAX_JSON_BODY
    response = await api.client.post(
        path, content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert str(MAX_EVENT_BYTES) in response.json()["detail"]
    assert (await api.client.get(f"{path}/{body['id']}")).status_code == 404
    assert await store.list_outbox(api.service.engine, state=None, limit=10) == []


# -- 3. imports leave the event loop ------------------------------------------------------


async def test_health_answers_during_a_big_import(api: OperatorApi) -> None:
    row = (
        "- {{id: city-{n}, name: City {n}, country: NP, region: Asia and the Pacific, "
        "timezone: Asia/Nowhere-{n}, language: en, contacts: [focal-{n}@city.example.org]}}\n"
    )
    body = "".join(row.format(n=n) for n in range(MAX_CITIES)).encode()
    assert len(body) < MAX_IMPORT_BODY
    started = time.monotonic()
    task = asyncio.create_task(
        api.client.post(
            "/v1/cities/import", content=body, headers={"content-type": "application/yaml"}
        )
    )
    waits: list[float] = []
    while not task.done():
        before = time.monotonic()
        assert (await api.client.get("/health/live")).status_code == 204
        waits.append(time.monotonic() - before)
        await asyncio.sleep(0.02)
    response = await task
    took = time.monotonic() - started
    assert response.status_code == 422
    assert len(response.json()["detail"]) == MAX_CITIES  # every row's problem
    assert len(waits) >= 3, (took, waits)
    # the import runs beside the event loop, never in it: no answer waited for a good part
    # of it (a blocked loop would make one wait about as long as the import; a busy
    # machine makes every one slower, so no fixed number of milliseconds)
    assert max(waits) < took / 3, (took, max(waits))


@pytest.mark.parametrize("body", [[], {"cities": []}])
async def test_an_import_of_no_city_is_refused(api: OperatorApi, body: object) -> None:
    response = await api.client.post("/v1/cities/import", json=body)
    assert "no cities" in messages(response)


async def test_an_import_over_the_row_limit_is_refused(api: OperatorApi) -> None:
    rows = [{"id": f"c{n}"} for n in range(MAX_CITIES + 1)]
    response = await api.client.post("/v1/cities/import", json=rows)
    assert f"more than {MAX_CITIES} cities" in messages(response)


# -- 9. imports report every problem ------------------------------------------------------

HEADER = "id,name,country,region,timezone,language,contact_email"
ROW = "st-johns,St. John's,CA,Europe and North America,America/St_Johns,en,a@sj.example.org"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [(["body"], "the file is empty")]),
        (ROW + "\n", [(["body", "line 1"], "header naming the columns")]),
        (HEADER.replace("timezone", "tz") + "\n" + ROW, [(["body", "line 1"], "timezone")]),
        (
            "\n".join(
                [
                    HEADER,
                    ROW,
                    ROW.replace("St. John's", "Again"),
                    "short,row",
                    ROW.replace("st-johns", "chatham").replace("America/St_Johns", "Pacific/X"),
                ]
            ),
            [
                (["body", "line 3"], "duplicate city id 'st-johns'"),
                (["body", "line 4"], "has 2 field(s)"),
                (["body", "line 5", "timezone"], "unknown IANA time zone 'Pacific/X'"),
            ],
        ),
    ],
)
async def test_city_import_reports_every_problem(
    api: OperatorApi, text: str, expected: list[tuple[list[str], str]]
) -> None:
    response = await api.client.post(
        "/v1/cities/import", content=text.encode(), headers={"content-type": "text/csv"}
    )
    detail = response.json()["detail"]
    assert response.status_code == 422, detail
    assert [(d["loc"], m in d["msg"]) for d, (_, m) in zip(detail, expected, strict=True)] == [
        (loc, True) for loc, _ in expected
    ]
    assert (await api.client.get("/v1/cities/st-johns")).status_code == 404


async def test_semicolon_separated_cities_are_read(api: OperatorApi) -> None:
    text = f"{HEADER}\n{ROW}\n".replace(",", ";").replace("St. John's", "St John's")
    response = await api.client.post(
        "/v1/cities/import", content=text.encode(), headers={"content-type": "text/csv"}
    )
    assert response.json() == {"imported": 1}


@pytest.mark.parametrize(
    ("content_type", "body", "languages"),
    [
        (
            "text/csv",
            "id,name,country,region,timezone,languages,contact_email\n"
            'casablanca,Casablanca,MA,Arab States,Africa/Casablanca,"ar;fr",a@c.example.org\n',
            ["ar", "fr"],
        ),
        (
            "application/yaml",
            "- {id: casablanca, name: Casablanca, country: MA, region: Arab States,\n"
            "   timezone: Africa/Casablanca, languages: [ar, fr], contacts: [a@c.example.org]}\n",
            ["ar", "fr"],
        ),
        (
            "application/json",
            json.dumps(
                [
                    {
                        "id": "casablanca",
                        "name": "Casablanca",
                        "country": "MA",
                        "region": "Arab States",
                        "timezone": "Africa/Casablanca",
                        "language": "ar",
                        "languages": ["ar", "fr", "en"],
                        "contacts": ["a@c.example.org"],
                    }
                ]
            ),
            ["ar", "fr", "en"],
        ),
    ],
)
async def test_a_citys_chain_is_imported_stored_and_answered(
    api: OperatorApi, content_type: str, body: str, languages: list[str]
) -> None:
    response = await api.client.post(
        "/v1/cities/import", content=body.encode(), headers={"content-type": content_type}
    )
    assert response.json() == {"imported": 1}, response.json()
    city = (await api.client.get("/v1/cities/casablanca")).json()
    assert (city["language"], city["languages"]) == (languages[0], languages)
    stored = (await store.load_directory(api.service.engine)).by_id["casablanca"]
    assert list(stored.languages) == languages


async def test_a_citys_digest_is_imported_stored_and_answered(api: OperatorApi) -> None:
    """The operators' digest setting (default off) goes through the import, the store and
    the API (and so the directory topic)."""
    row = "durban,Durban,ZA,Africa,Africa/Johannesburg,en,a@durban.example.org"
    body = f"id,name,country,region,timezone,language,contact_email,digest\n{row},yes\n"
    response = await api.client.post(
        "/v1/cities/import", content=body.encode(), headers={"content-type": "text/csv"}
    )
    assert response.json() == {"imported": 1}, response.json()
    assert (await api.client.get("/v1/cities/durban")).json()["digest"] is True
    assert (await store.load_directory(api.service.engine)).by_id["durban"].digest is True
    assert (await api.client.get("/v1/cities/laval")).json()["digest"] is False


async def test_a_bad_chain_is_refused_naming_the_line(api: OperatorApi) -> None:
    body = (
        "- {id: casablanca, name: Casablanca, country: MA, region: Arab States,\n"
        "   timezone: Africa/Casablanca, language: fr, languages: [ar, fr],\n"
        "   contacts: [a@c.example.org]}\n"
    )
    response = await api.client.post(
        "/v1/cities/import", content=body.encode(), headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "item 1"]
    assert "language 'fr' must be the first of languages (ar, fr)" in problem["msg"]


async def test_an_import_of_another_content_type_is_415(api: OperatorApi) -> None:
    response = await api.client.post(
        "/v1/cities/import", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]


# -- 5. offsets on every instant ----------------------------------------------------------


def _instants(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _instants(v)]
    if isinstance(value, list):
        return [s for v in value for s in _instants(v)]
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return [value]
    return []


async def test_every_instant_in_every_answer_has_its_offset(api: OperatorApi) -> None:
    c = api.client
    await c.post("/v1/deadlines", json=deadline())
    await c.post("/v1/deadlines/survey-2027/submissions", json={"city_id": "durban"})
    await c.post("/v1/announcements", json=announcement())
    answers = [
        await c.get(path)
        for path in (
            "/v1/deadlines",
            "/v1/deadlines/survey-2027",
            "/v1/deadlines/survey-2027/submissions",
            "/v1/announcements",
            "/v1/announcements/study-visit",
            "/v1/schedule",
            "/v1/outbox",
        )
    ]
    found = [s for a in answers for s in _instants(a.json())]
    assert len(found) > 10
    for instant in found:
        assert datetime.fromisoformat(instant).tzinfo is not None, instant


# -- 6. PATCH changes what it names -------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json"])
async def test_patching_a_title_keeps_everything_else(api: OperatorApi, content_type: str) -> None:
    c = api.client
    body = deadline(reminders=["-2d"], description={"en": "Details", "fr": "Détails"})
    created = await c.post("/v1/deadlines", json=body)
    assert created.status_code == 201, created.text
    patch = {"title": {"en": "Survey (new)"}, "description": {"fr": None}}
    response = await c.patch(
        "/v1/deadlines/survey-2027",
        content=json.dumps(patch).encode(),
        headers={"content-type": content_type},
    )
    assert response.status_code == 200, response.text
    stored = (await c.get("/v1/deadlines/survey-2027")).json()
    assert stored["title"] == {"en": "Survey (new)", "fr": "Enquête", "es": "Encuesta"}
    assert stored["description"] == {"en": "Details"}
    assert stored["reminders"] == ["-2d"]
    assert stored["delivery_hour"] == 14
    assert [s["fire_at"] for s in response.json()["scheduled"]] == [
        s["fire_at"] for s in created.json()["scheduled"]
    ]


@pytest.mark.parametrize(
    ("patch", "status", "loc"),
    [
        ({"title": None}, 422, ["body", "title"]),
        ({"title": {"en": None, "fr": None, "es": None}}, 422, ["body", "title"]),
        ({"id": "another"}, 422, ["body", "id"]),
        ({"due_at": EXTREMES[0]}, 422, ["body", "due_at"]),
        ({"colour": "blue"}, 422, ["body", "colour"]),
    ],
)
async def test_bad_patches_are_refused(
    api: OperatorApi, patch: dict[str, Any], status: int, loc: list[str]
) -> None:
    await api.client.post("/v1/deadlines", json=deadline())
    response = await api.client.patch("/v1/deadlines/survey-2027", json=patch)
    assert response.status_code == status
    assert any(found[: len(loc)] == loc for found in locs(response))


async def test_patching_what_does_not_exist_is_404(api: OperatorApi) -> None:
    assert (await api.client.patch("/v1/deadlines/nope", json={})).status_code == 404
    assert (await api.client.patch("/v1/announcements/nope", json={})).status_code == 404


async def test_announcements_are_patched_and_listed_with_their_state(api: OperatorApi) -> None:
    c = api.client
    assert (await c.post("/v1/announcements", json=announcement())).status_code == 202
    patched = await c.patch("/v1/announcements/study-visit", json={"title": {"en": "Visit"}})
    assert patched.status_code == 202, patched.text
    stored = (await c.get("/v1/announcements/study-visit")).json()
    assert stored["title"] == {"en": "Visit", "fr": "Visite d'étude"}
    assert stored["body"] == announcement()["body"]
    assert stored["outbox"]["state"] == "pending"
    await c.delete("/v1/announcements/study-visit")
    listed = (await c.get("/v1/announcements")).json()
    assert [(a["id"], a["state"], a["outbox_state"]) for a in listed] == [
        ("study-visit", "withdrawn", "cancelled")
    ]
    again = await c.patch("/v1/announcements/study-visit", json={"title": {"en": "Again"}})
    assert again.status_code == 409


# -- 7. what was not scheduled, and why ---------------------------------------------------


async def test_the_answer_lists_steps_not_scheduled_with_reasons(api: OperatorApi) -> None:
    c = api.client
    # due 07:00 in Kathmandu: "due" moves back to 09:00 the day before, where -1d already
    # is: -1d collapses into it. Laval has submitted: it gets nothing.
    body = deadline(
        audience={"cities": ["kathmandu", "laval"]},
        reminders=["-1d", "0d"],
        delivery_hour=9,
        due_at="2030-01-17T01:15:00Z",
    )
    await c.post("/v1/deadlines", json=body)
    await c.post("/v1/deadlines/survey-2027/submissions", json={"city_id": "laval"})
    answer = (await c.put("/v1/deadlines/survey-2027", json=body)).json()
    assert [(s["city_id"], s["step"]) for s in answer["scheduled"]] == [("kathmandu", "due")]
    assert sorted((d["city_id"], d["step"], d["reason"]) for d in answer["not_scheduled"]) == [
        ("kathmandu", "1d-before", "collapsed"),
        ("laval", "1d-before", "submitted"),
        ("laval", "due", "submitted"),
    ]
    assert answer["counts"] == {
        "scheduled": 1,
        "not_scheduled": {"collapsed": 1, "submitted": 2},
    }
    assert all(d["detail"] for d in answer["not_scheduled"])


# -- 8. past deadlines are not active forever ---------------------------------------------


async def test_deadlines_are_active_past_or_cancelled(api: OperatorApi) -> None:
    engine = api.service.engine
    now = datetime.now(UTC)
    past = Deadline.model_validate(
        deadline(id="gone", due_at=(now - timedelta(days=1)).isoformat(), reminders=["-7d"])
    )
    await store.save_deadline(engine, past, now=now - timedelta(days=2), grace=timedelta(0))
    await api.client.post("/v1/deadlines", json=deadline())
    await api.client.post("/v1/deadlines", json=deadline(id="dropped"))
    await api.client.delete("/v1/deadlines/dropped")
    states = {d["id"]: d["state"] for d in (await api.client.get("/v1/deadlines")).json()}
    assert states == {"gone": "past", "survey-2027": "active", "dropped": "cancelled"}


@pytest.mark.parametrize(
    ("stored", "due_in", "counts", "state"),
    [
        ("active", timedelta(days=1), {}, store.DeadlineState.ACTIVE),
        ("active", timedelta(days=-1), {}, store.DeadlineState.PAST),
        ("active", timedelta(days=-1), {"emitted": 3, "parked": 1}, store.DeadlineState.PAST),
        ("active", timedelta(days=-1), {"pending": 1}, store.DeadlineState.ACTIVE),
        ("active", timedelta(days=-1), {"claimed": 1}, store.DeadlineState.ACTIVE),
        ("cancelled", timedelta(days=1), {"pending": 1}, store.DeadlineState.CANCELLED),
    ],
)
def test_deadline_state(
    stored: str, due_in: timedelta, counts: dict[str, int], state: store.DeadlineState
) -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert store.deadline_state(stored, now + due_in, counts, now) == state


# -- 10. the document tells the truth -----------------------------------------------------


async def test_openapi_documents_every_status_and_the_error_shapes(api: OperatorApi) -> None:
    document = (await api.client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert {"401", "403"} <= statuses, where
            if "requestBody" in operation:
                assert {"413", "422"} <= statuses, where
            if "{" in path and method in {"get", "patch", "delete"}:
                assert {"404", "422"} <= statuses, where
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert "application/json" in response.get("content", {}), (where, status)
    schemas = document["components"]["schemas"]
    assert schemas["FieldError"]["required"] == ["loc", "msg", "type"]
    title = schemas["Deadline"]["properties"]["title"]
    assert (title["minProperties"], title["maxProperties"]) == (1, MAX_LANGUAGES)
    assert schemas["Audience"]["properties"]["cities"]["maxItems"] == 2000
    patch = document["paths"]["/v1/deadlines/{deadline_id}"]["patch"]["requestBody"]["content"]
    assert set(patch) == {"application/merge-patch+json", "application/json"}


# -- texts and links per language, and the languages left without ----------------------

LINKS = {"en": "https://example.org/survey", "fr": "https://example.org/fr/enquete"}


async def test_a_deadline_takes_a_link_per_language_and_warns_of_gaps(api: OperatorApi) -> None:
    c = api.client
    body = deadline(audience={"regions": ["Arab States"]}, link=LINKS)
    created = await c.post("/v1/deadlines", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["warnings"] == [
        # the sample's Arab States: Amman and Aswan (ar, en), Chefchaouen (ar, fr)
        "no title in ar (2 cities: amman, aswan), they get en",
        "no title in ar (1 city: chefchaouen), they get fr",
        "no link in ar (2 cities: amman, aswan), they get en",
        "no link in ar (1 city: chefchaouen), they get fr",
    ]
    assert (await c.get("/v1/deadlines/survey-2027")).json()["link"] == LINKS
    # the reminders carry the links per language
    async with api.service.engine.connect() as connection:
        data = (
            (await connection.execute(select(outbox.c.data).where(outbox.c.type != RECEIPT_TYPE)))
            .scalars()
            .all()
        )
    assert len(data) == 6
    assert all(item["link"] == LINKS for item in data)
    # a title in Arabic and one link for all: nothing left to say
    patched = await c.patch(
        "/v1/deadlines/survey-2027",
        json={"title": {"ar": "استبيان"}, "link": "https://example.org/one"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["warnings"] == []
    assert (await c.get("/v1/deadlines/survey-2027")).json()["link"] == "https://example.org/one"
    # and back to links per language, then one language's link removed (merge patch)
    await c.patch("/v1/deadlines/survey-2027", json={"link": LINKS})
    await c.patch("/v1/deadlines/survey-2027", json={"link": {"fr": None}})
    assert (await c.get("/v1/deadlines/survey-2027")).json()["link"] == {"en": LINKS["en"]}


async def test_an_announcement_takes_a_link_per_language_and_warns_of_gaps(
    api: OperatorApi,
) -> None:
    c = api.client
    body = announcement(audience={"cities": ["hue", "durban"]}, link=LINKS)
    created = await c.post("/v1/announcements", json=body)
    assert created.status_code == 202, created.text
    # Hue reads Vietnamese, then French: French title, body and link; Durban has English
    assert created.json()["warnings"] == [
        "no title in vi (1 city: hue), they get fr",
        "no body in vi (1 city: hue), they get fr",
        "no link in vi (1 city: hue), they get fr",
    ]
    shown = (await c.get("/v1/announcements/study-visit")).json()
    assert shown["link"] == LINKS
    assert [a["link"] for a in (await c.get("/v1/announcements")).json()] == [LINKS]


@pytest.mark.parametrize(
    "link",
    [
        {"fr": "ftp://example.org"},
        {},
        {"Fr_fr": "https://example.org"},
        {f"l{chr(97 + i)}": "https://example.org" for i in range(17)},  # 17 languages
        {"fr": "https://example.org/" + "x" * 2000},
    ],
)
async def test_bad_links_per_language_are_refused(api: OperatorApi, link: dict[str, str]) -> None:
    response = await api.client.post("/v1/deadlines", json=deadline(link=link))
    assert response.status_code == 422, response.text
    assert all(d["loc"][:2] == ["body", "link"] for d in response.json()["detail"])
