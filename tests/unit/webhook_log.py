"""A delivery in the webhook service's log, as the consumer writes it (the payload, the
ledger row and the attempts), for the API's and the portal's in-process tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.ledger import Ledger, Status
from gnlc_webhook.store import Attempt, Store, StoredMessage


async def delivered(
    engine: AsyncEngine,
    endpoint_id: str,
    partner_id: str,
    event_id: str,
    body: str,
    *,
    event_type: str = "deadline.reminder",
    answers: Sequence[tuple[int | None, str | None, str | None]] = ((204, "", None),),
    status: Status = Status.DELIVERED,
) -> None:
    """``answers``: (status code, response body, error) of each attempt, in order."""
    store = Store(engine)
    async with engine.begin() as connection:
        await store.add_messages([StoredMessage(event_id, event_type, body)], connection=connection)
        await store.add_attempts(
            [
                Attempt(
                    event_id=event_id,
                    endpoint_id=endpoint_id,
                    partner_id=partner_id,
                    attempt=number,
                    status=status if number == len(answers) else Status.RETRYING,
                    at=datetime.now(UTC),
                    status_code=code,
                    latency_ms=12.5,
                    response_body=text,
                    error=error,
                )
                for number, (code, text, error) in enumerate(answers, start=1)
            ],
            connection=connection,
        )
    await Ledger(engine, "webhook").record(event_id, endpoint_id, status, attempts=len(answers))
