"""The webhook API's input rules, in process: bad input is a 4xx naming what to fix, never a
5xx; every body, string and list has a documented limit; nothing is stored before every
check passed; times in answers carry their offset; the OpenAPI document says all of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gnlc_core.events import EVENT_TYPES
from gnlc_webhook.api import EndpointOut
from gnlc_webhook.partners import PartnersFileError, seed_partners
from gnlc_webhook.ssrf import Policy
from gnlc_webhook.store import EndpointRow
from gnlc_webhook.validation import (
    MAX_BODY_BYTES,
    MAX_CITIES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EVENT_TYPES,
    MAX_NAME_LENGTH,
    MAX_REGION_LENGTH,
    MAX_REGIONS,
    MAX_URL_LENGTH,
)
from tests.integration.webhook_api_app import (
    InProcess,
    api_client,
    in_process_api,
)

pytestmark = pytest.mark.integration

REMINDER = "deadline.reminder"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process_api(tmp_path) as made:
        yield made


@pytest.fixture
async def client(api: InProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api) as http:
        yield http


async def _partner_and_endpoint(client: httpx.AsyncClient) -> str:
    partner = await client.post("/partners", json={"id": "p1", "name": "P1"})
    assert partner.status_code in (201, 409)
    created = await client.post(
        "/endpoints",
        json={"url": "https://hooks.example.org/a", "event_types": [REMINDER], "partner": "p1"},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _only_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert set(error) >= {"loc", "msg", "type"}
    return dict(error)


EXTREME_TIMES = [
    ("0001-01-01T00:00:00+14:00", "years 0002 to 9998"),  # was an OverflowError (500)
    ("9999-12-31T23:59:59-14:00", "years 0002 to 9998"),
    ("0.443", "RFC 3339 date-time"),  # was taken as seconds since 1970
    ("1700000000", "RFC 3339 date-time"),
    ("2026-01-01T00:00:00", "with an offset"),  # naive
    ("2026-01-01", "RFC 3339 date-time"),
    ("2026-02-30T00:00:00Z", "day is out of range"),
    ("", "RFC 3339 date-time"),
]


@pytest.mark.parametrize(("since", "message"), EXTREME_TIMES)
async def test_replay_and_log_refuse_every_time_that_is_not_a_strict_instant(
    client: httpx.AsyncClient, since: str, message: str
) -> None:
    endpoint = await _partner_and_endpoint(client)
    error = _only_error(await client.post(f"/endpoints/{endpoint}/replay", json={"since": since}))
    assert error["loc"] == ["body", "since"]
    assert message in error["msg"]
    error = _only_error(
        await client.get(f"/endpoints/{endpoint}/attempts", params={"since": since})
    )
    assert error["loc"] == ["query", "since"]
    assert message in error["msg"]


async def test_times_at_the_edges_of_the_range_are_accepted(client: httpx.AsyncClient) -> None:
    endpoint = await _partner_and_endpoint(client)
    for since in ("0002-01-01T00:00:00+23:59", "9998-12-31T23:59:59-23:59", "2026-01-01T00:00Z"):
        if since.endswith("00:00Z"):
            since = "2026-01-01T00:00:00.123456789Z"
        replay = await client.post(f"/endpoints/{endpoint}/replay", json={"since": since})
        assert replay.status_code == 202, (since, replay.text)
        assert replay.json() == {"queued": 0}
        log = await client.get(f"/endpoints/{endpoint}/attempts", params={"since": since})
        assert log.status_code == 200, (since, log.text)


async def test_a_body_over_the_limit_is_a_413_naming_it_and_nothing_is_read_further(
    api: InProcess, client: httpx.AsyncClient
) -> None:
    await client.post("/partners", json={"id": "p1", "name": "P1"})
    million = {
        "url": "https://hooks.example.org/a",
        "event_types": [REMINDER],
        "partner": "p1",
        "regions": ["Europe and North America"] * 1_000_000,
    }
    response = await client.post("/endpoints", json=million)
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body larger than {MAX_BODY_BYTES} bytes (the limit of this API)"
    }

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: the stream is counted
        yield b'{"url": "https://hooks.example.org/a", "description": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    streamed = await client.post(
        "/endpoints", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "larger than" in streamed.json()["detail"]
    assert await api.store.endpoints() == []


def _too_many(field: str, limit: int, item: Any) -> tuple[dict[str, Any], str, str]:
    return {field: [item] * (limit + 1)}, field, f"at most {limit} item"


LIMITS = [
    _too_many("regions", MAX_REGIONS, "Europe and North America"),
    _too_many("cities", MAX_CITIES, "hamburg"),
    _too_many("event_types", MAX_EVENT_TYPES, REMINDER),
    ({"regions": ["x" * (MAX_REGION_LENGTH + 1)]}, "regions", f"at most {MAX_REGION_LENGTH}"),
    ({"url": "https://a.example/" + "x" * MAX_URL_LENGTH}, "url", f"at most {MAX_URL_LENGTH}"),
    (
        {"description": "é" * (MAX_DESCRIPTION_LENGTH + 1)},
        "description",
        f"at most {MAX_DESCRIPTION_LENGTH}",
    ),
    ({"cities": ["x" * 64]}, "cities", "at most 63 characters"),
    ({"partner": "p" * 64}, "partner", "at most 63 characters"),
    ({"partner": "P-1"}, "partner", "should match pattern"),
    ({"event_types": []}, "event_types", "at least 1 item"),
    ({"event_types": ["deadline.nope"]}, "event_types", "unknown event type 'deadline.nope'"),
    ({"max_concurrency": 10**30}, "max_concurrency", "less than or equal to 256"),
    ({"max_concurrency": 0}, "max_concurrency", "greater than or equal to 1"),
    ({"rate_per_second": 1e308}, "rate_per_second", "less than or equal to 10000"),
    ({"url": "http://hooks.example.org:0/"}, "url", "port (1-65535)"),
    ({"url": "http://hooks.example.org:65536/"}, "url", "Port out of range"),
    ({"url": "http://user:pw@hooks.example.org/"}, "url", "credentials"),
    ({"url": "http://[:::]/"}, "url", "does not appear to be an IPv4 or IPv6 address"),
    ({"url": "https://hooks.example.org/a b"}, "url", "printable ASCII"),
    ({"url": "gopher://hooks.example.org/"}, "url", "http:// or https://"),
    ({"ordered": "true"}, "ordered", "Input should be a valid boolean"),
    ({"ordered": 1}, "ordered", "Input should be a valid boolean"),
]


@pytest.mark.parametrize(("change", "field", "message"), LIMITS)
async def test_every_string_list_and_number_has_a_limit_named_in_a_422(
    api: InProcess, client: httpx.AsyncClient, change: dict[str, Any], field: str, message: str
) -> None:
    await client.post("/partners", json={"id": "p1", "name": "P1"})
    body = {"url": "https://hooks.example.org/a", "event_types": [REMINDER], "partner": "p1"}
    response = await client.post("/endpoints", json={**body, **change})
    errors = response.json()["detail"]
    assert response.status_code == 422, response.text
    [error] = [e for e in errors if e["loc"][:2] == ["body", field]]
    assert message in error["msg"], error
    assert await api.store.endpoints() == []
    # the same rules hold for a change
    if field != "partner":
        endpoint = await _partner_and_endpoint(client)
        edit = await client.patch(f"/endpoints/{endpoint}", json=change)
        assert edit.status_code == 422
        [error] = [e for e in edit.json()["detail"] if e["loc"][:2] == ["body", field]]
        assert message in error["msg"], error


async def test_non_finite_numbers_and_deep_nesting_are_refused_as_invalid_json(
    client: httpx.AsyncClient,
) -> None:
    endpoint = await _partner_and_endpoint(client)
    for text, reason in [
        ('{"rate_per_second": NaN}', "NaN is not a JSON number"),
        ('{"rate_per_second": -Infinity}', "-Infinity is not a JSON number"),
        ('{"rate_per_second": 1e999}', "1e999 is out of range"),
        ('{"regions": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ]:
        response = await client.patch(
            f"/endpoints/{endpoint}", content=text, headers={"content-type": "application/json"}
        )
        error = _only_error(response)
        assert error["type"] == "json_invalid"
        assert error["msg"].endswith(reason), error  # the decoder's reason, in words


async def test_ids_and_query_values_have_limits_too(client: httpx.AsyncClient) -> None:
    endpoint = await _partner_and_endpoint(client)
    long_id = "e" * 64
    cases = [
        ("GET", f"/endpoints/{long_id}", ["path", "endpoint_id"]),
        ("POST", f"/partners/{long_id}/token", ["path", "partner_id"]),
        ("GET", "/endpoints?partner=" + "p" * 64, ["query", "partner"]),
        ("POST", f"/endpoints/{endpoint}/messages/{'v' * 65}/resend", ["path", "event_id"]),
        ("GET", f"/endpoints/{endpoint}/attempts?event_id={'v' * 65}", ["query", "event_id"]),
        ("GET", f"/endpoints/{endpoint}/attempts?limit=1001", ["query", "limit"]),
        ("GET", f"/endpoints/{endpoint}/attempts?limit=0", ["query", "limit"]),
        ("GET", f"/endpoints/{endpoint}/attempts?limit={10**40}", ["query", "limit"]),
    ]
    for method, path, loc in cases:
        error = _only_error(await client.request(method, path))
        assert error["loc"] == loc, (path, error)
    name = {"id": "p2", "name": "n" * (MAX_NAME_LENGTH + 1)}
    assert _only_error(await client.post("/partners", json=name))["loc"] == ["body", "name"]
    grace = {"grace_seconds": 10**12}
    error = _only_error(await client.post(f"/endpoints/{endpoint}/rotate-secret", json=grace))
    assert error["loc"] == ["body", "grace_seconds"]


async def test_an_empty_change_is_refused_and_null_only_clears_what_may_be_cleared(
    client: httpx.AsyncClient,
) -> None:
    endpoint = await _partner_and_endpoint(client)
    error = _only_error(await client.patch(f"/endpoints/{endpoint}", json={}))
    assert "nothing to change" in error["msg"]
    for field in ("url", "event_types", "description", "ordered"):
        error = _only_error(await client.patch(f"/endpoints/{endpoint}", json={field: None}))
        assert error["loc"] == ["body", field]
        assert "may not be null" in error["msg"]
    edit = await client.patch(
        f"/endpoints/{endpoint}",
        json={"regions": ["Europe and North America"], "max_concurrency": 4},
    )
    assert edit.status_code == 200, edit.text
    cleared = await client.patch(
        f"/endpoints/{endpoint}", json={"regions": None, "max_concurrency": None}
    )
    assert cleared.status_code == 200
    assert cleared.json()["regions"] == []
    assert cleared.json()["max_concurrency"] is None
    assert cleared.json()["ordered"] is False  # the default
    ordered = await client.patch(f"/endpoints/{endpoint}", json={"ordered": True})
    assert ordered.status_code == 200, ordered.text
    assert ordered.json()["ordered"] is True


async def test_times_in_answers_carry_their_offset(client: httpx.AsyncClient) -> None:
    endpoint = await _partner_and_endpoint(client)
    rotated = (await client.post(f"/endpoints/{endpoint}/rotate-secret", json={})).json()
    read = (await client.get(f"/endpoints/{endpoint}")).json()
    partners = (await client.get("/partners")).json()
    stamps = [
        rotated["previous_secret_expires_at"],
        read["created_at"],
        read["updated_at"],
        read["previous_secret_expires_at"],
        partners[0]["created_at"],
    ]
    for stamp in stamps:
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp
    # a naive time (as SQLite hands them back) leaves as UTC, with its offset
    naive = datetime(2026, 1, 31, 9, 0)
    row = EndpointRow(id="e1", partner_id="p1", url="https://x.example/", event_types=(REMINDER,))
    out = json.loads(
        EndpointOut.of(
            EndpointRow(**{**row.__dict__, "created_at": naive, "failing_since": naive})
        ).model_dump_json()
    )
    assert out["created_at"] == "2026-01-31T09:00:00Z"
    assert out["failing_since"] == "2026-01-31T09:00:00Z"


async def test_the_openapi_document_names_every_status_and_the_event_types(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("http://webhook.test/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["EndpointIn"]["properties"]["event_types"]["items"]["enum"] == sorted(
        EVENT_TYPES
    )
    assert schemas["EndpointIn"]["properties"]["regions"]["maxItems"] == MAX_REGIONS
    assert schemas["EndpointPatch"]["minProperties"] == 1
    assert schemas["ReplayIn"]["properties"]["since"]["format"] == "date-time"
    error_shape = {"$ref": "#/components/schemas/ErrorDetail"}
    invalid_shape = {"$ref": "#/components/schemas/HTTPValidationError"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            expected = {"401"}
            if "requestBody" in operation:
                expected |= {"413", "422"}
            if "{endpoint_id}" in path or "{partner_id}" in path:
                expected |= {"404", "422"}
            if path.startswith("/v1/partners"):
                expected.add("403")
            if (path, method) == ("/v1/partners", "post"):
                expected.add("409")
            assert expected <= set(answers), (method, path, sorted(answers))
            for code, answer in answers.items():
                shape = answer.get("content", {}).get("application/json", {}).get("schema")
                if code == "422":
                    assert shape == invalid_shape, (method, path)
                elif code.startswith(("4", "5")):
                    assert shape == error_shape, (method, path, code)


def _partners_file(path: Path, evil: dict[str, Any] | None = None) -> Path:
    """A good endpoint, then one named ``evil`` (a metadata URL unless ``evil`` says)."""
    base = {
        "partner": "someone",
        "event_types": [REMINDER],
        "secret": "whsec_" + "A" * 43 + "=",
    }
    good = {**base, "id": "good", "url": "https://hooks.example.org/good"}
    entry = {
        **base,
        "id": "evil",
        "url": "http://169.254.169.254/latest/meta-data/",
        **(evil or {}),
    }
    path.write_text(yaml.safe_dump({"endpoints": [good, entry]}))
    return path


async def test_the_partners_file_is_checked_as_the_api_checks_and_stores_nothing_if_refused(
    api: InProcess, tmp_path: Path
) -> None:
    nobody = Policy()
    path = _partners_file(tmp_path / "partners.yaml")
    with pytest.raises(PartnersFileError) as refused:
        await seed_partners(api.store, path, policy=nobody, directory=None, resolver=api.resolver)
    assert str(refused.value) == (
        f"{path}: endpoint evil: url: refused: 169.254.169.254 is a cloud metadata address; "
        "webhooks are not sent there"
    )
    assert await api.store.endpoints() == []

    loopback = _partners_file(tmp_path / "loopback.yaml", {"url": "http://127.0.0.1:9/hook"})
    with pytest.raises(PartnersFileError, match=r"evil: url: refused: 127\.0\.0\.1 is a loop"):
        await seed_partners(api.store, loopback, policy=nobody, directory=None)
    allowed = Policy.parse("127.0.0.0/8")
    seeded = await seed_partners(
        api.store, loopback, policy=allowed, directory=None, resolver=api.resolver
    )
    assert [e.id for e in seeded] == ["good", "evil"]
    assert {row.id for row in await api.store.endpoints()} == {"good", "evil"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"regions": ["Arab States"] * 1_000},
            "endpoint evil: regions: Tuple should have at most 20",
        ),
        ({"event_types": ["deadline.nope"]}, "endpoint evil: event_types.0: unknown"),
        ({"url": "ftp://x.example/"}, "endpoint evil: url: refused: the URL must"),
        ({"secret": "nope"}, "endpoint evil: secret: secret must start with whsec_"),
        ({"colour": "red"}, "endpoint evil: colour: Extra inputs are not permitted"),
        ({"description": "x" * 1001}, "endpoint evil: description: String should have at most"),
    ],
)
async def test_the_partners_file_names_the_endpoint_and_field_of_each_error(
    api: InProcess, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _partners_file(tmp_path / "partners.yaml", {"url": "https://x.example/", **change})
    with pytest.raises(PartnersFileError) as refused:
        await seed_partners(api.store, path, policy=Policy(), directory=None)
    assert f"{path}: {message}" in str(refused.value)
    assert await api.store.endpoints() == []


async def test_the_partners_file_filter_is_checked_against_the_directory(
    api: InProcess, tmp_path: Path
) -> None:
    from tests.integration.webhook_api_app import directory

    path = _partners_file(
        tmp_path / "partners.yaml",
        {"url": "https://x.example/", "regions": ["Mars"], "cities": ["atlantis"]},
    )
    with pytest.raises(PartnersFileError) as refused:
        await seed_partners(
            api.store, path, policy=Policy(), directory=directory(), resolver=api.resolver
        )
    assert f"{path}: endpoint evil: cities: unknown city id(s) ['atlantis']" in str(refused.value)
    assert f"{path}: endpoint evil: regions: unknown region(s) ['Mars']" in str(refused.value)
