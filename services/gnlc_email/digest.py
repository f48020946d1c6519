"""Daily digests, pure: which local day's digest a notice joins, when that digest is due,
whether a notice may wait for it at all, and how a day's notices are cut into digests.

**The rule.** A city's digest of local day *D* closes at the digest time on *D*, city-local
(``GNLC_EMAIL_DIGEST_TIME``, 09:00: the scheduler's default ``delivery_hour``, when day-based
reminders arrive), plus a short window (``GNLC_EMAIL_DIGEST_WINDOW_SECONDS``, 300) for the
reminders fired at that moment to reach the email service. A notice handled at instant *t*
joins the digest of the first local day whose close is after *t*: one handled at 09:03 goes
in today's digest (sent at 09:05), one handled at 09:06 or in the afternoon in tomorrow's.
So every notice waits at most a day, the reminders of the delivery hour are never a day late,
and a digest never reports what happened after it was sent.

**What never waits.** A reminder whose due moment falls between now and the digest's close
(an hour-based step, ``-2h``; a ``due`` step arriving late) goes at once on its own: waiting
would deliver it after its deadline. Changes of a calendar entry (``deadline.updated``,
``deadline.cancelled``) go at once too: they correct entries already delivered, and the
calendar book orders them by revision.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent
from gnlc_core.localtime import wall_instant

#: Notices one digest lists at most; a day with more gets a second digest (and so on).
MAX_NOTICES = 20
#: How long a digest being sent is left to the instance that took it, before another (or
#: the same one, restarted after a crash) takes it again: far above one SMTP transaction.
LEASE = timedelta(minutes=5)
#: Finished digests (and their notices' rows) are kept this long, then purged.
KEPT = timedelta(days=30)
REASON_PREFIX = "digest "
_NAMESPACE = uuid.UUID("0f5d1c8e-6a3b-4e7c-9b1d-2c4a8e6f3b57")
_DAY = timedelta(days=1)
T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """When digests close: ``at`` on each local day, plus ``window``."""

    at: time = time(9)
    window: timedelta = timedelta(minutes=5)

    def close(self, day: date, zone: ZoneInfo) -> datetime:
        """When the digest of local ``day`` closes and is due (UTC)."""
        return wall_instant(day, self.at, zone) + self.window

    def day_of(self, handled: datetime, zone: ZoneInfo) -> date:
        """The local day whose digest a notice handled at ``handled`` joins: the first
        whose close is after it."""
        day = handled.astimezone(zone).date() - _DAY
        while self.close(day, zone) <= handled:
            day += _DAY
        return day


def may_wait(event: object, handled: datetime, close: datetime) -> bool:
    """Whether a notice may wait for a digest closing at ``close``: announcements and
    reminders may, unless the reminder's due moment falls between now and then."""
    if isinstance(event, AnnouncementPublishedEvent):
        return True
    if isinstance(event, DeadlineReminderEvent):
        return not handled < event.data.due_at <= close
    return False  # calendar changes


def held_reason(day: date) -> str:
    """The ledger's reason of a notice held for the digest of ``day``."""
    return f"{REASON_PREFIX}{day.isoformat()}"


def digest_key(city_id: str, address: str, day: date, part: int) -> str:
    """The identity of one digest: the contact, the local day and which of that day's
    digests (1, 2, ... when there are more than ``MAX_NOTICES``)."""
    return f"{city_id}:{address.lower()}:{day.isoformat()}:{part}"


def digest_reference(key: str) -> str:
    """A stable id of a digest (a UUID, like an event's): its Message-ID and the
    reference its mail shows; the same digest sent twice has the same Message-ID."""
    return str(uuid.uuid5(_NAMESPACE, key))


def chunks(items: Sequence[T], limit: int = MAX_NOTICES) -> list[list[T]]:
    """``items`` in order, cut into digests of at most ``limit``."""
    if limit < 1:
        raise ValueError("a digest lists at least one notice")
    return [list(items[start : start + limit]) for start in range(0, len(items), limit)]
