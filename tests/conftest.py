"""Suite-wide settings."""

from __future__ import annotations

import pytest

from tests.support import use_fork_server

# the services the tests start are forks of a process that imported them once
# (``tests.forkserver``): about 1.5 s of CPU less for each of them
use_fork_server()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test has proven nothing: exit 1, not pytest's 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
