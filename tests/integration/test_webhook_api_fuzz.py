"""Schemathesis over the webhook API's OpenAPI document, in process (ASGI), as the operator
and as a partner: every phase (examples, coverage, fuzzing, stateful) and every check, with
a fixed seed and a bounded number of examples. The API must answer without a server error
and exactly as its document says (statuses, shapes, what it accepts and refuses).

Two things no schema can carry are set up as a real client would have them: names resolve
(to a public address, by table), and the cities, regions and partner a valid request names
exist (a valid request names those of the directory and of the partner itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

from tests.integration.webhook_api_app import (
    OPERATOR_TOKEN,
    InProcess,
    directory,
    webhook_api,
)

pytestmark = pytest.mark.integration

SEED = 20_261_125
MAX_EXAMPLES = 12
PARTNER = "example-institute"  # the partner of the document's example


def _realistic(body: Any) -> Any:
    """A valid body names a partner, cities and regions that exist (a schema cannot say
    which do); everything else stays as generated."""
    if not isinstance(body, dict):
        return body
    cities = directory()
    known_cities = [city.id for city in cities][:3]
    known_regions = sorted({city.region for city in cities})[:2]
    fixed = dict(body)
    if "partner" in fixed or "url" in fixed:
        fixed["partner"] = PARTNER
    if fixed.get("cities"):
        fixed["cities"] = known_cities[: len(fixed["cities"])]
    if fixed.get("regions"):
        fixed["regions"] = known_regions[: len(fixed["regions"])]
    return fixed


def _positive_bodies_name_what_exists(_context: HookContext, case: Case[Any]) -> Case[Any]:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        case.body = _realistic(case.body)
    return case


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[InProcess, str]]:
    made = asyncio.run(webhook_api(tmp_path))
    token = asyncio.run(_seed_partner(made))
    yield made, token
    asyncio.run(made.engine.dispose())


async def _seed_partner(api: InProcess) -> str:
    token = "gnlcp_fuzz-partner-token"
    assert await api.store.create_partner(PARTNER, "Fuzz partner", token)
    return token


def _run(api: InProcess, token: str) -> list[str]:
    """One schemathesis run; returns its failures and errors, one line each."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "workers": 1,
            "cache": {"enabled": False},  # the same run every time, and nothing written
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app, config=config)
    schema.hook("map_case")(_positive_bodies_name_what_exists)
    problems: list[str] = []
    calls = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            calls += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        problems.append(f"{event.label}: {check.name}: {failure.title}")
                        problems.append(f"    {failure.message}")
                        problems.append(f"    {check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: error: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    assert calls > 100, f"only {calls} requests made"
    return problems


@pytest.mark.timeout(180)
def test_the_operator_api_holds_to_its_document(api: tuple[InProcess, str]) -> None:
    made, _partner_token = api
    problems = _run(made, OPERATOR_TOKEN)
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(180)
def test_the_partner_api_holds_to_its_document(api: tuple[InProcess, str]) -> None:
    made, partner_token = api
    problems = _run(made, partner_token)
    assert not problems, "\n".join(problems)
