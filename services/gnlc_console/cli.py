"""The console's commands: serve (no arguments), and accounts.

``python -m gnlc_console add-user NAME --role editor`` asks for the password twice (or
reads one line from standard input with ``--password-stdin``); ``gnlc-notify console
add-user`` is the same command. Accounts live in the console's database (``GNLC_DATABASE_URL``,
else ``console.db`` in ``GNLC_STATE_DIR``)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from gnlc_console.accounts import Role, account_problem, add_user, remove_user
from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.settings import Settings


async def _add(settings: Settings, name: str, password: str, role: Role) -> bool:
    engine = create_engine(database_url(settings, "console"))
    try:
        await migrate(engine, "console")
        return await add_user(engine, name, password, role, datetime.now(UTC))
    finally:
        await engine.dispose()


async def _remove(settings: Settings, name: str) -> bool:
    engine = create_engine(database_url(settings, "console"))
    try:
        await migrate(engine, "console")
        return await remove_user(engine, name)
    finally:
        await engine.dispose()


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def add_user_command(
    name: str, role: Role, password_stdin: bool, settings: Settings | None = None
) -> int:
    try:
        password = read_password(password_stdin)
        problem = account_problem(name, password)
        if problem:
            raise ValueError(problem)
        created = asyncio.run(_add(settings or Settings(), name, password, role))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the command's output
        return 2
    print(f"{'created' if created else 'updated'} {role} {name}")  # noqa: T201
    return 0


def remove_user_command(name: str, settings: Settings | None = None) -> int:
    if not asyncio.run(_remove(settings or Settings(), name)):
        print(f"error: no account {name!r}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"removed {name}")  # noqa: T201
    return 0


def main(argv: Sequence[str]) -> int:
    if not argv:
        from gnlc_console.app import create_app
        from gnlc_core.service import run

        run("console", create_app, lambda settings: settings.console_port, operator_api=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m gnlc_console")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user", help="create an account, or set its password and role")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = commands.add_parser("remove-user", help="delete an account and its sessions")
    remove.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "add-user":
        return add_user_command(args.name, Role(args.role), args.password_stdin)
    return remove_user_command(args.name)
