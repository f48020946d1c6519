"""Each service's database holds its own tables: one Alembic branch per service."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from gnlc_core.db import create_engine, migrate

ALEMBIC = {"alembic_version"}


async def _tables(path: Path, *branches: str) -> set[str]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        for branch in branches:
            await migrate(engine, branch)
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        return set(names) - ALEMBIC
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("branch", "expected", "foreign_prefixes"),
    [
        (
            "scheduler",
            {"cities", "deadlines", "submissions", "announcements", "outbox"},
            ("notices", "email_", "webhook_"),
        ),
        ("email", {"notices"}, ("cities", "outbox", "webhook_")),
        ("webhook", {"notices", "webhook_partners", "webhook_endpoints"}, ("cities", "email_")),
        (
            "console",
            {"console_users", "console_sessions", "console_partner_sessions"},
            ("notices", "cities", "webhook_"),
        ),
        (
            "status",
            {"status_notices", "status_dead_letters"},
            ("notices", "cities", "outbox", "webhook_"),
        ),
    ],
)
async def test_a_service_migrates_its_own_branch(
    tmp_path: Path, branch: str, expected: set[str], foreign_prefixes: tuple[str, ...]
) -> None:
    tables = await _tables(tmp_path / f"{branch}.db", branch)
    assert expected <= tables
    assert not [name for name in tables if name.startswith(foreign_prefixes)]


async def test_services_sharing_one_database_each_migrate(tmp_path: Path) -> None:
    """A shared database (PostgreSQL in production) gets every branch, in any order, and a
    second run changes nothing."""
    path = tmp_path / "shared.db"
    first = await _tables(path, "webhook", "status", "scheduler", "email")
    again = await _tables(path, "email", "webhook", "scheduler", "status")
    assert first == again
    assert {"outbox", "notices", "webhook_endpoints", "status_notices"} <= first
