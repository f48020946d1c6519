"""The scheduler's receipts: its plan, per reminder step and city, as ``notice.status``
events on channel ``schedule`` (the recipient is the city).

``scheduled`` when a step is planned (with the instant it goes out), ``sent`` when its
event is on Kafka (handed to the channels), ``dropped`` with the reason when it will not
go (not scheduled: collapsed, past, submitted; cancelled, missed), ``failed`` when it was
parked. They are rows of the outbox, written in the same transaction as the change that
caused them, and published by the dispatcher like every other event: a receipt is never
lost, and never published for a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from gnlc_core.events import SOURCE_SCHEDULER, NoticeStatus, receipt_event
from gnlc_core.ledger import Status
from gnlc_core.receipts import RECEIPT_TYPE

__all__ = ["CHANNEL", "RECEIPT_TYPE", "of_rows", "outbox_rows", "step_receipt"]

CHANNEL = "schedule"


def step_receipt(
    event_id: str,
    *,
    deadline_id: str,
    city_id: str,
    step: str,
    state: Status,
    at: datetime,
    send_at: datetime | None = None,
    reason: str | None = None,
) -> NoticeStatus:
    return NoticeStatus(
        event_id=event_id,
        channel=CHANNEL,
        recipient=city_id,
        state=state.value,
        reason=reason[:2000] if reason else None,
        attempts=0,
        state_time=at,
        event_type="deadline.reminder",
        deadline_id=deadline_id,
        step=step,
        city_id=city_id,
        send_at=send_at,
    )


def outbox_rows(receipts: Iterable[NoticeStatus], *, now: datetime) -> list[dict[str, Any]]:
    """Outbox rows that publish ``receipts`` at once (no deadline, city or announcement of
    their own: re-plans, cancellations and withdrawals never touch them)."""
    return [
        {
            "event_id": receipt_event(receipt, source=SOURCE_SCHEDULER).id,
            "type": RECEIPT_TYPE,
            "fire_at": now,
            "state": "pending",
            "deadline_id": None,
            "city_id": None,
            "announcement_id": None,
            "step": None,
            "partition_key": receipt.event_id,
            "data": receipt.model_dump(mode="json", exclude_none=True),
        }
        for receipt in receipts
    ]


def of_rows(
    rows: Iterable[Mapping[Any, Any]], state: Status, *, at: datetime, reason: str | None = None
) -> list[NoticeStatus]:
    """Receipts for outbox rows of reminders (``event_id``, ``deadline_id``, ``city_id``,
    ``step``, ``fire_at``) now in ``state``; other rows (announcements, receipts) are left
    out."""
    return [
        step_receipt(
            row["event_id"],
            deadline_id=row["deadline_id"],
            city_id=row["city_id"],
            step=row["step"],
            state=state,
            at=at,
            send_at=_aware(row["fire_at"]) if state is Status.SCHEDULED else None,
            reason=reason,
        )
        for row in rows
        if row["deadline_id"] is not None and row["city_id"] is not None and row["step"]
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
