from __future__ import annotations

from pathlib import Path

from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import Ledger, Status


async def test_ledger_settles_and_updates(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "email")
    await migrate(engine, "email")  # idempotent
    email = Ledger(engine, "email")
    webhook = Ledger(engine, "webhook")
    await email.record("evt-1", "kathmandu:a@x.org", Status.RETRYING, attempts=1, error="421")
    assert await email.settled("evt-1", ["kathmandu:a@x.org"]) == set()
    await email.record("evt-1", "kathmandu:a@x.org", Status.DELIVERED, attempts=2)
    await email.record("evt-1", "laval:b@x.org", Status.FAILED, error="550 no such user")
    assert await email.settled("evt-1", ["kathmandu:a@x.org", "laval:b@x.org", "c"]) == {
        "kathmandu:a@x.org",
        "laval:b@x.org",
    }
    assert await webhook.settled("evt-1", ["kathmandu:a@x.org"]) == set()
    assert await email.status("evt-1", "laval:b@x.org") is Status.FAILED
    assert await email.status("evt-2", "laval:b@x.org") is None
    await engine.dispose()
