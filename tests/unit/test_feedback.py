"""The feedback handler on a real (SQLite) database: what a bounce or complaint changes, and
that a forged one changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import load_csv
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.bounce_store import BounceStore, feedback
from gnlc_email.bounces import AlertKind, Feedback
from gnlc_email.feedback import FeedbackHandler, Outcome, Source, Thresholds
from gnlc_email.inbound import InboundHandler, NotYetKnown
from gnlc_email.store import Preferences
from gnlc_email.verp import MailKind, ReturnPaths
from tests.integration.bounce_support import dsn

EVENT = "1fbcfa17-9717-5eed-b918-c4062534eda3"
KATHMANDU = "kathmandu:lll@kathmandu.example.org"


class Setup:
    def __init__(self, engine: Any) -> None:
        self.paths = ReturnPaths(["secret"], "b.example")
        self.store = BounceStore(engine)
        self.preferences = Preferences(engine)
        self.ledger = Ledger(engine, "email")
        self.told: list[Notice] = []
        self.now = datetime(2027, 1, 10, tzinfo=UTC)

        async def listener(channel: str, rows: Sequence[Notice]) -> None:
            self.told.extend(rows)

        self.ledger.listen(listener)
        self.handler = FeedbackHandler(
            self.paths,
            self.store,
            self.ledger,
            self.preferences,
            load_csv(SAMPLE_DIRECTORY),
            Thresholds(soft_bounces=3, window_seconds=7 * 86400),
            clock=lambda: self.now,
        )

    def token(self, kind: MailKind = MailKind.REQUIRED, key: str = KATHMANDU) -> str:
        token = self.paths.token(EVENT, key, kind)
        assert token is not None
        return token


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'email.db'}")
    await migrate(engine, "email")
    s = Setup(engine)
    await s.ledger.record_many([Notice(EVENT, KATHMANDU, Status.DELIVERED, 1)])
    s.told.clear()
    yield s
    await engine.dispose()


async def test_a_hard_bounce_marks_the_contact_the_notice_and_alerts_for_the_city(
    setup: Setup,
) -> None:
    outcome = await setup.handler.handle(
        setup.token(), Feedback.HARD, Source.SMTP, "5.1.1", frozenset({"lll@kathmandu.example.org"})
    )
    assert outcome is Outcome.APPLIED
    assert await setup.ledger.status(EVENT, KATHMANDU) is Status.BOUNCED
    assert [(n.status, n.error) for n in setup.told] == [(Status.BOUNCED, "hard bounce: 5.1.1")]
    marked = await setup.store.bouncing()
    assert [(b.city_id, b.address) for b in marked] == [("kathmandu", "lll@kathmandu.example.org")]
    alerts = await setup.store.alerts()
    assert [(a.kind, a.city_id) for a in alerts] == [
        (AlertKind.NO_DELIVERABLE_CONTACT, "kathmandu")
    ]
    # the same bounce again: still one mark, no second alert
    await setup.handler.handle(setup.token(), Feedback.HARD, Source.SMTP, "5.1.1")
    assert len(await setup.store.alerts()) == 1


async def test_a_forged_token_changes_nothing(setup: Setup) -> None:
    forged = ReturnPaths(["another secret"], "b.example").token(EVENT, KATHMANDU, MailKind.REQUIRED)
    assert forged is not None
    outcome = await setup.handler.handle(forged, Feedback.HARD, Source.SMTP, "x")
    assert outcome is Outcome.REFUSED
    assert await setup.ledger.status(EVENT, KATHMANDU) is Status.DELIVERED
    assert await setup.store.bouncing() == []
    assert setup.told == []


async def test_a_token_for_a_notice_never_sent_changes_nothing(setup: Setup) -> None:
    token = setup.token(key="laval:apprendre@laval.example.org")
    assert await setup.handler.handle(token, Feedback.HARD, Source.SMTP, "x") is Outcome.UNKNOWN
    assert await setup.store.bouncing() == []


async def test_soft_bounces_mark_the_contact_at_the_threshold_within_the_window(
    setup: Setup, tmp_path: Path
) -> None:
    await setup.handler.handle(setup.token(), Feedback.SOFT, Source.SMTP, "4.2.2")
    setup.now += timedelta(days=8)  # the first one falls out of the window
    await setup.handler.handle(setup.token(), Feedback.SOFT, Source.SMTP, "4.2.2")
    await setup.handler.handle(setup.token(), Feedback.SOFT, Source.SMTP, "4.2.2")
    assert await setup.store.bouncing() == []
    assert await setup.ledger.status(EVENT, KATHMANDU) is Status.DELIVERED
    await setup.handler.handle(setup.token(), Feedback.SOFT, Source.SENDGRID, "deferred")
    assert await setup.ledger.status(EVENT, KATHMANDU) is Status.BOUNCED
    [marked] = await setup.store.bouncing()
    assert marked.reason.startswith("3 soft bounces within 7 days")


async def test_a_complaint_about_an_announcement_unsubscribes_about_a_reminder_alerts(
    setup: Setup,
) -> None:
    await setup.handler.handle(setup.token(MailKind.REQUIRED), Feedback.COMPLAINT, Source.SMTP, "")
    assert await setup.preferences.unsubscribed(["lll@kathmandu.example.org"]) == set()
    [alert] = await setup.store.alerts()
    assert alert.kind is AlertKind.COMPLAINT_ABOUT_REQUIRED
    await setup.handler.handle(setup.token(MailKind.OPTIONAL), Feedback.COMPLAINT, Source.SMTP, "")
    assert await setup.preferences.unsubscribed(["lll@kathmandu.example.org"]) == {
        "lll@kathmandu.example.org"
    }
    assert await setup.store.bouncing() == []  # a complaint is no bounce
    assert await setup.ledger.status(EVENT, KATHMANDU) is Status.DELIVERED


async def test_every_feedback_is_kept(setup: Setup) -> None:
    await setup.handler.handle(setup.token(), Feedback.SOFT, Source.SMTP, "4.2.2")
    await setup.handler.handle(setup.token(), Feedback.COMPLAINT, Source.SENDGRID, "spam")
    async with setup.store._engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(feedback))).scalar()
    assert count == 2


@pytest.mark.parametrize(
    ("key", "known"),
    [(KATHMANDU, True), ("laval:apprendre@laval.example.org", False)],
)
async def test_the_listener_defers_a_bounce_about_a_notice_not_recorded_yet(
    setup: Setup, key: str, known: bool
) -> None:
    """A relay may bounce before the ledger has the send's outcome: the listener answers
    451 (the relay offers it again later) instead of dropping it."""
    return_path = setup.paths.address(setup.token(key=key))
    address = key.partition(":")[2]
    original = f"From: GNLC <gnlc@example.org>\r\nTo: {address}\r\nSubject: x\r\n\r\nbody".encode()
    report = dsn(return_path, address, original, ("failed", "5.1.1", "550 5.1.1 no such user"))
    inbound = InboundHandler(setup.handler)
    if known:
        assert await inbound.take(report, [return_path]) == 1
        assert await setup.ledger.status(EVENT, KATHMANDU) is Status.BOUNCED
    else:
        with pytest.raises(NotYetKnown):
            await inbound.take(report, [return_path])
        assert await setup.store.bouncing() == []
