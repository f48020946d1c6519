"""Console accounts: made by ``gnlc-notify console add-user``, checked by argon2, and the
sessions they open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnlc_cli.main import app
from gnlc_console.accounts import Role, add_user, authenticate
from gnlc_console.sessions import Lifetimes, find_session, forget_expired, open_session
from gnlc_core.db import create_engine, migrate

runner = CliRunner()
T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
PASSWORD = "twelve chars or more"


def test_the_cli_makes_and_changes_an_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    monkeypatch.setenv("GNLC_DATABASE_URL", url)
    made = runner.invoke(
        app,
        ["console", "add-user", "amina", "--role", "editor", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert made.exit_code == 0, made.output
    assert "created editor amina" in made.output
    again = runner.invoke(
        app, ["console", "add-user", "amina", "--password-stdin"], input="another long one!\n"
    )
    assert again.exit_code == 0
    assert "updated viewer amina" in again.output
    short = runner.invoke(app, ["console", "add-user", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code == 2
    assert "12 to 1024 characters" in short.output
    bad_role = runner.invoke(app, ["console", "add-user", "bob", "--role", "admin"])
    assert bad_role.exit_code != 0
    removed = runner.invoke(app, ["console", "remove-user", "amina"])
    assert removed.exit_code == 0
    assert runner.invoke(app, ["console", "remove-user", "amina"]).exit_code == 1


@pytest.mark.production_hashing
def test_the_console_hashes_with_rfc_9106_parameters() -> None:
    from argon2 import Parameters, profiles
    from argon2.low_level import Type

    from gnlc_console import accounts

    hasher = accounts._hasher
    first_choice: Parameters = profiles.RFC_9106_LOW_MEMORY
    assert hasher.type is Type.ID
    assert (hasher.time_cost, hasher.memory_cost) == (
        first_choice.time_cost,
        first_choice.memory_cost,
    )
    assert accounts._DUMMY_HASH.startswith(f"$argon2id$v=19$m={first_choice.memory_cost},")


async def test_passwords_are_argon2_and_checked(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    try:
        await migrate(engine, "console")
        assert await add_user(engine, "amina", PASSWORD, Role.EDITOR, T0)
        async with engine.connect() as connection:
            stored = (
                await connection.exec_driver_sql("SELECT password_hash FROM console_users")
            ).scalar()
        assert str(stored).startswith("$argon2id$")
        assert PASSWORD not in str(stored)
        user = await authenticate(engine, "amina", PASSWORD)
        assert user is not None
        assert user.can_edit
        assert await authenticate(engine, "amina", PASSWORD + "x") is None
        assert await authenticate(engine, "nobody", PASSWORD) is None
        with pytest.raises(ValueError, match="name"):
            await add_user(engine, "Amina Smith", PASSWORD, Role.VIEWER, T0)
    finally:
        await engine.dispose()


async def test_sessions_end_when_idle_or_old(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    lifetimes = Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    try:
        await migrate(engine, "console")
        await add_user(engine, "amina", PASSWORD, Role.VIEWER, T0)
        user = await authenticate(engine, "amina", PASSWORD)
        assert user is not None
        first = await open_session(engine, user, T0)
        # used every 20 minutes, it lives until its absolute end
        for minutes in (20, 40, 60, 80, 100):
            assert await find_session(engine, first.id, T0 + timedelta(minutes=minutes), lifetimes)
        assert await find_session(engine, first.id, T0 + timedelta(minutes=121), lifetimes) is None
        idle = await open_session(engine, user, T0)
        assert await find_session(engine, idle.id, T0 + timedelta(minutes=31), lifetimes) is None
        rotated = await open_session(engine, user, T0)
        newer = await open_session(engine, user, T0, replaces=rotated.id)
        assert newer.id != rotated.id
        assert await find_session(engine, rotated.id, T0, lifetimes) is None
        assert await find_session(engine, newer.id, T0, lifetimes) is not None
        assert await forget_expired(engine, T0 + timedelta(hours=3), lifetimes) == 1
    finally:
        await engine.dispose()
