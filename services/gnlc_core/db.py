"""The database: one async SQLAlchemy engine per process, migrated by Alembic at start.

SQLite (one file, nothing to install) is the embedded default; PostgreSQL is the production
store. Both go through the same code. Unless ``GNLC_DATABASE_URL`` is set, each service
keeps its own SQLite file in the state directory (``GNLC_STATE_DIR``, default
``.local/state/``) so that services never wait on each other's write lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gnlc_core.settings import Settings

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
_MIGRATION_LOCK = 4_711_740  # pg_advisory_xact_lock key: one migrator at a time


def database_url(settings: Settings, service: str) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    path = settings.state_dir / f"{service}.db"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(
            f"state directory {path.parent}: {exc.strerror}; set GNLC_STATE_DIR to a writable "
            "directory (a volume in a container) or GNLC_DATABASE_URL to a database"
        ) from None
    return f"sqlite+aiosqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An engine with sane pooling; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, branch: str) -> None:
    """Bring the schema of one service to the newest revision of its Alembic branch
    (``alembic upgrade <branch>@head``): a service's database holds its own tables alone
    (the ledger's ``notices`` is the common root of the channels' branches). Services that
    share one PostgreSQL database each migrate their branch; the advisory lock serialises
    them."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
        await connection.run_sync(
            lambda sync: command.upgrade(_alembic_config(sync), f"{branch}@head")
        )
