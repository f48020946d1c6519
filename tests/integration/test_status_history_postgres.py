"""A notice's history on PostgreSQL: the same tests as ``tests/unit/test_status_history.py``
(imported, so pytest collects them here too) with their ``engine`` fixture on a scratch
PostgreSQL database: the insert that keeps a receipt once, the pruning to the latest 50
(the replay's second view stays on SQLite: the two databases must agree)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import create_engine, migrate
from tests.support import scratch_postgres_database
from tests.unit.test_status_history import (
    test_a_late_retrying_is_history_but_not_the_state,
    test_a_replay_rebuilds_the_same_history,
    test_every_receipt_once_latest_first,
    test_pruned_to_the_latest_50_in_any_order,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_late_retrying_is_history_but_not_the_state",
    "test_a_replay_rebuilds_the_same_history",
    "test_every_receipt_once_latest_first",
    "test_pruned_to_the_latest_50_in_any_order",
]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    admin = os.environ.get("GNLC_TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("GNLC_TEST_POSTGRES_URL is not set (deploy/test.sh sets it)")
        pytest.skip("no PostgreSQL: run through deploy/test.sh")
    with scratch_postgres_database(admin) as url:
        yield url


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await migrate(engine, "status")
    yield engine
    await engine.dispose()
