"""Suite-wide settings."""

from __future__ import annotations

import pytest

LONG = "long"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked ``long`` (tens of seconds of wall clock, most of it waiting on a real
    clock, a broker or a browser) run first; the short ones then fill the workers' tails,
    so the workers finish together. The sort is stable: within each group, the order of
    collection."""
    items.sort(key=lambda item: item.get_closest_marker(LONG) is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test has proven nothing: exit 1, not pytest's 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
