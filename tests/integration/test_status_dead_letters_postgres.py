"""The dead letters' API on PostgreSQL: the same tests as ``tests/unit/
test_status_dead_letters.py`` (they are imported, so pytest collects them here too), with
their ``api`` fixture on a scratch PostgreSQL database: the upsert that keeps a record
once, the reason's LIKE with its escape, the conditional claim and its twins."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import scratch_postgres_database
from tests.unit.test_status_dead_letters import (
    Harness,
    harness,
    test_a_broker_that_fails_changes_nothing,
    test_an_endpoints_delivery_goes_to_that_endpoint_alone,
    test_redrive_all_that_match,
    test_redrive_one_then_again,
    test_the_list_its_filters_and_paging,
    test_what_cannot_be_redriven_is_refused,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_broker_that_fails_changes_nothing",
    "test_an_endpoints_delivery_goes_to_that_endpoint_alone",
    "test_redrive_all_that_match",
    "test_redrive_one_then_again",
    "test_the_list_its_filters_and_paging",
    "test_what_cannot_be_redriven_is_refused",
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
async def api(postgres_url: str) -> AsyncIterator[Harness]:
    async with harness(postgres_url) as made:
        yield made
