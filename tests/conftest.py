"""Suite-wide settings."""

from __future__ import annotations

import pytest

LONG = "long"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order the workers take the modules in (``deploy/test.sh`` keeps it, with
    ``--no-loadscope-reorder``): the modules with the most tests first, as pytest-xdist
    orders them, and the modules marked ``long`` (tens of seconds spent mostly waiting on a
    real clock or a broker; in collection order) interleaved from the start, one in every
    other place, so that each worker has one of them beside busier work, and none is left
    for the end."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    groups = list(modules.values())
    waiting = [g for g in groups if g[0].get_closest_marker(LONG) is not None]
    busy = sorted(  # stable: collection order among equals
        (g for g in groups if g[0].get_closest_marker(LONG) is None), key=len, reverse=True
    )
    ordered: list[list[pytest.Item]] = []
    while waiting or busy:
        for queue in (waiting, busy):
            if queue:
                ordered.append(queue.pop(0))
    items[:] = [item for group in ordered for item in group]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test has proven nothing: exit 1, not pytest's 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
