"""Unit-test fixtures for every module under tests/unit."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The console's accounts hash with argon2id's RFC 9106 parameters (about 0.4 s of CPU
    and 64 MiB a hash, on purpose); in process tests use the cheapest parameters instead, as
    the code is the same. A test marked ``production_hashing`` keeps the real ones, and the
    browser tests run the real service."""
    if request.node.get_closest_marker("production_hashing"):
        return
    from gnlc_console import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", cheap)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", cheap.hash("no such account"))
