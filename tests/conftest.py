"""Suite-wide settings."""

from __future__ import annotations

import pytest

from tests.support import use_fork_server

# the services the tests start are forks of a process that imported them once
# (``tests.forkserver``): about 1.5 s of CPU less for each of them
use_fork_server()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order in which xdist deals the files out to its workers (``--dist loadfile
    --no-loadscope-reorder`` keep it): the files marked ``long`` (a test or two that take
    half a minute or more, mostly waiting) first, then the others by their number of tests,
    most first (xdist's own order). With xdist's order alone the long ones came last, and
    the run waited at its end for one of them while the other worker had nothing left."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def order(tests: list[pytest.Item]) -> tuple[bool, int]:
        return (tests[0].get_closest_marker("long") is None, -len(tests))

    items[:] = [item for tests in sorted(files.values(), key=order) for item in tests]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test has proven nothing: exit 1, not pytest's 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
