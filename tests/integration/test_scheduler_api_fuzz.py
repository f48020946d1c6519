"""Schemathesis over the scheduler's operator API: the real service (a child process on a
free port, the real broker, its own SQLite file), every operation of ``/v1``, every check
schemathesis has, a fixed seed and a bounded number of examples: no server error, and
every answer as the document says.

One check is told what the document cannot say: a request valid by the schema may still
be refused with 422 because of what it means today (a due moment already past, a city or
region not in the directory, a plan that lists one offset twice); 413 is the answer to an
event larger than Kafka takes, which depends on the whole body."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from pydantic import SecretStr
from schemathesis.checks import CHECKS, load_all_checks

from gnlc_core.settings import Settings
from gnlc_scheduler.app import create_app
from tests.support import HTTP, Service, free_port, seed_directory

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(16)
EXAMPLES = 15


@pytest.fixture(scope="module")
def scheduler(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("fuzz")
    prefix = f"f{uuid.uuid4().hex[:10]}."
    seed_directory(kafka, prefix)
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "GNLC_TOPIC_PREFIX": prefix,
            "GNLC_TOPIC_PARTITIONS": "1",
            "GNLC_OPERATOR_TOKEN": TOKEN,
            "GNLC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'scheduler.db'}",
            "GNLC_SCHEDULER_PORT": str(port),
            "GNLC_LOG_LEVEL": "WARNING",
        }
    )
    service = Service("scheduler", env, port, Path(tmp / "scheduler.log")).start()
    try:
        yield service
    finally:
        service.stop()


CONFIG = schemathesis.Config.from_dict(
    {
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "422"]
            }
        },
    }
)


def _document() -> dict[str, Any]:
    """The document as the code builds it (building the app connects to nothing)."""
    return create_app(Settings(operator_token=SecretStr(TOKEN))).openapi()


schema = schemathesis.openapi.from_dict(_document(), config=CONFIG).include(path_regex=r"^/v1/")


def test_the_served_document_is_the_one_fuzzed(scheduler: Service) -> None:
    assert HTTP.get(f"{scheduler.url}/openapi.json").json() == _document()


def _all_checks() -> list[schemathesis.CheckFunction]:
    load_all_checks()
    return [check for check in CHECKS.get_all() if not isinstance(check, type)]


@schema.parametrize()
@seed(20261125)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operator_api_keeps_its_contract(case: schemathesis.Case[Any], scheduler: Service) -> None:
    case.call_and_validate(base_url=scheduler.url, checks=_all_checks(), timeout=30)
